"""The process's hot memory on 2 MiB pages: ``madvise(MADV_COLLAPSE)`` once the models have settled.

An inference that comes 50 ms after the last one (a 20 Hz camera) is 2-3 ms slower than one that
follows it back to back, and most of that is address translation: the model's weights, ONNX
Runtime's arena and Python's heap are spread over thousands of 4 KiB pages whose TLB entries are
gone by the next frame (docs/performance.md, "Fifth round"). On 2 MiB pages the same memory needs
512 times fewer entries. ``collapse`` asks Linux (6.1 and later) to move the densely used 2 MiB
chunks of the process's private memory onto huge pages, in place, once: the memory allocated
later (a reload's models) is collapsed by calling it again. It changes nothing else: where the
kernel cannot (no huge page free, an older kernel), the chunk stays as it was.

Only chunks of which at least ``min_present`` of the pages are in memory are collapsed, so the
process grows by less than ``1 - min_present`` of what it collapses (it was measured: docs/ros.md,
``huge_pages``). Making glibc's allocator ask for huge pages on every allocation instead
(``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``) was tried and dropped: allocations at start-up stalled
in compaction.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

#: ``madvise`` advice: collapse the range onto transparent huge pages, synchronously (Linux 6.1).
MADV_COLLAPSE = 25
#: Size of a PMD-mapped huge page on x86-64 and arm64 with 4 KiB base pages (``huge_page_size`` reads
#: the kernel's: 512 MiB on arm64 kernels with 64 KiB pages).
HUGE_PAGE = 2 << 20
#: Default share of a chunk's pages that must be in memory for it to be collapsed.
MIN_PRESENT = 0.5
#: Chunks whose pagemap entries are read at once (64 MiB of address space: 128 KiB of entries).
SLICE_CHUNKS = 32
#: Frames the models run after a (re)load before the node collapses (ONNX Runtime's arena has grown).
SETTLE_FRAMES = 20

_PRESENT = np.uint64(1 << 63)  # /proc/<pid>/pagemap: the page is in memory


@dataclass(frozen=True)
class Collapsed:
    """What one ``collapse`` did.

    Attributes:
        chunks: 2 MiB chunks on huge pages now (already huge ones included).
        sparse: Chunks left alone: fewer than ``min_present`` of their pages in memory.
        failed: Chunks the kernel did not collapse (no huge page free, memory it cannot move).
        seconds: Wall time it took.
        supported: False where the kernel or platform cannot collapse (nothing was tried).
        chunk_bytes: The size of a huge page, and so of a chunk.
    """

    chunks: int
    sparse: int
    failed: int
    seconds: float
    supported: bool = True
    chunk_bytes: int = HUGE_PAGE

    def describe(self) -> str:
        """One line for the log."""
        if not self.supported:
            return "huge pages: not supported here (Linux 6.1+ with transparent huge pages); 4 KiB pages kept"
        mib = self.chunk_bytes >> 20
        return (f"huge pages: {self.chunks} chunks of {mib} MiB ({self.chunks * mib} MiB) collapsed in "
                f"{self.seconds:.2f} s; {self.sparse} sparse chunks left alone, {self.failed} not collapsed")


def huge_page_size() -> int:
    """The kernel's PMD huge page size (``HUGE_PAGE`` where it does not say)."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size") as size:
            return int(size.read().strip()) or HUGE_PAGE
    except (OSError, ValueError):
        return HUGE_PAGE


