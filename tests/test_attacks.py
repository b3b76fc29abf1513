"""Attacks on the trust boundary: each a real hostile notebook graded by the real engine.

One test per class of the threat model (issue "Isolation"), each run two ways:

- ``alone``: the attacker is graded with ``grade_notebook``, then two victims
  (the solution, and a stub with one correct function) by the same process,
  so their learners are forked from the zygote the attacker's learner came from;
- ``batch``: a real ``dlgrade batch --workers 1`` grades every attacker, each
  followed by the two victims, in one worker process.

Either way the victims' scores, per-test outputs and feedback.md must be
exactly those of the same victims graded without any attacker.

The strategy is the machine's (bubblewrap here) or ``DLGRADE_SANDBOX``:
tests/test_setpriv_sandbox.py runs this module again under setpriv, with and
without namespaces (``DLGRADE_NO_NAMESPACES=1``: what Docker's seccomp profile
leaves), the way the Docker image runs it.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import threading
from pathlib import Path

import nbformat
import pytest

from autograder.cli import main as dlgrade
from autograder.grading import catalogue
from autograder.grading.catalogue import SUITES_DIR
from autograder.grading.grade import grade_notebook, warm_spawner
from autograder.grading.reports import feedback_markdown, md_inline
from autograder.sandbox import cgroups, spawn
from tests.nbtools import (
    ROOT,
    accept_unisolated,
    grade_with_function,
    leftover_processes,
    released_path,
    released_with_solution,
    sandbox_strategy,
    solution_notebook,
    solution_path,
    solution_source,
    with_functions,
    write,
)

STRATEGY = sandbox_strategy()
SETPRIV = STRATEGY == "setpriv"
# Without namespaces (setpriv in Docker) there is no network namespace: the container's
# network policy and the Dask cluster's TLS are what protect; see test_network_*.
NAMESPACES = not os.environ.get("DLGRADE_NO_NAMESPACES")
A = "initialization"
ZEROS, RANDOM, HE = "initialize_parameters_zeros", "initialize_parameters_random", "initialize_parameters_he"
# On this machine the checkout is world-readable: under setpriv every CLI run needs the flag (see test_readability_*).
UNISOLATED_FLAG = accept_unisolated()
UNISOLATED_NOTE = "WARNING: graded with --accept-unisolated"

pytestmark = pytest.mark.skipif(
    STRATEGY not in ("bwrap", "setpriv"),
    reason=f"needs bubblewrap or setpriv (root); this machine grades with {STRATEGY!r}",
)


def notebook(sources: dict, base: Path | None = None):
    """The released stub (or ``base``) with the given functions' cells replaced."""
    return with_functions(A, sources, base or released_path(A))


def victims() -> dict:
    """Two correct-ish submissions: the solution (11/11) and a stub with zeros correct (partial)."""
    full = solution_notebook(A)
    full.cells.append(nbformat.v4.new_markdown_cell("VICTIM-SECRET-full"))
    partial = released_with_solution(A, ZEROS)
    partial.cells.append(nbformat.v4.new_markdown_cell("VICTIM-SECRET-partial"))
    return {"v1-full": full, "v2-partial": partial}


# ------------------------------------------------------------------ the attackers

# 1. Learners shared a uid with their zygote: lower its limits, renice it, for every later learner.
TAMPER = """
import os, resource
def initialize_parameters_he(layers_dims):
    me, hit = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        for what, limit in (("as", resource.RLIMIT_AS), ("nofile", resource.RLIMIT_NOFILE)):
            try:
                resource.prlimit(pid, limit, (300 << 20, 300 << 20) if what == "as" else (5, 5))
                hit.append((what, pid))
            except Exception:
                pass
        try:
            os.setpriority(os.PRIO_PROCESS, pid, 19)
            hit.append(("nice", pid))
        except Exception:
            pass
    raise RuntimeError("TAMPERED " + repr(hit))
"""

