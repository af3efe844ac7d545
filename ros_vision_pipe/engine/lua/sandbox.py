"""Sandboxed LuaJIT runtimes: one per model script (and one for the pipeline config).

A script sees the Lua standard library minus everything that reaches outside the
process's own computation: no ``python`` object, no ``os`` (but ``os.clock`` and
``os.time``), no ``io``, ``debug``, ``package``, ``ffi``, no ``load``/``loadstring``/
``dofile``/``loadfile``. ``require(name)`` resolves only ``name.lua`` files under the
pipeline configuration's folder. Python objects handed to Lua expose only the
public attributes of tensor handles.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lupa import luajit21 as lua

from ros_vision_pipe.engine.errors import ScriptError, frame_suffix
from ros_vision_pipe.engine.lua.tensor import TENSOR_ATTRIBUTES, Tensor

_LOG = logging.getLogger("ros_vision_pipe.lua")

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

# Runs once per runtime, before any script: removes every escape and defines the
# helpers the engine uses. Receives the Python callbacks as arguments.
_PRELUDE = r"""
local require_impl, print_impl = ...
local clock, time = os.clock, os.time
local traceback = debug.traceback
python = nil
os = { clock = clock, time = time }
io = nil
debug = nil
package = nil
module = nil
load = nil
loadstring = nil
loadfile = nil
dofile = nil
jit = nil
getfenv = nil
setfenv = nil
newproxy = nil
string.dump = nil
require = function(name)
  local ok, value = require_impl(name)
  if not ok then error(value, 2) end
  return value
end
print = function(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
  print_impl(table.concat(parts, "\t"))
end
-- How the engine calls script functions: errors come back with a Lua traceback.
return function(fn, ...)
  return xpcall(fn, function(e)
    if type(e) == "string" then return traceback(e, 2) end
    return e
  end, ...)
end
"""

_READONLY = r"""
return function(t, what)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, key)
      error(what .. " is read-only (tried to set " .. tostring(key) .. ")", 2)
    end,
    __metatable = false,
  })
end
"""

# Wraps a Python host function so that its errors become Lua errors located at the
# calling line of the script (level 2), e.g. "det.lua:14: vp.resize: width must be > 0".
_WRAP_HOST = r"""
local host = ...
-- Called in tail position, so level 2 is the script line that called the vp function.
local function check(ok, ...)
  if not ok then error((...), 2) end
  return ...
end
return function(name)
  local fn = host[name]
  return function(...) return check(fn(...)) end
