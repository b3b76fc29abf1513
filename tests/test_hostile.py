"""Hostile submissions gain nothing, and the grader and the machine stay intact.

Every trick goes into the cell of one graded function (the "victim") of a
submission in which one other function (the "keeper") is correct and the rest
are stubs. Without the trick that submission scores the keeper's points; with
it, it must score no more, and the report must say what happened.

The tricks run against assignment 1 (numpy) and assignment 5 (TensorFlow,
whose learner children are forked from a zygote that has imported TensorFlow).
Trick sources are written for ``initialize_parameters_he(layers_dims)``; the
name is replaced by the victim's, a one-argument function in both assignments.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from autograder.cli import main as dlgrade
from autograder.grading.grade import grade_notebook
from tests.nbtools import (
    accept_unisolated,
    graded_cell,
    leftover_processes,
    processes_running,
    released_with_solution,
    sandbox_strategy,
    solution_source,
    write,
)

STRATEGY = sandbox_strategy()
# bubblewrap hides the machine's files and network from the learner; inside
# Docker (setpriv) the container does that, so outside Docker only bwrap counts.
ISOLATED = STRATEGY == "bwrap"
# Both leave nothing of a submission behind: its own pid namespace (bwrap, and
# setpriv where namespaces work), or its own uid killed whole (setpriv in Docker).
SWEPT = STRATEGY in ("bwrap", "setpriv")
TRICK_NAME = "initialize_parameters_he"

# assignment, victim (gets the trick), keeper (correct, must keep its points)
TARGETS = {
    "numpy": ("initialization", "initialize_parameters_he", "initialize_parameters_zeros"),
    "tensorflow": ("tensorflow_intro", "sigmoid", "one_hot_matrix"),
}


@pytest.fixture(scope="module", params=list(TARGETS))
def target(request):
    return TARGETS[request.param]


# Tricks that run into a timeout cost 10-30 s each on the TensorFlow assignment
# (its per-call limit is 10 s, assignment.toml); the mechanism is the same as on numpy, so the
# TensorFlow variants of these run with `make test-all` only.
SLOW_ON_TF = pytest.mark.parametrize(
    "target", ["numpy", pytest.param("tensorflow", marks=pytest.mark.slow)], indirect=True
)


def baseline_notebook(target):
    """The released stub with the keeper function correct."""
    assignment, _, keeper = target
    return released_with_solution(assignment, keeper)


@pytest.fixture(scope="module")
def baseline_score(target, tmp_path_factory):
    assignment, victim, keeper = target
    path = write(baseline_notebook(target), tmp_path_factory.mktemp("base") / "baseline.ipynb")
    result = grade_notebook(path, assignment)
    assert result["functions"][keeper]["score"] == result["functions"][keeper]["max_score"] > 0
    assert result["score"] == result["functions"][keeper]["score"]
    return result["score"]


def grade_trick(tmp_path, target, source: str, name: str = "trick.ipynb"):
    assignment, victim, _ = target
    nb = baseline_notebook(target)
    graded_cell(nb, victim).source = source.replace(TRICK_NAME, victim)
    path = write(nb, tmp_path / name)
    return grade_notebook(path, assignment)


def victim_output(result, target) -> str:
    return "\n".join(t["output"] for t in result["tests"] if t["function"] == target[1])


MONKEYPATCH = """
import builtins, numpy as np, numpy.testing, math
def _yes(*args, **kwargs):
    return True
def initialize_parameters_he(layers_dims, _patches=[
        setattr(np, "allclose", _yes), setattr(np, "array_equal", _yes),
        setattr(np.testing, "assert_allclose", lambda *a, **k: None),
        setattr(math, "isclose", _yes), setattr(builtins, "abs", lambda x: 0),
        setattr(builtins, "isinstance", _yes)]):
    return {"W1": np.zeros((1, 1))}
"""

ALWAYS_EQUAL = """
import numpy as np
class Liar:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __array__(self, *a, **k): return np.zeros((3, 3))
class LyingArray(np.ndarray):
    def __eq__(self, other): return np.ones(np.shape(other), bool)
def initialize_parameters_he(layers_dims):
    return {"W1": Liar(), "b1": np.zeros((3, 1)).view(LyingArray)}
"""

EXIT_AT_IMPORT = """
import os
def initialize_parameters_he(layers_dims, _bye=os._exit(0)):
    return {}
"""

SYS_EXIT_AT_IMPORT = """
import sys
def initialize_parameters_he(layers_dims, _bye=sys.exit(0)):
    return {}
"""

EXIT_IN_CALL = """
import os
def initialize_parameters_he(layers_dims):
    os._exit(0)
"""

INFINITE_LOOP = """
def initialize_parameters_he(layers_dims):
    while True:
        pass
"""

LOOP_AT_IMPORT = """
def _spin():
    while True:
        pass
def initialize_parameters_he(layers_dims, _x=_spin()):
    return {}
"""

MEMORY_BOMB = """
def initialize_parameters_he(layers_dims):
    hog = []
    while True:
        hog.append(bytearray(64 * 1024 * 1024))
