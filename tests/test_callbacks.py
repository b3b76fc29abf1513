"""A graded function's graded dependencies run in the grader, its child calling back (grading/callbacks.py).

For an assignment without TensorFlow, the child of a function B that calls a
graded function A holds a forwarder named A and no reference code: the
forwarder sends a callback frame and the grader runs the reference A. Here:
no reference code, function or source in such a child for any numpy
assignment (B scanning its own process), what crosses both ways (the
arguments' changes, numpy's generator), and forged or malformed callback
frames, each refused with a reason in the learner's function while the
grader goes on.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.course.mutants import lost_points
from autograder.grading import callbacks, catalogue
from autograder.grading.cells import Cell
from autograder.grading.grade import grade_notebook
from autograder.grading.learner import Learner, LearnerProcess
from autograder.grading.learner_errors import LearnerError
from autograder.grading.time_policy import TimePolicy
from tests.nbtools import with_functions, write
from tests.test_bindings import DEPENDENT

NUMPY = [(name, function, dependencies) for name in ("batch_norm", "practical_setup", "gradient_checking")
         for function, dependencies in DEPENDENT[name]]  # fmt: skip

# B's child looks for the reference of the functions it calls: functions (and the code they hold)
# compiled from the reference's text, what the stand-in table holds, and any string holding a line
# of that text (``needles``, reversed here so the cell's own text does not hold them).
SCAN = """
def _dlgrade_scan(reversed_needles):
    import gc, linecache
    needles = [needle[::-1] for needle in reversed_needles]
    found = []

    def codes(code, depth=0):
        yield code
        for const in code.co_consts if depth < 20 else ():
            if hasattr(const, "co_filename"):
                yield from codes(const, depth + 1)

    def reference_code(value):
        code = getattr(value, "__code__", None)
        return code is not None and any(c.co_filename in ("<reference>", "<reference solution>") for c in codes(code))

    table = globals().get("__dlgrade_stand_ins__", {})
    for name, value in table.items():
        values = value.values() if isinstance(value, dict) else [value]
        for item in values:
            cells = getattr(item, "__closure__", None) or ()
            if reference_code(item) or any(reference_code(getattr(c, "cell_contents", None)) for c in cells):
                found.append("table: " + name)
    for name, value in list(globals().items()):
        if reference_code(value):
            found.append("global: " + name)
    for obj in gc.get_objects():
        if obj is needles or obj is found:
            continue
        if reference_code(obj):
            found.append("object: " + getattr(obj, "__qualname__", "?"))
        items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
        for item in items:
            if isinstance(item, str) and any(needle in item for needle in needles):
                found.append("text: " + item[:80])
    for lines in linecache.cache.values():
        if any(needle in line for line in lines[2] for needle in needles):
            found.append("linecache")
    return found
"""


def needles(name, dependencies):
    """A line of each dependency's reference source found in no other solution cell."""
    sources = catalogue.reference_sources(name)
    picked = []
    for dependency in dependencies:
        others = {
            line.strip() for function, text in sources.items() if function != dependency for line in text.splitlines()
        }
        lines = [line.strip() for line in sources[dependency].splitlines() if line.strip() not in others]
        picked.append(max(lines, key=len))
        assert len(picked[-1]) >= 12
    return picked


def scanning(name, function, dependencies):
    """The reference ``function``, renamed, behind a ``function`` that first scans its process."""
    reference = catalogue.reference_sources(name)[function].replace(f"def {function}(", f"def _dlgrade_{function}(")
    reversed_needles = [needle[::-1] for needle in needles(name, dependencies)]
    return (
        f"{SCAN}\n{reference}\n\n"
        f"def {function}(*args, **kwargs):\n"
        f"    found = _dlgrade_scan({reversed_needles!r})\n"
        f"    if found:\n"
        f"        raise AssertionError('reference code in the child: ' + '; '.join(sorted(set(found)))[:1500])\n"
        f"    return _dlgrade_{function}(*args, **kwargs)\n"
    )


@pytest.mark.parametrize(("name", "function", "dependencies"), NUMPY, ids=[f"{n}-{f}" for n, f, _ in NUMPY])
def test_no_reference_code_reaches_the_child_of_a_dependent_function(tmp_path, name, function, dependencies):
    """B scans its globals, the stand-in table, every object and string: nothing of A's reference; B keeps its
    points with every A broken."""
    broken = {dependency: f"def {dependency}(*args, **kwargs):\n    return 'broken'\n" for dependency in dependencies}
    nb = with_functions(name, {**broken, function: scanning(name, function, dependencies)})
    result = grade_notebook(write(nb, tmp_path / f"{function}.ipynb"), name)
    messages = [f"{t.function}: {t.message}" for t in result.tests if not t.passed]
    assert function not in lost_points(result), messages
    assert not [m for m in messages if "reference code" in m], messages
    assert set(lost_points(result)) == set(dependencies)  # every A broken, and only A pays for it


# ------------------------------------------------------------------ the channel itself, in a small process

PREAMBLE = "import numpy as np\n"


def reference_add_one(x, state=None):
    if state is not None:
        state["calls"] = state.get("calls", 0) + 1
        state["seen"] = np.asarray(x, dtype=float) + 1
    return x + 1


