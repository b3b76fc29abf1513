"""The zygote's private memory packed into huge pages (sandbox/hugepages.py): which mappings are
asked for, nothing below the minimum, and on a kernel that can (Linux 6.1+, THP not "never") the
memory really is in huge pages afterwards and a forked child still reads and writes it."""

from __future__ import annotations

import mmap
import os
import platform
from pathlib import Path

import numpy as np
import pytest

from autograder.sandbox import hugepages

MB = 1 << 20

MAPS = """\
55d0c0000000-55d0c0a00000 rw-p 00000000 00:00 0                          [heap]
7f0000100000-7f0000500000 rw-p 00000000 00:00 0 \n\
7f0000600000-7f0000700000 rw-p 00000000 00:00 0 \n\
7f0001000000-7f0002000000 r--p 00000000 00:00 0 \n\
7f0003000000-7f0004000000 rw-s 00000000 00:05 12                         /dev/zero (deleted)
7f0005000000-7f0006000000 rw-p 00100000 08:01 42                         /usr/lib/libfoo.so
7ffc00000000-7ffc00400000 rw-p 00000000 00:00 0                          [stack]
"""


def test_only_private_anonymous_writable_memory_aligned_to_huge_pages(tmp_path: Path):
    maps = tmp_path / "maps"
    maps.write_text(MAPS)
    assert hugepages.private_ranges(str(maps)) == [
        (0x55D0C0000000, 0x55D0C0A00000),  # the heap, already aligned
        (0x7F0000200000, 0x7F0000400000),  # 1-5 MiB: only the whole huge page inside it
    ]  # not: under 2 MiB, read-only, shared, file-backed, the stack


def thp_unavailable() -> str:
    try:
        setting = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "this kernel has no transparent huge pages"
    if "[never]" in setting:
        return "transparent huge pages are off on this host ([never])"
    major, minor = (int(part) for part in platform.release().split(".")[:2])
    if (major, minor) < (6, 1):
        return f"MADV_COLLAPSE needs Linux 6.1 (this is {platform.release()})"
    return ""


def test_below_the_minimum_nothing_is_asked():
    assert hugepages.collapse(minimum=1 << 50) == 0


@pytest.mark.skipif(bool(thp_unavailable()), reason=thp_unavailable() or "-")
def test_memory_is_packed_and_a_forked_child_still_uses_it():
    # Private, anonymous and touched, in 4 KiB pages (numpy asks for huge pages for its own large
    # arrays, so the memory comes from mmap): 96 MiB of float64 ones.
    memory = mmap.mmap(-1, 96 * MB, flags=mmap.MAP_PRIVATE)
    block = np.frombuffer(memory, dtype=np.float64)
    block[:] = 1.0
    before = hugepages.huge_bytes()
    assert hugepages.collapse(minimum=8 * MB) >= 32 * MB
    assert hugepages.huge_bytes() >= before + 32 * MB, "the kernel said yes but packed nothing"
    pid = os.fork()
    if pid == 0:  # the child's first write splits only its own mapping of that page
        block[::4096] += 1.0
        os._exit(0 if block.sum() == block.size + block[::4096].size else 1)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert block.sum() == block.size  # the parent's copy is untouched
