"""The cgroup limits in the isolation report, per host kind, against the kernel's own files.

This machine is cgroup v1: the v1 host test uses the kernel's hierarchy (as
root). The v2 hosts are tmp dirs run by ``FakeKernel``, which does what the
kernel does with the files dlgrade touches: mkdir gives a child the
controllers its parent's subtree_control lists (cgroup.controllers and their
interface files), subtree_control accepts only what cgroup.controllers lists
and refuses to enable anything in a non-root cgroup with processes ("no
internal processes"), a write to cgroup.procs moves a process, and removing a
controller takes its files away from the children. What it cannot prove is
that a real v2 kernel enforces the limits (``make vm-test``).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from autograder.sandbox import cgroup_v2, cgroups, isolation
from tests.test_cgroups import needs_v1_host

MB = 1024 * 1024
LIMITS = isolation.Limits(memory_mb=1024, address_space_mb=4096, cpu_seconds=60, processes=300, cpus=1.5)
INTERFACE = {
    "memory": {"memory.max": "max", "memory.swap.max": "max", "memory.events": "max 0\noom_kill 0\n"},
    "pids": {"pids.max": "max"},
    "cpu": {"cpu.max": "max 100000"},
}
ME = str(os.getpid())


class FakeKernel:
    def __init__(self, root: Path, controllers: str = "cpuset cpu io memory hugetlb pids rdma misc"):
        self.root = root
        self.read_only = False
        root.mkdir()
        for name, text in {"cgroup.controllers": controllers, "cgroup.subtree_control": "", "cgroup.procs": ""}.items():
            (root / name).write_text(text + "\n" if text else "")

    # ------------------------------------------------------------ building the host
    def cgroup(self, relative: str, subtree: str = "", procs: tuple = ()) -> Path:
        path = self.root
        for part in relative.strip("/").split("/"):
            if not (path / part).exists():
                self.mkdir(path / part)
            path = path / part
        if subtree:
            (path / "cgroup.subtree_control").write_text(subtree + "\n")
        (path / "cgroup.procs").write_text("".join(f"{p}\n" for p in procs))
        return path

    @staticmethod
    def words(path: Path) -> list:
        return path.read_text().split()

    # ------------------------------------------------------------ what the kernel does
    def mkdir(self, path: Path) -> None:
        if self.read_only:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        os.mkdir(path)
        enabled = self.words(path.parent / "cgroup.subtree_control")
        for name, text in {
            "cgroup.controllers": " ".join(enabled),
            "cgroup.subtree_control": "",
            "cgroup.procs": "",
            "cgroup.type": "domain",
            "cgroup.kill": "",
        }.items():
            (path / name).write_text(text + "\n" if text else "")
        for controller in enabled:
            for name, text in INTERFACE.get(controller, {}).items():
                (path / name).write_text(text + "\n")

    def rmdir(self, path: Path) -> None:
        if self.words(path / "cgroup.procs") or any(c.is_dir() for c in path.iterdir()):
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))
        shutil.rmtree(path)

    def write(self, path: Path, text: str) -> None:
        if self.read_only:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        cgroup = path.parent
        if path.name == "cgroup.subtree_control":
            enabled = self.words(path)
            for token in text.split():
                sign, controller = token[0], token[1:]
                if controller not in self.words(cgroup / "cgroup.controllers"):
                    raise OSError(errno.ENOENT, "No such file or directory", str(path))
                if sign == "+" and (cgroup / "cgroup.type").exists() and self.words(cgroup / "cgroup.procs"):
                    raise OSError(errno.EBUSY, "Device or resource busy", str(path))
                children = [c for c in cgroup.iterdir() if c.is_dir()]
                if sign == "+" and controller not in enabled:
                    enabled.append(controller)
                    for child in children:
                        (child / "cgroup.controllers").write_text(
                            " ".join(self.words(child / "cgroup.controllers") + [controller])
                        )
                        for name, value in INTERFACE.get(controller, {}).items():
                            (child / name).write_text(value + "\n")
                elif sign == "-" and controller in enabled:
                    enabled.remove(controller)
                    for child in children:
                        left = [c for c in self.words(child / "cgroup.controllers") if c != controller]
                        (child / "cgroup.controllers").write_text(" ".join(left))
                        for name in INTERFACE.get(controller, {}):
                            (child / name).unlink(missing_ok=True)
            path.write_text(" ".join(enabled) + "\n")
        elif path.name == "cgroup.procs":
            pid = text.strip()
            if (cgroup / "cgroup.type").exists() and self.words(cgroup / "cgroup.subtree_control"):
                raise OSError(errno.EBUSY, "Device or resource busy", str(path))
            for procs in self.root.rglob("cgroup.procs"):
                if pid in self.words(procs):
                    procs.write_text("".join(f"{p}\n" for p in self.words(procs) if p != pid))
            path.write_text("".join(f"{p}\n" for p in [*self.words(path), pid]))
        else:
            path.write_text(text + "\n")


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A fake v2 kernel at tmp/cgroup; ``host.run_in(cgroup)`` makes /proc/self/cgroup say we are there."""
    kernel = FakeKernel(tmp_path / "cgroup")
    proc_self = tmp_path / "proc-self-cgroup"

    def run_in(relative: str) -> None:
        proc_self.write_text(f"0::/{relative.strip('/')}\n")

    def mounted(top: str, at: Path | None = None) -> None:
        """/proc/self/mountinfo: a cgroup2 mount at ``at`` (the fake root) whose top is the cgroup ``top``."""
        mountinfo.write_text(
            f"157 147 0:21 {top} {at or kernel.root} rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
        )

    mountinfo = tmp_path / "proc-self-mountinfo"
    mounted("/")
    kernel.run_in = run_in  # type: ignore[attr-defined]
    kernel.mounted = mounted  # type: ignore[attr-defined]
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", kernel.root)
    monkeypatch.setattr(cgroup_v2, "PROC_SELF_CGROUP", proc_self)
    monkeypatch.setattr(cgroup_v2, "PROC_SELF_MOUNTINFO", mountinfo)
    monkeypatch.setattr(cgroup_v2, "write", kernel.write)
    monkeypatch.setattr(cgroup_v2, "mkdir", kernel.mkdir)
    monkeypatch.setattr(cgroup_v2, "rmdir", kernel.rmdir)
    monkeypatch.delenv("DLGRADE_NO_CGROUPS", raising=False)
    caches = (cgroups._cgroup_version, cgroups.v2_host, cgroups.remove_stale_cgroups)
    for cached in caches:
        cached.cache_clear()
    yield kernel
    for cached in caches:
        cached.cache_clear()


