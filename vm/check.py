"""Guest-side checks of `make vm-test` (run by vm/guest.sh on the cgroup-v2 guest, as root).

``probe LAYOUT``: dlgrade's own ``make_cgroups`` in the cgroup this process runs in (the layout:
a systemd service, a delegated scope, a leaf below one), then the kernel is made to show each
limit: a memory hog is OOM-killed at memory.max, a fork loop stops at pids.max, a busy loop gets
the cpu.max share, cgroup.kill kills, the cgroup is removed. One line per guarantee.

``batch LAYOUT OUT ARGS...``: runs ``dlgrade batch ARGS`` while a watcher reads every sandbox
cgroup's memory.max, pids.max and cpu.max from the kernel, then compares each learner's
results.json ``isolation.limits`` with what the kernel had: each limit claimed must be in the
kernel's files, and each one not claimed must be said to be missing.

``reload LAYOUT``: issue 24's case 3. In a plain service (no delegation, no re-execution), cpu is
enabled by hand down to the service's cgroup, a notebook is graded whose last function sleeps, and
``systemctl daemon-reload`` runs while it sleeps: systemd takes cpu back from the cgroups it did not
delegate. The report must then not claim the CPU quota for that child, and must say why.

Lines look like ``[service] memory.max enforced: PASS (...)``; vm/run.sh prints them.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
MB = 1024 * 1024
SANDBOX = re.compile(r"dlgrade-\d+-[0-9a-f]{12}")  # cgroups.py's names (not dlgrade-grader, not unit names)


def line(layout: str, guarantee: str, ok: bool | None, detail: str = "") -> None:
    verdict = "PASS" if ok else ("SKIP" if ok is None else "FAIL")
    print(f"[{layout}] {guarantee}: {verdict}" + (f" ({detail})" if detail else ""), flush=True)


def own_cgroup() -> Path:
    for text in Path("/proc/self/cgroup").read_text().splitlines():
        if text.startswith("0::"):
            return ROOT / text[3:].lstrip("/")
    raise SystemExit("no 0:: line in /proc/self/cgroup")


def in_container() -> bool:
    """A private cgroup namespace (Docker's default on v2): ``0::/`` and a root that has cgroup.type."""
    return own_cgroup() == ROOT and (ROOT / "cgroup.type").exists()


def mount_top() -> str:
    """/proc/self/mountinfo's root field for /sys/fs/cgroup: the cgroup its top shows ("/../.." when a
    hierarchy from outside this cgroup namespace is mounted there)."""
    top = "/"
    for text in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = text.split()
        if len(fields) > 4 and fields[4] == str(ROOT) and " - cgroup2 " in text:
            top = fields[3]
    return top


def cgroup_mount() -> str:
    """The options of /sys/fs/cgroup's mount ("ro,nosuid,..." under Docker's default)."""
    for text in Path("/proc/mounts").read_text().splitlines():
        parts = text.split()
        if len(parts) > 3 and parts[1] == str(ROOT):
            return parts[3]
    return ""


CONTAINER_FILES = ("memory.max", "pids.max", "cpu.max")
# /proc/<pid>/limits rows dlgrade's prlimit sets, and the report's words for them (learner.isolation_report).
RLIMITS = {
    "Max address space": ("rlimit address space", "MB"),
    "Max cpu time": ("rlimit cpu", "s"),
    "Max file size": ("rlimit file size", "MB"),
    "Max processes": ("rlimit processes", ""),
}


def learner_rlimits() -> dict:
    """{pid: {row: soft limit}} of every process with a finite RLIMIT_AS (dlgrade's sandboxes: the
    grader itself has none), with its uid."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            rows = (proc / "limits").read_text().splitlines()
            uid = next(x.split()[1] for x in (proc / "status").read_text().splitlines() if x.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        values = {}
        for row in rows:
            for name in RLIMITS:
                if row.startswith(name):
                    values[name] = row[len(name) :].split()[0]
        if values.get("Max address space", "unlimited") != "unlimited":
            values["uid"] = uid
            found[proc.name] = values
    return found


def words(path: Path) -> str:
    try:
        return " ".join(path.read_text().split())
    except OSError as exc:
        return f"<{exc.strerror}>"


def describe(layout: str) -> None:
    own = own_cgroup()
    print(f"[{layout}] grader's cgroup: /{own.relative_to(ROOT)}", flush=True)
    chain, here = [], own
    while True:
        chain.append(here)
        if here == ROOT:
            break
        here = here.parent
    for path in reversed(chain):
        name = "/" + str(path.relative_to(ROOT)) if path != ROOT else "/"
        print(
            f"[{layout}]   {name}: controllers [{words(path / 'cgroup.controllers')}] "
            f"subtree_control [{words(path / 'cgroup.subtree_control')}]",
            flush=True,
        )


def in_cgroup(path: Path):
    def enter() -> None:
        (path / "cgroup.procs").write_text(str(os.getpid()))

    return enter


MEMORY_HOG = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))\n"
FORK_LOOP = """
import os, sys, time
count = 0
while count < 2000:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    count += 1
print(count, flush=True)
time.sleep(60)
"""
BUSY = "import time\nend = time.monotonic() + 3\nwhile time.monotonic() < end:\n    pass\n"


def probe(layout: str) -> int:
    from autograder.sandbox import cgroup_v2, cgroups
    from autograder.sandbox.isolation import Limits

    # What `dlgrade batch` and `dlgrade grade` do first: on a default systemd host, re-execute in a
    # delegated scope (no-op where this cgroup already has every controller, and the second time).
    reexec = getattr(cgroup_v2, "reexec_in_scope", None)  # (older checkouts have none: they run here)
    if reexec is not None:
        reexec([sys.executable, os.path.abspath(__file__), "probe", layout])
    describe(layout)
    version = cgroups.cgroup_version()
    line(layout, "cgroup v2 used by dlgrade", version == 2, f"cgroup_version() = {version}")
    if version != 2:
        return 0
    host = cgroups.v2_host()
    print(f"[{layout}] sandbox parent: {host.parent}; held: {' '.join(host.held) or 'none'}", flush=True)
    limits = Limits(memory_mb=64, address_space_mb=0, cpu_seconds=60, processes=16, cpus=0.5)
    made = cgroups.make_cgroups(limits)
    for entry in made.held():
        print(f"[{layout}] report: {entry}", flush=True)
    if in_container():
        container_limits_line(layout, list(made.held()))
    if not made.paths:
        line(layout, "sandbox cgroup made", False, "; ".join(made.notes))
        return 0
    path = Path(made.paths[0])
    held = set(host.held)
    python = sys.executable

    # pids.max: a fork loop stops at it.
    if "pids" in held:
        proc = subprocess.Popen(
            [python, "-c", FORK_LOOP], preexec_fn=in_cgroup(path), stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        forked = proc.stdout.readline().strip()
        peak = words(path / "pids.current")
        maximum = words(path / "pids.max")
        ok = forked.isdigit() and int(forked) < 2000 and peak == maximum
        line(layout, "pids.max enforced", ok, f"pids.max {maximum}, pids.current {peak}, forks before EAGAIN {forked}")
        # cgroup.kill: the whole fork loop goes at once.
        start = time.monotonic()
        made.kill()
        proc.wait(timeout=30)
        while "populated 1" in words(path / "cgroup.events") and time.monotonic() - start < 20:
            time.sleep(0.05)
        left = words(path / "cgroup.procs")
        line(
            layout,
            "cgroup.kill kills the sandbox",
            left == "",
            f"{maximum} processes gone in {time.monotonic() - start:.1f} s" if not left else f"left: [{left[:200]}]",
        )
    else:
        line(layout, "pids.max enforced", False, f"pids not in {host.parent}/cgroup.subtree_control")

    # cpu.max: a busy loop gets half a CPU (the limit here is 0.5 CPU: the guest has one CPU).
    if "cpu" in held:
        start = time.monotonic()
        proc = subprocess.Popen([python, "-c", BUSY], preexec_fn=in_cgroup(path))
        _, _, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        share = (usage.ru_utime + usage.ru_stime) / wall
        stat = dict(x.split() for x in (path / "cpu.stat").read_text().splitlines())
        ok = share < 0.7 and int(stat.get("nr_throttled", 0)) > 0
        line(
            layout,
            "cpu.max enforced",
            ok,
            f"cpu.max {words(path / 'cpu.max')}, busy loop got {share:.2f} CPU, nr_throttled {stat.get('nr_throttled')}",
        )
    else:
        line(layout, "cpu.max enforced", False, f"cpu not in {host.parent}/cgroup.subtree_control")

    # memory.max: a hog is OOM-killed there (no RLIMIT_AS here: the cgroup alone must stop it).
    if "memory" in held:
        run = subprocess.run([python, "-c", MEMORY_HOG], preexec_fn=in_cgroup(path), capture_output=True, timeout=120)
        events = dict(x.split() for x in (path / "memory.events").read_text().splitlines())
        ok = run.returncode == -signal.SIGKILL and int(events.get("oom_kill", 0)) >= 1
        line(
            layout,
            "memory.max enforced",
            ok,
            f"memory.max {words(path / 'memory.max')}, hog exit {run.returncode}, memory.events oom_kill {events.get('oom_kill')}",
        )
        # systemd stops a unit (a service or a scope) when the kernel OOM-kills a process anywhere in its
        # subtree (OOMPolicy=stop, the default): only a grader still alive here prints this line.
        time.sleep(3)
        line(layout, "grader survives a learner's OOM kill", True, "still running 3 s after it")
    else:
        line(layout, "memory.max enforced", False, f"memory not in {host.parent}/cgroup.subtree_control")

    made.remove()
    line(layout, "sandbox cgroup removed", not path.exists(), str(path))
    return 0


def snapshot(seen: dict, stop: threading.Event, extra: dict | None = None) -> None:
    """Every 50 ms: each dlgrade sandbox cgroup with a process in it, and its limit files.

    ``extra`` (in a container): also each learner process's rlimits (/proc/<pid>/limits) and, while
    one runs, the namespace root's memory.max, pids.max, cpu.max (the container's own limits)."""
    while not stop.is_set():
        if extra is not None:
            found = learner_rlimits()
            if found:
                now = time.clock_gettime(time.CLOCK_BOOTTIME)  # /proc/uptime's clock: the guest's watcher uses it
                window = extra.setdefault("window", [now, now])
                window[1] = now
                extra.setdefault("rlimits", {}).update(found)
                for key in CONTAINER_FILES:
                    extra.setdefault("root", {}).setdefault(key, set()).add(words(ROOT / key))
        for dirpath, dirnames, _ in os.walk(ROOT):
            for name in dirnames:
                if not SANDBOX.fullmatch(name):
                    continue
                path = Path(dirpath, name)
                procs = words(path / "cgroup.procs")
                if not procs or procs.startswith("<"):  # empty, or removed since the walk listed it
                    continue
                files = {}
                for key in ("memory.max", "pids.max", "cpu.max"):
                    value = words(path / key)
                    files[key] = value if not value.startswith("<") else None  # None: no such file (controller)
                if path.is_dir():  # still there: a missing file is the kernel's, not a removal's
                    seen.setdefault(str(path), {}).update(files)
            dirnames[:] = [d for d in dirnames if not SANDBOX.fullmatch(d)]
        stop.wait(0.05)


def batch(layout: str, out: str, args: list) -> int:
    describe(layout)
    bound = mount_top().startswith("/..")  # the guest's whole hierarchy bind-mounted in
    container = in_container() or bound
    kind = "bind" if bound else ("ro" if cgroup_mount().split(",")[0] == "ro" else "rw")
    read_only = container and kind != "rw"  # no sandbox cgroups can be made below the container's
    if container:
        line(
            layout,
            "a container: private cgroup namespace, "
            + {
                "ro": "/sys/fs/cgroup read-only",
                "rw": "/sys/fs/cgroup writable",
                "bind": "the guest's /sys/fs/cgroup bind-mounted",
            }[kind],
            True,
            f"0::/, mountinfo top {mount_top()}, {ROOT}/cgroup.type {words(ROOT / 'cgroup.type')}, "
            f"mount {cgroup_mount()}, " + ", ".join(f"{key} {words(ROOT / key)}" for key in CONTAINER_FILES),
        )
    seen: dict = {}
    extra: dict | None = {} if container else None
    stop = threading.Event()
    watcher = threading.Thread(target=snapshot, args=(seen, stop, extra), daemon=True)
    watcher.start()
    start = time.monotonic()
    run = subprocess.run(["dlgrade", "batch", *args, "--out", out], capture_output=True, text=True)
    took = time.monotonic() - start
    stop.set()
    watcher.join()
    Path(out, "dlgrade-batch.log").write_text(run.stdout + run.stderr)
    results = sorted(Path(out).glob("learners/*/*/results.json"))
    scores = []
    for result in results:
        data = json.loads(result.read_text())
        scores.append(f"{result.parent.parent.name} {data.get('score')}/{data.get('max_score')}")
    line(
        layout,
        "graded batch",
        run.returncode == 0 and bool(results),
        f"exit {run.returncode}, {took:.0f} s, " + (", ".join(scores) or run.stderr.strip()[-300:]),
    )
    for result in results[:1]:
        data = json.loads(result.read_text())
        print(f"[{layout}] {result}: grader_error {data.get('grader_error')!r}, notes {data.get('notes')!r}"[:2000])
    for path, files in sorted(seen.items()):
        print(f"[{layout}] kernel, while a learner ran: {path}: " + ", ".join(f"{k} {v}" for k, v in files.items()))
    if not results:
        return 0
    limits = json.loads(results[0].read_text()).get("isolation", {}).get("limits", [])
    for entry in limits:
        print(f"[{layout}] results.json isolation.limits: {entry}", flush=True)
    snapshots = list(seen.values())
    wanted = {
        "memory": ("memory.max", "memory.max"),
        "pids": ("pids.max", "pids.max"),
        "cpu": ("cpu.max", "cpu.max"),
    }
    all_match = True
    if container:
        assert extra is not None
        all_match = container_lines(layout, limits, extra, snapshots, kind)
        Path(out, "container-kernel.json").write_text(
            json.dumps(
                {
                    "window": extra.get("window"),
                    "bind": bound,
                    **{key: sorted(values) for key, values in extra.get("root", {}).items()},
                }
            )
        )
    for controller, (key, name) in wanted.items():
        if read_only:
            break  # no sandbox cgroups: container_lines said what the report claims instead
        claims = [e for e in limits if e.startswith(f"cgroup v2 {controller} ")]
        missing = [e for e in limits if e.startswith("not enforced") and controller in e.split(":")[1]]
        kernel = sorted({s.get(key) for s in snapshots})
        if claims:
            w = claims[0].split()
            if controller == "memory":
                expect = str(int(w[3]) * MB)
            elif controller == "pids":
                expect = str(int(w[3]) + int(w[5]))
            else:
                expect = f"{int(float(w[3]) * 100_000)} 100000"
            ok = bool(snapshots) and all(s.get(key) == expect for s in snapshots)
            line(layout, f"{name} set, report = kernel", ok, f"report '{claims[0]}', kernel {kernel}")
        else:
            unset = all(s.get(key) in (None, "max", "max 100000") for s in snapshots)
            line(
                layout,
                f"{name} set, report = kernel",
                False,
                f"not set; the report says so: {bool(missing) and unset}; kernel {kernel}; "
                + (missing[0][:200] if missing else "no note"),
            )
            ok = bool(missing) and unset
        all_match = all_match and ok
    line(
        layout,
        "isolation.limits = the kernel's files",
        all_match,
        f"{len(snapshots)} sandbox cgroup(s) seen"
        + (f"; the container's cgroup and {len(extra.get('rlimits', {}))} learner processes' limits" if extra else ""),
    )
    return 0


def stated(limits: list, key: str) -> str | None:
    """The value of the report's "container KEY VALUE (where, ...)" entry."""
    for entry in limits:
        if entry.startswith(f"container {key} "):
            return " ".join(entry.split(" (")[0].split()[2:])
    return None


