"""The README's demo: the real node, a camera stand-in and a listener in one process."""

from __future__ import annotations

import io
import re

from ros_vision_pipe.ros.demo import run


def test_demo_prints_one_line_per_fused_result_and_a_summary(person_config) -> None:
    out = io.StringIO()
    assert run(str(person_config), frames=8, rate=25.0, out=out) == 0
    text = out.getvalue()
    lines = [line for line in text.splitlines() if line.startswith("frame ")]
    assert lines, text
    indices = [int(re.match(r"frame +(\d+)", line).group(1)) for line in lines]
    assert indices == sorted(indices) and indices[0] == 0
    assert all(re.search(r"stamp \d+\.\d{9}  person: ok \d+ det", line) for line in lines)
    assert re.search(r"summary: 8 frames sent in [\d.]+ s, \d+ results received", text)
    assert re.search(r"  person +\d+ ok; median latency [\d.]+ ms", text)