def assert_report_is_the_kernels(report: tuple, made: cgroups.Cgroups, root: Path) -> None:
    """Each limit claimed is in the kernel's files; each wanted one not claimed is said to be missing."""
    sandbox = Path(made.paths[0]) if made.paths else None
    claimed = set()
    for entry in report:
        words = entry.split()
        if entry.startswith("cgroup v2 "):
            assert sandbox is not None
            controller = words[2]
            claimed.add(controller)
            assert controller in FakeKernel.words(sandbox.parent / "cgroup.subtree_control")
            assert controller in FakeKernel.words(sandbox / "cgroup.controllers")
            if controller == "memory":
                assert int((sandbox / "memory.max").read_text()) == int(words[3]) * MB
            elif controller == "pids":
                assert int((sandbox / "pids.max").read_text()) == int(words[3]) + int(words[5])
            else:
                assert (sandbox / "cpu.max").read_text().split() == [str(int(float(words[3]) * 100_000)), "100000"]
        elif entry.startswith("container "):
            assert (root / words[1]).read_text().strip() == " ".join(words[2:]).split(" (")[0]
        else:
            assert entry.startswith("not enforced")
    for controller in cgroup_v2.WANTED:
        if controller in claimed:
            continue
        assert any(
            e.startswith(("not enforced: cgroup v2 " + controller, "not enforced: cgroup v2 memory, pids, cpu"))
            or e.startswith("not enforced throughout: cgroup v2 " + controller)
            for e in report
        ), (controller, report)
        if sandbox is not None:
            value = sandbox / next(iter(INTERFACE[controller]))
            assert not value.exists() or value.read_text().split()[0] == "max"


def grader_moved_to_leaf(parent: Path) -> bool:
    return FakeKernel.words(parent / "cgroup.procs") == [] and ME in FakeKernel.words(
        parent / cgroup_v2.LEAF / "cgroup.procs"
    )