# 2. Read what the grader must keep: hidden suite, solutions, other submissions, batch state, outputs.
READ = """
def initialize_parameters_he(layers_dims):
    found = {}
    for path in PATHS:
        try:
            found[path] = open(path, "rb").read()[-3000:].decode("utf-8", "replace")
        except Exception as exc:
            found[path] = type(exc).__name__
    raise RuntimeError("LEAKED " + repr(found)[:20000])
"""

# 3. Reach the grader over the loopback (a Dask scheduler, the test's listener, any listening port).
NETWORK = """
import socket
def initialize_parameters_he(layers_dims):
    ports = {PORT}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            for line in open(table).read().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":   # LISTEN
                    ports.add(int(fields[1].split(":")[1], 16))
        except OSError:
            pass
    reached = []
    for port in sorted(ports):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).sendall(b"ATTACK")
            reached.append(port)
        except OSError:
            pass
    raise RuntimeError(f"REACHED {reached}")
"""

# 4. A reply that costs the grader ~50x its size once decoded.
DECODE_BOMB = """
def initialize_parameters_he(layers_dims):
    return [[]] * 1_500_000
"""

# 6. Side effects aimed at other functions: definition-time patches in a class body and a
#    default argument, and a profile hook that kills the process the moment another function is
#    called in it (not a thread that kills it after a fixed delay: the process may be gone before
#    the delay is over, and then the attack proves nothing).
CROSS_FUNCTION = """
import os, sys, threading
import numpy as np

class _Patches:
    np.zeros = lambda *args, **kwargs: np.ones(*args, **kwargs)

def _kill_the_next_function(frame, event, arg):
    if event == "call" and frame.f_code.co_name in ("initialize_parameters_zeros", "initialize_parameters_he"):
        os._exit(3)

def initialize_parameters_random(layers_dims, _more=setattr(np, "sqrt", lambda value: 1.0)):
    sys.setprofile(_kill_the_next_function)
    threading.setprofile(_kill_the_next_function)
    raise RuntimeError("not graded anyway")
"""

# 7. A /tmp tree deeper than the recursion limit (and PATH_MAX) for the sweep.
DEEP_TREE = """
import os
def initialize_parameters_he(layers_dims):
    os.chdir("/tmp")
    for _ in range(3000):
        os.mkdir("d")
        os.chdir("d")
    os.chdir("/")
    return {}
"""

# 8. Many busy processes: with a CPU quota of 1 they get one core between them.
CPU_HOG = """
import os, resource, time
def initialize_parameters_he(layers_dims):
    start = time.monotonic()
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            while time.monotonic() - start < 2.0:
                pass
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    used = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    raise RuntimeError(f"CPU {used:.2f} IN {time.monotonic() - start:.2f}")
"""

NESTED_JSON = '{"cells": ' + "[" * 200_000 + "]" * 200_000 + "}"


def protected_paths(submissions: Path, out: Path) -> list:
    return [
        str(SUITES_DIR / A / f"test_{A}.py"),
        str(ROOT / "solutions" / f"{A}.ipynb"),
        str(submissions / "c2-read-v1-full.ipynb"),
        str(out / "batch-state.sqlite"),
        str(out / "learners" / "c1-tamper-v1-full" / A / "feedback.md"),
    ]