end
"""


def _attribute_filter(obj: Any, name: Any, is_setting: bool) -> Any:
    if isinstance(obj, Tensor) and not is_setting and name in TENSOR_ATTRIBUTES:
        return name
    raise AttributeError(f"Lua scripts cannot access attribute {name!r} of {type(obj).__name__}")


def _location_message(error: object) -> tuple[str, str]:
    """Split a LuaError into its first line and the traceback that follows."""
    text = str(error)
    first, _, rest = text.partition("\n")
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
    ) -> None:
        """Create the runtime, install the host API, and run the script's main chunk.

        Args:
            path: The script file.
            owner: Model name (or ``"pipeline"``) named in error messages.
            search_dir: Folder ``require`` may load modules from.
            display_root: Paths in messages are shown relative to this folder.
            install: Called with the new script before its chunk runs (defines ``vp``...).
            source: Script text; read from ``path`` when omitted.

        Raises:
            ScriptError: The file is missing, has a syntax error, or its main chunk fails.
        """
        self.path = path
        self.owner = owner
        self.search_dir = search_dir.resolve()
        root = (display_root or path.parent).resolve()
        try:
            self.display_name = str(path.resolve().relative_to(root))
        except ValueError:
            self.display_name = str(path)
        self.lock = threading.RLock()
        self.runtime = lua.LuaRuntime(
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_attribute_filter,
        )
        self._loadstring = self.runtime.eval("loadstring")
        self._modules: dict[str, Any] = {}
        self._loading: set[str] = set()
        self._protected_call = self.runtime.execute(_PRELUDE, self._require, self._print)
        self.readonly = self.runtime.execute(_READONLY)
        self._collect = self.runtime.eval(
            "function(full) if full then collectgarbage() else collectgarbage('step') end end")
        self._host_table = self.runtime.table()
        self._wrap_host = self.runtime.execute(_WRAP_HOST, self._host_table)
        if install is not None:
            install(self)
        if source is None:
            try:
                source = path.read_text(encoding="utf-8")
            except OSError as error:
                raise ScriptError(
                    f"cannot read Lua script {str(path)!r} (model {owner!r}): {error.strerror}"
                ) from error
        with self.lock:
            chunk = self._compile(source, self.display_name)
            try:
                self.main_result: Any = chunk()
            except lua.LuaError as error:
                raise self._script_error(error, "main chunk", None) from error

    def collect(self, *, full: bool) -> None:
        """Run Lua's garbage collector: a full cycle, or one incremental step.

        Tensor handles are small userdata to Lua, so without this the arrays they hold
        (frames, model outputs) would outlive their frame until Lua happens to collect.
        """
        with self.lock:
            self._collect(full)

    def host_function(self, name: str, function: Callable[..., Any]) -> Any:
        """Return a Lua function calling ``function``; Python errors become Lua errors.

        ``function`` returns a value or a tuple (multiple Lua values); an exception it
        raises is reported at the calling line of the script, prefixed with ``name``.
        """

        def guarded(*args: Any) -> tuple[Any, ...]:
            try:
                result = function(*args)
            except Exception as error:  # reported to Lua as error(), with the script's line
                text = str(error)
                short = name.rpartition(".")[2]
                return (False, f"vp.{text}" if text.startswith(short + ":") else f"{name}: {text}")
            if isinstance(result, tuple):
                return (True, *result)
            return (True, result)

        self._host_table[name] = guarded
        return self._wrap_host(name)

    def _compile(self, source: str, chunk_name: str) -> Any:
        result = self._loadstring(source, "@" + chunk_name)
        if isinstance(result, tuple):
            function, message = result
            if function is None:
                raise ScriptError(f"Lua syntax error: {message} (model {self.owner!r})")
            return function
        return result

    def _require(self, name: Any) -> tuple[bool, Any]:
        """Load ``name.lua`` from the search folder once; (ok, module or message) for the prelude."""
        if not isinstance(name, str) or not _MODULE_NAME.match(name):
            return False, f"require: invalid module name {name!r}"
        if name in self._modules:
            return True, self._modules[name]
        relative = Path(*name.split(".")).with_suffix(".lua")
        path = (self.search_dir / relative).resolve()
        if not path.is_relative_to(self.search_dir) or not path.is_file():
            return False, (
                f"require: module {name!r} not found (looked for {str(relative)!r} "
                f"under {str(self.search_dir)!r})"
            )
        if name in self._loading:
            return False, f"require: circular require of {name!r}"
        self._loading.add(name)
        try:
            module = self._compile(path.read_text(encoding="utf-8"), str(relative))()
        except (ScriptError, lua.LuaError) as error:
            return False, f"require {name!r}: {str(error).partition(chr(10))[0]}"
        finally:
            self._loading.discard(name)
        self._modules[name] = True if module is None else module
        return True, self._modules[name]

    def _print(self, text: str) -> None:
        _LOG.info("[%s] %s", self.display_name, text)

    def global_function(self, name: str) -> Any | None:
        """The global Lua function called ``name``, or None when the script does not define it."""
        value = self.runtime.globals()[name]
        return value if lua.lua_type(value) == "function" else None

    def call(self, function: Any, name: str, *args: Any, frame_id: int | None = None) -> Any:
        """Call a Lua function of this script, turning Lua errors into ``ScriptError``.

        Args:
            function: The Lua function (from ``global_function``).
            name: Its name, for messages (``preprocess``...).
            *args: Arguments (already Lua values or plain Python values).
            frame_id: Frame being processed, for messages.
        """
        with self.lock:
            try:
                returned = self._protected_call(function, *args)
            except (lua.LuaError, AttributeError, TypeError, ValueError) as error:
                raise self._script_error(error, name, frame_id) from error
        ok, rest = (returned[0], returned[1:]) if isinstance(returned, tuple) else (returned, ())
        if not ok:
            raise self._script_error(rest[0] if rest else "error without message", name, frame_id)
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else rest

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
