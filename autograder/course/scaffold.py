"""``dlgrade new``: the five pieces of a new assignment, and graded functions added to one.

``new_assignment(name)`` writes, from templates, everything an assignment has
(see docs/AUTHORING.md): the solution notebook with its nbgrader and dlgrade
metadata, the helper module, the public tests, the hidden suite with its
assignment.toml, a planted-bug file ``mutants.py`` and a test stub
``tests/test_<name>_suite.py``, then releases the stub notebook and runs the
solution (``dlgrade execute-solutions``) to store its outputs. The notebook has
the shape of every other one: the grading rules in its first cell, one
"Exercise N" per graded function, a demo whose printed figure the markdown
states (marked, so the figure check covers it) and a last ``check_all()`` cell.
The result validates at once (the placeholder solution earns full marks, the
stub zero), so an author replaces placeholders one at a time and runs
``dlgrade execute-solutions`` and ``dlgrade validate`` after each.

``add_function(name, function)`` appends one graded function to an existing
assignment: the markdown (the next exercise number), graded and public-test
cells after the last graded function's test cell of the solution notebook, a
public test stub in public_tests.py, a hidden test stub in the suite and a
planted bug; then it releases and runs the solution again.

The placeholder body of every graded function is ``return 2 * <first argument>``,
checked against the reference on random arrays: enough to prove the pieces
are wired together, nothing an author should keep.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

import nbformat

from autograder.grading import catalogue

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class ScaffoldError(Exception):
    """A name is not usable or a piece already exists; ``str()`` says which."""


def _nbgrader(
    grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = True, points: float | None = None
) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _check_identifier(word: str, what: str) -> None:
    if not NAME_PATTERN.match(word) or keyword.iskeyword(word):
        raise ScaffoldError(f"{what} {word!r} must be a lowercase Python identifier (letters, digits, _)")


def _arguments(args: str) -> list:
    names = [a.strip() for a in args.split(",") if a.strip()]
    if not names:
        raise ScaffoldError("a graded function needs at least one argument")
    for arg in names:
        _check_identifier(arg, "argument")
    return names


# ---------------------------------------------------------------------- cells


def function_cells(function: str, args: list, points: float, number: int = 1) -> list:
    """Markdown (Exercise ``number``), graded cell and public-test cell of one graded function."""
    signature = ", ".join(args)
    arg_doc = "\n".join(f"    - {a}: TODO describe, with its shape, e.g. (n, m)" for a in args)
    markdown = nbformat.v4.new_markdown_cell(
        f"### `{function}`\n\n**Exercise {number}.** Implement `{function}({signature})`.\n\n"
        f"TODO: what `{function}` computes, the formula in LaTeX, the shapes, a hint."
    )
    graded = nbformat.v4.new_code_cell(
        f"# GRADED FUNCTION: {function}\n\n"
        f"def {function}({signature}):\n"
        f'    """\n    TODO: one line saying what {function} returns.\n\n'
        f"    Inputs:\n{arg_doc}\n\n"
        f'    Returns:\n    - TODO, with its shape\n    """\n'
        f"    ### BEGIN SOLUTION\n"
        f"    return 2 * {args[0]}  # TODO: the reference solution\n"
        f"    ### END SOLUTION",
        metadata=_nbgrader(function, solution=True, locked=False),
    )
    test = nbformat.v4.new_code_cell(
        f"{function}_test({function})", metadata=_nbgrader(f"test_{function}", grade=True, points=points)
    )
    return [markdown, graded, test]


SUBMIT_MARKDOWN = """## Check the whole notebook, then submit

The next cell runs the public test of every graded function and shows a table of what passed,
then how to submit. Run it last, after running every cell above (Kernel > Restart & Run All is the
surest way: it also shows that your notebook runs top to bottom)."""