class Listener:
    """A TCP listener on the loopback: counts the connections learner code makes to the grader's side."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


def attackers(submissions: Path, out: Path, port: int) -> dict:
    """Attack class -> notebook (numpy; the TF tag attack is test_tf_type_tags_*)."""
    stub_plus = lambda sources: notebook({ZEROS: solution_source(A, ZEROS), **sources})  # noqa: E731
    read = READ.replace("PATHS", repr(protected_paths(submissions, out)))
    return {
        "c1-tamper": stub_plus({HE: TAMPER}),
        "c2-read": stub_plus({HE: read}),
        "c3-network": stub_plus({HE: NETWORK.replace("{PORT}", "{%d}" % port)}),
        "c4-decode": stub_plus({HE: DECODE_BOMB}),
        "c6-cross": notebook({RANDOM: CROSS_FUNCTION}, base=solution_path(A)),
        "c7-deep": stub_plus({HE: DEEP_TREE}),
        "c8-cpu": stub_plus({HE: CPU_HOG}),
    }


# ------------------------------------------------------------------ what is compared


def view(result: dict) -> dict:
    """What a victim gets: scores, every check's outcome and text, notes, feedback.md.

    Under setpriv on this world-readable checkout every run carries the
    --accept-unisolated warning; it is left out on both sides.
    """
    notes = [n for n in result.get("notes", []) if not n.startswith(UNISOLATED_NOTE)]
    feedback = own_submission(without_warning(feedback_markdown({**result, "notes": notes})), result)
    return {
        "score": result["score"],
        "functions": result["functions"],
        "notes": notes,
        "feedback": feedback,
        "tests": [(t["name"], t["status"], t["score"], t["output"]) for t in result["tests"]],
    }


def without_warning(feedback: str) -> str:
    """feedback.md without the unisolated warning (and a Notes heading left empty by its removal), and
    without the "Submission: <file>" line: a batch names the file after its learner, by construction."""
    lines = [
        l for l in feedback.splitlines() if l.strip() and UNISOLATED_NOTE not in l and not l.startswith("Submission: ")
    ]
    return "\n".join(
        l
        for i, l in enumerate(lines)
        if not (l == "## Notes" and not (i + 1 < len(lines) and lines[i + 1].startswith("- ")))
    )


def own_submission(feedback: str, result) -> str:
    """feedback.md with its "Submission:" line checked to name the victim's own file, then made neutral.

    Victims are named after their attacker in a batch (c1-tamper-v1-full.ipynb) and
    not in the baseline (v1-full.ipynb); everything else must be identical.
    """
    own = f"Submission: {md_inline(result['submission'])}" if result.get("submission") else None
    lines = feedback.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Submission: "):
            assert line == own, (line, own)
            lines[i] = "Submission: (the victim's own file)"
    return "\n".join(lines)


def attacker_output(result: dict, function: str = HE) -> str:
    return "\n".join(t["output"] for t in result["tests"] if t["function"] == function)


@pytest.fixture(scope="module")
def listener():
    return Listener()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict:
    """The victims graded with no attacker, one after the other in this process."""
    folder = tmp_path_factory.mktemp("baseline")
    return {name: view(grade_notebook(write(nb, folder / f"{name}.ipynb"), A)) for name, nb in victims().items()}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, listener) -> dict:
    """One real ``dlgrade batch --workers 1``: each attacker, then the two victims; results by learner."""
    root = tmp_path_factory.mktemp("batch")
    submissions, out = root / "submissions", root / "out"
    for attack, nb in attackers(submissions, out, listener.port).items():
        write(nb, submissions / f"{attack}.ipynb")
        for victim, victim_nb in victims().items():
            write(victim_nb, submissions / f"{attack}-{victim}.ipynb")
    (submissions / "c7-nested.ipynb").write_text(NESTED_JSON)
    code = dlgrade(["batch", str(submissions), "--out", str(out), "--workers", "1", *UNISOLATED_FLAG])
    assert code == 0
    results = {"__out__": out}
    for report in out.glob("learners/*/*/results.json"):  # learners/<learner>/<assignment>/ ("unknown": unreadable)
        results[report.parent.parent.name] = json.loads(report.read_text())
        results[report.parent.parent.name]["_feedback"] = (report.parent / "feedback.md").read_text()
    return results


def grade_alone(tmp_path, attacker_nb) -> tuple[dict, dict]:
    """The attacker, then the victims, in this process: the victims' learners come from the attacker's zygote."""
    attacker = grade_notebook(write(attacker_nb, tmp_path / "attacker.ipynb"), A)
    graded = {name: view(grade_notebook(write(nb, tmp_path / f"{name}.ipynb"), A)) for name, nb in victims().items()}
    return attacker, graded


def assert_victims_untouched(graded: dict, baseline: dict) -> None:
    for name in baseline:
        assert graded[name] == baseline[name], name


def assert_batch_victims_untouched(batch: dict, attack: str, baseline: dict) -> None:
    for name in baseline:
        result = batch[f"{attack}-{name}"]
        got = view(result)
        assert got == baseline[name], (attack, name)
        written = own_submission(without_warning(result["_feedback"]), result)
        assert written == baseline[name]["feedback"], (attack, name)


def attack_of(batch: dict, attack: str) -> dict:
    return batch[attack]


# ------------------------------------------------------------------ 1. zygote shared a uid


def test_tampering_with_the_zygote_alone(tmp_path, baseline):
    attacker, graded = grade_alone(tmp_path, attackers(tmp_path, tmp_path, 1)["c1-tamper"])
    assert "TAMPERED" in attacker_output(attacker)
    if NAMESPACES:  # its own pid namespace: it sees no process but itself
        assert "TAMPERED []" in attacker_output(attacker)
    assert_victims_untouched(graded, baseline)


def test_tampering_with_the_zygote_in_a_batch(batch, baseline):
    assert "TAMPERED" in attacker_output(batch["c1-tamper"])
    assert_batch_victims_untouched(batch, "c1-tamper", baseline)


def test_nothing_of_a_submission_outlives_it(tmp_path):
    """A fork bomb's survivors, double-forked into new sessions, are gone when the grade is done.

    Unlike the old fork-bomb test nothing is filtered out by command line: every
    process of a learner uid that is not a zygote is counted, zygotes by pid.
    """
    from tests.test_hostile import FORK_BOMB

    escape = FORK_BOMB.replace("os.fork()", "os.fork() or os.setsid()")
    grade_notebook(write(notebook({HE: escape}), tmp_path / "bomb.ipynb"), A)
    # Processes of this grader's sandboxes only (other graders may be running on the machine).
    assert leftover_processes() == []


# ------------------------------------------------------------------ 2. reading protected files


def test_reading_protected_files_alone(tmp_path, baseline):
    submissions = tmp_path / "subs"
    out = tmp_path / "out"
    nb = attackers(submissions, out, 1)["c2-read"]
    path = write(nb, tmp_path / "attacker.ipynb")
    for name, victim in victims().items():
        write(victim, submissions / f"c2-read-{name}.ipynb")
    if SETPRIV:
        # The learner's uid can read this world-readable checkout: refused, exit 3, unless accepted.
        assert dlgrade(["grade", str(path), "--out", str(out)]) == 3
        assert not (out / "results.json").exists()
        assert dlgrade(["grade", str(path), "--out", str(out), "--accept-unisolated"]) == 0
        written = json.loads((out / "results.json").read_text())
        assert any(n.startswith(UNISOLATED_NOTE) for n in written["notes"])
        assert UNISOLATED_NOTE in (out / "feedback.md").read_text()
        return
    assert dlgrade(["grade", str(path), "--out", str(out)]) == 0
    output = attacker_output(json.loads((out / "results.json").read_text()))
    assert "LEAKED" in output and "FileNotFoundError" in output
    for secret in ("BEGIN SOLUTION", "def test_", "VICTIM-SECRET", "SQLite"):
        assert secret not in output
    # Reports and state are the grader's alone.
    assert (out / "results.json").stat().st_mode & 0o077 == 0
    _, graded = grade_alone(tmp_path, nb)
    assert_victims_untouched(graded, baseline)


def test_reading_protected_files_in_a_batch(tmp_path, batch, baseline):
    if SETPRIV:
        subs = tmp_path / "subs"
        write(victims()["v1-full"], subs / "v.ipynb")
        assert dlgrade(["batch", str(subs), "--out", str(tmp_path / "out"), "--workers", "1"]) == 3
        return
    output = attacker_output(batch["c2-read"])
    assert "LEAKED" in output
    for secret in ("BEGIN SOLUTION", "def test_", "VICTIM-SECRET", "SQLite", "Score:"):
        assert secret not in output
    assert_batch_victims_untouched(batch, "c2-read", baseline)


def test_outputs_and_state_are_private(batch):
    """The state and the reports are the grader's alone (written under umask 077)."""
    out = batch["__out__"]
    assert (out / "batch-state.sqlite").stat().st_mode & 0o077 == 0
    assert (out / "learners" / "c1-tamper" / A).stat().st_mode & 0o077 == 0
    assert (out / "learners" / "c1-tamper" / A / "feedback.md").stat().st_mode & 0o077 == 0


