"""Hostile submissions gain nothing, and the grader and the machine stay intact.

Every trick goes into the cell of ``initialize_parameters_he`` of a submission
whose ``initialize_parameters_zeros`` is correct and whose other functions are
stubs. Without the trick that submission scores the zeros points; with it, it
must score no more, and the report must say what happened.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from autograder import sandbox
from autograder.cli import main as dlgrade
from autograder.grading import grade_notebook
from tests.nbtools import graded_cell, released_path, solution_path, with_function, write

import nbformat

A = "initialization"
HE = "initialize_parameters_he"
ZEROS = "initialize_parameters_zeros"
ISOLATED = sandbox.available_strategy() == "bwrap"


def baseline_notebook():
    """The released stub with a correct zeros initializer."""
    zeros = graded_cell(nbformat.read(str(solution_path(A)), as_version=4), ZEROS).source
    return with_function(A, ZEROS, zeros, base=released_path(A))


@pytest.fixture(scope="module")
def baseline_score(tmp_path_factory):
    path = write(baseline_notebook(), tmp_path_factory.mktemp("base") / "baseline.ipynb")
    result = grade_notebook(path, A)
    assert result["functions"][ZEROS]["score"] == result["functions"][ZEROS]["max_score"] > 0
    assert result["score"] == result["functions"][ZEROS]["score"]
    return result["score"]


def grade_trick(tmp_path, source: str, name: str = "trick.ipynb"):
    nb = baseline_notebook()
    graded_cell(nb, HE).source = source
    path = write(nb, tmp_path / name)
    return grade_notebook(path, A)


def he_output(result) -> str:
    return "\n".join(t["output"] for t in result["tests"] if t["function"] == HE)


MONKEYPATCH = '''
import builtins, numpy as np, numpy.testing, math
def _yes(*args, **kwargs):
    return True
def initialize_parameters_he(layers_dims, _patches=[
        setattr(np, "allclose", _yes), setattr(np, "array_equal", _yes),
        setattr(np.testing, "assert_allclose", lambda *a, **k: None),
        setattr(math, "isclose", _yes), setattr(builtins, "abs", lambda x: 0),
        setattr(builtins, "isinstance", _yes)]):
    return {"W1": np.zeros((1, 1))}
'''

ALWAYS_EQUAL = '''
import numpy as np
class Liar:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __array__(self, *a, **k): return np.zeros((3, 3))
class LyingArray(np.ndarray):
    def __eq__(self, other): return np.ones(np.shape(other), bool)
def initialize_parameters_he(layers_dims):
    params = {}
    for l in range(1, len(layers_dims)):
        params["W" + str(l)] = Liar()
        params["b" + str(l)] = np.zeros((layers_dims[l], 1)).view(LyingArray)
    return params
'''

EXIT_AT_IMPORT = '''
import os
def initialize_parameters_he(layers_dims, _bye=os._exit(0)):
    return {}
'''

SYS_EXIT_AT_IMPORT = '''
import sys
def initialize_parameters_he(layers_dims, _bye=sys.exit(0)):
    return {}
'''

EXIT_IN_CALL = '''
import os
def initialize_parameters_he(layers_dims):
    os._exit(0)
'''

INFINITE_LOOP = '''
def initialize_parameters_he(layers_dims):
    while True:
        pass
'''

LOOP_AT_IMPORT = '''
def _spin():
    while True:
        pass
def initialize_parameters_he(layers_dims, _x=_spin()):
    return {}
'''

MEMORY_BOMB = '''
def initialize_parameters_he(layers_dims):
    hog = []
    while True:
        hog.append(bytearray(64 * 1024 * 1024))
'''

FORK_BOMB = '''
import os
def initialize_parameters_he(layers_dims):
    while True:
        try:
            os.fork()
        except OSError:
            pass
'''

NETWORK = '''
import socket
def initialize_parameters_he(layers_dims):
    socket.create_connection(("1.1.1.1", 80), timeout=3).sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    return {"reached": "the network"}
'''

READ_SECRETS = '''
def initialize_parameters_he(layers_dims):
    found = {}
    for path in [{paths}]:
        try:
            found[path] = open(path).read()
        except Exception as exc:
            found[path] = type(exc).__name__
    raise RuntimeError("LEAKED " + repr(found)[:3000])
'''


def test_monkeypatching_numpy_and_builtins_gains_nothing(tmp_path, baseline_score):
    result = grade_trick(tmp_path, MONKEYPATCH)
    assert result["score"] <= baseline_score
    assert result["functions"][HE]["score"] == 0


def test_always_equal_objects_cannot_cross_the_boundary(tmp_path, baseline_score):
    result = grade_trick(tmp_path, ALWAYS_EQUAL)
    assert result["score"] <= baseline_score
    assert result["functions"][HE]["score"] == 0
    assert "cannot be returned" in he_output(result)


@pytest.mark.parametrize("source", [EXIT_AT_IMPORT, SYS_EXIT_AT_IMPORT], ids=["os._exit", "sys.exit"])
def test_exit_at_import_costs_only_that_cell(tmp_path, baseline_score, source):
    result = grade_trick(tmp_path, source)
    assert result["score"] == baseline_score  # zeros still graded, He lost
    assert any("cell" in note for note in result["notes"])


def test_exit_during_a_call_is_reported(tmp_path, baseline_score):
    result = grade_trick(tmp_path, EXIT_IN_CALL)
    assert result["score"] == baseline_score
    assert "ended unexpectedly" in he_output(result)


def test_conftest_and_numpy_beside_the_notebook_are_ignored(tmp_path, baseline_score):
    (tmp_path / "conftest.py").write_text(
        "import pytest\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n")
    (tmp_path / "numpy.py").write_text("def allclose(*a, **k):\n    return True\n")
    (tmp_path / "public_tests.py").write_text("raise SystemExit\n")
    result = grade_trick(tmp_path, MONKEYPATCH)
    assert result["score"] <= baseline_score


def test_forged_results_files_are_overwritten_or_unreachable(tmp_path, baseline_score):
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
    nb = baseline_notebook()
    graded_cell(nb, HE).source = source
    path = write(nb, tmp_path / "forger.ipynb")
    assert dlgrade(["grade", str(path), "--out", str(out)]) == 0
    written = json.loads((out / "results.json").read_text())
    assert written["score"] == baseline_score
    if ISOLATED:
        assert not (tmp_path / "results.json").exists()


@pytest.mark.skipif(not ISOLATED, reason="needs the bubblewrap sandbox (apt-get install bubblewrap)")
def test_hidden_suite_and_solutions_are_not_readable(tmp_path, baseline_score):
    from autograder.assignments import ROOT, SUITES_DIR

    secrets = [str(SUITES_DIR / A / f"test_{A}.py"), str(ROOT / "solutions" / f"{A}.ipynb")]
    result = grade_trick(tmp_path, READ_SECRETS.replace("{paths}", ", ".join(repr(p) for p in secrets)))
    assert result["score"] <= baseline_score
    output = he_output(result)
    assert "LEAKED" in output and "FileNotFoundError" in output
    assert "BEGIN SOLUTION" not in output and "def test_" not in output


def test_infinite_loop_times_out_and_costs_only_its_function(tmp_path, baseline_score):
    result = grade_trick(tmp_path, INFINITE_LOOP)
    assert result["score"] == baseline_score
    assert HE in result["process"]["timeouts"]
    assert "did not finish" in he_output(result)


def test_infinite_loop_at_import_costs_only_its_cell(tmp_path, baseline_score):
    result = grade_trick(tmp_path, LOOP_AT_IMPORT)
    assert result["score"] == baseline_score


def test_memory_bomb_is_contained(tmp_path, baseline_score):
    result = grade_trick(tmp_path, MEMORY_BOMB)
    assert result["score"] == baseline_score
    # Stopped by RLIMIT_AS (MemoryError), the memory cgroup (killed), or the timeout.
    assert any(word in he_output(result) for word in ("MemoryError", "memory", "did not finish"))


def test_fork_bomb_is_contained_and_cleaned_up(tmp_path, baseline_score):
    result = grade_trick(tmp_path, FORK_BOMB)
    assert result["score"] == baseline_score
    if ISOLATED:
        left = subprocess.run(["ps", "-u", str(sandbox.SANDBOX_UID), "-o", "pid=,args="], capture_output=True, text=True)
        # Only the warm zygote (kept for the next submission) may remain.
        assert len([l for l in left.stdout.splitlines() if "--zygote" not in l]) == 0, left.stdout


def test_network_is_unreachable(tmp_path, baseline_score):
    result = grade_trick(tmp_path, NETWORK)
    assert result["score"] <= baseline_score
    if ISOLATED:
        assert "unreachable" in he_output(result).lower() or "OSError" in he_output(result)


def test_flood_of_output_is_truncated_and_the_answer_still_counts(tmp_path, baseline_score):
    he = graded_cell(nbformat.read(str(solution_path(A)), as_version=4), HE).source
    flood = he.replace("def initialize_parameters_he(layers_dims):",
                       "def initialize_parameters_he(layers_dims):\n    print('x' * 10_000_000)", 1)
    result = grade_trick(tmp_path, flood)
    assert result["functions"][HE]["score"] == result["functions"][HE]["max_score"]
    assert result["process"]["output_bytes"] >= 10_000_000
    assert len(result["learner_output"]) <= 4000
    assert any("printed" in note for note in result["notes"])