def private_ranges(maps: str, chunk: int = HUGE_PAGE) -> Iterator[tuple[int, int]]:
    """The ``chunk``-aligned (start, end) of the writable private anonymous mappings in ``/proc/<pid>/maps`` text."""
    for line in maps.splitlines():
        fields = line.split()
        if len(fields) < 5 or not fields[1].startswith("rw") or fields[1][3] != "p":
            continue
        name = fields[5] if len(fields) > 5 else ""
        if name and name != "[heap]":  # files, stacks, vdso...
            continue
        low, high = (int(value, 16) for value in fields[0].split("-"))
        start, end = -(-low // chunk) * chunk, high // chunk * chunk
        if end > start:
            yield start, end


def _kernel_collapses() -> bool:
    """Linux 6.1 or later with transparent huge pages not switched off (``never``)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as enabled:
            if "[never]" in enabled.read():
                return False
        major, minor = (int("".join(c for c in part if c.isdigit()) or 0) for part in os.uname().release.split(".")[:2])
    except (OSError, ValueError):
        return False
    return (major, minor) >= (6, 1)


def _madvise() -> Callable[[int, int, int], int] | None:
    if not _kernel_collapses():
        return None
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise  # type: ignore[no-any-return]


def collapse(min_present: float = MIN_PRESENT) -> Collapsed:
    """Collapse this process's densely used private memory onto 2 MiB pages (see the module docstring).

    Safe while other threads run (the kernel copies each chunk under its own locks); a thread touching
    a chunk being collapsed waits for that chunk (well under a millisecond).
    """
    began = time.monotonic()
    madvise = _madvise()
    if madvise is None:
        return Collapsed(0, 0, 0, 0.0, supported=False)
    try:
        with open("/proc/self/maps") as maps_file:
            maps = maps_file.read()
        pagemap = os.open("/proc/self/pagemap", os.O_RDONLY)
    except OSError:
        return Collapsed(0, 0, 0, 0.0, supported=False)
    chunks = sparse = failed = 0
    chunk = huge_page_size()
    per_chunk = chunk // os.sysconf("SC_PAGE_SIZE")
    try:
        for start, end in private_ranges(maps, chunk):
            # a slice at a time: a reserved range of many GB (a GPU runtime's) is not read whole
            for low in range(start, end, SLICE_CHUNKS * chunk):
                count = min(SLICE_CHUNKS, (end - low) // chunk)
                dense = _dense_chunks(pagemap, low // chunk * per_chunk, count, per_chunk, min_present)
                if dense is None:  # unmapped or shrunk meanwhile
                    break
                sparse += count - len(dense)
                for index in dense:
                    if madvise(low + int(index) * chunk, chunk, MADV_COLLAPSE) == 0:
                        chunks += 1
                    else:  # EINVAL: memory the kernel cannot collapse (a thread stack...); ENOMEM, EAGAIN
                        failed += 1
    finally:
        os.close(pagemap)
    return Collapsed(chunks, sparse, failed, time.monotonic() - began, chunk_bytes=chunk)


def _dense_chunks(pagemap: int, first_page: int, count: int, per_chunk: int,
                  min_present: float) -> np.ndarray | None:
    """Indices, among ``count`` chunks from page ``first_page``, of those with at least ``min_present`` of
    their pages in memory (/proc/self/pagemap); None when the range is no longer mapped whole."""
    try:
        entries = os.pread(pagemap, count * per_chunk * 8, first_page * 8)
    except OSError:
        return None
    if len(entries) != count * per_chunk * 8:
        return None
    present = (np.frombuffer(entries, np.uint64) & _PRESENT) != 0
    return np.flatnonzero(present.reshape(count, per_chunk).mean(axis=1) >= min_present)


class HugePages:
    """When to ``collapse``: once the models have settled after each (re)build of the pipeline.

    ``poll`` is called now and then with the frames finished so far (the node's input-watch timer):
    when ``settle_frames`` frames have finished since the pipeline was (re)built, a collapse starts in
    a thread of its own (its time grows with the memory, ~2 s per GB here: the caller's other work,
    /diagnostics, goes on) and ``report`` gets its ``Collapsed``. ``rearm`` after a reload collapses
    the new models' memory in turn.

    Args:
        report: Called with each ``Collapsed``, in the collapsing thread.
        settle_frames: Frames after a (re)build before collapsing.
        min_present: See ``collapse``.
    """

    def __init__(self, report: Callable[[Collapsed], None] = lambda _: None, settle_frames: int = SETTLE_FRAMES,
                 min_present: float = MIN_PRESENT) -> None:
        """Armed: the first ``settle_frames`` frames lead to a collapse."""
        self._report = report
        self._settle = settle_frames
        self._min_present = min_present
        self._lock = threading.Lock()
        self._armed_at: int | None = 0  # frames finished when armed (None: nothing to do)
        self._frames = 0
        self._thread: threading.Thread | None = None
        #: What the last collapse did (None: none finished yet).
        self.last: Collapsed | None = None

    def poll(self, frames: int) -> bool:
        """Start a collapse when ``frames`` (finished so far) is ``settle_frames`` past the arming and none
        is running; True when one started."""
        with self._lock:
            self._frames = frames
            if self._armed_at is None or frames - self._armed_at < self._settle or self.running:
                return False
            self._armed_at = None  # an unsupported kernel is not asked again before a rebuild
            self._thread = threading.Thread(target=self._collapse, name="huge pages", daemon=True)
            self._thread.start()
            return True

    @property
    def running(self) -> bool:
        """A collapse is in progress."""
        return self._thread is not None and self._thread.is_alive()

    def rearm(self) -> None:
        """The pipeline was rebuilt: collapse again once ``settle_frames`` more frames have finished."""
        with self._lock:
            self._armed_at = self._frames

    def join(self, timeout: float | None = None) -> None:
        """Wait for a collapse in progress to end."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _collapse(self) -> None:
        self.last = result = collapse(self._min_present)
        self._report(result)


__all__ = ["HUGE_PAGE", "MADV_COLLAPSE", "MIN_PRESENT", "SETTLE_FRAMES", "Collapsed", "HugePages", "collapse",
           "huge_page_size", "private_ranges"]