def test_v2_host_under_systemd_without_cpu_says_so(host):
    """A default systemd host: the root delegates memory and pids only; the grader runs in a service."""
    (host.root / "cgroup.subtree_control").write_text("memory pids\n")
    host.cgroup("system.slice", subtree="memory pids")
    service = host.cgroup("system.slice/dlgrade.service", procs=(ME,))
    host.run_in("system.slice/dlgrade.service")
    assert cgroups.cgroup_version() == 2
    made = cgroups.make_cgroups(LIMITS)
    report = made.held()
    assert Path(made.paths[0]).parent == service and grader_moved_to_leaf(service)
    assert report[:2] == ("cgroup v2 memory 1024 MB", f"cgroup v2 pids 300 + {cgroups.ZYGOTE_PIDS} for the zygote")
    [cpu] = [e for e in report if e.startswith("not enforced: cgroup v2 cpu")]
    assert cpu.startswith(f"not enforced: cgroup v2 cpu: cpu is not in {service}/cgroup.controllers")
    assert "systemd-run --scope -p Delegate=yes" in cpu and f"{service.parent}/cgroup.subtree_control" in cpu
    assert_report_is_the_kernels(report, made, host.root)
    made.remove()


def test_v2_delegated_leaf_moves_the_grader_and_gets_every_controller(host):
    """`systemd-run --scope -p Delegate=yes`: the scope holds the grader (and its shell): both move to a leaf."""
    (host.root / "cgroup.subtree_control").write_text("cpu memory pids\n")
    host.cgroup("user.slice", subtree="cpu memory pids")
    scope = host.cgroup("user.slice/run-u7.scope", procs=("4242", ME))
    host.run_in("user.slice/run-u7.scope")
    made = cgroups.make_cgroups(LIMITS)
    report = made.held()
    assert Path(made.paths[0]).parent == scope and grader_moved_to_leaf(scope)
    assert FakeKernel.words(scope / cgroup_v2.LEAF / "cgroup.procs") == ["4242", ME]
    assert set(FakeKernel.words(scope / "cgroup.subtree_control")) == {"cpu", "memory", "pids"}
    assert report == (
        "cgroup v2 memory 1024 MB",
        f"cgroup v2 pids 300 + {cgroups.ZYGOTE_PIDS} for the zygote",
        "cgroup v2 cpu 1.5",
    )
    assert_report_is_the_kernels(report, made, host.root)
    made.remove()


def test_v2_a_grader_already_in_the_leaf_uses_the_cgroup_above(host):
    (host.root / "cgroup.subtree_control").write_text("cpu memory pids\n")
    scope = host.cgroup("run-u8.scope", subtree="cpu memory pids")
    host.cgroup(f"run-u8.scope/{cgroup_v2.LEAF}", procs=(ME,))
    host.run_in(f"run-u8.scope/{cgroup_v2.LEAF}")
    made = cgroups.make_cgroups(LIMITS)
    assert Path(made.paths[0]).parent == scope and len(made.enforced) == 3
    made.remove()


def test_v2_a_leaf_without_controllers_claims_none(host):
    """The issue's case: a delegated leaf whose cgroup.controllers is empty: nothing is claimed, each says why."""
    host.cgroup("user.slice", procs=("1",))  # the cgroup above has processes too: not ours to move
    leaf = host.cgroup("user.slice/leaf.scope", procs=(ME,))
    host.run_in("user.slice/leaf.scope")
    made = cgroups.make_cgroups(LIMITS)
    report = made.held()
    assert Path(made.paths[0]).parent == leaf and made.enforced == []
    assert [e.split(":")[1] for e in report] == [" cgroup v2 memory", " cgroup v2 pids", " cgroup v2 cpu"]
    assert_report_is_the_kernels(report, made, host.root)
    made.remove()


def test_v2_cpu_taken_back_during_the_grade_is_dropped_from_the_report(host):
    (host.root / "cgroup.subtree_control").write_text("cpu memory pids\n")
    scope = host.cgroup("run-u9.scope", procs=(ME,))
    host.run_in("run-u9.scope")
    made = cgroups.make_cgroups(LIMITS)
    assert "cgroup v2 cpu 1.5" in made.held()
    host.write(scope / "cgroup.subtree_control", "-cpu")  # systemctl daemon-reload
    report = made.held()
    assert "cgroup v2 cpu 1.5" not in report and len(made.enforced) == 2
    [note] = [e for e in report if e.startswith("not enforced throughout: cgroup v2 cpu 1.5")]
    assert f"cpu was taken out of {scope}/cgroup.subtree_control during the grade" in note
    assert_report_is_the_kernels(report, made, host.root)
    made.kill()  # the end of the sandbox's life re-reads too: the note stays, cpu is not claimed again
    assert "cgroup v2 cpu 1.5" not in made.held()
    made.remove()


