"""Silent/lossy input bookkeeping and the Fast DDS profile choice of main(), without DDS traffic."""

from __future__ import annotations

from ros_support import REPO

from ros_vision_pipe.ros.node import use_large_data_profile
from ros_vision_pipe.ros.qos_events import MIN_LOST, SilentInputs


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_matched_input_without_frames_is_reported_once_after_the_delay() -> None:
    clock = Clock()
    inputs = SilentInputs(["/cam"], 3.0, clock)
    assert inputs.check("/cam", 0) is None  # nothing matched: nothing to say
    assert inputs.check("/cam", 1) is None  # matched now
    clock.now += 2.9
    assert inputs.check("/cam", 1) is None
    clock.now += 0.2
    silent = inputs.check("/cam", 1)
    assert silent is not None and abs(silent - 3.1) < 1e-9
    clock.now += 10
    assert inputs.check("/cam", 1) is None  # once per input
    assert inputs.silent_for("/cam", 1) > 3.0


def test_frames_keep_an_input_quiet_and_their_size_is_remembered() -> None:
    clock = Clock()
    inputs = SilentInputs(["/cam"], 3.0, clock)
    inputs.check("/cam", 1)
    for _ in range(10):
        clock.now += 1.0
        inputs.frame("/cam", 921_600)
        assert inputs.check("/cam", 1) is None
    assert inputs.last_size("/cam") == 921_600 and inputs.silent_for("/cam", 1) == 0.0


def test_more_frames_lost_than_received_is_reported() -> None:
    clock = Clock()
    inputs = SilentInputs(["/cam"], 3.0, clock)
    inputs.frame("/cam", 921_600)
    inputs.lost("/cam", MIN_LOST - 1)
    assert inputs.check("/cam", 1) is None
    inputs.lost("/cam", MIN_LOST + 3)
    assert inputs.check("/cam", 1) is not None
    assert inputs.counts("/cam") == (1, MIN_LOST + 3)


def test_main_applies_the_shipped_profile_only_when_fast_dds_is_not_configured() -> None:
    environ: dict[str, str] = {}
    assert use_large_data_profile(environ) == str(REPO / "config" / "fastdds_large_data.xml")
    assert environ["FASTDDS_DEFAULT_PROFILES_FILE"].endswith("config/fastdds_large_data.xml")
    for preset in ({"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}, {"FASTRTPS_DEFAULT_PROFILES_FILE": "/old.xml"},
                   {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}, {"FASTDDS_DEFAULT_PROFILES_FILE": ""},
                   {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}):
        environ = dict(preset)
        assert use_large_data_profile(environ) is None and environ == preset
