"""Tests of ``vp.crop_batch``: the crops of ``crop_boxes``, normalised into one float32 batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from skimage import data as skimage_data

from ros_vision_pipe.engine.errors import ScriptError
from ros_vision_pipe.engine.lua.host_api import install_vp
from ros_vision_pipe.engine.lua.sandbox import LuaScript
from ros_vision_pipe.engine.vision import VisionOpError
from ros_vision_pipe.engine.vision.boxes import map_points
from ros_vision_pipe.engine.vision.crop_batch import MAX_BATCH_BYTES, crop_batch
from ros_vision_pipe.engine.vision.detections import detections
from ros_vision_pipe.engine.vision.image import crop_boxes
from ros_vision_pipe.engine.vision.layout import to_chw
from ros_vision_pipe.engine.vision.tensor import normalize

FRAMES: Any = skimage_data

#: Boxes inside, across the border of and outside the 512 x 512 astronaut, one of them thin.
BOXES = np.array([[100, 150, 164, 260], [-40, -20, 60, 90], [480, 400, 560, 530], [200, 10, 205, 300]],
                 dtype=np.float32)

IMAGENET = {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.fixture(scope="module")
def astronaut() -> NDArray[np.uint8]:
    frame = np.array(FRAMES.astronaut())
    frame.flags.writeable = False
    return frame


def same_bits(a: NDArray[Any], b: NDArray[Any]) -> bool:
    """Equal dtype, shape and every bit (NaN and -0.0 included)."""
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.all(a.view(np.uint8) == b.view(np.uint8)))


@pytest.mark.parametrize("crop_opts", [{}, {"scale": 1.25, "square": True},
                                       {"pad_value": [10, 20, 30], "interp": "cubic"}])
@pytest.mark.parametrize("norm", [{}, {"scale": 1 / 255}, IMAGENET, {"scale": 1 / 255, "mean": 0.5, "std": 0.5}])
def test_crop_batch_gives_the_bits_of_normalize_after_crop_boxes(
    astronaut: NDArray[np.uint8], crop_opts: dict[str, Any], norm: dict[str, Any]
) -> None:
    crops, tables = crop_boxes(astronaut, BOXES, 96, 128, crop_opts or None)
    batch, transforms = crop_batch(astronaut, BOXES, 96, 128, {**crop_opts, "normalize": norm})
    assert same_bits(batch, normalize(crops, norm or None))
    assert transforms.shape == (4, 4) and transforms.dtype == np.float64
    assert [dict(zip(("x0", "y0", "sx", "sy"), row, strict=True)) for row in transforms.tolist()] == tables


def test_crop_batch_nchw_layout_is_the_channels_first_batch(astronaut: NDArray[np.uint8]) -> None:
    crops, _ = crop_boxes(astronaut, BOXES, 64, 64)
    batch, _ = crop_batch(astronaut, BOXES, 64, 64, {"normalize": IMAGENET, "layout": "nchw"})
    assert batch.shape == (4, 3, 64, 64)
    assert same_bits(batch, np.ascontiguousarray(to_chw(normalize(crops, IMAGENET))))


def test_crop_batch_takes_a_detection_list_and_an_empty_one(astronaut: NDArray[np.uint8]) -> None:
    dets = detections(BOXES, np.full(4, 0.9, np.float32))
    from_list, _ = crop_batch(astronaut, dets, 32, 32)
    from_tensor, _ = crop_batch(astronaut, BOXES, 32, 32)
    assert same_bits(from_list, from_tensor)
    empty, transforms = crop_batch(astronaut, detections(np.zeros((0, 4), np.float32)), 32, 48)
    assert empty.shape == (0, 48, 32, 3) and empty.dtype == np.float32 and transforms.shape == (0, 4)


def test_crop_batch_transforms_map_every_crop_back_in_one_call(astronaut: NDArray[np.uint8]) -> None:
    _, transforms = crop_batch(astronaut, BOXES, 64, 64, {"scale": 1.25, "square": True})
    corners = np.array([[[0, 0, 7], [64, 64, 8]]] * 4, dtype=np.float32)  # [N, 2, 3]: crop corners, a z
    mapped = map_points(corners, transforms)
    side = np.maximum(BOXES[:, 2] - BOXES[:, 0], BOXES[:, 3] - BOXES[:, 1]) * 1.25
    np.testing.assert_allclose(mapped[:, 1, 0] - mapped[:, 0, 0], side, rtol=1e-5)
    np.testing.assert_allclose((mapped[:, 0, 0] + mapped[:, 1, 0]) / 2, (BOXES[:, 0] + BOXES[:, 2]) / 2, rtol=1e-5)
    assert mapped[:, :, 2].tolist() == [[7, 8]] * 4  # other columns unchanged


@pytest.mark.parametrize(("args", "match"), [
    (("img", BOXES, 8, 8, None), r"crop_batch: img must be a tensor or a table of numbers, got 'img'"),
    ((None, "boxes", 8, 8, None), r"crop_batch: boxes must be a tensor or a table of numbers, got 'boxes'"),
    ((None, [[1, 2, 3]], 8, 8, None), r"crop_batch: boxes must be an \[N, 4\] tensor"),
    ((None, [[0, 0, np.nan, 4]], 8, 8, None), r"crop_batch: boxes must be finite"),
    ((None, BOXES, -8, 8, None), r"crop_batch: width must be > 0, got -8"),
    ((None, BOXES, 8, 2.5, None), r"crop_batch: height must be an integer, got 2\.5"),
    ((None, BOXES, 8, 8, {"scael": 2}), r"crop_batch: unknown option 'scael'"),
    ((None, BOXES, 8, 8, {"layout": "chw"}), r"crop_batch: opts\.layout must be one of \['nhwc', 'nchw'\]"),
    ((None, BOXES, 8, 8, {"normalize": 255}), r"crop_batch: opts\.normalize must be a table"),
    ((None, BOXES, 8, 8, {"normalize": {"mean": 0, "sdt": 1}}), r"crop_batch: unknown option 'sdt'"),
    ((None, BOXES, 8, 8, {"normalize": {"std": 0}}), r"crop_batch: opts\.normalize\.std must not be 0"),
    ((None, BOXES, 8, 8, {"normalize": {"mean": [1, 2]}}),
     r"crop_batch: opts\.normalize\.mean must have 3 entries \(one per channel\)"),
    ((None, [[5, 5, 5, 9]], 8, 8, None), r"crop_batch: box 1 has zero or negative size"),
    ((None, np.zeros((100_000, 4), np.float32), 256, 256, None),
     rf"crop_batch: 100000 crops of 256 x 256 x 3 float32 would take 75000\.0 MiB, more than the "
     rf"{MAX_BATCH_BYTES >> 20} MiB a batch may hold"),
])
def test_crop_batch_rejects_bad_arguments_by_name(
    astronaut: NDArray[np.uint8], args: tuple[Any, ...], match: str
) -> None:
    img, *rest = args
    with pytest.raises(VisionOpError, match=match):
        crop_batch(astronaut if img is None else img, *rest)


def test_crop_batch_from_lua_feeds_map_points_and_names_bad_calls(tmp_path: Path) -> None:
    path = tmp_path / "crops.lua"
    path.write_text("""
