"""Reading Lua source files: UTF-8 text only, never a precompiled (binary) chunk."""

from __future__ import annotations

from pathlib import Path

from ros_vision_pipe.engine.errors import ScriptError

#: First byte of every precompiled Lua chunk (PUC Lua ``\x1bLua``, LuaJIT ``\x1bLJ``).
BINARY_CHUNK_MARK = b"\x1b"


def decode_source(data: bytes, shown: str, owner: str) -> str:
    """Return ``data`` as Lua source text.

    Args:
        data: The file's bytes.
        shown: The file as messages name it.
        owner: Model name (or ``"pipeline"``), for messages.

    Raises:
        ScriptError: ``data`` is a precompiled chunk, or not valid UTF-8 (one line,
            naming the file, the byte offset and the model).
    """
    if data.startswith(BINARY_CHUNK_MARK):
        raise ScriptError(
            f"{shown} is a precompiled (binary) Lua chunk; only Lua source text is accepted "
            f"(model {owner!r})"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ScriptError(
            f"{shown} is not UTF-8 text: byte {data[error.start]:#04x} at offset {error.start} "
            f"(line {line}) (model {owner!r})"
        ) from None


def read_source(path: Path, shown: str, owner: str) -> str:
    """Read and decode a Lua source file (see ``decode_source``).

    Raises:
        ScriptError: The file cannot be read, is binary or is not UTF-8.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ScriptError(
            f"cannot read Lua script {str(path)!r} (model {owner!r}): {error.strerror}"
        ) from error
    return decode_source(data, shown, owner)
