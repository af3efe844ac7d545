"""What the node says when frames do not flow: incompatible QoS peers and silent inputs.

* ``QosEventReporter`` gives every subscription and publisher of the node an ``incompatible_qos``
  event callback. An incompatible peer (a TRANSIENT_LOCAL subscriber of a result topic, a
  best-effort camera when the node subscribes RELIABLE...) gets ONE warning per topic and policy,
  naming the topic, the policy, this node's value and the peer's value(s) with the peer's node.
* ``SilentInputs`` watches each image subscription: when a publisher is matched but no frame has
  arrived for ``after_s`` seconds, it returns a warning (naming the topic, the last message size
  if a frame ever came, both sides' QoS and the remedies). Frames that DDS reports lost (the
  subscription's ``message_lost`` event: a best-effort reader missed fragments) count too: once
  more frames were lost than received (at least ``MIN_LOST``), it warns. One warning per input
  for the node's life; the diagnostics keep reporting the state. The node calls it from a timer
  of its diagnostics group and reports ``publishers``, ``frames_in`` and ``frames_lost``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from rclpy.duration import Duration
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import QoSPolicyKind, QoSProfile

#: QoS policy -> the ``QoSProfile`` attribute holding its value.
POLICY_ATTRIBUTES: dict[QoSPolicyKind, str] = {
    QoSPolicyKind.DURABILITY: "durability",
    QoSPolicyKind.RELIABILITY: "reliability",
    QoSPolicyKind.DEADLINE: "deadline",
    QoSPolicyKind.LIVELINESS: "liveliness",
    QoSPolicyKind.LIVELINESS_LEASE_DURATION: "liveliness_lease_duration",
    QoSPolicyKind.HISTORY: "history",
    QoSPolicyKind.DEPTH: "depth",
    QoSPolicyKind.LIFESPAN: "lifespan",
}
#: Lost frames (more than received) before the node warns that an input is lossy.
MIN_LOST = 5
#: Fast DDS's default shared-memory segment; larger samples fall back to fragmented UDP.
DEFAULT_SHM_SEGMENT = 512 * 1024
LARGE_DATA_REMEDY = (
    "frames over Fast DDS's default 512 KiB shared-memory segment (a 640x480 bgr8 Image is 921,600 B) fall back "
    "to fragmented UDP, which best effort mostly loses: start the CAMERA's process with "
    "FASTDDS_DEFAULT_PROFILES_FILE=<ros_vision_pipe share>/config/fastdds_large_data.xml (16 MiB segment; "
    "the launch file and tools/ros_env.sh set it for this node), or publish and subscribe RELIABLE "
    "(qos.reliable:=true; a reliable camera), or raise net.core.rmem_max/rmem_default (docs/ros.md)")


def describe(value: Any) -> str:
    """A QoS policy value for humans: ``RELIABLE``, ``TRANSIENT_LOCAL``, ``0.5 s``, ``10``."""
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, Duration):
        return f"{value.nanoseconds / 1e9:g} s"
    return str(value)


def describe_qos(qos: QoSProfile) -> str:
    """``BEST_EFFORT, VOLATILE, KEEP_LAST 5``."""
    return f"{describe(qos.reliability)}, {describe(qos.durability)}, {describe(qos.history)} {qos.depth}"


def _node_name(info: Any) -> str:
    return f"{info.node_namespace.rstrip('/')}/{info.node_name}"


_REMEDIES = {
    QoSPolicyKind.DURABILITY: "results are a live stream: subscribe VOLATILE",
    QoSPolicyKind.RELIABILITY: "a RELIABLE subscription hears only RELIABLE publishers: set qos.reliable:=false "
                               "(the default, best effort hears both)",
}


class QosEventReporter:
    """Event callbacks for the node's entities; warns once per (topic, side, policy).

    Args:
        node: The node whose logger warns and whose graph is queried for the peers' QoS.
    """

    def __init__(self, node: Node) -> None:
        """Nothing warned yet."""
        self._node = node
        self._lock = threading.Lock()
        self._warned: set[tuple[str, str, QoSPolicyKind]] = set()
        self.warnings: list[str] = []

    def subscription(self, topic: str, qos: QoSProfile,
                     message_lost: Callable[[Any], None] | None = None) -> SubscriptionEventCallbacks:
        """Callbacks for a subscription of ``topic`` with ``qos`` (and its ``message_lost`` event)."""
        return SubscriptionEventCallbacks(
            incompatible_qos=lambda info: self.incompatible(topic, qos, info.last_policy_kind, subscription=True),
            message_lost=message_lost)

    def publisher(self, topic: str, qos: QoSProfile) -> PublisherEventCallbacks:
        """Callbacks for a publisher of ``topic`` with ``qos``."""
        return PublisherEventCallbacks(
            incompatible_qos=lambda info: self.incompatible(topic, qos, info.last_policy_kind, subscription=False))

    def incompatible(self, topic: str, qos: QoSProfile, policy: Any, *, subscription: bool) -> None:
        """Warn (once per topic, side and policy) that a peer's QoS does not match ours."""
        policy = QoSPolicyKind(int(policy))  # rclpy may hand over the C enum (RMW_QOS_POLICY_...)
        name = self._node.resolve_topic_name(topic)
        key = (name, "subscription" if subscription else "publisher", policy)
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        attribute = POLICY_ATTRIBUTES.get(policy)
        ours = describe(getattr(qos, attribute)) if attribute else "?"
        peers = (self._node.get_publishers_info_by_topic(name) if subscription
                 else self._node.get_subscriptions_info_by_topic(name))
        own = self._node.get_fully_qualified_name()
        theirs = sorted({f"{describe(getattr(p.qos_profile, attribute))} (node {_node_name(p)!r})" for p in peers
                         if attribute and _node_name(p) != own and describe(getattr(p.qos_profile, attribute)) != ours})
        peer = " / ".join(theirs) or "another value"
        if subscription:
            text = f"this node's subscription requests {ours}, a publisher offers {peer}"
        else:
            text = f"this node's publisher offers {ours}, a subscriber requests {peer}"
        remedy = _REMEDIES.get(policy, "align the policy on both sides")
        message = (f"incompatible QoS on {name!r}: policy {policy.name}: {text}; no messages flow between them "
                   f"({remedy})")
        with self._lock:
            self.warnings.append(message)
        self._node.get_logger().warning(message)


