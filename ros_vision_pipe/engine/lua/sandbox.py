"""Sandboxed Lua 5.4 runtimes: one per model script (and one for the pipeline config).

A script sees the Lua 5.4 standard library minus everything that reaches outside the
process's own computation: no ``python`` object, no ``os`` (but ``os.clock`` and
``os.time``), no ``io``, ``debug``, ``package``, no ``load``/``loadfile``/``dofile``,
no ``string.dump``. ``require(name)`` resolves only ``name.lua`` source files under the
pipeline configuration's folder. Python objects handed to Lua expose only the public
attributes of tensor handles. Every call into a script runs under the runtime's
``ScriptLimits`` (see ``prelude.py`` for how the time limit is enforced).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from lupa import lua54 as lua

from ros_vision_pipe.engine.errors import (
    ScriptError,
    ScriptInterruptedError,
    ScriptMemoryError,
    ScriptTimeoutError,
    frame_suffix,
)
from ros_vision_pipe.engine.lua.convert import from_lua, to_lua
from ros_vision_pipe.engine.lua.handles import TENSOR_ATTRIBUTES, Tensor
from ros_vision_pipe.engine.lua.limits import DEFAULT_LIMITS, PATTERN_COST_LIMIT, ScriptLimits
from ros_vision_pipe.engine.lua.prelude import PRELUDE
from ros_vision_pipe.engine.lua.source import decode_source, read_source
from ros_vision_pipe.engine.vision.formats import DetectionList

_LOG = logging.getLogger("ros_vision_pipe.lua")

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

#: Version of the Lua language scripts are written in.
LUA_VERSION = ".".join(str(part) for part in lua.LuaRuntime().lua_version)

#: The Lua errors lupa raises (``LuaMemoryError`` is a subclass).
LuaError = lua.LuaError


def _attribute_filter(obj: Any, name: Any, is_setting: bool) -> Any:
    if isinstance(obj, Tensor) and not is_setting and name in TENSOR_ATTRIBUTES:
        return name
    raise AttributeError(f"Lua scripts cannot access attribute {name!r} of {type(obj).__name__}")


def _location_message(error: object) -> tuple[str, str]:
    """Split a LuaError into its first line and the traceback that follows."""
    text = str(error)
    first, _, rest = text.partition("\n")
    engine_frames = rest.find("\n\t[C]: in upvalue 'raw_xpcall'\n\t(engine)")
    if engine_frames >= 0:  # the engine's own frames below the script's
        rest = rest[:engine_frames]
    return first, rest


class LuaScript:
    """A Lua script loaded into its own sandboxed runtime.

    A runtime is single-threaded: every call goes through ``call``, which holds the
    script's lock, so one script is never entered by two threads at once. Different
    scripts run truly in parallel (lupa releases the GIL while Lua runs).
    """

    def __init__(
        self,
        path: Path,
        *,
        owner: str,
        search_dir: Path,
        display_root: Path | None = None,
        install: Callable[[LuaScript], None] | None = None,
        source: str | None = None,
        limits: ScriptLimits = DEFAULT_LIMITS,
    ) -> None:
        """Create the runtime, install the host API, and run the script's main chunk.

        Args:
            path: The script file.
            owner: Model name (or ``"pipeline"``) named in error messages.
            search_dir: Folder ``require`` may load modules from.
            display_root: Paths in messages are shown relative to this folder.
            install: Called with the new script before its chunk runs (defines ``vp``...).
            source: Script text; read from ``path`` when omitted.
            limits: Time limit of each call (the main chunk included) and memory limit.

        Raises:
            ScriptError: The file is missing, binary, not UTF-8, has a syntax error, or its
                main chunk fails (``ScriptTimeoutError``/``ScriptMemoryError`` past a limit).
        """
        self.path = path
        self.owner = owner
        self.search_dir = search_dir.resolve()
        self.limits = limits
        root = (display_root or path.parent).resolve()
        try:
            self.display_name = str(path.resolve().relative_to(root))
        except ValueError:
            self.display_name = str(path)
        self.lock = threading.RLock()
        self._deadline = float("inf")
        self._interrupted = False
        self._keyboard_interrupt = False
        self._memory_note: str | None = None
        self._held_bytes = 0
        self._held: dict[weakref.ref[Tensor], int] = {}
        self._limit_active = False
        # max_memory=0: lupa's counting allocator, unlimited until a call sets the limit.
        self.runtime = lua.LuaRuntime(
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_attribute_filter,
            max_memory=0,
        )
        helpers = self.runtime.execute(
            "local source = ...; return load(source, '=(engine)', 't')(select(2, ...))",
            PRELUDE, self._require_source, self._print, self._remaining,
            Tensor(np.zeros(0, np.uint8)), PATTERN_COST_LIMIT,
        )
        self._protected_call = helpers["call"]
        self._call_on_frame = helpers["call_on_frame"]
        self._call_with_outputs = helpers["call_with_outputs"]
        self.readonly = helpers["readonly"]
        self.frame_view = helpers["frame_view"]
        self._collect = helpers["collect"]
        self._wrap_host = helpers["wrap_host"]
        self._compile_text = helpers["compile"]
        self._rawget = helpers["rawget"]
        self._list_view = helpers["list_view"]
        self.view_source = helpers["view_source"]
        self.mark_step = helpers["mark_step"]
        self._step_of = helpers["step_of"]
        self._view_row = self.host_function(
            "detections", lambda source, index: to_lua(self.runtime, source[int(index) - 1], views=self.view))
        if install is not None:
            install(self)
        if source is None:
            source = read_source(path, self.display_name, owner)
        with self.lock:
            chunk = self._compile(source, self.display_name)
            self.main_result: Any = self.call(chunk, "main chunk")

    # -- values in and out ----------------------------------------------------------------

    def view(self, detections: DetectionList) -> Any:
        """A read-only Lua list view of ``detections``: rows become tables when indexed."""
        return self._list_view(detections, len(detections), self._view_row)

    def to_lua(self, value: Any) -> Any:
        """``convert.to_lua`` in this runtime, detections as views."""
        return to_lua(self.runtime, value, views=self.view)

    def from_lua(self, value: Any) -> Any:
        """``convert.from_lua`` that knows this runtime's detection views."""
        return from_lua(value, view_source=self.view_source)

    # -- limits ---------------------------------------------------------------------------

    def set_limits(self, limits: ScriptLimits) -> None:
        """Use ``limits`` for the calls from now on (the config's own options)."""
        self.limits = limits

    def interrupt(self) -> None:
        """Abort the call in progress (within milliseconds) and refuse every later one.

        Used when the pipeline closes, so that no thread is left running a script.
        """
        self._interrupted = True

    def _remaining(self) -> float:
        """Wall time left to the call in progress, seconds (asked by the Lua hook)."""
        try:
            if self._interrupted or self._keyboard_interrupt:
                return 0.0
            return self._deadline - time.monotonic()
        except KeyboardInterrupt:  # Ctrl-C while a script runs in the main thread: abort it
            self._keyboard_interrupt = True
            return 0.0

    def hold(self, tensor: Tensor) -> Tensor:
        """Count ``tensor``'s array against the memory limit while the script can reach it.

        Raises:
            MemoryError: The arrays the script holds would exceed the limit, even after a
                full garbage collection.
        """
        size = int(tensor.array.nbytes)
        limit = self.limits.memory_bytes
        if self._held_bytes + size > limit:
            self.collect(full=True)
            if self._held_bytes + size > limit:
                used = self._held_bytes + (self.runtime.get_memory_used() or 0)
                self._memory_note = (
                    f"memory limit of {self.limits.memory_mb} MiB exceeded (arrays held by the "
                    f"script: {used / 2**20:.1f} MiB, new array {size / 2**20:.1f} MiB)"
                )
                raise MemoryError(self._memory_note)
        self._held_bytes += size
        self._held[weakref.ref(tensor, self._release)] = size
        return tensor

    def _release(self, ref: weakref.ref[Tensor]) -> None:
        self._held_bytes -= self._held.pop(ref, 0)

    @property
    def held_bytes(self) -> int:
        """Bytes of the arrays behind the tensor handles the script can still reach."""
        return self._held_bytes

    # -- host API -------------------------------------------------------------------------

    def collect(self, *, full: bool) -> None:
        """Run Lua's garbage collector: a full cycle, or one incremental step.

        Tensor handles are small userdata to Lua, so without this the arrays they hold
        (frames, model outputs) would outlive their frame until Lua happens to collect.
        """
        with self.lock:
            try:
                self._collect(full)
            except LuaError as error:  # the runtime was interrupted meanwhile
                _LOG.debug("garbage collection of %s stopped: %s", self.display_name, error)

    def host_function(self, name: str, function: Callable[..., Any]) -> Any:
        """Return a Lua function calling ``function``; Python errors become Lua errors.

        ``function`` returns a value or a tuple (multiple Lua values); an exception it
        raises is reported at the calling line of the script, prefixed with ``name``.
        While it runs, the memory limit is lifted: the host's own Lua allocations happen
        outside Lua's protected calls, where running out would abort the process.
        """
        return self._wrap_host(self.guarded(name, function))

    def guarded(self, name: str, function: Callable[..., Any]) -> Callable[..., tuple[Any, ...]]:
        """``function`` returning ``true, ...`` or ``false, message`` (``host_function`` before the
        Lua wrapper that raises the message), for Lua helpers that raise at a level of their own."""

        def guarded(*args: Any) -> tuple[Any, ...]:
            if self._limit_active:
                self.runtime.set_max_memory(0)
            try:
                result = function(*args)
            except KeyboardInterrupt:
                self._keyboard_interrupt = True
                return (False, f"{name}: interrupted")
            except Exception as error:  # reported to Lua as error(), with the script's line
                text = str(error)
                short = name.rpartition(".")[2]
                return (False, f"vp.{text}" if text.startswith(short + ":") else f"{name}: {text}")
            finally:
                if self._limit_active:
                    self.runtime.set_max_memory(self.limits.memory_bytes)
            if isinstance(result, tuple):
                return (True, *result)
            return (True, result)

        return guarded

    def _compile(self, source: str, chunk_name: str) -> Any:
        result = self._compile_text(source, chunk_name)
        function, message = result if isinstance(result, tuple) else (result, None)
        if function is None:
            if "binary chunk" in str(message):
                raise ScriptError(
                    f"{chunk_name} is a precompiled (binary) Lua chunk; only Lua source text is "
                    f"accepted (model {self.owner!r})"
                )
            raise ScriptError(f"Lua syntax error: {message} (model {self.owner!r})")
        return function

    def _require_source(self, name: Any) -> tuple[Any, ...]:
        """(True, source, chunk name) of module ``name``, or (False, message), for the prelude."""
        if not isinstance(name, str) or not _MODULE_NAME.match(name):
            return False, f"require: invalid module name {name!r}"
        relative = Path(*name.split(".")).with_suffix(".lua")
        path = (self.search_dir / relative).resolve()
        if not path.is_relative_to(self.search_dir) or not path.is_file():
            return False, (
                f"require: module {name!r} not found (looked for {str(relative)!r} "
                f"under {str(self.search_dir)!r})"
            )
        try:
            return True, decode_source(path.read_bytes(), str(relative), self.owner), str(relative)
        except (OSError, ScriptError) as error:
            return False, f"require {name!r}: {error}"

    def _print(self, text: str) -> None:
        _LOG.info("[%s] %s", self.display_name, text)

    def step_spec(self, function: Any) -> dict[str, Any] | None:
        """The built-in step ``function`` is (``vp.steps``: its ``kind``, arguments by name and
        ``where``, the script line that made it), or None for any other function."""
        spec = self._step_of(function)
        return None if spec is None else self.from_lua(spec)

    def global_function(self, name: str) -> Any | None:
        """The global Lua function called ``name``, or None when the script does not define it."""
        value = self._rawget(self.runtime.globals(), name)
        return value if lua.lua_type(value) == "function" else None

    # -- calls ----------------------------------------------------------------------------

    def call(self, function: Any, name: str, *args: Any, frame_id: int | None = None) -> Any:
        """Call a Lua function of this script under its limits, turning failures into errors.

        Args:
            function: The Lua function (from ``global_function``).
            name: Its name, for messages (``preprocess``...).
            *args: Arguments (already Lua values or plain Python values).
            frame_id: Frame being processed, for messages.

        Raises:
            ScriptError: The function raised; ``ScriptTimeoutError``, ``ScriptMemoryError``
                or ``ScriptInterruptedError`` when a limit stopped it or the pipeline closed.
            KeyboardInterrupt: Ctrl-C arrived while the script ran in the main thread.
        """
        return self._outcome(self._limited(self._protected_call, name, frame_id, function, *args), name, frame_id)

    def call_on_frame(self, function: Any, name: str, frame: tuple[Any, ...], frame_id: int) -> tuple[Any, Any]:
        """``call(function, ctx)`` with ``ctx`` the read-only view of ``frame`` (the arguments of
        ``frame_view``, results None for an empty table), built in the same call into Lua.
        Returns ``(ctx, value)``; raises as ``call``."""
        ctx, *returned = self._limited(self._call_on_frame, name, frame_id, function, *frame)
        return ctx, self._outcome(tuple(returned), name, frame_id)

    def call_with_outputs(self, function: Any, name: str, names: Any, ctx: Any, state: Any,
                          outputs: Sequence[Any], frame_id: int) -> Any:
        """``call(function, outputs, ctx, state)``, the ``outputs`` table (by position, and by
        ``names[i]``, a Lua list) built in the same call into Lua; raises as ``call``."""
        return self._outcome(
            self._limited(self._call_with_outputs, name, frame_id, function, names, ctx, state, *outputs),
            name, frame_id)

    def _limited(self, helper: Any, name: str, frame_id: int | None, *args: Any) -> Any:
        """Run a prelude call helper under the limits; its raw return values (a tuple or one value)."""
        with self.lock:
            if self._interrupted:
                raise ScriptInterruptedError(
                    f"{self.display_name} in {name}: the script's runtime was closed"
                    f"{frame_suffix(self.owner, frame_id)}")
            nested = self._limit_active
            if not nested:
                self._memory_note = None
                self._deadline = time.monotonic() + self.limits.timeout_s
                self.runtime.set_max_memory(self.limits.memory_bytes)
                self._limit_active = True
            try:
                returned = helper(self.limits.timeout_s, *args)
            except lua.LuaMemoryError as error:
                raise self._memory_error(name, frame_id) from error
            except (LuaError, AttributeError, TypeError, ValueError) as error:
                raise self._script_error(error, name, frame_id) from error
            finally:
                if not nested:
                    self._limit_active = False
                    self.runtime.set_max_memory(0)
                    self._deadline = float("inf")
            if self._keyboard_interrupt:
                self._keyboard_interrupt = False
                raise KeyboardInterrupt
        return returned

    def _outcome(self, returned: Any, name: str, frame_id: int | None) -> Any:
        """The value of a ``call`` helper's ``ok, ...`` / ``false, message, kind``, or its error."""
        if not isinstance(returned, tuple):
            returned = (returned,)
        if returned[0]:
            rest = returned[1:]
            if not rest:
                return None
            return rest[0] if len(rest) == 1 else rest
        message, kind = (tuple(returned[1:]) + (None, None))[:2]
        if kind == "timeout":
            return self._raise_timeout(str(message), name, frame_id)
        if kind == "memory" or self._memory_note is not None:
            raise self._memory_error(name, frame_id)
        raise self._script_error(message if message is not None else "error without message", name, frame_id)

    def _raise_timeout(self, where: str, name: str, frame_id: int | None) -> Any:
        location = self.display_name if where == "?" else where
        suffix = frame_suffix(self.owner, frame_id)
        if self._interrupted:
            raise ScriptInterruptedError(
                f"{location} in {name}: interrupted, the pipeline is closing{suffix}")
        raise ScriptTimeoutError(
            f"{location} in {name}: time limit of {self.limits.timeout_ms} ms exceeded{suffix}")

    def _memory_error(self, name: str, frame_id: int | None) -> ScriptMemoryError:
        note = self._memory_note or f"memory limit of {self.limits.memory_mb} MiB exceeded"
        return ScriptMemoryError(f"{self.display_name} in {name}: {note}{frame_suffix(self.owner, frame_id)}")

    def _script_error(self, error: object, function: str, frame_id: int | None) -> ScriptError:
        first, traceback = _location_message(error)
        match = re.match(r"^(.+?:\d+): (.*)$", first)
        if match:
            message = f"{match.group(1)} in {function}: {match.group(2)}"
        else:
            message = f"{self.display_name} in {function}: {first or 'error without message'}"
        message += frame_suffix(self.owner, frame_id)
        if traceback:
            message += "\n" + traceback
        return ScriptError(message)
