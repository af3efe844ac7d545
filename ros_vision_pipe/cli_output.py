"""What ``ros-vision-pipe run`` prints: one compact line per frame, the OCR text in full, the summary.

* ``frame_lines(result)``: the frame's line (every model's result in a few words and its
  latency, at most ``WIDTH`` columns), then, indented, each model error in full and each
  recognised text line in full (OCR: the text is the point);
* ``RunSummary``: counts frames with a failed model while the run goes, and formats the
  per-model table from the engine's counters (``Pipeline.stats()``; ``WIDTH`` columns at most;
  ``-`` where a model never ran);
* ``all_failed_message``: the first line printed when every frame failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ros_vision_pipe.engine.records import FrameResult, ModelOutcome, PipelineStats, ResultStatus
from ros_vision_pipe.messages.result_mapping import to_json

#: Widest line printed (the frame lines and the table).
WIDTH = 100


def _clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, with ``...`` when cut."""
    return text if len(text) <= width else text[: max(0, width - 3)] + "..."


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def brief(value: Any) -> str:
    """A model result in a few words: ``2 person 0.93 0.71``, ``7 lines``, ``sfw 0.99``..."""
    if value is None:
        return "no result"
    if not isinstance(value, dict):
        return _clip(to_json(value), 30)
    if isinstance(value.get("lines"), list):
        return f"{len(value['lines'])} lines"
    if isinstance(value.get("angles"), list):
        turned = sum(1 for a in value["angles"] if a == 180)
        return f"{len(value['angles'])} lines" + (f", {turned} turned 180" if turned else "")
    parts = []
    detections = value.get("detections")
    if isinstance(detections, list):
        labels = {str(d.get("label") or "") for d in detections}
        label = labels.pop() if len(labels) == 1 else ""
        text = f"{len(detections)} {label or 'det'}".rstrip()
        if len(detections) <= 2:  # the scores of one or two; a count says more for many
            text += "".join(f" {d['score']:.2f}" for d in detections if isinstance(d.get("score"), (int, float)))
        keypoints = [len(d["keypoints"]) for d in detections if d.get("keypoints")]
        if keypoints:
            text += f" +{keypoints[0]}kp"
        parts.append(text)
    for item in (value.get("classifications") or [])[:1]:
        parts.append(f"{item.get('label')!s} {item.get('score', 0.0):.2f}")
    return ", ".join(parts) if parts else _clip(to_json(value), 30)


def outcome_brief(outcome: ModelOutcome) -> str:
    """One model on one frame: ``person 1 person 0.93 47 ms``, ``pose skipped``, ``rec ERROR``."""
    if outcome.status is ResultStatus.ERROR:
        return f"{outcome.model} ERROR"
    if outcome.status is ResultStatus.SKIPPED:
        return f"{outcome.model} skipped"
    if outcome.status is ResultStatus.REUSED:
        return f"{outcome.model} {brief(outcome.value)} (reused, {outcome.age} frames old)"
    return f"{outcome.model} {brief(outcome.value)} {_ms(outcome.latency_ms)}"


def frame_lines(result: FrameResult, width: int = WIDTH) -> list[str]:
    """The frame's compact line, then its errors and recognised text lines in full, indented."""
    head = f"frame {result.frame_id:>4}: " + " | ".join(outcome_brief(o) for o in result.outcomes.values())
    if result.error and not result.outcomes:
        head = f"frame {result.frame_id:>4}: FAILED"
    lines = [_clip(head, width)]
    if result.error and not result.outcomes:
        lines.append(f"    error: {result.error}")
    for outcome in result.outcomes.values():
        if outcome.status is ResultStatus.ERROR:
            lines.append(f"    {outcome.model} error: {(outcome.error or '').splitlines()[0] if outcome.error else ''}")
        elif outcome.status is ResultStatus.OK and isinstance(outcome.value, dict):
            for number, line in enumerate(outcome.value.get("lines") or [], start=1):
                turned = "  (read turned 180)" if line.get("angle") == 180 else ""
                lines.append(f"    {number:>3} {line.get('score', 0.0):.2f}  {line.get('text', '')}{turned}")
    return lines


@dataclass
class RunSummary:
    """Frame counts of a run, fed frame by frame (``add``); ``table`` adds the engine's per-model counters.

    Attributes:
        frames: Frames run.
        failed: Frames on which the pipeline or at least one model failed.
        first_error: The first error met (model and message), for the failure line.
    """

    frames: int = 0
    failed: int = 0
    first_error: str | None = None

    def add(self, result: FrameResult) -> None:
        """Count one frame."""
        self.frames += 1
        errors = [o for o in result.outcomes.values() if o.status is ResultStatus.ERROR]
        if errors or (result.error and not result.outcomes):
            self.failed += 1
            if self.first_error is None:
                self.first_error = (f"model {errors[0].model!r}: {errors[0].error}" if errors
                                    else str(result.error))

    @property
    def all_failed(self) -> bool:
        """Every frame failed (and there was at least one)."""
        return self.frames > 0 and self.failed == self.frames

    def table(self, wall_s: float, stats: PipelineStats) -> str:
        """Totals line, failure line when frames failed, and the per-model table (``-``: never ran).

        The per-model rows are a view of the engine's counters (``Pipeline.stats()``), summed
        over sources; mean and p95 are the engine's, over its recent window of runs.
        """
        rate = self.frames / wall_s if wall_s > 0 else 0.0
        lines = [f"{self.frames} frames in {wall_s:.2f} s ({rate:.1f} frames/s)"
                 + (f"; {self.failed} of {self.frames} frames failed" if self.failed else "")]
        lines.append(f"{'model':<16} {'ran':>6} {'skipped':>8} {'reused':>7} {'errors':>7} "
                     f"{'mean ms':>9} {'p95 ms':>9}")
        names = list(dict.fromkeys(row.model for row in stats.models))
        for name in names:
            rows = [row for row in stats.models if row.model == name]
            samples = sum(row.latency_samples for row in rows)
            mean = (f"{sum(row.latency_mean_ms * row.latency_samples for row in rows) / samples:.1f}"
                    if samples else "-")
            p95 = f"{max(row.latency_p95_ms for row in rows if row.latency_samples):.1f}" if samples else "-"
            lines.append(
                f"{_clip(name, 16):<16} {sum(r.runs for r in rows):>6} {sum(r.skipped for r in rows):>8} "
                f"{sum(r.reused for r in rows):>7} {sum(r.errors for r in rows):>7} {mean:>9} {p95:>9}")
        return "\n".join(lines)


def all_failed_message(summary: RunSummary) -> str:
    """The first line of a run in which every frame failed."""
    return (f"error: every frame failed ({summary.failed} of {summary.frames}); first error: "
            f"{summary.first_error}")


def json_record(result: FrameResult) -> dict[str, Any]:
    """One frame as printed by ``run --json``."""
    return {
        "frame_id": result.frame_id,
        "results": {n: {"status": o.status.value, "latency_ms": o.latency_ms, "value": o.value,
                        **({"error": o.error} if o.error else {})}
                    for n, o in result.outcomes.items()},
        "fused": result.fused,
    }


__all__ = ["WIDTH", "RunSummary", "all_failed_message", "brief", "frame_lines", "json_record", "outcome_brief"]