@dataclass
class _Input:
    matched_since: float | None = None
    last_frame: float | None = None
    last_size: int | None = None
    frames: int = 0
    warned: bool = False
    lost: int = 0


class SilentInputs:
    """Notices image inputs with a matched publisher but no frame for ``after_s`` seconds.

    Args:
        topics: The input topics.
        after_s: Seconds without a frame (since the publisher matched or the last frame) before warning.
        clock: Monotonic seconds (injected by tests).
    """

    def __init__(self, topics: Sequence[str], after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        """Every input unmatched and silent."""
        self._after = after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._inputs = {topic: _Input() for topic in topics}

    def frame(self, topic: str, size: int) -> None:
        """A frame of ``size`` bytes arrived on ``topic`` (intake; any thread)."""
        with self._lock:
            state = self._inputs.setdefault(topic, _Input())
            state.last_frame, state.last_size = self._clock(), size
            state.frames += 1

    def lost(self, topic: str, total: int) -> None:
        """DDS reports ``total`` messages of ``topic`` lost so far (``message_lost`` event)."""
        with self._lock:
            self._inputs.setdefault(topic, _Input()).lost = int(total)

    def counts(self, topic: str) -> tuple[int, int]:
        """(frames received, frames lost) of ``topic``."""
        with self._lock:
            state = self._inputs.get(topic, _Input())
            return state.frames, state.lost

    def check(self, topic: str, publishers: int) -> float | None:
        """Seconds ``topic`` has been silent (or lossy) with ``publishers`` matched, once per input; else None."""
        now = self._clock()
        with self._lock:
            state = self._inputs.setdefault(topic, _Input())
            if publishers and not state.warned and state.lost >= MIN_LOST and state.lost > state.frames:
                state.warned = True
                return now - (state.matched_since or now)
            if publishers == 0:
                state.matched_since = None
                return None
            if state.matched_since is None:
                state.matched_since = now
            silent = now - max(state.matched_since, state.last_frame or state.matched_since)
            if silent < self._after or state.warned:
                return None
            state.warned = True
            return silent

    def silent_for(self, topic: str, publishers: int) -> float:
        """Seconds without a frame while a publisher is matched (0 when frames flow or nothing is matched)."""
        with self._lock:
            state = self._inputs.get(topic)
            if state is None or publishers == 0 or state.matched_since is None:
                return 0.0
            silent = self._clock() - max(state.matched_since, state.last_frame or state.matched_since)
            return silent if silent >= self._after else 0.0

    def last_size(self, topic: str) -> int | None:
        """Bytes of the last frame of ``topic`` (None if none came)."""
        with self._lock:
            state = self._inputs.get(topic)
            return None if state is None else state.last_size

    def message(self, node: Node, topic: str, qos: QoSProfile, silent_s: float) -> str:
        """The warning for a stall of ``topic``: sizes, both sides' QoS, remedies."""
        size = self.last_size(topic)
        frames, lost = self.counts(topic)
        size_text = (f"message size {size:,} B" + (" (over the 512 KiB shared-memory segment)"
                                                   if size > DEFAULT_SHM_SEGMENT else "")
                     if size is not None else "message size unknown (no frame arrived yet)")
        peers = node.get_publishers_info_by_topic(topic)
        theirs = "; ".join(f"{_node_name(p)!r}: {describe_qos(p.qos_profile)}" for p in peers) or "none"
        what = (f"frames on {topic!r} are lost: {lost} lost, {frames} received" if lost > frames and lost >= MIN_LOST
                else f"no frame on {topic!r} for {silent_s:.1f} s")
        return (f"{what}, although {len(peers)} publisher(s) matched ({size_text}); this node subscribes "
                f"{describe_qos(qos)}, publishers offer {theirs}. Remedies: {LARGE_DATA_REMEDY}")


__all__ = ["DEFAULT_SHM_SEGMENT", "LARGE_DATA_REMEDY", "MIN_LOST", "POLICY_ATTRIBUTES", "QosEventReporter",
           "SilentInputs", "describe", "describe_qos"]