def solution_notebook(name: str, title: str, functions: list) -> nbformat.NotebookNode:
    from autograder.course.release import GRADING_RULES

    nb = nbformat.v4.new_notebook()
    nb.metadata["dlgrade"] = {"assignment": name}
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(
        nbformat.v4.new_markdown_cell(
            f"# {title}\n\nTODO: the goals, the math, what you will build.\n\n" + GRADING_RULES
        )
    )
    nb.cells.append(
        nbformat.v4.new_code_cell(
            f"import numpy as np\nfrom {name}_utils import load_data\n\n%matplotlib inline",
            metadata=_nbgrader("imports"),
        )
    )
    nb.cells.append(nbformat.v4.new_code_cell("from public_tests import *", metadata=_nbgrader("import_public_tests")))
    for number, (function, args, points) in enumerate(functions, start=1):
        nb.cells.extend(function_cells(function, args, points, number))
    nb.cells.append(nbformat.v4.new_markdown_cell("## Demo\n\nTODO: train or use the functions above."))
    nb.cells.append(
        nbformat.v4.new_code_cell('X, Y = load_data()\nprint("examples:", X.shape[1], " features:", X.shape[0])')
    )
    # A figure the text states is marked with the label printed before it; `dlgrade validate`
    # and tests/test_figures.py check it against the stored outputs of `dlgrade execute-solutions`.
    nb.cells.append(
        nbformat.v4.new_markdown_cell(
            '**What you will see.** The data set has 100<!-- figure: "examples:" --> examples of '
            '2<!-- figure: "features:" --> features. TODO: the figures of your demo, each marked '
            "(see autograder/course/execute.py)."
        )
    )
    nb.cells.append(nbformat.v4.new_markdown_cell(SUBMIT_MARKDOWN))
    nb.cells.append(nbformat.v4.new_code_cell("check_all()"))
    return nb


# ---------------------------------------------------------------------- files

UTILS = '''"""Helpers for the {title} assignment: data, provided model code, plotting.

Plain numpy; datasets are generated or loaded from sklearn's bundled data,
seeded, never downloaded. Import matplotlib inside plotting functions only,
so the grader's imports cell stays fast.
"""
import numpy as np


def load_data(m=100, n_x=2, seed=1):
    """TODO: the assignment's data set. Returns X (n_x, m) and Y (1, m) in {{0, 1}}."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n_x, m)
    Y = (X.sum(axis=0, keepdims=True) > 0).astype(np.float64)
    return X, Y
'''

PUBLIC_HEADER = '''"""Public tests for the {title} assignment, run inside the notebook.

Each `<function>_test(target, ...)` runs a few friendly checks on small fixed
inputs, prints "All tests passed." or raises an AssertionError that says what
is wrong. A test may take more of the notebook's functions than the one under
test, as optional parameters named like them (a backward test takes the
learner's forward too: `def f_backward_test(target, f_forward=None)`, called as
`f_backward_test(f_backward, f_forward)` in the notebook's test cell;
`check_all()` and `dlgrade check` pass them by name). The hidden grader runs
more checks on other inputs.
"""
import numpy as np
'''

# The last function of every public_tests.py (tests/test_scaffold.py checks they are all this text).
PUBLIC_CHECK_ALL = '''

def check_all(namespace=None):
    """Run every public test of the notebook and print a table of what passed, then how to submit.

    The notebook's last cell calls ``check_all()``; ``namespace`` defaults to the
    variables of the notebook that calls it.
    """
    import inspect
    import sys

    from notebook_check import check_all as print_check_table  # copied here by `dlgrade release`

    if namespace is None:
        namespace = inspect.currentframe().f_back.f_globals
    print_check_table(sys.modules[__name__], namespace)
'''

PUBLIC_FUNCTION = """

def {function}_test(target):
    # TODO: friendly checks on small fixed inputs
    {inputs}
    out = target({call})
    assert np.shape(out) == np.shape({first}), f"{function} returned shape {{np.shape(out)}}, expected {{np.shape({first})}}"
    assert np.allclose(out, 2 * {first}), "{function}: TODO say what is wrong and how to fix it"
    print("All tests passed.")
"""

SUITE_HEADER = '''"""Hidden suite for the {title} assignment.

Runs in the trusted grader process. Learner calls cross into the sandbox and
return plain data; every failure goes through autograder.grading.checks so no
expected array is ever printed. Compare with ``reference`` on several inputs
per function; where randomness is involved test the math (statistics,
consistency with the returned cache), never one RNG call order.
"""
import numpy as np
import pytest

from autograder.grading.checks import check_close, seeded_rng  # also: check, check_shape, CheckFailed
'''