def container(host) -> None:
    """Docker on v2 with its default private cgroup namespace: `0::/`, and a root cgroup that has cgroup.type."""
    for name, value in {
        "cgroup.type": "domain",
        "memory.max": "4294967296",
        "pids.max": "2000",
        "cpu.max": "200000 100000",
    }.items():
        (host.root / name).write_text(value + "\n")
    (host.root / "cgroup.controllers").write_text("cpu io memory pids\n")
    (host.root / "cgroup.procs").write_text(f"1\n{ME}\n")
    host.run_in("/")


CONTAINER_LIMITS = (
    "container memory.max 4294967296",
    "container pids.max 2000",
    "container cpu.max 200000 100000",
)


def test_v2_container_with_a_writable_cgroup_root_delegates_and_states_its_limits(host):
    container(host)
    made = cgroups.make_cgroups(LIMITS)
    report = made.held()
    assert Path(made.paths[0]).parent == host.root and grader_moved_to_leaf(host.root)
    assert report[:3] == (
        "cgroup v2 memory 1024 MB",
        f"cgroup v2 pids 300 + {cgroups.ZYGOTE_PIDS} for the zygote",
        "cgroup v2 cpu 1.5",
    )
    assert [e.split(" (")[0] for e in report[3:]] == list(CONTAINER_LIMITS)
    assert_report_is_the_kernels(report, made, host.root)
    made.remove()


def test_v2_container_tighter_than_a_sandbox_says_which_limit_binds(host):
    """Docker --memory 512m --cpus 0.8 with a writable root: each sandbox's own memory.max (1024 MB) and
    cpu.max (1.5) are set and claimed as the kernel's files say, and the container's entries say that
    theirs is the limit the kernel applies (the lowest on the path); pids (2000 > 428) does not bind."""
    container(host)
    (host.root / "memory.max").write_text(f"{512 * MB}\n")
    (host.root / "cpu.max").write_text("80000 100000\n")
    made = cgroups.make_cgroups(LIMITS)
    report = made.held()
    assert report[:3] == (
        "cgroup v2 memory 1024 MB",
        f"cgroup v2 pids 300 + {cgroups.ZYGOTE_PIDS} for the zygote",
        "cgroup v2 cpu 1.5",
    )
    memory, pids, cpu = report[3:]
    assert memory.startswith(f"container memory.max {512 * MB} (") and memory.endswith(
        f"lower than the sandbox's own memory.max {1024 * MB}: this one binds)"
    )
    assert cpu.startswith("container cpu.max 80000 100000 (") and cpu.endswith(
        "lower than the sandbox's own cpu.max 150000 100000: this one binds)"
    )
    assert pids.startswith("container pids.max 2000 (") and "binds" not in pids
    assert_report_is_the_kernels(report, made, host.root)
    made.remove()


def test_v2_container_with_a_read_only_cgroup_root_states_only_its_limits(host):
    container(host)
    host.read_only = True  # Docker's default mount of /sys/fs/cgroup
    assert cgroups.cgroup_version() is None
    made = cgroups.make_cgroups(LIMITS)
    report = made.held()
    assert made.paths == [] and made.enforced == []
    assert (
        report[0].startswith("not enforced: cgroup v2 memory, pids, cpu: no writable cgroup") and "Docker" in report[0]
    )
    assert "each sandbox has its rlimits only" in report[0]  # what holds instead (learner.py lists them)
    assert not any("binds" in e for e in report)  # no sandbox cgroup to compare with
    assert [e.split(" (")[0] for e in report[1:]] == list(CONTAINER_LIMITS)
    assert_report_is_the_kernels(report, made, host.root)


def test_v2_host_hierarchy_bind_mounted_into_a_private_cgroup_namespace_makes_no_cgroup(host):
    """`docker run --cgroupns private -v /sys/fs/cgroup:/sys/fs/cgroup:rw`: the host's whole hierarchy is
    mounted ("/../.." in mountinfo) while /proc/self/cgroup says `0::/`. Sandboxes made at the mount's top
    would sit outside the container's cgroup, and the kernel refuses to move a process there across the
    namespace (nsdelegate): seen on the real kernel (make vm-test, [container-bind]). Nothing is made or
    claimed, and the report says why and what holds instead."""
    scope = host.cgroup("system.slice/docker-abc.scope", procs=("1", ME))
    host.run_in("/")
    host.mounted("/../..")
    assert cgroups.cgroup_version() is None
    made = cgroups.make_cgroups(LIMITS)
    report = made.held()
    assert made.paths == [] and made.enforced == []
    [note] = report
    assert note.startswith(f"not enforced: cgroup v2 memory, pids, cpu: {host.root} shows the cgroup /../..")
    assert "each sandbox has its rlimits only" in note
    assert [p.name for p in host.root.iterdir() if p.is_dir()] == ["system.slice"]  # nothing made at the top
    assert FakeKernel.words(scope / "cgroup.procs") == ["1", ME] and not (scope / cgroup_v2.LEAF).exists()
    assert_report_is_the_kernels(report, made, host.root)


