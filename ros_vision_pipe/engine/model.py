"""A model of a pipeline: an inference session plus the Lua script around it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

import numpy as np

from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.errors import InferenceError, ScriptError, ScriptResultError, frame_suffix
from ros_vision_pipe.engine.lua.convert import ConversionError, is_table
from ros_vision_pipe.engine.lua.handles import Tensor
from ros_vision_pipe.engine.lua.host_api import install_vp
from ros_vision_pipe.engine.lua.sandbox import LuaScript
from ros_vision_pipe.engine.records import ModelSpec
from ros_vision_pipe.engine.replicas import Replicas, Run
from ros_vision_pipe.engine.session import InferenceSession, OnnxSession, TensorSpec
from ros_vision_pipe.engine.steps import BuiltinStep, PostprocessStep, PreprocessStep, make_step
from ros_vision_pipe.engine.tasks import InlineTaskRunner, ModelTaskRunner
from ros_vision_pipe.engine.vision import VisionOpError

#: Lua's collector counts a tensor handle as a few bytes, whatever the array behind it: once the
#: arrays the script was shown (frames, outputs) since the last collection, plus those its handles
#: still hold, reach this much, a full collection frees them (about 0.2 ms; a VGA frame's arrays
#: take a few frames to get there, a large frame's none).
FULL_COLLECT_BYTES = 4 * 1024 * 1024

T = TypeVar("T")

#: Builds the session of a model; tests inject slow or failing ones.
SessionFactory = Callable[[ModelSpec, int, bool], InferenceSession]


def onnx_session_factory(spec: ModelSpec, intra_op_threads: int, allow_spinning: bool) -> InferenceSession:
    """The default ``SessionFactory``: a real ONNX Runtime session."""
    return OnnxSession(
        spec.model_path,
        model_name=spec.name,
        providers=spec.providers,
        intra_op_threads=intra_op_threads,
        allow_spinning=allow_spinning,
        dynamic_shape=spec.dynamic_shape,
    )


@dataclass(frozen=True)
class Prepared:
    """What preprocess produced for one frame: the feeds and the script's own state.

    Attributes:
        feeds: Input name -> array, checked against the model's inputs.
        state: Second value returned by ``preprocess``, handed to ``postprocess`` as
            its third argument (Lua value; lives in the model's runtime).
    """

    feeds: dict[str, np.ndarray]
    state: Any = None
    #: The Lua view of the frame preprocess saw, reused by postprocess while the frame's
    #: results are unchanged (``Model.lua_context``); with their count then.
    lua_ctx: Any = None
    lua_ctx_results: int = 0


def _describe(array: np.ndarray) -> str:
    return f"{array.dtype} [{','.join(str(d) for d in array.shape)}]"


def _model_description(session: InferenceSession, spec: ModelSpec) -> dict[str, Any]:
    def specs(items: Sequence[TensorSpec]) -> list[dict[str, Any]]:
        return [
            {"name": s.name, "shape": [-1 if d is None else d for d in s.shape], "dtype": s.dtype}
            for s in items
        ]

    return {
        "name": spec.name,
        "inputs": specs(session.inputs),
        "outputs": specs(session.outputs),
        "metadata": dict(session.metadata),
    }


class Model:
    """One ONNX session and one Lua script with ``preprocess`` and ``postprocess``.

    ``preprocess(ctx)`` returns a tensor, a table of named tensors (multi-input
    models), or nil to skip; it may return a second value, handed to
    ``postprocess(outputs, ctx, state)``. ``outputs`` holds the output tensors both
    by position (``outputs[1]``) and by name.
    """

    def __init__(
        self,
        spec: ModelSpec,
        session: InferenceSession,
        script: LuaScript,
        tasks: ModelTaskRunner | None = None,
    ) -> None:
        """Assemble a model from its parts (see ``Model.load``).

        ``tasks`` runs the inferences on the model's own task queue (inline when omitted).
        """
        self.spec = spec
        self._tasks: ModelTaskRunner = tasks or InlineTaskRunner()
        self.name = spec.name
        self.session = session
        self.script = script
        self._preprocess = script.global_function("preprocess")
        self._postprocess = script.global_function("postprocess")
        for function, fname in ((self._preprocess, "preprocess"), (self._postprocess, "postprocess")):
            if function is None:
                raise ScriptError(
                    f"{script.display_name} does not define a global function {fname}(...) "
                    f"(model {spec.name!r})"
                )
        self._step_lines: dict[str, str] = {}  # role -> the script line that made its built-in step
        self._pre_step = cast("PreprocessStep | None", self._builtin_step(self._preprocess, "preprocess"))
        self._post_step = cast("PostprocessStep | None", self._builtin_step(self._postprocess, "postprocess"))
        # what the script is shown of a frame (its arrays are released with a garbage collection)
        self._shows_image = self._pre_step is None or self._post_step is None
        self._shows_outputs = self._post_step is None
        self._inputs = {s.name: s for s in session.inputs}
        self._single_input = session.inputs[0].name if len(session.inputs) == 1 else None
        self._last_feed: tuple[tuple[int, ...], np.dtype] | None = None  # shape and dtype of the last feed checked
        self._output_names = [s.name for s in session.outputs]
        self._lua_output_names = script.runtime.table_from(self._output_names)
        self._uncollected = 0  # bytes of arrays shown to the script since its last collection

    @classmethod
    def load(
        cls,
        spec: ModelSpec,
        *,
        intra_op_threads: int,
        allow_spinning: bool,
        display_root: Any = None,
        session_factory: SessionFactory = onnx_session_factory,
        tasks: ModelTaskRunner | None = None,
    ) -> Model:
        """Create the session, then the script's runtime with ``vp`` and ``MODEL`` defined.

        Raises:
            ModelLoadError: The ONNX file cannot be loaded.
            ScriptError: The script cannot be loaded or lacks preprocess/postprocess.
        """
        session = session_factory(spec, intra_op_threads, allow_spinning)
        description = _model_description(session, spec)
        script = LuaScript(
            spec.script_path,
            owner=spec.name,
            search_dir=display_root or spec.script_path.parent,
            display_root=display_root,
            install=lambda s: install_vp(s, {"MODEL": description}),
            limits=spec.script_limits,
        )
        return cls(spec, session, script, tasks)

    def _builtin_step(self, function: Any, role: str) -> BuiltinStep | None:
        """The built-in step the script's ``role`` function is (``vp.steps``; one for that role), or None:
        a Lua function.

        Raises:
            ScriptError: The step is one for the other role, or does not fit the model.
        """
        spec = self.script.step_spec(function)
        if spec is None:
            return None
        where = spec.get("where", self.script.display_name)
        self._step_lines[role] = where
        try:
            step = make_step(spec)
        except VisionOpError as error:  # checked when the script made it: only a changed engine gets here
            raise ScriptError(f"{where}: vp.{error} (model {self.name!r})") from None
        problem = (f"it is a {step.role} step" if step.role != role
                   else step.mismatch(self.session.inputs, self.session.outputs, self.script.limits.memory_bytes))
        if problem is not None:
            raise ScriptError(f"{where}: {role} is {step.name}, but {problem} (model {self.name!r})")
        return step

    def _step_error(self, error: VisionOpError, role: str, frame_id: int) -> ScriptError:
        """A built-in step's error, named as a script's error, on the line that made the step."""
        return ScriptError(f"{self._step_lines[role]} in {role}: vp.{error}{frame_suffix(self.name, frame_id)}")

    # -- the three steps -------------------------------------------------------------

    def _frame_fields(self, ctx: FrameContext) -> tuple[Any, ...]:
        """The arguments of the prelude's ``frame_view`` for ``ctx`` (results None: an empty table;
        the metadata is made in Lua from the source and size)."""
        shape = ctx.image.shape
        results = ctx.results
        return (ctx.frame_id, ctx.timestamp, ctx.encoding, ctx.source, shape[1], shape[0], Tensor(ctx.image),
                self.script.to_lua(results) if results else None)

    def lua_context(self, ctx: FrameContext) -> Any:
        """Build the read-only Lua view of ``ctx`` for this model's runtime."""
        return self.script.frame_view(*self._frame_fields(ctx))

    def preprocess(self, ctx: FrameContext) -> Prepared | None:
        """Run the script's ``preprocess``; None means skip this model (docs/execution-modes.md, Serial).

        The arrays it made are released with the frame's (``collect_frame``); a skipped model's
        frame, or a large one, is counted here.
        """
        if self._pre_step is not None:
            try:
                array = self._pre_step(ctx)
            except VisionOpError as error:
                raise self._step_error(error, "preprocess", ctx.frame_id) from None
            return Prepared(self._feeds(Tensor(array), ctx.frame_id))
        with self.script.lock:
            ended = True
            try:
                lua_ctx, returned = self.script.call_on_frame(
                    self._preprocess, "preprocess", self._frame_fields(ctx), frame_id=ctx.frame_id)
                if isinstance(returned, tuple):
                    value, state = (returned + (None, None))[:2]
                else:
                    value, state = returned, None
                if value is None:
                    return None
                prepared = Prepared(self._feeds(value, ctx.frame_id), state, lua_ctx, len(ctx.results))
                ended = False
                return prepared
            finally:
                returned = value = lua_ctx = None
                if ended or ctx.image.nbytes >= FULL_COLLECT_BYTES:  # no postprocess to collect after
                    self._shown(ctx.image.nbytes)

    def _feeds(self, value: Any, frame_id: int) -> dict[str, np.ndarray]:
        if isinstance(value, Tensor) and self._single_input is not None:
            array = value.array  # the common case: one tensor, as the last frame's (checked then)
            if (array.shape, array.dtype) == self._last_feed:
                return {self._single_input: array}
            feeds = self._checked_feeds(value, frame_id)
            self._last_feed = (array.shape, array.dtype)
            return feeds
        return self._checked_feeds(value, frame_id)

    def _checked_feeds(self, value: Any, frame_id: int) -> dict[str, np.ndarray]:
        where = frame_suffix(self.name, frame_id)
        if isinstance(value, Tensor):
            if self._single_input is None:
                raise InferenceError(
                    f"preprocess returned one tensor but the model has inputs "
                    f"{list(self._inputs)}: return a table of named tensors{where}"
                )
            feeds = {self._single_input: value.array}
        elif is_table(value):
            feeds = {}
            for key, item in value.items():
                if not isinstance(item, Tensor):
                    raise InferenceError(
                        f"preprocess returned {key!r} = {type(item).__name__}, expected a tensor{where}"
                    )
                feeds[str(key)] = item.array
        else:
            raise InferenceError(
                f"preprocess must return a tensor, a table of tensors or nil, "
                f"got {type(value).__name__}{where}"
            )
        unknown = sorted(set(feeds) - set(self._inputs))
        missing = sorted(set(self._inputs) - set(feeds))
        if unknown or missing:
            raise InferenceError(
                f"preprocess feeds {sorted(feeds)} do not match the model inputs "
                f"{list(self._inputs)} (unknown {unknown}, missing {missing}){where}"
            )
        for name, array in feeds.items():
            self._check_input(self._inputs[name], array, where)
        return feeds

    def _check_input(self, spec: TensorSpec, array: np.ndarray, where: str) -> None:
        rank_ok = array.ndim == len(spec.shape)
        dims_ok = rank_ok and all(
            want is None or want == got or (index == 0 and want == 1)
            for index, (want, got) in enumerate(zip(spec.shape, array.shape, strict=False))
        )
        if str(array.dtype) != spec.dtype or not dims_ok:
            raise InferenceError(
                f"input {spec.name!r}: expected {spec.describe()}, got {_describe(array)}{where}"
            )

    def infer(self, prepared: Prepared, frame_id: int) -> list[np.ndarray]:
        """Run the session on the model's task queue (see ``ModelTaskRunner``)."""
        return self._tasks.submit(self.name, partial(self._infer, prepared.feeds, frame_id)).result()

    def infer_here(self, prepared: Prepared, frame_id: int) -> list[np.ndarray]:
        """Run the session in the calling thread: a task already on the model's task queue."""
        return self._infer(prepared.feeds, frame_id)

    def replicas(self, start: bool = True) -> Replicas | None:
        """The session's replicas (replicas.py) when it has them and they are built, else None
        (``start``: build them if not done yet; see ``OnnxSession.replicas``)."""
        replicas = getattr(self.session, "replicas", None)
        return replicas(start) if callable(replicas) else None

    def infer_on_replica(self, replicas: Replicas, prepared: Prepared, frame_id: int) -> Future[list[np.ndarray]]:
        """Run the inference on a free replica of ``replicas``; the future fails as ``infer`` would raise."""
        feeds = prepared.feeds
        return replicas.submit(lambda run: self._infer(feeds, frame_id, run))

    def run_task(self, task: Callable[[], T]) -> Future[T]:
        """Queue ``task`` on the model's task queue (never concurrently with its other tasks)."""
        return self._tasks.submit(self.name, task)

    def _infer(self, feeds: dict[str, np.ndarray], frame_id: int, run: Run | None = None) -> list[np.ndarray]:
        """Run the session (or ``run``: a replica's); a batch on a model whose batch is fixed at 1 runs
        one item at a time."""
        run = run or self.session.run
        batch = {array.shape[0] for array in feeds.values() if array.ndim > 0}
        needs_split = len(batch) == 1 and next(iter(batch)) > 1 and any(
            self._inputs[name].fixed_batch for name in feeds
        )
        try:
            if not needs_split:
                return run(feeds)
            size = next(iter(batch))
            parts = [run({n: a[i : i + 1] for n, a in feeds.items()}) for i in range(size)]
            return [np.concatenate([part[k] for part in parts], axis=0) for k in range(len(parts[0]))]
        except InferenceError:
            raise
        except Exception as error:  # the runtime raises several unrelated types
            raise InferenceError(
                f"inference failed: {error}{frame_suffix(self.name, frame_id)}"
            ) from error

    def postprocess(self, outputs: Sequence[np.ndarray], ctx: FrameContext, prepared: Prepared, *,
                    collect: bool = True) -> Any:
        """Run the script's ``postprocess``; returns its result converted to Python.

        ``collect=False`` leaves the frame's garbage collection (``collect_frame``) to the caller,
        who runs it once the result is on its way (the direct path: after publishing).
        """
        if self._post_step is not None:
            try:
                return self._post_step(dict(zip(self._output_names, outputs, strict=True)), ctx)
            except VisionOpError as error:
                raise self._step_error(error, "postprocess", ctx.frame_id) from None
            finally:
                if collect:
                    self.collect_frame(outputs, ctx)
        with self.script.lock:
            returned = None
            try:
                lua_ctx = prepared.lua_ctx
                if lua_ctx is None or prepared.lua_ctx_results != len(ctx.results):
                    lua_ctx = self.lua_context(ctx)
                returned = self.script.call_with_outputs(
                    self._postprocess, "postprocess", self._lua_output_names, lua_ctx, prepared.state,
                    [Tensor(array) for array in outputs], frame_id=ctx.frame_id)
                return self.script.from_lua(returned)
            except ConversionError as error:
                raise ScriptResultError(
                    f"{self.script.display_name}: postprocess returned an unusable value: "
                    f"{error}{frame_suffix(self.name, ctx.frame_id)}"
                ) from None
            finally:
                returned = lua_ctx = None
                if collect:
                    self.collect_frame(outputs, ctx)

    def collect_frame(self, outputs: Sequence[np.ndarray], ctx: FrameContext) -> None:
        """Count the arrays the script was shown for this frame; release them with the earlier
        ones (a full Lua garbage collection) once they add up to ``FULL_COLLECT_BYTES``."""
        shown = ctx.image.nbytes if self._shows_image else 0
        if self._shows_outputs:
            shown += sum(int(array.nbytes) for array in outputs)
        if shown:
            self._shown(shown)

    def _shown(self, nbytes: int) -> None:
        with self.script.lock:
            self._uncollected += nbytes
            if self._uncollected + self.script.held_bytes >= FULL_COLLECT_BYTES:
                self._uncollected = 0
                self.script.collect(full=True)