SUITE_FUNCTION = '''

@pytest.mark.graded("{function}", points={points:g})
def test_{function}_matches_reference(learner, reference):
    """{function} matches the reference on several random inputs (TODO: name the property)."""
    for seed, shape in [(1, (3, 4)), (2, (1, 7)), (3, (5, 2))]:
        rng = seeded_rng(seed)
        {inputs}
        expected = reference.{function}({call})
        got = learner.{function}({call})
        check_close(got, expected, f"{function} on inputs of shape {{shape}}",
                    hint="TODO: the formula, written as the learner would")
'''

TOML = """title = "{title}"
# Time (grading/time_policy.py): each graded function gets a fixed share, submission_timeout / n,
# which must hold 3 x call_timeout (more than 4 functions: lower call_timeout or raise the total).
call_timeout = 10          # seconds per learner call
submission_timeout = 120   # seconds of learner time for the whole submission
memory_mb = 4096
uses_tensorflow = false
"""

MUTANTS_HEADER = '''"""Planted bugs of the {title} assignment: each must cost only its own function.

``dlgrade validate {name} --mutants`` applies each edit (an exact text of the
function's solution source, replaced once) to the solution notebook, grades
it, and fails unless the mutant loses points on the functions in ``costs``
(default: its own) and keeps full marks everywhere else.
"""
from autograder.course.mutants import Mutant

MUTANTS = [
'''

MUTANT_LINE = """    # TODO: a plausible mistake in {function}
    Mutant("{function}_halved", "{function}", ("return 2 * {first}", "return {first}")),
"""

TEST_STUB = '''"""The {title} suite: planted bugs, other correct answers, helper math.

TODO: alternatives the hidden suite must accept (full marks), each written
differently from the reference; planted bugs beyond mutants.py with the
feedback they must give. See tests/test_batch_norm_suite.py for an example.
"""
from __future__ import annotations

from autograder.grading import catalogue
from autograder.course import release

A = "{name}"


def test_{name}_is_discovered_and_released():
    spec = catalogue.load(A)
    assert spec.graded_functions and spec.max_score > 0
    assert not release.drift(A), "run: dlgrade release {name}"
'''


def _inputs(args: list, rng: str, shape: str) -> tuple[str, str]:
    """Source that draws one random array per argument, and the call's argument list."""
    lines = "; ".join(f"{a} = {rng}.randn(*{shape})" for a in args)
    return lines, ", ".join(args)


def _public_function(function: str, args: list) -> str:
    inputs, call = _inputs(args, "np.random.RandomState(0)", "(2, 3)")
    return PUBLIC_FUNCTION.format(function=function, inputs=inputs, call=call, first=args[0])


def _suite_function(function: str, args: list, points: float) -> str:
    inputs, call = _inputs(args, "rng", "shape")
    return SUITE_FUNCTION.format(function=function, inputs=inputs, call=call, points=points)


def paths(name: str, root: Path | None = None) -> dict:
    root = root or catalogue.root()
    suite = catalogue.SUITES_DIR / name
    return {
        "solution": root / "solutions" / f"{name}.ipynb",
        "utils": root / "assignments" / name / f"{name}_utils.py",
        "public": root / "assignments" / name / "public_tests.py",
        "suite": suite / f"test_{name}.py",
        "toml": suite / "assignment.toml",
        "mutants": suite / "mutants.py",
        "test": root / "tests" / f"test_{name}_suite.py",
    }