def test_v2_a_subtree_mounted_is_found_relative_to_its_top(host):
    """A mount of the container's own cgroup (mountinfo's top /system.slice/docker-abc.scope, as with
    --cgroupns=host and that subtree mounted): the grader's cgroup is the mount's top, the container's."""
    host.cgroup("system.slice", subtree="cpu memory pids")
    scope = host.cgroup("system.slice/docker-abc.scope", procs=(ME,))
    host.run_in("/system.slice/docker-abc.scope")
    host.mounted("/system.slice/docker-abc.scope", at=scope)
    assert cgroup_v2.own_cgroup(scope) == scope
    host.run_in("/system.slice/docker-abc.scope/dlgrade-grader")
    assert cgroup_v2.own_cgroup(scope) == scope / cgroup_v2.LEAF
    host.run_in("/system.slice/other.service")  # not below what is mounted there
    assert cgroup_v2.own_cgroup(scope) is None


def test_v2_root_cgroup_of_a_host_needs_no_leaf(host):
    """As root in the real root cgroup (no cgroup.type: the no-internal-processes rule does not apply)."""
    (host.root / "cgroup.procs").write_text(f"1\n{ME}\n")
    host.run_in("/")
    made = cgroups.make_cgroups(LIMITS)
    report = made.held()
    assert not (host.root / cgroup_v2.LEAF).exists() and len(made.enforced) == 3
    assert not any(e.startswith("container") for e in report)
    assert_report_is_the_kernels(report, made, host.root)
    made.remove()


@needs_v1_host
def test_v1_host_report_is_the_kernels():
    made = cgroups.make_cgroups(LIMITS)
    try:
        report = made.held()
        assert report == (
            f"cgroup v1 pids 300 + {cgroups.ZYGOTE_PIDS} for the zygote",
            "cgroup v1 memory 1024 MB",
            "cgroup v1 cpu 1.5",
        )
        by_controller = {Path(p).parent.name: Path(p) for p in made.paths}
        assert int((by_controller["pids"] / "pids.max").read_text()) == 300 + cgroups.ZYGOTE_PIDS
        assert int((by_controller["memory"] / "memory.limit_in_bytes").read_text()) == 1024 * MB
        assert int((by_controller["cpu"] / "cpu.cfs_quota_us").read_text()) == 150_000
        assert int((by_controller["cpu"] / "cpu.cfs_period_us").read_text()) == 100_000
    finally:
        made.remove()


def test_v2_default_systemd_host_reexecutes_in_a_delegated_scope_bound_to_the_service(host, monkeypatch, tmp_path):
    """A service gets memory and pids only: `dlgrade batch` runs itself again in a Delegate=yes scope."""
    (host.root / "cgroup.subtree_control").write_text("memory pids\n")
    host.cgroup("system.slice", subtree="memory pids")
    host.cgroup("system.slice/dlgrade.service", procs=(ME,))
    host.run_in("system.slice/dlgrade.service")
    systemd = tmp_path / "run-systemd-system"
    systemd.mkdir()
    probes = []
    monkeypatch.setattr(cgroup_v2.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cgroup_v2.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(
        cgroup_v2.subprocess, "run", lambda command, **kw: probes.append(command) or type("R", (), {"returncode": 0})
    )
    command = cgroup_v2.scope_command(["dlgrade", "batch"], {}, host.root, systemd)
    assert command == [
        "/usr/bin/systemd-run", "--scope", "--quiet", "--collect", "-p", "Delegate=yes",
        "-p", "BindsTo=dlgrade.service", "-p", "After=dlgrade.service", "--slice=system.slice",
        "--", "dlgrade", "batch",
    ]  # fmt: skip
    assert probes and probes[0][-2:] == ["--", "true"]
    # Once only; never without systemd; never when the cgroup has every controller the root offers.
    assert cgroup_v2.scope_command(["dlgrade"], {cgroup_v2.SCOPED: "1"}, host.root, systemd) is None
    assert cgroup_v2.scope_command(["dlgrade"], {}, host.root, tmp_path / "no-systemd") is None
    (host.root / "system.slice" / "cgroup.controllers").write_text("cpu memory pids\n")
    assert cgroup_v2.scope_command(["dlgrade"], {}, host.root, systemd) is None
