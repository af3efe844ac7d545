"""Transparent huge pages for the process's heap: the models' weights and buffers on 2 MiB pages.

ONNX Runtime's weights and activations, the frames and every array live on the C heap (glibc malloc),
on 4 KiB pages unless the heap is marked for transparent huge pages. A frame that comes tens of
milliseconds after the last one finds most of the model's translations gone from the TLB and pays the
page walks again: on the development machine an SSDLite inference takes 11.6-12.2 ms 50 ms after the
last one on 4 KiB pages, 10.5-10.8 ms on huge pages (back to back: 8.9-9.4 vs 8.6-8.9 ms), for ~6 %
more resident memory (docs/performance.md, "Fourth round").

glibc puts its heap on transparent huge pages when the tunable ``glibc.malloc.hugetlb=1`` is set at
process start (glibc 2.35 or later, with the kernel's THP mode ``madvise``; with ``always`` the heap is
on huge pages already, with ``never`` it cannot be). A tunable is read only when the process starts,
so ``use_huge_pages`` starts the process again (``execve``: the same PID, arguments and environment,
plus the tunable) before anything else runs. ``RVP_HUGE_PAGES=0`` in the environment leaves the
process as it is.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

#: The glibc tunable that puts malloc's heap on transparent huge pages.
TUNABLE = "glibc.malloc.hugetlb=1"
#: Where the kernel says its THP mode, e.g. ``always [madvise] never``.
THP_MODE_FILE = Path("/sys/kernel/mm/transparent_hugepage/enabled")
#: Set to ``0`` to keep the heap on 4 KiB pages.
OPT_OUT = "RVP_HUGE_PAGES"


def thp_mode(path: Path = THP_MODE_FILE) -> str | None:
    """The kernel's transparent huge page mode (``always``, ``madvise``, ``never``), None when unknown."""
    try:
        text = path.read_text(encoding="ascii")
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


def _glibc_has_tunable() -> bool:
    library, version = platform.libc_ver()
    try:
        return library == "glibc" and tuple(int(part) for part in version.split(".")[:2]) >= (2, 35)
    except ValueError:
        return False


def huge_page_environment(environ: Mapping[str, str], mode: str | None, glibc_ok: bool) -> dict[str, str] | None:
    """The environment to start the process again with, or None when there is nothing to change.

    Nothing to change: opted out (``RVP_HUGE_PAGES=0``), the tunable already set (also: the process
    was started again already), a THP mode other than ``madvise``, or a glibc without the tunable.
    """
    tunables = environ.get("GLIBC_TUNABLES", "")
    if environ.get(OPT_OUT, "1") == "0" or "glibc.malloc.hugetlb" in tunables or mode != "madvise" or not glibc_ok:
        return None
    return {**environ, "GLIBC_TUNABLES": f"{tunables}:{TUNABLE}" if tunables else TUNABLE}


def use_huge_pages(environ: MutableMapping[str, str] = os.environ) -> None:
    """Start this process again with its heap on transparent huge pages, when that changes anything.

    Returns only when nothing is to change (see ``huge_page_environment``) or the new start failed
    (the process goes on as it is). Call it first thing in ``main``.
    """
    if not sys.platform.startswith("linux") or not sys.executable:  # no interpreter to start again
        return
    environment = huge_page_environment(environ, thp_mode(), _glibc_has_tunable())
    if environment is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, environment)
    except OSError:  # e.g. the interpreter was replaced meanwhile: run on 4 KiB pages
        return


__all__ = ["OPT_OUT", "THP_MODE_FILE", "TUNABLE", "huge_page_environment", "thp_mode", "use_huge_pages"]
