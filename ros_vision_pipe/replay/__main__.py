"""``python -m ros_vision_pipe.replay`` and ``ros-vision-pipe-replay``: see ``cli.py``.

Without the ``replay`` extra (``rosbags``...) this prints one line naming it instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ros_vision_pipe.extras import report_missing_dependency


def entry(argv: Sequence[str] | None = None) -> int:
    """Run the replay command line; one error line when a dependency of the ``replay`` extra is missing."""
    try:
        from ros_vision_pipe.replay.cli import main
    except ModuleNotFoundError as error:
        return report_missing_dependency(error)
    return main(argv)


if __name__ == "__main__":
    sys.exit(entry())
