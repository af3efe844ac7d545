"""Bag replay: run pipelines over rosbags offline or in real time, play bags over DDS, compare runs.

ROS-free: nothing here imports rclpy. The message conversions it shares with the node (image
decoding, result -> message fields, the rosbags typestore) are in ``ros_vision_pipe.messages``;
playing a bag over DDS is ``ros_vision_pipe.ros.bag_player`` (``play`` of the CLI imports it).
One module per concept:

* ``typestore.py``: the former name of ``ros_vision_pipe.messages.typestore``;
* ``bag_reader.py``: image messages from rosbag2 (sqlite3, MCAP) and ROS 1 bags; ``bag_source.py``
  opens the storage, and ``salvage.py`` reads truncated MCAP / ROS 1 files up to the damage;
* ``bag_replay.py``: ``replay_bag(options)``, with ``offline.py`` (lossless) and ``realtime.py``
  (recorded pace) feeding the pipeline, ``timeline.py`` pacing, ``background.py`` reading
  and writing off the pipeline's thread, ``result_bag.py`` writing the output bag;
* ``report.py``: what a replay did (``ReplayReport``); ``report_output.py``: the per-model table,
  JSON summary and PNG plot; ``progress.py``: the bar;
* ``compare.py``: per-model agreement of two result bags;
* ``image_bag.py``: image bags from clips;
* ``cli.py``: ``python -m ros_vision_pipe.replay replay|play|compare|make-bag``.
"""

from typing import Any

from ros_vision_pipe.replay.errors import (
    BagOpenError,
    CorruptBagError,
    MessageDefinitionsNotFoundError,
    OutputBagError,
    PlayerError,
    ReplayError,
    ReplayOptionsError,
    ResultBagError,
    TopicNotFoundError,
    TopicTypeError,
)

# Imported on first use (PEP 562), so that importing the package (``python -m
# ros_vision_pipe.replay``) works without ``rosbags`` and can name the missing extra.
_LAZY = {
    "Driver": "ros_vision_pipe.replay.options",
    "ReplayOptions": "ros_vision_pipe.replay.options",
    "ReplayMode": "ros_vision_pipe.replay.report",
    "ReplayReport": "ros_vision_pipe.replay.report",
    "replay_bag": "ros_vision_pipe.replay.bag_replay",
}


def __getattr__(name: str) -> Any:
    """The names of ``_LAZY``, imported when first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "BagOpenError",
    "CorruptBagError",
    "Driver",
    "MessageDefinitionsNotFoundError",
    "OutputBagError",
    "PlayerError",
    "ReplayError",
    "ReplayMode",
    "ReplayOptions",
    "ReplayOptionsError",
    "ReplayReport",
    "ResultBagError",
    "TopicNotFoundError",
    "TopicTypeError",
    "replay_bag",
]
