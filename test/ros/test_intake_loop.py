"""IntakeLoop: the node's own intake thread on real rclpy subscriptions (serialized messages, real DDS)."""

from __future__ import annotations

import threading

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_support import Probe, wait_for
from std_msgs.msg import String

from ros_vision_pipe.ros.intake_loop import IntakeGroup, IntakeLoop

RELIABLE = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)


def test_the_loop_takes_every_message_in_its_thread_while_the_executor_takes_none(context, spin) -> None:
    node = rclpy.create_node("intake_under_test", context=context)
    executor_calls: list[bytes] = []
    group = IntakeGroup()
    subscriptions = {topic: node.create_subscription(String, topic, executor_calls.append, RELIABLE,
                                                     callback_group=group, raw=True) for topic in ("/a", "/b")}
    taken: list[tuple[str, bytes, str]] = []
    loop = IntakeLoop(context, lambda raw, topic: taken.append((topic, bytes(raw), threading.current_thread().name)))
    loop.watch(subscriptions)
    probe = Probe(context)
    spin(node, probe.node)  # the executor spins the node too: it must leave these subscriptions alone
    for topic in ("/a", "/b"):
        publisher = probe.publisher(String, topic, reliable=True)
        for index in range(5):
            publisher.publish(String(data=f"{topic}-{index}"))
    assert wait_for(lambda: len(taken) == 10, timeout=10), taken
    for topic in ("/a", "/b"):  # serialized, in order per topic
        raws = [raw for t, raw, _ in taken if t == topic]
        assert len(raws) == 5 and all(f"{topic}-{i}".encode() in raw for i, raw in enumerate(raws))
    assert {thread for _, _, thread in taken} == {"image intake"} and executor_calls == []
    loop.close()
    assert not loop.thread.is_alive()


def test_a_failing_callback_is_logged_and_the_loop_goes_on_and_watch_swaps_the_inputs(context) -> None:
    node = rclpy.create_node("intake_failing", context=context)
    first = node.create_subscription(String, "/first", lambda _: None, RELIABLE, callback_group=IntakeGroup(), raw=True)
    second = node.create_subscription(String, "/second", lambda _: None, RELIABLE, callback_group=IntakeGroup(),
                                      raw=True)
    seen: list[str] = []

    def callback(raw: bytes, topic: str) -> None:
        seen.append(topic)
        if len(seen) == 1:
            raise RuntimeError("broken on purpose")

    loop = IntakeLoop(context, callback)
    loop.watch({"/first": first})
    probe = Probe(context)
    publisher = probe.publisher(String, "/first", reliable=True)
    publisher.publish(String(data="x"))
    publisher.publish(String(data="y"))
    assert wait_for(lambda: seen == ["/first", "/first"], timeout=10), seen
    loop.watch({"/second": second})  # from now on the second input only
    probe.publisher(String, "/second", reliable=True).publish(String(data="z"))
    publisher.publish(String(data="ignored"))
    assert wait_for(lambda: seen[-1:] == ["/second"], timeout=10), seen
    assert not wait_for(lambda: seen.count("/first") > 2, timeout=0.3)  # the first input is no longer taken
    loop.close()
    assert not loop.thread.is_alive()
    node.destroy_node()
    probe.node.destroy_node()


def test_the_loop_ends_when_its_context_shuts_down(context) -> None:
    loop = IntakeLoop(context, lambda raw, topic: None)
    rclpy.try_shutdown(context=context)
    loop.thread.join(timeout=5)
    assert not loop.thread.is_alive()


def test_a_take_that_fails_is_logged_and_the_loop_goes_on_taking(context, caplog) -> None:
    node = rclpy.create_node("intake_take_failing", context=context)
    subscription = node.create_subscription(String, "/t", lambda _: None, RELIABLE, callback_group=IntakeGroup(),
                                            raw=True)
    seen: list[bytes] = []
    loop = IntakeLoop(context, lambda raw, topic: seen.append(bytes(raw)))
    taker, calls = loop._taker, []

    class FailingOnce:  # rcl failing once (not: nothing waiting); the message stays in the reader
        received_ns = 0  # not known, as for a message taken with rclpy

        def take(self, sub):
            calls.append(sub)
            if len(calls) == 1:
                raise RuntimeError("rcl_take_serialized_message failed on '/t' (rcl error 1)")
            if taker is not None:
                return taker.take(sub)
            taken = sub.handle.take_message(sub.msg_type, True)
            return None if taken is None else taken[0]

    loop._taker = FailingOnce()
    loop.watch({"/t": subscription})
    publisher = Probe(context).publisher(String, "/t", reliable=True)
    publisher.publish(String(data="one"))
    publisher.publish(String(data="two"))
    assert wait_for(lambda: len(seen) == 2, timeout=10), seen
    assert b"one" in seen[0] and b"two" in seen[1]
    assert "taking a message of '/t' failed" in caplog.text
    loop.close()
    assert not loop.thread.is_alive()
    node.destroy_node()
