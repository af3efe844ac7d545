"""Message factories: how one message object is built, by rclpy or by rosbags (no ROS import here).

``result_mapping.fill`` builds a message bottom-up and hands each level to a ``MessageFactory``:
``RCLPY_FACTORY`` imports ``<package>.msg`` lazily (the node), ``RosbagsFactory(typestore)`` makes a
rosbags dataclass (bag replay).
"""

from __future__ import annotations

import array
import importlib
from functools import cache
from typing import Any, Protocol

import numpy as np


class MessageFactory(Protocol):
    """Builds one message of ``type_name`` (``"pkg/msg/Name"``) from its already-built fields."""

    def __call__(self, type_name: str, fields: dict[str, Any]) -> Any:
        """Return the message; ``fields`` holds nested messages and numpy primitive arrays."""
        ...


_TYPECODES = {
    np.dtype(np.uint8): "B", np.dtype(np.int8): "b", np.dtype(np.uint16): "H", np.dtype(np.int16): "h",
    np.dtype(np.uint32): "I", np.dtype(np.int32): "i", np.dtype(np.uint64): "Q", np.dtype(np.int64): "q",
    np.dtype(np.float32): "f", np.dtype(np.float64): "d",
}


@cache
def _rclpy_class(type_name: str) -> Any:
    package, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def _rclpy_array(values: np.ndarray) -> array.array[Any]:
    native = values.dtype.newbyteorder("=")
    typed = array.array(_TYPECODES[native])
    typed.frombytes(np.ascontiguousarray(values, dtype=native).tobytes())
    return typed


def rclpy_factory(type_name: str, fields: dict[str, Any]) -> Any:
    """``MessageFactory`` for rclpy: imports ``<package>.msg`` lazily; numpy arrays become ``array.array``."""
    cls = _rclpy_class(type_name)
    for key, value in fields.items():
        if isinstance(value, np.ndarray):
            fields[key] = _rclpy_array(value)
    return cls(**fields)


#: The rclpy factory (a function satisfies ``MessageFactory``).
RCLPY_FACTORY: MessageFactory = rclpy_factory


class RosbagsFactory:
    """``MessageFactory`` for a rosbags ``Typestore`` (numpy arrays are what rosbags expects).

    The typestore must know ``ros_vision_pipe``'s messages, e.g.
    ``typestore.register(get_types_from_msg(text, "ros_vision_pipe/msg/ModelResult"))`` per file.
    """

    def __init__(self, typestore: Any) -> None:
        """Wrap ``typestore`` (``rosbags.typesys.store.Typestore``)."""
        self._types = typestore.types

    def __call__(self, type_name: str, fields: dict[str, Any]) -> Any:
        """Instantiate the typestore's dataclass for ``type_name``."""
        return self._types[type_name](**fields)


__all__ = ["RCLPY_FACTORY", "MessageFactory", "RosbagsFactory", "rclpy_factory"]
