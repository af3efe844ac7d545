"""A replay report as output: the per-model table, the JSON summary and the PNG plot.

``format_table`` prints the per-model table, ``report_dict`` gives the machine-readable
summary written as JSON by ``write_json``, ``plot_report`` draws per-model latency over the
bag and, in parallel_async mode, result freshness (age of the result, in frames).
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ros_vision_pipe.engine.records import Mode, ResultStatus
from ros_vision_pipe.replay.errors import ReplayError
from ros_vision_pipe.replay.report import (
    ReplayMode,
    ReplayReport,
)


def format_table(report: ReplayReport) -> str:
    """The human-readable summary: one line of totals, the per-model table, anomalies and drops."""
    how = ("offline lossless" if report.replay_mode is ReplayMode.LOSSLESS
           else f"real-time x{report.rate:g}")
    lines = [
        f"{report.bag}: {how} replay, {report.pipeline_mode.value} pipeline {Path(report.config).name!r}: "
        f"{report.frames_read} frames read, {report.frames_processed} processed in {report.wall_s:.2f} s "
        f"({report.frames_per_s:.1f} frames/s)"
        + (f"; waited {report.read_wait_s * 1e3:.0f} ms for the reader, {report.write_wait_s * 1e3:.0f} ms for the "
           f"writer" if report.replay_mode is ReplayMode.LOSSLESS else ""),
        f"{'model':<14} {'run':>6} {'skipped':>8} {'reused':>7} {'errors':>7} {'dropped':>8} "
        f"{'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}",
    ]
    for row in report.models:
        lines.append(
            f"{row.model:<14} {row.run:>6} {row.skipped:>8} {row.reused:>7} {row.errors:>7} {row.dropped:>8} "
            f"{row.latency_mean_ms:>8.1f} {row.latency_p50_ms:>8.1f} {row.latency_p95_ms:>8.1f} "
            f"{row.latency_max_ms:>8.1f}")
    for topic in report.topics:
        extra = [f"{n} {k}" for k, n in (("dropped", topic.dropped), ("rejected", topic.rejected),
                                          ("corrupt", topic.corrupt), ("failed", topic.failed)) if n]
        if extra:
            lines.append(f"topic {topic.topic!r}: {topic.read} read, {topic.processed} processed, {', '.join(extra)}")
    if report.dropped:
        reasons = Counter(d.reason for d in report.dropped)
        shown = ", ".join(f"{d.topic}#{d.index}" for d in sorted(report.dropped, key=lambda d: (d.topic, d.index))[:10])
        more = f" and {len(report.dropped) - 10} more" if len(report.dropped) > 10 else ""
        lines.append(f"lost in real-time replay ({', '.join(f'{n} {r}' for r, n in sorted(reasons.items()))}): "
                     f"{shown}{more}")
    if report.engine_frames_dropped:
        lines.append(f"dropped whole inside the engine: {report.engine_frames_dropped} frame(s)")
    timing = report.timing
    if timing.any:
        lines.append(
            f"timing: {timing.backward_jumps} backward jump(s), {timing.forward_gaps} gap(s) clamped "
            f"({timing.skipped_s:.1f} s not waited), {timing.stamps_out_of_order} out-of-order and "
            f"{timing.stamps_repeated} repeated header stamp(s)")
    lines.extend(f"problem: {text}" for text in report.problems)
    if report.read_error:
        lines.append(f"read error: {report.read_error}")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def report_dict(report: ReplayReport, *, frames: bool = False) -> dict[str, Any]:
    """The report as JSON-ready data (enums as their values); per-frame records only if ``frames``."""
    data = asdict(report)
    if not frames:
        del data["frames"]
    return dict(_plain(data))


def write_json(report: ReplayReport, path: Path | str, *, frames: bool = False) -> Path:
    """Write ``report_dict`` to ``path`` (indented JSON)."""
    target = Path(path)
    target.write_text(json.dumps(report_dict(report, frames=frames), indent=2) + "\n", encoding="utf-8")
    return target


def plot_report(report: ReplayReport, path: Path | str) -> Path:
    """Draw per-model latency over the bag (and result freshness in parallel_async) to a PNG.

    Raises:
        ReplayError: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ReplayError("plotting needs matplotlib (pip install -r requirements/engine.txt)") from error
    frames = report.frames
    start = min((f.log_time_ns for f in frames), default=0)
    freshness = report.pipeline_mode is Mode.PARALLEL_ASYNC
    figure, axes = plt.subplots(2 if freshness else 1, 1, figsize=(10, 6.5 if freshness else 4), sharex=True,
                                squeeze=False)
    latency_axis = axes[0][0]
    for model in [row.model for row in report.models]:
        first_seen: dict[tuple[str, int], tuple[float, float]] = {}  # each computation at its first frame
        for f in frames:
            for o in f.outcomes:
                if o.model == model and o.status in (ResultStatus.OK, ResultStatus.REUSED):
                    first_seen.setdefault((f.topic, o.computed_on), ((f.log_time_ns - start) * 1e-9, o.latency_ms))
        points = list(first_seen.values())
        if points:
            xs, ys = zip(*sorted(points), strict=True)
            latency_axis.plot(xs, ys, marker=".", linewidth=0.8, markersize=3, label=model)
    drops = sorted((f.log_time_ns - start) * 1e-9 for f in frames if f.dropped)
    if drops:
        latency_axis.plot(drops, [0.0] * len(drops), "x", color="red", label="dropped frame")
    latency_axis.set_ylabel("latency (ms)")
    latency_axis.set_title(f"{Path(report.config).name} on {Path(report.bag).name} "
                           f"({report.pipeline_mode.value}, {report.replay_mode.value})")
    latency_axis.grid(alpha=0.3)
    latency_axis.legend(loc="upper right", fontsize="small")
    if freshness:
        age_axis = axes[1][0]
        for model in [row.model for row in report.models]:
            points = [((f.log_time_ns - start) * 1e-9, o.age) for f in frames for o in f.outcomes
                      if o.model == model and o.status in (ResultStatus.OK, ResultStatus.REUSED)]
            if points:
                xs, ys = zip(*sorted(points), strict=True)
                age_axis.step(xs, ys, where="post", linewidth=0.9, label=model)
        age_axis.set_ylabel("result age (frames)")
        age_axis.grid(alpha=0.3)
        age_axis.legend(loc="upper right", fontsize="small")
    axes[-1][0].set_xlabel("bag time (s)")
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target, dpi=100)
    plt.close(figure)
    return target


__all__ = ["format_table", "plot_report", "report_dict", "write_json"]
