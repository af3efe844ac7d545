"""The node's process on transparent huge pages: when it starts itself again, and that it then is."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support import REPO

from ros_vision_pipe.huge_pages import TUNABLE, huge_page_environment, thp_mode

CHILD = """
import json, os, sys
from ros_vision_pipe.huge_pages import use_huge_pages
pid = os.getpid()
use_huge_pages()
block = b"\x01" * (64 * 1024 * 1024)  # glibc malloc, written (numpy would ask for huge pages itself)
huge = [line.split()[1] for line in open("/proc/self/smaps_rollup") if line.startswith("AnonHugePages")]
print(json.dumps({"pid": pid, "now": os.getpid(), "argv": sys.argv[1:], "huge_kb": int(huge[0]),
                  "tunables": os.environ.get("GLIBC_TUNABLES")}))
"""


def test_the_environment_gets_the_tunable_only_where_it_changes_something() -> None:
    assert huge_page_environment({"A": "1"}, "madvise", True) == {"A": "1", "GLIBC_TUNABLES": TUNABLE}
    assert huge_page_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "madvise", True) == {
        "GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{TUNABLE}"}
    for environ, mode, glibc_ok in [
        ({"RVP_HUGE_PAGES": "0"}, "madvise", True),  # opted out
        ({"GLIBC_TUNABLES": TUNABLE}, "madvise", True),  # set already: started again, or by the user
        ({}, "always", True),  # the heap is on huge pages already
        ({}, "never", True),  # it cannot be
        ({}, None, True),  # no THP in this kernel
        ({}, "madvise", False),  # glibc older than 2.35
    ]:
        assert huge_page_environment(environ, mode, glibc_ok) is None, (environ, mode, glibc_ok)


def run_child(**env: str) -> dict:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **env}
    environ.pop("GLIBC_TUNABLES", None)
    result = subprocess.run([sys.executable, "-c", CHILD, "first", "second"], env=environ, capture_output=True,
                            text=True, timeout=60, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(thp_mode() != "madvise", reason="the kernel's THP mode is not madvise")
def test_the_process_starts_again_as_itself_with_its_heap_on_huge_pages() -> None:
    on, off = run_child(), run_child(RVP_HUGE_PAGES="0")
    assert on["pid"] == on["now"] and on["argv"] == ["first", "second"] and on["tunables"] == TUNABLE
    assert off["tunables"] is None
    assert on["huge_kb"] >= 32 * 1024 > off["huge_kb"], (on, off)
