"""vp.model_input: the input of a whole-image model in one call, value for value the chain of ops it replaces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from skimage import data as skimage_data

from ros_vision_pipe.engine.errors import ScriptError
from ros_vision_pipe.engine.lua.host_api import install_vp
from ros_vision_pipe.engine.lua.sandbox import LuaScript
from ros_vision_pipe.engine.vision import VisionOpError
from ros_vision_pipe.engine.vision.image import ENCODING_CHANNELS, INTERPOLATIONS, convert_color, resize
from ros_vision_pipe.engine.vision.layout import expand_dims, to_chw
from ros_vision_pipe.engine.vision.model_input import model_input
from ros_vision_pipe.engine.vision.tensor import normalize

IMAGENET = {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def same_bits(a: NDArray[Any], b: NDArray[Any]) -> bool:
    """Equal dtype, shape and every bit."""
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.all(a.view(np.uint8) == b.view(np.uint8)))


@pytest.fixture(scope="module")
def images() -> dict[str, NDArray[np.uint8]]:
    """The astronaut (RGB) in every encoding."""
    rgb = np.ascontiguousarray(np.array(skimage_data.astronaut())[40:460, 20:500])
    return {encoding: convert_color(rgb, "rgb8", encoding) for encoding in ENCODING_CHANNELS}


@pytest.mark.parametrize("interp", list(INTERPOLATIONS))
@pytest.mark.parametrize("size", [(300, 300), (224, 160), (480, 420), (961, 33)])
def test_model_input_is_resize_after_convert_color_for_every_pair_of_encodings(
    images: dict[str, NDArray[np.uint8]], interp: str, size: tuple[int, int]
) -> None:
    for src in ENCODING_CHANNELS:
        for dst in ENCODING_CHANNELS:
            chain = expand_dims(resize(convert_color(images[src], src, dst), *size, interp), 1)
            got = model_input(images[src], *size, {"src": src, "dst": dst, "interp": interp})
            assert same_bits(got, chain), (src, dst)


@pytest.mark.parametrize("norm", [{}, {"scale": 1 / 255}, IMAGENET, {"mean": [104, 117, 123]}, {"mean": 0.5, "std": 2}])
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_model_input_normalises_and_lays_out_as_normalize_and_to_chw(
    images: dict[str, NDArray[np.uint8]], norm: dict[str, Any], layout: str
) -> None:
    chain = normalize(resize(convert_color(images["bgr8"], "bgr8", "rgb8"), 224, 224), norm)
    if layout == "nchw":
        chain = to_chw(chain)
    got = model_input(images["bgr8"], 224, 224, {"src": "bgr8", "dst": "rgb8", "normalize": norm, "layout": layout})
    assert same_bits(got, expand_dims(chain, 1))
    assert same_bits(model_input(images["bgr8"], 224, 224, {"src": "bgr8", "dst": "rgb8", "normalize": norm,
                                                            "layout": layout, "batch": False}), chain)


def test_model_input_without_options_only_resizes_and_never_returns_the_frame_itself(
    images: dict[str, NDArray[np.uint8]]
) -> None:
    frame = images["rgb8"]
    same_size = model_input(frame, frame.shape[1], frame.shape[0])
    assert same_bits(same_size, frame[None]) and not np.shares_memory(same_size, frame)
    assert same_bits(model_input(frame, 100, 80), expand_dims(resize(frame, 100, 80), 1))


@pytest.mark.parametrize(("args", "match"), [
    ((0, 10, None), r"model_input: width must be > 0"),
    ((10, 10, {"src": "bgr8"}), r"opts\.src and opts\.dst go together"),
    ((10, 10, {"src": "bgr8", "dst": "yuv"}), r"opts\.dst must be one of"),
    ((10, 10, {"src": "mono8", "dst": "rgb8"}), r"img has 3 channels but opts\.src 'mono8' needs 1"),
    ((10, 10, {"layout": "chw"}), r"opts\.layout must be one of \['nhwc', 'nchw'\]"),
    ((10, 10, {"interp": "lanczos"}), r"model_input: interp must be one of"),
    ((10, 10, {"normalize": "yes"}), r"opts\.normalize must be a table"),
    ((10, 10, {"normalize": {"std": 0}}), r"opts\.normalize\.std must not be 0"),
    ((10, 10, {"normalize": {"mean": [1, 2]}}), r"opts\.normalize\.mean"),
    ((10, 10, {"batch": 1}), r"opts\.batch"),
    ((10, 10, {"size": 3}), r"unknown option 'size'"),
])
def test_model_input_rejects_bad_arguments_by_name(images: dict[str, NDArray[np.uint8]], args: tuple[Any, ...],
                                                   match: str) -> None:
    with pytest.raises(VisionOpError, match=match):
        model_input(images["bgr8"], *args)


def test_model_input_from_lua_is_the_shipped_person_preprocess_and_names_a_bad_call(tmp_path: Path) -> None:
    path = tmp_path / "input.lua"
    path.write_text("""
function input(img)
  local x = vp.model_input(img, 300, 300, { src = "bgr8", dst = "rgb8" })
  return { x:shape() }, x
end
function bad(img)
  local x = vp.model_input(img, 300, 300, { src = "bgr8", dst = "rgb8", layout = "hwc" })
  return x
end
""", encoding="utf-8")
    script = LuaScript(path, owner="input", search_dir=tmp_path, install=install_vp)
    frame = np.ascontiguousarray(np.array(skimage_data.astronaut())[:, :, ::-1])
    shape, tensor = script.call(script.global_function("input"), "input", script.to_lua(frame))
    assert list(shape.values()) == [1, 300, 300, 3]
    hand_written = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), (300, 300), interpolation=cv2.INTER_LINEAR)[None]
    assert same_bits(tensor.array, hand_written)
    with pytest.raises(ScriptError, match=r"input\.lua:7 in bad: vp\.model_input: opts\.layout must be one of"):
        script.call(script.global_function("bad"), "bad", script.to_lua(frame))