def reference_draw(n):
    return np.random.uniform(size=n)


REFERENCE = {"add_one": reference_add_one, "draw": reference_draw, "secret": lambda: "the secret"}

CELL_A = "def add_one(x, state=None):\n    return 'broken'\n\ndef draw(n):\n    return 'broken'\n"
# B binds add_one at definition time (a default argument) and reaches the forwarder's worker to forge frames.
CELL_B = """
import os, struct
import numpy as np

def B(x, kind="", f=add_one):
    if kind == "draws":
        return seeded_draws()
    if kind == "more draws":
        return draw(2)
    if kind:
        return forged(kind)
    state = {"calls": 5}
    return f(x, state), state

def grader_worker():
    return next(c.cell_contents for c in add_one.__closure__ if type(c.cell_contents).__name__ == "Worker")

def forged(kind):
    worker = grader_worker()
    if kind == "unknown":
        return worker.call_grader("secret", (), {})
    if kind == "too many":
        return [add_one(i) for i in range(50)]
    if kind == "large array":
        return add_one(np.zeros(100_000))
    if kind == "large integer":
        return add_one(10 ** 9)
    if kind == "not json":  # a well-formed header (codec.frame_body) before text that is not JSON
        text = b'{"callback": not json'
        body = struct.pack(">4sII", b"DLG\\x01", len(text), 0) + text
        os.write(worker.fd_out, struct.pack(">I", len(body)) + body)
    elif kind == "pickle":
        worker.write({"callback": {"name": "add_one", "args": {"__pickle__": "gASV"}, "kwargs": {}, "rng": None}})
    elif kind == "fields":
        worker.write({"callback": {"name": "add_one", "args": [1], "kwargs": {}, "rng": None, "extra": 1}})
    elif kind == "same":
        worker.write({"callback": {"name": "draw", "args": [2], "kwargs": {"__dict__": {}}, "rng": "same"}})
    elif kind == "generator":
        worker.write({"callback": {"name": "draw", "args": [2], "kwargs": {"__dict__": {}}, "rng": {"__tuple__": ["nope"]}}})
    answer = worker.read()
    if answer.get("ok") is not True:
        raise RuntimeError(answer.get("error"))
    return answer

def seeded_draws():
    np.random.seed(3)
    return draw(3), np.random.uniform(), draw(2), draw(1)
"""


@pytest.fixture
def process():
    spec = catalogue.load("gradient_checking")
    cells = [Cell("a", CELL_A, ["add_one", "draw"]), Cell("b", CELL_B, ["B"])]
    process = LearnerProcess(
        preamble=PREAMBLE,
        cells=cells,
        helper_dir=spec.release_dir,
        limits=spec.limits(),
        time_policy=TimePolicy(call=10, submission=60),
        stand_ins={"add_one": "", "draw": ""},
        reference=lambda: REFERENCE,
    )
    process.begin_function("B")
    yield process
    process.close()


def test_the_dependency_runs_in_the_grader_and_its_changes_come_back(process):
    learner = Learner(process)
    value, state = learner.B(np.arange(3.0))
    np.testing.assert_array_equal(value, [1.0, 2.0, 3.0])  # the reference, not the learner's 'broken'
    assert state["calls"] == 6  # the dict the reference filled in, carried back into the child's own
    np.testing.assert_array_equal(state["seen"], [1.0, 2.0, 3.0])
    assert learner.B(np.float64(2.5))[0] == 3.5
    # numpy's generator is the child's: seeded there, drawn by the reference, advanced there.
    # The state crosses in full only when the child drew numbers of its own since the last answer.
    mine = np.random.get_state()
    np.random.seed(3)
    expected = [np.random.uniform(size=3), np.random.uniform(), np.random.uniform(size=2), np.random.uniform(size=1)]
    expected.append(np.random.uniform(size=2))
    np.random.set_state(mine)
    got = [*learner.B(None, "draws"), learner.B(None, "more draws")]  # the next request goes on from the last
    for value, want in zip(got, expected):
        np.testing.assert_array_equal(value, want)
    # The grader's own generator is its own again after each request.
    assert callbacks._same_state(np.random.get_state(), mine)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("unknown", "'secret' is not a function the grader runs"),
        ("too many", "more than 20 calls"),
        ("large array", "exceed"),
        ("large integer", "integer argument above"),
        ("not json", "not plain data"),
        ("pickle", "not plain data"),
        ("fields", "a malformed call"),
        ("generator", "not a state of numpy's generator"),
        ("same", "the generator state it refers to was never sent"),
    ],
)
def test_a_forged_callback_costs_the_call_with_a_reason_and_the_grader_goes_on(process, monkeypatch, kind, reason):
    monkeypatch.setattr(callbacks, "MAX_CALLBACKS", 20)
    monkeypatch.setattr(callbacks, "MAX_BYTES", 200_000)
    learner = Learner(process)
    with pytest.raises(LearnerError) as error:
        learner.B(None, kind)
    assert reason in str(error.value) and "refused" in str(error.value)
    assert "the secret" not in str(error.value)
    # The same child answers the next check, its callbacks counted afresh.
    assert learner.B(1)[0] == 2
