"""A rosbags ``Typestore`` that knows ``ros_vision_pipe``'s messages, without any ROS install.

The ``msg/*.msg`` files are parsed with ``rosbags.typesys.get_types_from_msg`` and registered
on top of a stock ROS 2 store (``std_msgs``, ``sensor_msgs``, ``builtin_interfaces``...).
They are looked up, in order:

1. in the source tree (``<repo>/msg``, next to ``package.xml``);
2. in an install: ``<prefix>/share/ros_vision_pipe/msg`` for every prefix of
   ``AMENT_PREFIX_PATH``, and for the prefix this module is installed under
   (``<prefix>/lib/python3.X/site-packages/ros_vision_pipe/replay``), where
   ``rosidl_generate_interfaces`` installs them.

Example::

    typestore = package_typestore()
    data = typestore.serialize_cdr(message, FUSED_RESULT)
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from ros_vision_pipe.replay.errors import MessageDefinitionsNotFoundError

PACKAGE = "ros_vision_pipe"

#: The message files of the package (``msg/<name>.msg``), dependencies first.
MESSAGE_NAMES: tuple[str, ...] = (
    "Keypoint",
    "Detection",
    "Classification",
    "FeatureVector",
    "ModelResult",
    "FusedResult",
)

#: The stock store the package's messages are added to (the ROS distribution the project targets).
BASE_STORE = Stores.ROS2_KILTED


def candidate_msg_dirs(module_file: Path | None = None, environ: dict[str, str] | None = None) -> list[Path]:
    """Folders that may hold the package's ``.msg`` files, in lookup order.

    Args:
        module_file: Path of this module (default: its real location).
        environ: Environment to read ``AMENT_PREFIX_PATH`` from (default: ``os.environ``).
    """
    here = (module_file or Path(__file__)).resolve()
    env = os.environ if environ is None else environ
    found: list[Path] = []
    for parent in here.parents:
        if (parent / "package.xml").is_file() and (parent / "msg").is_dir():
            found.append(parent / "msg")  # the source tree
            break
    for prefix in filter(None, env.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        found.append(Path(prefix) / "share" / PACKAGE / "msg")
    for parent in here.parents:
        if parent.name == "lib":  # <prefix>/lib/python3.X/site-packages/ros_vision_pipe/replay
            found.append(parent.parent / "share" / PACKAGE / "msg")
            break
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def find_msg_dir(candidates: list[Path] | None = None) -> Path:
    """The first folder holding every file of ``MESSAGE_NAMES``.

    Raises:
        MessageDefinitionsNotFoundError: No candidate holds them all (the message names the folders tried).
    """
    tried = candidate_msg_dirs() if candidates is None else candidates
    for folder in tried:
        if all((folder / f"{name}.msg").is_file() for name in MESSAGE_NAMES):
            return folder
    raise MessageDefinitionsNotFoundError(
        f"cannot find {PACKAGE}'s message definitions ({', '.join(n + '.msg' for n in MESSAGE_NAMES)}); "
        f"looked in {[str(p) for p in tried]!r}. Run from the source tree or source an install "
        f"(AMENT_PREFIX_PATH) that has share/{PACKAGE}/msg."
    )


def register_package_types(typestore: Typestore, msg_dir: Path) -> None:
    """Parse ``msg_dir``'s message files and register them on ``typestore``.

    Raises:
        MessageDefinitionsNotFoundError: A file cannot be read or parsed (names the file).
    """
    types = {}
    for name in MESSAGE_NAMES:
        path = msg_dir / f"{name}.msg"
        try:
            types.update(get_types_from_msg(path.read_text(encoding="utf-8"), f"{PACKAGE}/msg/{name}"))
        except OSError as error:
            raise MessageDefinitionsNotFoundError(f"{path}: cannot read message definition: {error}") from error
        except TypesysError as error:
            raise MessageDefinitionsNotFoundError(f"{path}: cannot parse message definition: {error}") from error
    typestore.register(types)


@cache
def _cached(msg_dir: Path) -> Typestore:
    typestore = get_typestore(BASE_STORE)
    register_package_types(typestore, msg_dir)
    return typestore


def package_typestore(msg_dir: Path | None = None) -> Typestore:
    """A ROS 2 typestore with ``ros_vision_pipe/msg/*`` registered (cached per folder).

    Args:
        msg_dir: Folder of the ``.msg`` files; found with ``find_msg_dir`` when omitted.

    Raises:
        MessageDefinitionsNotFoundError: The message files cannot be found or parsed.
    """
    return _cached((msg_dir or find_msg_dir()).resolve())


__all__ = [
    "BASE_STORE",
    "MESSAGE_NAMES",
    "PACKAGE",
    "candidate_msg_dirs",
    "find_msg_dir",
    "package_typestore",
    "register_package_types",
]
