"""Built-in steps: a model's ``preprocess`` or ``postprocess`` that the engine runs itself.

A script names one instead of writing the function in Lua (docs/lua_api.md, "Built-in steps")::

    preprocess = vp.steps.model_input(300, 300, { dst = "rgb8" })
    postprocess = vp.steps.select_detections("detection_boxes:0", "detection_scores:0", 0.5, {
      class_ids = "detection_classes:0", labels = { "person" }, format = "yxyx", scale = "image" })

``vp.steps.<kind>`` checks its arguments when the script's main chunk calls it, and returns a Lua
function that does what the ``vp`` op it names does with the frame (a script can call it too, from
a function of its own). When a model's global ``preprocess`` or ``postprocess`` is such a function,
``Model`` runs the step here instead: no call into Lua, no ``ctx`` table, no crossing for the op's
arguments, and the value is the one the Lua function returns (tested). A step is the engine's own
code, bounded by the sizes of the image and the outputs: the script's time limit does not apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.session import TensorSpec
from ros_vision_pipe.engine.vision._args import as_image, as_opts, describe, fail
from ros_vision_pipe.engine.vision.detections import DetectionSelection
from ros_vision_pipe.engine.vision.model_input import InputRecipe

#: ``select_detections`` step options beyond ``vp.select_detections``' own.
_SELECT_STEP_OPTIONS = ("class_ids", "labels", "format", "scale", "limit", "key")


class BuiltinStep(Protocol):
    """What ``Model`` needs of a step."""

    #: ``"preprocess"`` or ``"postprocess"``: the function it can be.
    role: str
    #: ``vp.steps.<kind>``, for messages.
    name: str

    def mismatch(self, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], memory_bytes: int) -> str | None:
        """Why the step cannot serve a model with these inputs and outputs, its script's memory limit
        ``memory_bytes`` (what the Lua function's arrays count against), or None."""


class PreprocessStep(BuiltinStep, Protocol):
    """A step that is a model's ``preprocess``."""

    def __call__(self, ctx: FrameContext) -> np.ndarray:
        """The model's input made from the frame."""


class PostprocessStep(BuiltinStep, Protocol):
    """A step that is a model's ``postprocess``."""

    def __call__(self, outputs: Mapping[str, np.ndarray], ctx: FrameContext) -> dict[str, Any]:
        """The frame's result made from the model's outputs (by name)."""


class ModelInputStep:
    """``vp.steps.model_input(w, h, opts)``: ``vp.model_input(ctx.image, w, h, opts)`` with
    ``opts.src = ctx.encoding`` (when ``opts.dst`` is given; without it, no conversion)."""

    role = "preprocess"
    name = "vp.steps.model_input"

    def __init__(self, width: Any, height: Any, opts: Any = None) -> None:
        """Check the arguments.

        Raises:
            VisionOpError: as ``vp.model_input`` (``opts.src`` is not taken: it is the frame's).
        """
        self._recipe = InputRecipe.from_options(width, height, opts, "steps.model_input", src_per_image=True)

    def mismatch(self, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], memory_bytes: int) -> str | None:
        """A model input in one tensor, within the script's memory limit: the model must have one input."""
        if len(inputs) != 1:
            return f"it makes one tensor but the model has inputs {[spec.name for spec in inputs]}"
        if self._recipe.max_bytes > memory_bytes:
            return (f"its input takes up to {self._recipe.max_bytes / 2**20:.1f} MiB, more than the script's "
                    f"memory limit of {memory_bytes / 2**20:.0f} MiB (script_memory_mb)")
        return None

    def __call__(self, ctx: FrameContext) -> np.ndarray:
        """The model's input made from the frame.

        Raises:
            VisionOpError: the frame is not a uint8 image in one of the encodings ``vp.model_input`` takes.
        """
        op, image = self._recipe.op, ctx.image
        if image.dtype != np.uint8:  # a typed encoding (depth, 16-bit): not for this step
            raise fail(op, f"ctx.image must be a uint8 image (the frame's encoding is {ctx.encoding!r}; "
                           f"write preprocess in Lua for it), got {describe(image)}")
        return self._recipe.make(as_image(image, op, "ctx.image"), ctx.encoding)


