"""Limits of one Lua runtime: how long one call may run, how much memory the runtime may hold."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

#: Default time limit of one script call (config chunk, preprocess, postprocess, fusion,
#: aggregator), milliseconds.
DEFAULT_SCRIPT_TIMEOUT_MS = 1000

#: Default memory limit of one script runtime: Lua heap plus the arrays its tensor handles
#: hold, mebibytes.
DEFAULT_SCRIPT_MEMORY_MB = 256

#: Largest worst-case cost (subject bytes to the power of the pattern's repetition items,
#: plus one when unanchored) a ``string.find/match/gmatch/gsub`` pattern may have: Lua's
#: matcher runs inside one C call, where the time limit cannot stop it.
PATTERN_COST_LIMIT = 100_000_000


@dataclass(frozen=True)
class ScriptLimits:
    """Time and memory limits of a script runtime.

    Attributes:
        timeout_ms: Longest wall time of one call into the script (its main chunk, a
            ``preprocess``...), milliseconds; the call is aborted inside the interpreter.
        memory_mb: Most memory the runtime may hold: the Lua heap plus the arrays behind the
            tensor handles the script keeps, mebibytes.
    """

    timeout_ms: int = DEFAULT_SCRIPT_TIMEOUT_MS
    memory_mb: int = DEFAULT_SCRIPT_MEMORY_MB

    @cached_property  # read on every call into a script and every vp call: computed once
    def timeout_s(self) -> float:
        """The time limit in seconds."""
        return self.timeout_ms / 1000.0

    @cached_property
    def memory_bytes(self) -> int:
        """The memory limit in bytes."""
        return self.memory_mb * 1024 * 1024


DEFAULT_LIMITS = ScriptLimits()
