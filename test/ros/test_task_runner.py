"""CallbackGroupTaskRunner with real rclpy: one callback group per model in a MultiThreadedExecutor."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest
import rclpy
from rclpy import executors
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import QoSProfile
from ros_support import wait_for
from std_msgs.msg import String

from ros_vision_pipe.ros.executors import MultiThreadedExecutor
from ros_vision_pipe.ros.task_runner import HERE_MAX_TASK_S, CallbackGroupTaskRunner


class Recorder:
    """Tasks that sleep and record (model, start, end, thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[tuple[str, int, float, float, str]] = []

    def task(self, model: str, index: int, seconds: float):  # noqa: ANN201
        def run() -> int:
            start = time.monotonic()
            time.sleep(seconds)
            with self.lock:
                self.spans.append((model, index, start, time.monotonic(), threading.current_thread().name))
            return index

        return run

    def of(self, model: str) -> list[tuple[str, int, float, float, str]]:
        return sorted((s for s in self.spans if s[0] == model), key=lambda s: s[2])


def overlaps(a: tuple[str, int, float, float, str], b: tuple[str, int, float, float, str]) -> bool:
    return a[2] < b[3] and b[2] < a[3]


def test_tasks_of_one_model_never_overlap_and_run_in_submission_order(context, spin) -> None:
    node = rclpy.create_node("runner_serial", context=context)
    runner = CallbackGroupTaskRunner(node, ["det"])
    spin(node, threads=4)
    recorder = Recorder()
    futures = [runner.submit("det", recorder.task("det", i, 0.03)) for i in range(8)]
    assert [f.result(timeout=10) for f in futures] == list(range(8))
    spans = recorder.of("det")
    assert [s[1] for s in spans] == list(range(8))
    assert not any(overlaps(a, b) for a, b in zip(spans, spans[1:], strict=False))
    assert all(s[4] != threading.current_thread().name for s in spans)


@pytest.mark.parametrize("executor_kind", ["package", "rclpy"])
def test_an_idle_queue_is_dispatched_to_a_pool_thread_and_tasks_queued_meanwhile_are_drained_by_that_callback(
        context, executor_kind) -> None:
    node = rclpy.create_node("runner_drain", context=context)
    runner = CallbackGroupTaskRunner(node, ["det"])
    tasks = runner._models["det"]  # noqa: SLF001
    triggers: list[int] = []
    trigger = tasks.guard.trigger
    tasks.guard.trigger = lambda: (triggers.append(1), trigger())[1]
    executor = (MultiThreadedExecutor if executor_kind == "package" else executors.MultiThreadedExecutor)(
        num_threads=4, context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, name="test-spin")
    spinner.start()
    try:
        recorder = Recorder()
        queued: list = []

        def first() -> int:  # queues three more while it runs, as a direct frame's end starts the next
            queued.extend(runner.submit("det", recorder.task("det", i, 0.01)) for i in range(1, 4))
            return recorder.task("det", 0, 0.05)()

        assert runner.submit("det", first).result(timeout=10) == 0
        assert [f.result(timeout=10) for f in queued] == [1, 2, 3]
        spans = recorder.of("det")
        assert [s[1] for s in spans] == [0, 1, 2, 3]
        assert len({s[4] for s in spans}) == 1  # one callback ran the burst, on an executor thread
        assert spans[0][4] != threading.current_thread().name
        # the package's executor takes an idle queue without a trigger; rclpy's needs one per burst
        assert len(triggers) == (0 if executor_kind == "package" else 1)
        assert runner.pending("det") == 0 and runner.completed("det") == 4
    finally:
        runner.close()
        executor.shutdown(timeout_sec=10)
        spinner.join(timeout=10)
        node.destroy_node()


def test_tasks_of_different_models_run_in_parallel(context, spin) -> None:
    node = rclpy.create_node("runner_parallel", context=context)
    runner = CallbackGroupTaskRunner(node, ["det", "pose"])
    spin(node, threads=4)
    recorder = Recorder()
    start = time.monotonic()
    futures = [runner.submit(m, recorder.task(m, i, 0.2)) for i in range(3) for m in ("det", "pose")]
    for future in futures:
        future.result(timeout=10)
    elapsed = time.monotonic() - start
    det, pose = recorder.of("det"), recorder.of("pose")
    assert any(overlaps(a, b) for a in det for b in pose)
    assert elapsed < 1.0  # 6 x 0.2 s of work in about 0.6 s
    for spans in (det, pose):
        assert not any(overlaps(a, b) for a, b in zip(spans, spans[1:], strict=False))
    assert runner.group("det") is not runner.group("pose")
    assert isinstance(runner.group("det"), MutuallyExclusiveCallbackGroup)


def test_image_intake_continues_while_a_slow_model_task_runs(context, spin) -> None:
    node = rclpy.create_node("runner_intake", context=context)
    runner = CallbackGroupTaskRunner(node, ["slow"])
    received: list[float] = []
    qos = QoSProfile(depth=50)
    node.create_subscription(String, "intake", lambda _m: received.append(time.monotonic()), qos,
                             callback_group=MutuallyExclusiveCallbackGroup())
    publisher = node.create_publisher(String, "intake", qos)
    spin(node, threads=4)
    assert wait_for(lambda: publisher.get_subscription_count() > 0)
    recorder = Recorder()
    slow = runner.submit("slow", recorder.task("slow", 0, 1.5))
    time.sleep(0.1)
    for _ in range(10):
        publisher.publish(String(data="frame"))
        time.sleep(0.02)
    assert wait_for(lambda: len(received) == 10, timeout=1.2)
    assert not slow.done(), "intake waited for the slow model"
    slow.result(timeout=5)
    assert max(received) < recorder.spans[0][3]


def test_a_failing_task_hands_its_exception_to_the_future_and_the_lane_goes_on(context, spin) -> None:
    node = rclpy.create_node("runner_errors", context=context)
    runner = CallbackGroupTaskRunner(node, ["det"])
    spin(node, threads=2)

    def fail() -> None:
        raise ValueError("bad tensor")

    with pytest.raises(ValueError, match="bad tensor"):
        runner.submit("det", fail).result(timeout=5)
    assert runner.submit("det", lambda: 7).result(timeout=5) == 7


def test_close_cancels_queued_tasks_and_refuses_new_ones(context, spin) -> None:
    node = rclpy.create_node("runner_close", context=context)
    runner = CallbackGroupTaskRunner(node, ["det"])
    spin(node, threads=2)
    release = threading.Event()
    running = runner.submit("det", lambda: release.wait(5))
    assert wait_for(lambda: running.running())
    queued = [runner.submit("det", lambda: 1) for _ in range(3)]
    assert runner.pending("det") == 4
    runner.close()
    release.set()
    assert running.result(timeout=5) is True
    for future in queued:
        with pytest.raises(CancelledError):
            future.result(timeout=5)
    with pytest.raises(RuntimeError, match="task runner closed; cannot run a task of model 'det'"):
        runner.submit("det", lambda: 1)


def test_here_runs_a_quick_idle_models_task_in_the_calling_thread_inside_the_models_group(context, spin) -> None:
    node = rclpy.create_node("runner_here", context=context)
    runner = CallbackGroupTaskRunner(node, ["det", "pose"])
    spin(node, threads=4)
    me = threading.current_thread().name
    seen: list[tuple[str, str, bool]] = []  # (model, thread, group taken while it ran)

    def task(model: str, then: str | None = None):  # noqa: ANN202
        def run() -> str:
            tasks = runner._models[model]  # noqa: SLF001
            seen.append((model, threading.current_thread().name, not tasks.group.can_execute(tasks.guard)))
            if then is not None:  # a task it submits (the next model of a serial chain)
                runner.submit(then, task(then)).result(timeout=10)
            return model
        return run

    with runner.here() as here:  # no task of "det" timed yet: it goes to the executor
        assert runner.submit("det", task("det")).result(timeout=10) == "det"
    assert here.ran == 0 and seen[-1][1] != me
    with runner.here() as here:  # quick last time: runs here, in its group; what it submits does not
        future = runner.submit("det", task("det", then="pose"))
        assert future.done() and future.result() == "det"
    assert here.ran == 1
    assert seen[-2] == ("det", me, True)
    assert seen[-1][0] == "pose" and seen[-1][1] != me
    assert runner.submit("det", task("det")).result(timeout=10) and seen[-1][1] != me  # outside here(): executor
    runner._models["det"].last_task_s = HERE_MAX_TASK_S + 0.01  # noqa: SLF001  # as after a slow task
    with runner.here() as here:
        assert runner.submit("det", task("det")).result(timeout=10) == "det"
    assert here.ran == 0 and seen[-1][1] != me
    runner.close()
