"""Thread helpers shared by the engine's stage threads and replay's background threads."""

from __future__ import annotations

import logging
import os
import threading

_LOG = logging.getLogger("ros_vision_pipe.engine")


def lower_thread_priority(increment: int) -> None:
    """Raise the calling thread's niceness by ``increment`` (Linux: per thread; elsewhere a no-op).

    Where the sandbox does not permit it the thread keeps its normal priority.
    """
    if increment <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except OSError as error:  # not permitted here: run at normal priority
        _LOG.debug("cannot lower the priority of %s: %s", threading.current_thread().name, error)
