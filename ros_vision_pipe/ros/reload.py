"""Reload without restart: the ``~/reload`` service, the writable ``config_file``, ``watch_config``.

All three end in ``Reloader.reload``: the configuration is loaded beside the serving pipeline
(``engine/reload.py``: sessions of unchanged model files reused, one warm-up frame), then swapped
in at a frame boundary. A configuration that fails leaves the old one serving; the answer (the
service's ``message``, the parameter's ``reason``, a log line for file events) carries the
engine's error. One reload at a time.

``watch_config: true`` follows the configuration's folder with ``watchdog`` (inotify on Linux):
a burst of file events (an editor's save) triggers one reload, ``DEBOUNCE_S`` after the last.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ros_vision_pipe.engine.errors import PipelineClosedError
from ros_vision_pipe.engine.generations import Generation, SwappablePipeline
from ros_vision_pipe.engine.reload import PipelineBuilder, ReloadError

#: Seconds of quiet after a file event before ``watch_config`` reloads.
DEBOUNCE_S = 0.3


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload answered.

    Attributes:
        success: Whether the new configuration is serving.
        message: For the caller: the generation and load time, or the engine's error.
        generation: The generation now serving.
    """

    success: bool
    message: str
    generation: int


class Reloader:
    """Builds a generation from a configuration file and swaps it into the serving pipeline.

    Args:
        builder: Builds generations (sessions cache, switches).
        pipeline: The serving pipeline.
        warmup: Returns the last frame received (image, encoding), or None before the first one.
        prepare: Called with each new generation after it loaded and before it is swapped in
            (publishers and parameters of new models, the current switch values).
        log: Logs one line (info or error).
    """

    def __init__(self, builder: PipelineBuilder, pipeline: SwappablePipeline,
                 warmup: Callable[[], tuple[Any, str] | None], prepare: Callable[[Generation], None],
                 log: Callable[[bool, str], None]) -> None:
        """Nothing reloading yet."""
        self._builder = builder
        self._pipeline = pipeline
        self._warmup = warmup
        self._prepare = prepare
        self._log = log
        self._lock = threading.Lock()

    def reload(self, path: Path) -> ReloadOutcome:
        """Load ``path`` beside the serving pipeline and swap it in; the old one serves on failure."""
        with self._lock:
            last = self._warmup()
            try:
                image, encoding = last if last is not None else (None, "bgr8")
                generation = self._builder.build(path, image, encoding)
            except ReloadError as error:
                current = self._pipeline.current.number
                message = f"reload of {str(path)!r} refused, generation {current} keeps serving: {error}"
                self._log(False, message)
                return ReloadOutcome(False, message, current)
            try:
                self._prepare(generation)
                previous = self._pipeline.swap(generation)
            except PipelineClosedError as error:
                return ReloadOutcome(False, f"reload of {str(path)!r} abandoned: {error}", generation.number)
            except Exception as error:  # the new generation's parameters/publishers could not be set up
                generation.pipeline.close()
                message = f"reload of {str(path)!r} refused: {type(error).__name__}: {error}"
                self._log(False, message)
                return ReloadOutcome(False, message, self._pipeline.current.number)
            self._builder.sessions.retain(generation.pipeline.models.values())
            message = (f"generation {generation.number} ({generation.config_hash}) serving {str(path)!r} after "
                       f"{generation.load_ms:.0f} ms, {generation.sessions_reused}/{len(generation.pipeline.models)} "
                       f"session(s) reused; generation {previous.number} drains")
            self._log(True, message)
            return ReloadOutcome(True, message, generation.number)


class ConfigWatcher:
    """Calls ``on_change`` once per burst of file-system events in ``folder`` (watchdog).

    Args:
        folder: The configuration's folder (watched recursively).
        on_change: Called from a timer thread, ``DEBOUNCE_S`` after the last event of a burst.
    """

    def __init__(self, folder: Path, on_change: Callable[[], None]) -> None:
        """Start watching."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class _Handler(FileSystemEventHandler):  # type: ignore[misc]
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.is_directory or event.event_type in ("opened", "closed_no_write"):
                    return
                watcher.touched()

        self._on_change = on_change
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self.events = 0
        self._observer = Observer()
        self._observer.schedule(_Handler(), str(folder), recursive=True)
        self._observer.daemon = True
        self._observer.start()

    def touched(self) -> None:
        """Note a file event; (re)start the debounce timer."""
        with self._lock:
            self.events += 1
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(DEBOUNCE_S, self._on_change)
            self._timer.daemon = True
            self._timer.start()

    def close(self) -> None:
        """Stop watching (a pending reload is cancelled)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        self._observer.stop()
        self._observer.join(timeout=2.0)


__all__ = ["DEBOUNCE_S", "ConfigWatcher", "ReloadOutcome", "Reloader"]