class SelectDetectionsStep:
    """``vp.steps.select_detections(boxes, scores, thr, opts)``: ``{[key] = vp.select_detections(
    outputs[boxes], outputs[scores], thr, opts)}`` with ``opts.class_ids`` an output's name and
    ``opts.scale = "image"`` the frame's ``{width, height}``; ``key`` defaults to ``"detections"``."""

    role = "postprocess"
    name = "vp.steps.select_detections"

    def __init__(self, boxes: Any, scores: Any, thr: Any, opts: Any = None) -> None:
        """Check the arguments.

        Raises:
            VisionOpError: an output name that is not a string, or an option ``vp.select_detections``
                would refuse; ``scale`` may also be ``"image"``, ``key`` must be a string.
        """
        op = "steps.select_detections"
        options = as_opts(opts, op, _SELECT_STEP_OPTIONS)
        names = {"boxes": boxes, "scores": scores, "opts.class_ids": options.get("class_ids")}
        for what, value in names.items():
            if not isinstance(value, str) and not (what == "opts.class_ids" and value is None):
                raise fail(op, f"{what} must be the name of a model output, got {describe(value)}")
        key = options.get("key", "detections")
        if not isinstance(key, str) or not key:
            raise fail(op, f"opts.key must be a non-empty string, got {describe(key)}")
        self._boxes: str = boxes
        self._scores: str = scores
        self._class_ids: str | None = options.get("class_ids")
        self._key = key
        self._selection = DetectionSelection.from_options(
            thr, {name: options[name] for name in ("labels", "format", "limit") if name in options}, op)
        scale = options.get("scale")
        self._image_scale = scale == "image"
        if not (self._image_scale or scale is None or (isinstance(scale, list) and len(scale) in (1, 2))):
            raise fail(op, f'opts.scale must be "image", {{sx, sy}} or {{s}}, got {describe(scale)}')
        # numbers checked once, here: a bad scale fails at load
        self._factors = None if self._image_scale else self._selection.scale_factors(scale)

    def mismatch(self, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], memory_bytes: int) -> str | None:
        """Every output the step names must be one of the model's (its result is bounded by theirs)."""
        have = [spec.name for spec in outputs]
        named = (self._boxes, self._scores, self._class_ids)
        missing = [name for name in named if name is not None and name not in have]
        if missing:
            return f"the model has no output {missing[0]!r}; its outputs are {have}"
        return None

    def __call__(self, outputs: Mapping[str, np.ndarray], ctx: FrameContext) -> dict[str, Any]:
        """The frame's result: ``{key = <detections>}``.

        Raises:
            VisionOpError: as ``vp.select_detections`` (shapes that do not fit, a class without label).
        """
        shape = ctx.image.shape
        factors = (float(shape[1]), float(shape[0])) if self._image_scale else self._factors
        class_ids = None if self._class_ids is None else outputs[self._class_ids]
        return {self._key: self._selection.select(outputs[self._boxes], outputs[self._scores], class_ids, factors)}


def make_step(spec: Mapping[str, Any]) -> BuiltinStep:
    """The step ``spec`` describes: ``{kind = ..., <arguments by name>}`` as ``vp.steps`` records it.

    Raises:
        VisionOpError: an unknown kind, or arguments the step refuses.
    """
    kind = spec.get("kind")
    if kind == "model_input":
        return ModelInputStep(spec.get("width"), spec.get("height"), spec.get("opts"))
    if kind == "select_detections":
        return SelectDetectionsStep(spec.get("boxes"), spec.get("scores"), spec.get("thr"), spec.get("opts"))
    raise fail("steps", f"unknown step {describe(kind)}")


__all__ = ["BuiltinStep", "ModelInputStep", "PostprocessStep", "PreprocessStep", "SelectDetectionsStep",
           "make_step"]