def container_limits_line(layout: str, report: list) -> None:
    """The report's container limits against the namespace root's files, read now."""
    values = {key: stated(report, key) for key in CONTAINER_FILES}
    kernel = {key: words(ROOT / key) for key in CONTAINER_FILES}
    line(
        layout,
        "container limits stated = the namespace root's files",
        values == kernel,
        f"report {values}, kernel {kernel}",
    )


def amount(key: str, value: str) -> float:
    """A limit file's value as a number (bytes, processes, CPUs); max is infinite."""
    words = value.split()
    if not words or words[0] == "max":
        return float("inf")
    return int(words[0]) / int(words[1]) if key == "cpu.max" else int(words[0])


def container_lines(layout: str, limits: list, extra: dict, sandboxes: list, kind: str) -> bool:
    """In a container: what the report claims against the kernel's files (the namespace root's, and
    each learner process's /proc/<pid>/limits). True when every line is PASS.

    ``kind``: ro (Docker's default mount), rw (--privileged), bind (the guest's whole hierarchy
    bind-mounted over the container's: the container's own cgroup is not where /proc/self/cgroup says)."""
    ok_all = True
    read_only = kind != "rw"
    if read_only:
        claims = [e for e in limits if e.startswith("cgroup v2 ")]
        ok = not claims and not sandboxes
        line(
            layout,
            "no per-sandbox cgroup limit claimed",
            ok,
            f"claims {claims}, sandbox cgroups seen {len(sandboxes)}",
        )
        notes = [e for e in limits if e.startswith("not enforced: cgroup v2 memory, pids, cpu")]
        said = bool(notes) and "rlimit" in notes[0] and ("mountinfo" if kind == "bind" else "container") in notes[0]
        line(
            layout,
            "the report says why, what to do and what holds instead",
            said,
            notes[0][:400] if notes else "no note",
        )
        ok_all = ok and said
    root = extra.get("root", {})
    if kind == "bind":  # the mount's top is the guest's root: no container limit there to state
        stated_any = [e for e in limits if e.startswith("container ")]
        line(layout, "no container limit stated, none at the mount's top", not stated_any, f"{stated_any}")
        ok_all = ok_all and not stated_any
    for key in CONTAINER_FILES if kind != "bind" else ():
        value = stated(limits, key)
        kernel = sorted(root.get(key, set()))
        ok = value is not None and kernel == [value]
        line(
            layout,
            f"container {key} stated, report = kernel",
            ok,
            f"report {value!r}, kernel (the namespace root's {key} while a learner ran) {kernel}",
        )
        ok_all = ok_all and ok
    if not read_only:
        # Each sandbox's own limit is set (the lines below), and the kernel applies the lowest on the path
        # up: the report's container entry must say "this one binds" exactly where the container's is lower.
        said, truth = [], []
        for key in CONTAINER_FILES:
            entry = next((e for e in limits if e.startswith(f"container {key} ")), "")
            own = sorted({s.get(key) for s in sandboxes})
            lower = bool(own) and own[0] is not None and amount(key, stated(limits, key) or "max") < amount(key, own[0])
            said.append(f"{key} {'binds' if 'this one binds' in entry else '-'}")
            truth.append(f"{key} {'binds' if lower else '-'} (sandbox {own}, container {sorted(root.get(key, set()))})")
        ok = [x.split()[1] for x in said] == [x.split()[1] for x in truth]
        line(layout, "the report says which container limit binds", ok, f"report {said}; kernel {truth}")
        ok_all = ok_all and ok
    # The rlimits the report lists, against each learner process's /proc/<pid>/limits.
    processes = extra.get("rlimits", {})
    for row, (label, unit) in RLIMITS.items():
        entries = [e for e in limits if e.startswith(label + " ")]
        expect = None
        if entries:
            number = int(entries[0].split()[-2] if unit else entries[0].split()[-1])
            expect = str(number * MB if unit == "MB" else number)
        kernel = sorted({values.get(row) for values in processes.values()})
        ok = expect is not None and kernel == [expect]
        uids = sorted({values.get("uid") for values in processes.values()})
        line(
            layout,
            f"{label} stated, report = kernel",
            ok,
            f"report {entries[0] if entries else None!r}, kernel /proc/<pid>/limits of {len(processes)} "
            f"learner process(es) (uid {', '.join(uids)}) {kernel}",
        )
        ok_all = ok_all and ok
    return ok_all


