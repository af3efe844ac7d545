"""Bag replay: run pipelines over rosbags offline or in real time, play bags over DDS, compare runs.

ROS-free except ``player.py`` (rclpy). One module per concept:

* ``typestore.py``: a rosbags typestore with this package's messages (no ROS install needed);
* ``bag_reader.py``: image messages from rosbag2 (sqlite3, MCAP) and ROS 1 bags; ``bag_source.py``
  opens the storage, and ``salvage.py`` reads truncated MCAP / ROS 1 files up to the damage;
* ``session.py``: ``replay_bag(options)``, with ``offline.py`` (lossless) and ``realtime.py``
  (recorded pace) feeding the pipeline, ``timeline.py`` pacing, ``background.py`` reading
  and writing off the pipeline's thread, ``result_bag.py`` writing the output bag;
* ``report.py``: what a replay did (``ReplayReport``); ``report_output.py``: the per-model table,
  JSON summary and PNG plot; ``progress.py``: the bar;
* ``compare.py``: per-model agreement of two result bags;
* ``player.py``: live replay over DDS; ``image_bag.py``: image bags from clips;
* ``cli.py``: ``python -m ros_vision_pipe.replay replay|play|compare|make-bag``.
"""

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
from ros_vision_pipe.replay.options import Driver, ReplayOptions
from ros_vision_pipe.replay.report import ReplayMode, ReplayReport
from ros_vision_pipe.replay.session import replay_bag

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
