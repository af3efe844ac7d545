"""The replay progress bar: tqdm on a terminal, nothing otherwise (or when tqdm is missing)."""

from __future__ import annotations

import sys
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    """Told about every frame; shows how far replay got."""

    def update(self, frames: int = 1, **status: Any) -> None:
        """``frames`` more frames are done; ``status`` (e.g. ``dropped=3``) is shown next to the bar."""
        ...

    def close(self) -> None:
        """Finish the display."""
        ...


class NoProgress:
    """Shows nothing."""

    def update(self, frames: int = 1, **status: Any) -> None:
        """Ignore the frames."""

    def close(self) -> None:
        """Nothing to finish."""


class TqdmProgress:
    """A tqdm bar on ``stream``, its postfix refreshed at most a few times a second.

    Args:
        total: Frames expected (None when unknown).
        description: Text before the bar.
        stream: Where the bar is drawn (stderr).
    """

    def __init__(self, total: int | None, description: str, stream: TextIO | None = None) -> None:
        """Create the bar."""
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=description, unit="frame", file=stream or sys.stderr,
                         dynamic_ncols=True, mininterval=0.2)

    def update(self, frames: int = 1, **status: Any) -> None:
        """Advance the bar."""
        if status:
            self._bar.set_postfix(status, refresh=False)
        self._bar.update(frames)

    def close(self) -> None:
        """Close the bar."""
        self._bar.close()


def make_progress(total: int | None, description: str, *, enabled: bool | None = None,
                  stream: TextIO | None = None) -> Progress:
    """A tqdm bar when ``enabled`` (default: ``stream`` is a terminal) and tqdm is installed, else ``NoProgress``."""
    target = stream or sys.stderr
    show = target.isatty() if enabled is None else enabled
    if not show:
        return NoProgress()
    try:
        return TqdmProgress(total, description, target)
    except ImportError:
        return NoProgress()


__all__ = ["NoProgress", "Progress", "TqdmProgress", "make_progress"]
