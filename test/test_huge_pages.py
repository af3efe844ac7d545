"""huge_pages.py on this machine's kernel: dense memory onto 2 MiB pages, sparse memory left alone."""

from __future__ import annotations

import ctypes
import mmap
import os
import threading
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest

from ros_vision_pipe import huge_pages
from ros_vision_pipe.huge_pages import HUGE_PAGE, HugePages, collapse, huge_page_size, private_ranges

SIZE = 16 << 20  # 8 chunks of 2 MiB; at least 7 of them aligned inside the mapping


def _private(size: int) -> mmap.mmap:
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=mmap.PROT_READ | mmap.PROT_WRITE)


def _address(region: mmap.mmap) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(region))


def _present_pages(address: int, size: int) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/pagemap", "rb") as pagemap:
        pagemap.seek(address // page * 8)
        entries = np.frombuffer(pagemap.read(size // page * 8), np.uint64)
    return int(np.count_nonzero(entries & np.uint64(1 << 63)))


def _anon_huge_kib(address: int) -> int:
    """AnonHugePages of the mapping holding ``address`` (/proc/self/smaps)."""
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                low, high = (int(v, 16) for v in head.split("-"))
                inside = low <= address < high
            elif inside and head == "AnonHugePages:":
                return int(line.split()[1])
    raise AssertionError(f"no mapping holds {address:#x}")


@pytest.fixture
def regions() -> Iterator[tuple[mmap.mmap, mmap.mmap]]:
    """A dense and a sparse private mapping, kept apart by a read-only page (no merged mappings)."""
    dense, gap, sparse = _private(SIZE), mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ), _private(SIZE)
    np.frombuffer(dense, np.uint8)[:] = 1  # every page in memory
    np.frombuffer(sparse, np.uint8)[::HUGE_PAGE] = 1  # one page in 512
    yield dense, sparse
    for region in (dense, gap, sparse):
        try:
            region.close()
        except BufferError:  # a view of it still alive: the process ends soon enough
            pass


def test_dense_memory_goes_onto_huge_pages_and_sparse_memory_is_not_filled_in(regions) -> None:
    dense, sparse = regions
    sparse_at = _address(sparse)
    sparse_before = _present_pages(sparse_at, SIZE)
    if _anon_huge_kib(_address(dense)):
        pytest.skip("transparent huge pages are 'always' here: the memory is on huge pages without asking")
    result = collapse()
    if not result.supported:
        pytest.skip(result.describe())
    assert result.chunks >= 7 and result.sparse >= 7
    assert _anon_huge_kib(_address(dense)) >= 7 * HUGE_PAGE // 1024
    assert _present_pages(sparse_at, SIZE) == sparse_before <= SIZE // HUGE_PAGE + 1  # nothing filled in
    assert bytes(dense[:4]) == b"\x01" * 4 and np.frombuffer(dense, np.uint8).min() == 1  # contents kept
    assert f"{result.chunks} chunks of 2 MiB" in result.describe()


def test_a_second_collapse_finds_the_chunks_already_huge(regions) -> None:
    first = collapse()
    if not first.supported:
        pytest.skip(first.describe())
    second = collapse()
    assert second.chunks >= 7 and second.seconds < max(0.5, first.seconds * 2)


def test_the_node_policy_collapses_in_its_own_thread_after_the_settling_frames_and_again_after_a_rebuild(
        regions) -> None:
    reports: list[huge_pages.Collapsed] = []
    policy = HugePages(reports.append, settle_frames=20)
    assert not policy.poll(0) and not policy.poll(19) and policy.last is None
    assert policy.poll(20)
    policy.join(30)
    done = policy.last
    assert done is not None and reports == [done] and not policy.running
    assert not policy.poll(40) and not policy.poll(400)  # once per (re)build
    policy.rearm()  # the pipeline was rebuilt at frame 400
    assert not policy.poll(419)
    assert policy.poll(420)
    policy.join(30)
    assert policy.last is not done and reports == [done, policy.last]


def test_a_collapse_in_progress_is_not_started_twice(monkeypatch) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(min_present: float) -> huge_pages.Collapsed:
        started.set()
        release.wait(10)
        return huge_pages.Collapsed(1, 0, 0, 0.0)

    monkeypatch.setattr(huge_pages, "collapse", slow)
    policy = HugePages(settle_frames=1)
    assert policy.poll(1) and started.wait(5) and policy.running
    policy.rearm()
    assert not policy.poll(5)  # the first one still runs
    release.set()
    policy.join(5)
    assert policy.poll(6)  # re-armed meanwhile: runs once the first has ended
    policy.join(5)


def test_a_reserved_range_of_gigabytes_is_read_a_slice_at_a_time() -> None:
    """A GPU runtime reserves GBs of address space it never touches: its pagemap is not read whole."""
    reserved = mmap.mmap(-1, 8 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0x4000),
                         prot=mmap.PROT_READ | mmap.PROT_WRITE)  # 4096 chunks, 16 MiB of pagemap entries
    try:
        tracemalloc.start()
        result = collapse()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if not result.supported:
            pytest.skip(result.describe())
        assert result.sparse >= 4096 - 2  # all of it untouched (its two ends may not be aligned chunks)
        # a slice of entries at a time (128 KiB) besides /proc/self/maps' text (up to ~1 MB in the suite's process)
        assert peak < 4 << 20, f"{peak} bytes at once"
    finally:
        reserved.close()


def test_only_writable_private_anonymous_memory_is_considered() -> None:
    maps = "\n".join([
        "00400000-00a00000 r-xp 00000000 08:01 123 /usr/bin/python3",  # code
        "01000000-01700000 rw-p 00000000 00:00 0 [heap]",  # the heap: 0x1000000-0x1600000 aligned
        "7f0000100000-7f0000500000 rw-p 00000000 00:00 0",  # anonymous: 0x7f0000200000-0x7f0000400000
        "7f0000600000-7f0000a00000 rw-s 00000000 00:05 77 /dev/shm/fastdds",  # shared memory
        "7f0000a00000-7f0000e00000 rw-p 00000000 00:00 0 [stack]",
        "7f0001000000-7f0001100000 rw-p 00000000 00:00 0",  # smaller than one aligned chunk
        "7f0002000000-7f0002400000 r--p 00000000 00:00 0",  # read-only
        "7f0003000000-7f0003400000 ---p 00000000 00:00 0",  # reserved, inaccessible
    ])
    assert list(private_ranges(maps)) == [(0x1000000, 0x1600000), (0x7F0000200000, 0x7F0000400000)]
    assert list(private_ranges(maps, 4 << 20)) == [(0x1000000, 0x1400000)]  # 4 MiB chunks: only the heap holds one


def test_the_chunk_is_the_kernels_huge_page() -> None:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size") as size:
            expected = int(size.read())
    except OSError:
        expected = HUGE_PAGE
    assert huge_page_size() == expected
    assert "chunks of 2 MiB (6 MiB)" in huge_pages.Collapsed(3, 0, 0, 0.1).describe()
    assert "chunks of 512 MiB (1536 MiB)" in huge_pages.Collapsed(3, 0, 0, 0.1, chunk_bytes=512 << 20).describe()