def probe_read_only_container(layout: str) -> int:
    """Docker's default: no sandbox cgroups (the mount is read-only); the container's own limits,
    stated in the report, are the kernel's files and the kernel enforces them on a learner."""
    from autograder.sandbox import cgroups
    from autograder.sandbox.isolation import Limits

    describe(layout)
    version = cgroups.cgroup_version()
    limits = Limits(memory_mb=64, address_space_mb=0, cpu_seconds=60, processes=16, cpus=0.5)
    made = cgroups.make_cgroups(limits)
    report = list(made.held())
    for entry in report:
        print(f"[{layout}] report: {entry}", flush=True)
    line(
        layout,
        "no sandbox cgroup made or claimed",
        version is None and not made.paths and not made.enforced,
        f"cgroup_version() = {version}, paths {made.paths}, enforced {made.enforced}",
    )
    container_limits_line(layout, report)
    python = sys.executable

    def count(file: str, key: str) -> int:
        return int(dict(x.split() for x in (ROOT / file).read_text().splitlines()).get(key, 0))

    # pids.max of the container: a fork loop stops there.
    proc = subprocess.Popen([python, "-c", FORK_LOOP], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    forked = proc.stdout.readline().strip()
    peak, maximum = words(ROOT / "pids.current"), words(ROOT / "pids.max")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    line(
        layout,
        "container pids.max enforced",
        forked.isdigit() and int(forked) < 2000 and peak == maximum,
        f"pids.max {maximum}, pids.current {peak}, forks before EAGAIN {forked}",
    )
    # cpu.max of the container: a busy loop gets its share.
    throttled = count("cpu.stat", "nr_throttled")
    start = time.monotonic()
    proc = subprocess.Popen([python, "-c", BUSY])
    _, _, usage = os.wait4(proc.pid, 0)
    share = (usage.ru_utime + usage.ru_stime) / (time.monotonic() - start)
    quota, period = (int(x) for x in words(ROOT / "cpu.max").split())
    after = count("cpu.stat", "nr_throttled")
    line(
        layout,
        "container cpu.max enforced",
        share < quota / period + 0.1 and after > throttled,
        f"cpu.max {quota} {period}, busy loop got {share:.2f} CPU, nr_throttled +{after - throttled}",
    )
    # memory.max of the container: a hog (no RLIMIT_AS) is OOM-killed there.
    kills = count("memory.events", "oom_kill")
    run = subprocess.run([python, "-c", MEMORY_HOG], capture_output=True, timeout=300)
    after = count("memory.events", "oom_kill")
    line(
        layout,
        "container memory.max enforced",
        run.returncode == -signal.SIGKILL and after > kills,
        f"memory.max {words(ROOT / 'memory.max')}, hog exit {run.returncode}, memory.events oom_kill +{after - kills}",
    )
    time.sleep(3)
    line(layout, "grader survives a learner's OOM kill", True, "still running 3 s after it")
    return 0


def probe_bound(layout: str) -> int:
    """The guest's hierarchy bind-mounted into a container with its own cgroup namespace: dlgrade must
    make no cgroup (the mount's top is outside the container's cgroup) and claim none."""
    from autograder.sandbox import cgroups
    from autograder.sandbox.isolation import Limits

    version = cgroups.cgroup_version()
    made = cgroups.make_cgroups(Limits(memory_mb=64, address_space_mb=0, cpu_seconds=60, processes=16, cpus=0.5))
    for entry in made.held():
        print(f"[{layout}] report: {entry}", flush=True)
    line(
        layout,
        "no sandbox cgroup made or claimed",
        version is None and not made.paths and not made.enforced,
        f"cgroup_version() = {version}, paths {made.paths}, enforced {made.enforced}, mountinfo top {mount_top()}",
    )
    left = sorted(p.name for p in ROOT.iterdir() if SANDBOX.fullmatch(p.name))
    line(layout, "nothing made at the mount's top, the guest's root cgroup", not left, f"{ROOT}: {left}")
    return 0


def outside(layout: str, watched: str, inside: str, expect: str) -> int:
    """On the guest, outside the container: the container's cgroup (docker-<id>.scope) as the host
    sees it while a learner ran (the window check.py batch saw one in, same clock), against what
    `docker run` asked (EXPECT: "memory.max|pids.max|cpu.max") and against the namespace root's files
    read inside (check.py batch's container-kernel.json)."""
    seen = json.loads(Path(inside).read_text()) if Path(inside).exists() else {}
    start, end = seen.get("window") or (0.0, 0.0)
    bound = seen.pop("bind", False)  # inside, the mount shows the guest's root, not the container's cgroup
    rows: dict = {}
    for text in Path(watched).read_text().splitlines() if Path(watched).exists() else []:
        when, path, values = text.split(" ", 2)
        if start <= float(when) <= end:
            rows.setdefault(path, set()).add(values)
    if len(rows) != 1:
        line(
            layout,
            "docker run's limits on the container's cgroup, seen outside",
            False,
            f"cgroups seen while a learner ran ({start:.1f}-{end:.1f} s after boot): {sorted(rows)}",
        )
        return 0
    [(path, read)] = rows.items()
    values = sorted(read)[0] if len(read) == 1 else " / ".join(sorted(read))  # changed while it ran: no match
    got = dict(zip(CONTAINER_FILES, (values.split("|") + ["", "", ""])[:3]))
    want = dict(zip(CONTAINER_FILES, expect.split("|")))
    line(
        layout,
        "docker run's limits on the container's cgroup, seen outside",
        got == want,
        f"/{Path(path).relative_to(ROOT)} while a learner ran ({start:.1f}-{end:.1f} s after boot): "
        + ", ".join(f"{k} {v}" for k, v in got.items())
        + f"; asked {want}",
    )
    if bound:
        return 0
    ok = all(seen.get(key) == [got[key]] for key in CONTAINER_FILES)
    line(
        layout,
        "the namespace root inside is that cgroup",
        ok,
        "inside " + ", ".join(f"{key} {seen.get(key)}" for key in CONTAINER_FILES),
    )
    return 0


SLEEPY_HE = """
def initialize_parameters_he(layers_dims):
    import time
    import numpy as np
    if not getattr(initialize_parameters_he, "slept", False):
        initialize_parameters_he.slept = True
        time.sleep(6)
    np.random.seed(3)
    parameters = {}
    L = len(layers_dims) - 1
    for l in range(1, L + 1):
        parameters["W" + str(l)] = np.random.randn(layers_dims[l], layers_dims[l - 1]) * np.sqrt(2.0 / layers_dims[l - 1])
        parameters["b" + str(l)] = np.zeros((layers_dims[l], 1))
    return parameters
"""


def reload(layout: str) -> int:
    """Case 3: cpu taken back by a daemon-reload while a learner runs (see the module's docstring)."""
    sys.path.insert(0, "/opt/dlgrade")
    from autograder.grading.grade import grade_notebook
    from tests.nbtools import with_function, write

    own = own_cgroup()
    # By hand, as a course team would: cpu enabled from the root down to the service's slice.
    for folder in [p for p in reversed(own.parents) if p == ROOT or ROOT in p.parents]:
        try:
            (folder / "cgroup.subtree_control").write_text("+cpu")
        except OSError as exc:
            print(f"[{layout}] could not enable cpu in {folder}: {exc}")
    describe(layout)
    notebook = write(with_function("initialization", "initialize_parameters_he", SLEEPY_HE), Path("/tmp/sleepy.ipynb"))
    found: dict = {}
    grading = threading.Thread(target=lambda: found.update(result=grade_notebook(notebook, "initialization")))
    grading.start()
    seen_cpu = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and grading.is_alive():  # the sleeping child's cgroup, cpu.max set
        for path in own.rglob("cpu.max"):
            if SANDBOX.fullmatch(path.parent.name) and words(path.parent / "cgroup.procs").strip("<>"):
                seen_cpu = words(path)
        if seen_cpu and seen_cpu != "max 100000":
            break
        time.sleep(0.05)
    time.sleep(1.0)  # well inside the 6 s sleep of initialize_parameters_he
    reloaded = subprocess.run(["systemctl", "daemon-reload"], capture_output=True, text=True)
    after = words(own / "cgroup.subtree_control")  # the sandboxes' parent: the service's own cgroup
    grading.join(120)
    result = found.get("result")
    limits = list((result or {}).get("isolation", {}).get("limits", []))
    for entry in limits:
        print(f"[{layout}] results.json isolation.limits: {entry}", flush=True)
    claims = [e for e in limits if e.startswith("cgroup v2 cpu ")]
    said = [e for e in limits if e.startswith("not enforced throughout: cgroup v2 cpu")]
    taken = "cpu" not in after.split()
    line(
        layout,
        "cpu taken back by daemon-reload during a grade: the report says so",
        bool(result) and taken and not claims and bool(said),
        f"cpu.max while the learner ran {seen_cpu!r}; daemon-reload exit {reloaded.returncode}; "
        f"subtree_control after [{after}]; claims {claims}; "
        + (said[0][:220] if said else "no 'not enforced throughout' note"),
    )
    return 0


def main() -> int:
    mode, layout, *rest = sys.argv[1:]
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if mode == "probe":
        if in_container() and cgroup_mount().split(",")[0] == "ro":
            return probe_read_only_container(layout)
        if mount_top().startswith("/.."):
            return probe_bound(layout)
        return probe(layout)
    if mode == "outside":
        return outside(layout, *rest)
    if mode == "batch":
        return batch(layout, rest[0], rest[1:])
    if mode == "reload":
        return reload(layout)
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main())
