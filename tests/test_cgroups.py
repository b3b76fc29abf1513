"""Sandbox cgroups: the files written on each cgroup version, and the clean-up of stale ones.

This machine has cgroup v1: the v1 tests use the kernel's own hierarchy (as
root); the v2 tests write into a folder laid out like a delegated v2 cgroup
(a tmp dir, not the kernel), so they check what dlgrade writes and reads, not
that a v2 kernel enforces it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.sandbox import cgroup_v2, cgroups, isolation


@pytest.fixture
def fake_v2(tmp_path, monkeypatch):
    root = tmp_path / "cgroup"
    parent = root / "grader.slice"
    parent.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", root)
    monkeypatch.setattr(cgroups, "cgroup_version", lambda: 2)
    monkeypatch.setattr(cgroups, "v2_host", lambda: cgroup_v2.Host(parent, cgroup_v2.WANTED, root=root))
    monkeypatch.setattr(cgroup_v2, "write", lambda path, text: path.write_text(text))  # a plain folder
    cgroups.remove_stale_cgroups.cache_clear()
    yield parent
    cgroups.remove_stale_cgroups.cache_clear()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_v2_limits_are_written_and_reported(fake_v2):
    limits = isolation.Limits(memory_mb=1024, address_space_mb=4096, cpu_seconds=60, processes=300, cpus=1.5)
    made = cgroups.make_cgroups(limits)
    [path] = [Path(p) for p in made.paths]
    assert path.parent == fake_v2 and path.name.startswith(f"dlgrade-{os.getpid()}-")
    assert (path / "memory.max").read_text() == str(1024 * 1024 * 1024)
    assert (path / "memory.swap.max").read_text() == "0"
    assert (path / "pids.max").read_text() == str(300 + cgroups.ZYGOTE_PIDS)
    assert (path / "cpu.max").read_text() == f"150000 {cgroups.CPU_PERIOD_US}"
    assert made.enforced == [
        "cgroup v2 memory 1024 MB",
        f"cgroup v2 pids 300 + {cgroups.ZYGOTE_PIDS} for the zygote",
        "cgroup v2 cpu 1.5",
    ]


def test_v2_memory_events_count_limit_hits_and_oom_kills(tmp_path):
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    assert cgroups.memory_event_count([str(tmp_path)]) == 5
    assert cgroups.memory_events([str(tmp_path)])


def test_v2_kill_writes_cgroup_kill(tmp_path):
    (tmp_path / "cgroup.kill").write_text("")
    (tmp_path / "cgroup.procs").write_text("")
    cgroups.Cgroups([str(tmp_path)], 2).kill()
    assert (tmp_path / "cgroup.kill").read_text() == "1"


def test_stale_cgroups_of_a_dead_grader_are_removed_and_others_kept(fake_v2):
    gone, alive = dead_pid(), os.getpid()
    stale = fake_v2 / f"dlgrade-{gone}-0123456789ab"
    in_use = fake_v2 / f"dlgrade-{alive}-0123456789ab"
    old_style = fake_v2 / "dlgrade-0123456789ab"  # another naming: not ours to judge
    other = fake_v2 / f"someone-{gone}-0123456789ab"
    for folder in (stale, in_use, old_style, other):
        folder.mkdir()
    assert cgroups.remove_stale_cgroups() == 1
    assert not stale.exists() and in_use.exists() and old_style.exists() and other.exists()


HOST_CGROUPS = cgroups.cgroup_version()
needs_v1_host = pytest.mark.skipif(
    HOST_CGROUPS != 1,
    reason="needs writable cgroup v1 hierarchies (root on a v1 host); this host has "
    + (f"cgroup v{HOST_CGROUPS}" if HOST_CGROUPS else "no writable cgroups"),
)


@needs_v1_host
def test_v1_stale_cgroups_are_removed_but_not_one_with_a_process():
    """On the kernel's hierarchy: an empty stale cgroup goes; one still holding a process stays."""
    cgroups.remove_stale_cgroups.cache_clear()
    gone = dead_pid()
    empty = cgroups.CGROUP_ROOT / "pids" / f"dlgrade-{gone}-00000000000a"
    busy = cgroups.CGROUP_ROOT / "pids" / f"dlgrade-{gone}-00000000000b"
    sleeper = None
    try:
        empty.mkdir()
        busy.mkdir()
        sleeper = subprocess.Popen(["sleep", "30"])
        (busy / "cgroup.procs").write_text(str(sleeper.pid))
        cgroups.remove_stale_cgroups()
        assert not empty.exists() and busy.exists()
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait()
        for folder in (empty, busy):
            for _ in range(100):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    import time

                    time.sleep(0.02)
        cgroups.remove_stale_cgroups.cache_clear()
