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

#: Problems printed under the table (the JSON summary keeps up to ``report.MAX_PROBLEMS``).
SHOWN_PROBLEMS = 5


def failure_line(report: ReplayReport) -> str | None:
    """``error: every frame failed ...`` when every processed frame failed, else None."""
    if not report.all_failed:
        return None
    first = report.problems[0].splitlines()[0] if report.problems else "no error message recorded"
    return f"error: every frame failed ({report.frames_failed} of {report.frames_processed}); first: {first}"


def _ms(value: float, ran: int) -> str:
    return f"{value:.1f}" if ran else "-"


def format_table(report: ReplayReport) -> str:
    """The human-readable summary: totals (with failed frames), the per-model table (100 columns; ``-``
    where a model never ran), anomalies and drops, the first problems (first line of each)."""
    how = ("offline lossless" if report.replay_mode is ReplayMode.LOSSLESS
           else f"real-time x{report.rate:g}")
    failed = f" ({report.frames_failed} failed)" if report.frames_failed else ""
    lines = [
        f"{report.bag}: {how} replay, {report.pipeline_mode.value} pipeline {Path(report.config).name!r}",
        f"{report.frames_read} frames read, {report.frames_processed} processed{failed} in {report.wall_s:.2f} s "
        f"({report.frames_per_s:.1f} frames/s)"
        + (f"; waits: reader {report.read_wait_s * 1e3:.0f} ms, writer {report.write_wait_s * 1e3:.0f} ms"
           if report.replay_mode is ReplayMode.LOSSLESS else ""),
        f"{'model':<16} {'run':>6} {'skipped':>8} {'reused':>7} {'errors':>7} {'dropped':>8} "
        f"{'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}",
    ]
    for row in report.models:
        name = row.model if len(row.model) <= 16 else row.model[:13] + "..."
        lines.append(
            f"{name:<16} {row.run:>6} {row.skipped:>8} {row.reused:>7} {row.errors:>7} {row.dropped:>8} "
            f"{_ms(row.latency_mean_ms, row.run):>8} {_ms(row.latency_p50_ms, row.run):>8} "
            f"{_ms(row.latency_p95_ms, row.run):>8} {_ms(row.latency_max_ms, row.run):>8}")
    for topic in report.topics:
        extra = [f"{n} {k}" for k, n in (("dropped", topic.dropped), ("rejected", topic.rejected),
                                          ("corrupt", topic.corrupt), ("failed", topic.failed)) if n]
        if extra:
            lines.append(f"topic {topic.topic!r}: {topic.read} read, {topic.processed} processed, {', '.join(extra)}")
    if report.dropped:
        reasons = Counter(d.reason for d in report.dropped)
        lost = sorted(report.dropped, key=lambda d: (d.topic, d.index))
        first_lost = ", ".join(f"{d.topic}#{d.index}" for d in lost[:2])
        more = f" and {len(lost) - 2} more" if len(lost) > 2 else ""
        lines.append(f"lost in real-time replay ({', '.join(f'{n} {r}' for r, n in sorted(reasons.items()))}): "
                     f"{first_lost}{more}")
    if report.engine_frames_dropped:
        lines.append(f"dropped whole inside the engine: {report.engine_frames_dropped} frame(s)")
    timing = report.timing
    if timing.any:
        lines.append(
            f"timing: {timing.backward_jumps} backward jump(s), {timing.forward_gaps} gap(s) clamped "
            f"({timing.skipped_s:.1f} s not waited), {timing.stamps_out_of_order} out-of-order and "
            f"{timing.stamps_repeated} repeated header stamp(s)")
    shown = report.problems[:SHOWN_PROBLEMS]
    lines.extend(f"problem: {text.splitlines()[0] if text else text}" for text in shown)
    if len(report.problems) > len(shown):
        lines.append(f"... {len(report.problems) - len(shown)} more problem line(s) in the JSON summary (--json)")
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


def _topic_timelines(report: ReplayReport) -> list[tuple[str, list[Any], np.ndarray]]:
    """Per input topic: its frames in bag-time order and their bag time (s) since the first frame."""
    frames = report.frames
    start = min((f.log_time_ns for f in frames), default=0)
    timelines = []
    for topic in dict.fromkeys(f.topic for f in frames):
        own = sorted((f for f in frames if f.topic == topic), key=lambda f: (f.log_time_ns, f.index))
        timelines.append((topic, own, np.array([(f.log_time_ns - start) * 1e-9 for f in own], dtype=np.float64)))
    return timelines


def latency_series(report: ReplayReport) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Per (topic, model): bag time of each of the topic's frames (s) and the model's latency there (ms).

    The latency is NaN where the model did not compute on that frame (skipped, error, dropped,
    failed, or a result reused from an earlier frame), so a plotted line has gaps there instead
    of a straight segment across; each computation appears once, at the first frame carrying it.
    """
    series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for topic, own, xs in _topic_timelines(report):
        for model in [row.model for row in report.models]:
            seen: set[int] = set()
            ys = np.full(len(own), np.nan)
            for i, f in enumerate(own):
                for o in f.outcomes:
                    if (o.model == model and o.status in (ResultStatus.OK, ResultStatus.REUSED)
                            and o.computed_on not in seen):
                        seen.add(o.computed_on)
                        ys[i] = o.latency_ms
            if np.isfinite(ys).any():
                series[(topic, model)] = (xs, ys)
    return series


def age_series(report: ReplayReport) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Per (topic, model): bag time of the topic's frames and the age of the model's result (NaN: none)."""
    series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for topic, own, xs in _topic_timelines(report):
        for model in [row.model for row in report.models]:
            ys = np.full(len(own), np.nan)
            for i, f in enumerate(own):
                for o in f.outcomes:
                    if o.model == model and o.status in (ResultStatus.OK, ResultStatus.REUSED):
                        ys[i] = o.age
            if np.isfinite(ys).any():
                series[(topic, model)] = (xs, ys)
    return series


def plot_report(report: ReplayReport, path: Path | str) -> Path:
    """Draw per-model latency over the bag (and result freshness in parallel_async) to a PNG.

    One line per input topic and model (``latency_series``), broken where the model did not run.

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
    several_topics = len({f.topic for f in frames}) > 1

    def label(topic: str, model: str) -> str:
        return f"{model} on {topic}" if several_topics else model

    freshness = report.pipeline_mode is Mode.PARALLEL_ASYNC
    figure, axes = plt.subplots(2 if freshness else 1, 1, figsize=(10, 6.5 if freshness else 4), sharex=True,
                                squeeze=False)
    latency_axis = axes[0][0]
    for (topic, model), (xs, ys) in latency_series(report).items():
        latency_axis.plot(xs, ys, marker=".", linewidth=0.8, markersize=3, label=label(topic, model))
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
        for (topic, model), (xs, ys) in age_series(report).items():
            age_axis.step(xs, ys, where="post", linewidth=0.9, label=label(topic, model))
        age_axis.set_ylabel("result age (frames)")
        age_axis.grid(alpha=0.3)
        age_axis.legend(loc="upper right", fontsize="small")
    axes[-1][0].set_xlabel("bag time (s)")
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target, dpi=100)
    plt.close(figure)
    return target


__all__ = ["age_series", "failure_line", "format_table", "latency_series", "plot_report", "report_dict", "write_json"]