"""

FORK_BOMB = """
import os
def initialize_parameters_he(layers_dims):
    while True:
        try:
            os.fork()
        except OSError:
            pass
"""

NETWORK = """
import socket
def initialize_parameters_he(layers_dims):
    socket.create_connection(("1.1.1.1", 80), timeout=3).sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    return {"reached": "the network"}
"""

READ_SECRETS = """
def initialize_parameters_he(layers_dims):
    found = {}
    for path in [{paths}]:
        try:
            found[path] = open(path).read()
        except Exception as exc:
            found[path] = type(exc).__name__
    raise RuntimeError("LEAKED " + repr(found)[:3000])
"""


def test_monkeypatching_numpy_and_builtins_gains_nothing(tmp_path, target, baseline_score):
    result = grade_trick(tmp_path, target, MONKEYPATCH)
    assert result["score"] <= baseline_score
    assert result["functions"][target[1]]["score"] == 0


def test_always_equal_objects_cannot_cross_the_boundary(tmp_path, target, baseline_score):
    result = grade_trick(tmp_path, target, ALWAYS_EQUAL)
    assert result["score"] <= baseline_score
    assert result["functions"][target[1]]["score"] == 0
    assert "cannot be returned" in victim_output(result, target)


@pytest.mark.parametrize("source", [EXIT_AT_IMPORT, SYS_EXIT_AT_IMPORT], ids=["os._exit", "sys.exit"])
def test_exit_at_import_costs_only_that_cell(tmp_path, target, baseline_score, source):
    result = grade_trick(tmp_path, target, source)
    assert result["score"] == baseline_score  # zeros still graded, He lost
    assert any("cell" in note for note in result["notes"])


def test_exit_during_a_call_is_reported(tmp_path, target, baseline_score):
    result = grade_trick(tmp_path, target, EXIT_IN_CALL)
    assert result["score"] == baseline_score
    assert "ended unexpectedly" in victim_output(result, target)


def test_conftest_and_numpy_beside_the_notebook_are_ignored(tmp_path, target, baseline_score):
    (tmp_path / "conftest.py").write_text(
        "import pytest\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n"
    )
    (tmp_path / "numpy.py").write_text("def allclose(*a, **k):\n    return True\n")
    (tmp_path / "public_tests.py").write_text("raise SystemExit\n")
    result = grade_trick(tmp_path, target, MONKEYPATCH)
    assert result["score"] <= baseline_score


def test_forged_results_files_are_overwritten_or_unreachable(tmp_path, target, baseline_score):
    out = tmp_path / "out"
    forged = json.dumps({"score": 1000, "max_score": 11, "tests": []})
    targets = [str(out / "results.json"), str(tmp_path / "results.json"), "results.json", "/tmp/results.json"]
    source = (
        "def initialize_parameters_he(layers_dims):\n"
        f"    for path in {targets!r}:\n"
        "        try:\n"
        "            import os\n"
        "            os.makedirs(os.path.dirname(path) or '.', exist_ok=True)\n"
        f"            open(path, 'w').write({forged!r})\n"
        "        except Exception:\n"
        "            pass\n"
        "    return {}\n"
    )
    nb = baseline_notebook(target)
    graded_cell(nb, target[1]).source = source.replace(TRICK_NAME, target[1])
    path = write(nb, tmp_path / "forger.ipynb")
    # Under setpriv this world-readable checkout is refused without the flag (see test_attacks.py).
    assert dlgrade(["grade", str(path), "--out", str(out), *accept_unisolated()]) == 0
    written = json.loads((out / "results.json").read_text())
    assert written["score"] == baseline_score
    if ISOLATED:
        assert not (tmp_path / "results.json").exists()


@pytest.mark.skipif(
    not ISOLATED,
    reason=f"needs the bubblewrap sandbox (apt-get install bubblewrap), which hides the "
    f"machine's files; this machine grades with {STRATEGY!r}",
)
def test_hidden_suite_and_solutions_are_not_readable(tmp_path, target, baseline_score):
    from autograder.grading.catalogue import SUITES_DIR
    from tests.nbtools import ROOT

    a = target[0]
    secrets = [str(SUITES_DIR / a / f"test_{a}.py"), str(ROOT / "solutions" / f"{a}.ipynb")]
    result = grade_trick(tmp_path, target, READ_SECRETS.replace("{paths}", ", ".join(repr(p) for p in secrets)))
    assert result["score"] <= baseline_score
    output = victim_output(result, target)
    assert "LEAKED" in output and "FileNotFoundError" in output
    assert "BEGIN SOLUTION" not in output and "def test_" not in output


@SLOW_ON_TF
def test_infinite_loop_times_out_and_costs_only_its_function(tmp_path, target, baseline_score):
    result = grade_trick(tmp_path, target, INFINITE_LOOP)
    assert result["score"] == baseline_score
    assert target[1] in result["process"]["timeouts"]
    assert "did not finish" in victim_output(result, target)


@SLOW_ON_TF
def test_infinite_loop_at_import_costs_only_its_cell(tmp_path, target, baseline_score):
    result = grade_trick(tmp_path, target, LOOP_AT_IMPORT)
    assert result["score"] == baseline_score


@SLOW_ON_TF
def test_memory_bomb_is_contained(tmp_path, target, baseline_score):
    result = grade_trick(tmp_path, target, MEMORY_BOMB)
    assert result["score"] == baseline_score
    # Stopped by RLIMIT_AS (MemoryError), the memory cgroup (killed), or the timeout.
    assert any(word in victim_output(result, target) for word in ("MemoryError", "memory", "did not finish"))


@SLOW_ON_TF
def test_fork_bomb_is_contained_and_cleaned_up(tmp_path, target, baseline_score):
    result = grade_trick(tmp_path, target, FORK_BOMB)
    assert result["score"] == baseline_score
    if SWEPT:
        # Only the warm zygotes (kept for the next submission, known by pid, not by a command
        # line a survivor could share) may remain of this grader's sandboxes.
        assert leftover_processes() == []


def test_network_is_unreachable(tmp_path, target, baseline_score):
    result = grade_trick(tmp_path, target, NETWORK)
    assert result["score"] <= baseline_score
    if ISOLATED:
        assert "unreachable" in victim_output(result, target).lower() or "OSError" in victim_output(result, target)


def test_flood_of_output_is_truncated_and_the_answer_still_counts(tmp_path, target, baseline_score):
    assignment, victim, _ = target
    correct = solution_source(assignment, victim)
    head = re.search(rf"def {victim}\(.*\):", correct).group(0)
    flood = correct.replace(head, head + "\n    print('x' * 10_000_000)", 1)
    result = grade_trick(tmp_path, target, flood)
    assert result["functions"][target[1]]["score"] == result["functions"][target[1]]["max_score"]
    assert result["process"]["output_bytes"] >= 10_000_000
    assert len(result["learner_output"]) <= 4000
    assert any("printed" in note for note in result["notes"])


# The background process writes its file again and again for as long as it lives: were it to outlive
# the submission, its file would be back after the sweep. The function reports that it runs.
LEAVE_TRACES = """
import os, subprocess, numpy as np
def initialize_parameters_he(layers_dims, _traces=[
        open("/tmp/dlgrade-leak", "w").write("left by an earlier submission"),
        os.makedirs("/tmp/dlgrade-leak-locked/inner"),   # then made unreadable, to survive a careless rmtree
        os.chmod("/tmp/dlgrade-leak-locked/inner", 0), os.chmod("/tmp/dlgrade-leak-locked", 0),
        os.environ.__setitem__("DLGRADE_LEAK", "1"),
        setattr(np, "dlgrade_leak", True),
        subprocess.Popen(["/bin/sh", "-c", "while :; do echo late > /tmp/dlgrade-leak-late; sleep 0.1; done"],
                         start_new_session=True)]):
    raise RuntimeError("BACKGROUND " + ("RUNNING" if _traces[-1].poll() is None else "ENDED"))