# ------------------------------------------------------------------ 3. the network


@pytest.mark.skipif(
    not NAMESPACES,
    reason="no network namespace without namespaces (Docker: the container's "
    "network policy and the Dask cluster's TLS protect)",
)
def test_network_to_the_grader_alone(tmp_path, baseline, listener):
    before = listener.connections
    attacker, graded = grade_alone(tmp_path, attackers(tmp_path, tmp_path, listener.port)["c3-network"])
    assert "REACHED []" in attacker_output(attacker)
    assert listener.connections == before
    assert_victims_untouched(graded, baseline)


@pytest.mark.skipif(not NAMESPACES, reason="no network namespace without namespaces")
def test_network_to_the_grader_in_a_batch(batch, baseline, listener):
    assert "REACHED []" in attacker_output(batch["c3-network"])
    assert_batch_victims_untouched(batch, "c3-network", baseline)


@pytest.mark.slow  # a Dask LocalCluster: ~20 s on 2 loaded cores
def test_network_to_a_tls_dask_cluster(tmp_path, baseline):
    """Under Dask (a TLS LocalCluster) the learner reaches neither the scheduler nor the workers."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    write(attackers(subs, out, 1)["c3-network"], subs / "a-attacker.ipynb")
    for name, nb in victims().items():
        write(nb, subs / f"b-{name}.ipynb")
    assert dlgrade(["batch", str(subs), "--out", str(out), "--dask", "local:1", *UNISOLATED_FLAG]) == 0
    attacker = json.loads((out / "learners" / "a-attacker" / A / "results.json").read_text())
    if NAMESPACES:
        assert "REACHED []" in attacker_output(attacker)
    for name in baseline:
        assert view(json.loads((out / "learners" / f"b-{name}" / A / "results.json").read_text())) == baseline[name]


# ------------------------------------------------------------------ 4. decoding bounds


def test_decode_bomb_alone(tmp_path, baseline):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    attacker, graded = grade_alone(tmp_path, attackers(tmp_path, tmp_path, 1)["c4-decode"])
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 150, f"the grader grew by {grown_mb:.0f} MB decoding one reply"
    assert attacker["functions"][HE]["score"] == 0
    assert "allowed" in attacker_output(attacker)
    assert_victims_untouched(graded, baseline)


def test_decode_bomb_in_a_batch(batch, baseline):
    assert batch["c4-decode"]["functions"][HE]["score"] == 0
    assert_batch_victims_untouched(batch, "c4-decode", baseline)


# ------------------------------------------------------------------ 5. TensorFlow type tags

FAKE_TENSOR = '''
import numpy as np

class EagerTensor:
    """Says it is a float32 EagerTensor; holds float64 numbers computed with numpy."""
    __module__ = "tensorflow.python.framework.ops"
    class dtype:
        name = "float32"
    def __init__(self, array):
        self.array = array
    def numpy(self):
        return self.array

def sigmoid(z):
    return EagerTensor(1 / (1 + np.exp(-np.asarray(z, dtype=np.float64))))
'''


def test_tf_type_tags_are_claims_checked_against_the_data(tmp_path):
    T = "tensorflow_intro"
    result = grade_with_function(T, "sigmoid", FAKE_TENSOR, tmp_path / "fake.ipynb", base=released_path(T))
    assert result["functions"]["sigmoid"]["score"] == 0
    assert "claims dtype float32 but holds float64" in attacker_output(result, "sigmoid")


# ------------------------------------------------------------------ 6. one function's side effects


def test_side_effects_of_one_function_alone(tmp_path, baseline):
    attacker, graded = grade_alone(tmp_path, attackers(tmp_path, tmp_path, 1)["c6-cross"])
    for function in (ZEROS, HE):  # correct, in the same notebook as the patches and the killer thread
        assert attacker["functions"][function]["score"] == attacker["functions"][function]["max_score"], (
            attacker_output(attacker, function)
        )
    assert attacker["functions"][RANDOM]["score"] == 0
    assert "not graded anyway" in attacker_output(attacker, RANDOM)  # it ran: its hook was set
    assert_victims_untouched(graded, baseline)


def test_side_effects_of_one_function_in_a_batch(batch, baseline):
    attacker = batch["c6-cross"]
    for function in (ZEROS, HE):
        assert attacker["functions"][function]["score"] == attacker["functions"][function]["max_score"]
    assert "not graded anyway" in attacker_output(attacker, RANDOM)  # it ran: its hook was set
    assert_batch_victims_untouched(batch, "c6-cross", baseline)


# ------------------------------------------------------------------ 7. parser and sweep


def test_deeply_nested_notebook_and_deep_tmp_tree_alone(tmp_path, baseline, capsys):
    nested = tmp_path / "nested.ipynb"
    nested.write_text(NESTED_JSON)
    result = grade_notebook(nested, A)
    assert result["score"] == 0 and "nested" in result["error"]
    # Unreadable input: exit 2 (usage), with the zero and the reason, not a crash (exit 3) or a traceback.
    capsys.readouterr()
    assert dlgrade(["grade", str(nested), "--assignment", A, *UNISOLATED_FLAG]) == 2
    shown = capsys.readouterr()
    assert "0 / 11" in shown.out and "nested too deeply" in shown.err and "Traceback" not in shown.err
    attacker, graded = grade_alone(tmp_path, attackers(tmp_path, tmp_path, 1)["c7-deep"])
    key = warm_spawner(catalogue.load(A)).key  # the assignment's zygote, as grade_notebook keys it
    zygote = spawn._ZYGOTES[key]
    assert zygote.alive()
    _, again = grade_alone(tmp_path, attackers(tmp_path, tmp_path, 1)["c7-deep"])
    assert spawn._ZYGOTES[key] is zygote and zygote.alive(), "the sweep died and its zygote was replaced"
    assert_victims_untouched(graded, baseline)
    assert_victims_untouched(again, baseline)


def test_deeply_nested_notebook_and_deep_tmp_tree_in_a_batch(batch, baseline):
    assert batch["c7-nested"]["score"] == 0 and "nested" in batch["c7-nested"]["error"]
    assert_batch_victims_untouched(batch, "c7-deep", baseline)


# ------------------------------------------------------------------ 8. CPU share


def cpu_ratio(result: dict) -> float:
    text = attacker_output(result)
    used, wall = text.split("CPU ")[1].split(" IN ")
    return float(used) / float(wall.split()[0])


@pytest.mark.skipif(not cgroups.cgroups_writable(), reason="needs writable cgroups (the cpu controller)")
def test_cpu_hog_gets_one_core_alone(tmp_path, baseline):
    attacker, graded = grade_alone(tmp_path, attackers(tmp_path, tmp_path, 1)["c8-cpu"])
    # Four busy processes for 2 s on 2 cores: 2 cores' worth without a quota, 1 with it.
    assert cpu_ratio(attacker) < 1.3
    assert any(limit.endswith("cpu 1") for limit in attacker["isolation"]["limits"])
    assert_victims_untouched(graded, baseline)


@pytest.mark.skipif(not cgroups.cgroups_writable(), reason="needs writable cgroups (the cpu controller)")
def test_cpu_hog_gets_one_core_in_a_batch(batch, baseline):
    assert cpu_ratio(batch["c8-cpu"]) < 1.3
    assert_batch_victims_untouched(batch, "c8-cpu", baseline)