function crops(img, n)
  local boxes = vp.from_table({{10, 20, 110, 220}, {300, 40, 360, 200}}, "float32")
  local batch, tf = vp.crop_batch(img, boxes, 64, 64, { square = true, normalize = { scale = 1 / 255 } })
  local points = vp.map_points(vp.zeros({ 2, 3, 4 }), tf)
  return { batch:shape() }, tf:dim(1), points:at(2, 1, 1), points:at(1, 3, 2)
end
function bad(img, what)
  local got
  if what == "count" then got = vp.crop_batch(img, vp.zeros({ 20000, 4 }), 256, 256) end
  if what == "transforms" then got = vp.map_points(vp.zeros({ 3, 5, 2 }), vp.zeros({ 2, 4 })) end
  if what == "type" then got = vp.crop_batch(img, {}, 8, 8, { normalize = "yes" }) end
  return got
end
""", encoding="utf-8")
    script = LuaScript(path, owner="crops", search_dir=tmp_path, install=install_vp)
    image = script.to_lua(np.array(FRAMES.astronaut()))
    shape, count, x0_second, y0_first = script.call(script.global_function("crops"), "crops", image)
    assert list(shape.values()) == [2, 64, 64, 3] and count == 2
    assert x0_second == 250.0 and y0_first == 20.0  # square boxes: 160 wide around x = 330; 200 high from y = 20
    cases = {
        "count": r"crops\.lua:10 in bad: vp\.crop_batch: 20000 crops of 256 x 256 x 3 float32 would take",
        "transforms": r"crops\.lua:11 in bad: vp\.map_points: 2 transforms for 3 rows of points",
        "type": r"crops\.lua:12 in bad: vp\.crop_batch: opts\.normalize must be a table",
    }
    for what, match in cases.items():
        with pytest.raises(ScriptError, match=match):
            script.call(script.global_function("bad"), "bad", image, what)