"""

SEES_TRACES = """
import os, numpy as np
def leaked():
    return (os.path.exists("/tmp/dlgrade-leak") or os.path.exists("/tmp/dlgrade-leak-late")
            or os.path.lexists("/tmp/dlgrade-leak-locked")
            or "DLGRADE_LEAK" in os.environ or getattr(np, "dlgrade_leak", False))
"""


@pytest.mark.skipif(
    not SWEPT,
    reason=f"nothing is swept between submissions without bubblewrap or setpriv; this machine grades with {STRATEGY!r}",
)
def test_nothing_leaks_from_one_submission_to_the_next(tmp_path, target, baseline_score):
    """Children forked from the same warm zygote: files in /tmp, environment,
    patched modules and background processes of one submission are gone when
    the next one runs. The next submission's keeper fails if it sees any trace."""
    assignment, victim, keeper = target
    # Names of this run only: under setpriv the learner's /tmp is the machine's.
    unique = f"dlgrade-leak-{os.getpid()}-{tmp_path.name}"
    first = grade_trick(tmp_path, target, LEAVE_TRACES.replace("dlgrade-leak", unique), name="first.ipynb")
    # Its background process ran (it was alive when the graded function was called) and is gone now: it can
    # write nothing more, so the second submission below sees every trace it will ever leave (no waiting
    # for a late file that a slow machine may not have written yet).
    assert "BACKGROUND RUNNING" in victim_output(first, target), victim_output(first, target)
    assert processes_running(unique) == []
    nb = baseline_notebook(target)
    correct = graded_cell(nb, keeper).source
    head = re.search(rf"def {keeper}\(.*\):", correct).group(0)
    graded_cell(nb, keeper).source = SEES_TRACES.replace("dlgrade-leak", unique) + correct.replace(
        head, head + "\n    if leaked():\n        raise RuntimeError('saw a trace of another submission')", 1
    )
    result = grade_notebook(write(nb, tmp_path / "second.ipynb"), assignment)
    assert result["functions"][keeper]["score"] == result["functions"][keeper]["max_score"], [
        t["output"] for t in result["tests"] if t["status"] != "passed"
    ]