def new_assignment(name: str, title: str | None = None, functions=(), points: float = 1, execute: bool = True) -> list:
    """Write every piece of assignment ``name``; returns the paths written.

    ``functions`` are (function, "arg1, arg2") pairs; without any, one
    placeholder ``example_function(x)``. ``execute``: run the solution and store
    its outputs (a few seconds: a kernel starts), as ``dlgrade execute-solutions``.
    """
    _check_identifier(name, "assignment name")
    title = title or name.replace("_", " ").capitalize()
    where = paths(name)
    present = [p for p in where.values() if p.exists()]
    if present:
        raise ScaffoldError(
            f"{name} already has {', '.join(str(p) for p in present)}; "
            f"use `dlgrade new {name} --function FN` to add a graded function"
        )
    specs = []
    for function, args in functions or [("example_function", "x")]:
        _check_identifier(function, "function name")
        specs.append((function, _arguments(args), points))

    texts = {
        "utils": UTILS.format(title=title),
        "public": PUBLIC_HEADER.format(title=title)
        + "".join(_public_function(f, a) for f, a, _ in specs)
        + PUBLIC_CHECK_ALL,
        "suite": SUITE_HEADER.format(title=title) + "".join(_suite_function(f, a, p) for f, a, p in specs),
        "toml": TOML.format(title=title),
        "mutants": MUTANTS_HEADER.format(title=title, name=name)
        + "".join(MUTANT_LINE.format(function=f, first=a[0]) for f, a, _ in specs)
        + "]\n",
        "test": TEST_STUB.format(title=title, name=name),
    }
    for key, text in texts.items():
        where[key].parent.mkdir(parents=True, exist_ok=True)
        where[key].write_text(text, encoding="utf-8")
    where["solution"].parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(solution_notebook(name, title, specs), str(where["solution"]))
    return list(where.values()) + [_release(name, execute)]


def add_function(name: str, function: str, args: str = "x", points: float = 1, execute: bool = True) -> list:
    """Append graded function ``function`` to assignment ``name``; returns the paths changed."""
    _check_identifier(function, "function name")
    arg_names = _arguments(args)
    where = paths(name)
    if not where["solution"].exists():
        raise ScaffoldError(f"no {where['solution']}: create the assignment first with `dlgrade new {name}`")
    nb = nbformat.read(str(where["solution"]), as_version=4)
    ids = [catalogue.nbgrader_meta(c).get("grade_id") for c in nb.cells]
    if function in ids:
        raise ScaffoldError(f"{name} already has a graded cell {function!r}")
    # After the last public test cell (the demos come after the graded functions), else at the end.
    tests = [i for i, grade_id in enumerate(ids) if str(grade_id).startswith("test_")]
    at = tests[-1] + 1 if tests else len(nb.cells)
    number = sum(bool(catalogue.nbgrader_meta(c).get("solution")) for c in nb.cells) + 1
    nb.cells[at:at] = function_cells(function, arg_names, points, number)
    nbformat.write(nb, str(where["solution"]))
    changed = [where["solution"]]
    for key, text, marker in (
        ("public", _public_function(function, arg_names), f"def {function}_test("),
        ("suite", _suite_function(function, arg_names, points), f'graded("{function}"'),
    ):
        current = where[key].read_text(encoding="utf-8") if where[key].exists() else ""
        if marker not in current:
            where[key].write_text(current + text, encoding="utf-8")
            changed.append(where[key])
    mutants = where["mutants"].read_text(encoding="utf-8") if where["mutants"].exists() else ""
    if mutants.rstrip().endswith("]") and f'"{function}"' not in mutants:
        body = mutants.rstrip()[:-1]
        where["mutants"].write_text(
            body + MUTANT_LINE.format(function=function, first=arg_names[0]) + "]\n", encoding="utf-8"
        )
        changed.append(where["mutants"])
    catalogue.load.cache_clear()
    return changed + [_release(name, execute)]


def load_mutants(name: str) -> list:
    """The ``MUTANTS`` of ``autograder/suites/<name>/mutants.py`` (empty without the file)."""
    from autograder.course import mutants

    return list(mutants.load(name).mutants)


def _release(name: str, execute: bool = False) -> Path:
    """Release ``name`` (which copies notebook_check.py, which check_all() imports), then run its solution."""
    from autograder.course import release

    catalogue.load.cache_clear()
    released = release.release(name)
    if execute:
        from nbclient.exceptions import CellExecutionError

        from autograder.course.execute import execute_solution

        try:
            execute_solution(name)
        except CellExecutionError as exc:
            raise ScaffoldError(
                f"the pieces are written, but solutions/{name}.ipynb failed to run: "
                f"{str(exc).strip().splitlines()[-1][:300]}; fix it, then run "
                f"`dlgrade execute-solutions {name}`"
            ) from exc
        catalogue.load.cache_clear()
        released = release.release(name)  # the kernel filled in the notebook's language_info
    return released
