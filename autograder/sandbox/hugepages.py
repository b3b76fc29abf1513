"""The zygote's private memory packed into huge pages, so each fork copies less.

Runs inside the sandbox (a sibling of ``zygote.py``), in the zygote, after its imports and
before its first fork. ``fork`` copies a page-table entry for every 4 KiB page of a process's
private memory, and ``exit`` frees them again: for a TensorFlow zygote (~260 MB of private
memory) a fork and exit cost ~17 ms of CPU, and every graded function's child pays it twice
(``prepared.py``: the keeper, then the learner). Packed into 2 MiB pages (``MADV_COLLAPSE``,
Linux 6.1+, synchronous, independent of the host's THP setting unless it is ``never``), the
same fork+exit costs ~9 ms. A child's first write to a shared huge page splits only that
page's mapping (the kernel then copies 4 KiB, as before), so a child that works still gains:
~79 -> ~72 ms for a TF child that runs a matmul, a tape and some Python (2026-12-07).

Only the zygote's own memory is touched, once; nothing a learner controls reaches it. Where the
kernel refuses (older than 6.1, THP ``never``, seccomp), nothing changes and grading is the same.
"""

from __future__ import annotations

import ctypes
import os

MADV_HUGEPAGE, MADV_COLLAPSE = 14, 25
HUGE = 2 << 20  # bytes of one huge page (x86-64, arm64 with 4 KiB pages)
WORTH_IT = 64 << 20  # private memory below which the packing costs more than the forks save


def private_ranges(maps: str = "/proc/self/maps") -> list[tuple[int, int]]:
    """The huge-page-aligned parts of this process's anonymous private writable mappings
    (its heap and malloc's arenas), as (start, end) byte addresses."""
    ranges = []
    with open(maps, encoding="ascii", errors="replace") as lines:
        for line in lines:
            fields = line.split()
            path = fields[5] if len(fields) > 5 else ""
            if fields[1][:2] != "rw" or fields[1][3] != "p" or path not in ("", "[heap]"):
                continue
            low, high = (int(part, 16) for part in fields[0].split("-"))
            low, high = -(-low // HUGE) * HUGE, high // HUGE * HUGE
            if high > low:
                ranges.append((low, high))
    return ranges


def collapse(minimum: int = WORTH_IT) -> int:
    """Pack this process's private memory into huge pages where the kernel allows; returns the
    bytes packed (0 when the aligned private memory is under ``minimum`` or the kernel has no
    ``MADV_COLLAPSE``). Never raises for the kernel's refusal: it only makes forks cheaper."""
    ranges = private_ranges()
    if sum(high - low for low, high in ranges) < minimum:
        return 0
    madvise = ctypes.CDLL(None, use_errno=True).madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    asked = 0
    for low, high in ranges:
        madvise(low, high - low, MADV_HUGEPAGE)  # later growth of the range gets huge pages too
        # EINVAL for a range the kernel will not pack (a thread's stack) or for all (no
        # MADV_COLLAPSE before 6.1); EAGAIN/ENOMEM when no free huge page was found: left as is.
        if madvise(low, high - low, MADV_COLLAPSE) == 0:
            asked += high - low
    return asked


def huge_bytes() -> int:
    """This process's anonymous memory in huge pages (AnonHugePages), in bytes."""
    with open(f"/proc/{os.getpid()}/smaps_rollup", encoding="ascii") as rollup:
        for line in rollup:
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1]) * 1024
    return 0
