"""``dlgrade new``: a scaffolded assignment releases and validates at once.

Runs in a temporary copy of the engine (autograder/ only), so the real
catalogue never sees the new assignment: the solution gets full marks, the
released stub zero, the public tests pass on the solution, the planted bug of
mutants.py costs its own function, and ``--function`` adds a graded function
that keeps all of that true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import nbformat
import pytest

from tests.nbtools import ROOT


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "autograder", root / "autograder", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (root / "solutions").mkdir()
    (root / "tests").mkdir()
    return root


def dlgrade(root, *args, check=True):
    env = {k: v for k, v in os.environ.items() if k != "DLGRADE_ROOT"}
    run = subprocess.run(
        [sys.executable, "-m", "autograder.cli", *args], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert run.returncode == 0, run.stdout + run.stderr
    return run


def python(root, source):
    env = {k: v for k, v in os.environ.items() if k != "DLGRADE_ROOT"}
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_new_writes_the_five_pieces_and_validates(copy):
    out = dlgrade(copy, "new", "layer_norm", "--functions", "ln_forward,ln_backward", "--args", "x, gamma").stdout
    for piece in (
        "solutions/layer_norm.ipynb",
        "assignments/layer_norm/layer_norm_utils.py",
        "assignments/layer_norm/public_tests.py",
        "autograder/suites/layer_norm/test_layer_norm.py",
        "autograder/suites/layer_norm/assignment.toml",
        "autograder/suites/layer_norm/mutants.py",
        "tests/test_layer_norm_suite.py",
        "assignments/layer_norm/layer_norm.ipynb",
    ):
        assert (copy / piece).is_file() and piece in out, piece

    nb = nbformat.read(copy / "solutions/layer_norm.ipynb", as_version=4)
    assert nb.metadata["dlgrade"]["assignment"] == "layer_norm"
    assert nb.metadata["dlgrade"]["outputs_from"]  # the solution ran: its outputs are stored
    meta = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"] for c in nb.cells if "nbgrader" in c.metadata}
    assert meta["imports"]["locked"] and not meta["imports"]["solution"]
    assert meta["ln_forward"]["solution"] and not meta["ln_forward"]["locked"]
    assert meta["test_ln_forward"]["grade"] and meta["test_ln_forward"]["points"] == 1
    assert all(m["schema_version"] == 3 for m in meta.values())
    assert (
        "def ln_forward(x, gamma):"
        in nb.cells[[c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells].index("ln_forward")].source
    )

    run = dlgrade(copy, "validate", "layer_norm")
    assert "layer_norm: ok" in run.stdout
    assert json.loads(python(copy, SHAPE).splitlines()[-1]) == {
        "rules": True,
        "exercises": [1, 2],
        "figure_problems": [],
        "figures": 2,
        "last": "check_all()",
        "submit": True,
        "stored_check": True,
        "check_all_source": True,
        "notebook_check": True,
        "drift": False,
    }
    assert "All public tests passed." in dlgrade(copy, "check", "solutions/layer_norm.ipynb").stdout
    assert dlgrade(copy, "check", "assignments/layer_norm/layer_norm.ipynb", check=False).returncode == 1


# The shape every assignment has (tests/test_release.py and tests/test_figures.py check it on the
# real ones), checked in the copy on the scaffolded one.
SHAPE = """
    import json, re, nbformat
    from autograder.course import execute, release, scaffold
    from autograder.grading import catalogue
    spec = catalogue.load("layer_norm")
    solution = nbformat.read(str(spec.solution_path), as_version=4)
    released = nbformat.read(str(spec.released_notebook), as_version=4)
    exercises = [int(n) for c in solution.cells if c.cell_type == "markdown"
                 for n in re.findall(r"Exercise (\\d+)", c.source)]
    count = len(spec.graded_functions)
    stored = "".join(o.get("text", "") for o in solution.cells[-1].get("outputs", []))
    public = (spec.release_dir / "public_tests.py").read_text()
    print(json.dumps({
        "rules": release.GRADING_RULES in released.cells[0].source,
        "exercises": exercises,
        "figure_problems": execute.figure_problems("layer_norm"),
        "figures": len(execute.stated_figures(solution)),
        "last": released.cells[-1].source.strip(),
        "submit": "submit" in released.cells[-2].source.lower(),
        "stored_check": f"{count} of {count} public tests passed." in stored,
        "check_all_source": public.endswith(scaffold.PUBLIC_CHECK_ALL),
        "notebook_check": (spec.release_dir / "notebook_check.py").read_text() == release.NOTEBOOK_CHECK.read_text(),
        "drift": release.drift("layer_norm"),
    }))
"""


def test_every_assignment_ends_its_public_tests_with_the_scaffolds_check_all():
    from autograder.course.scaffold import PUBLIC_CHECK_ALL
    from autograder.grading import catalogue

    for name in catalogue.names():
        text = (catalogue.load(name).release_dir / "public_tests.py").read_text()
        assert text.endswith(PUBLIC_CHECK_ALL), (
            f"assignments/{name}/public_tests.py: check_all differs from the scaffold's"
        )


def test_the_planted_bug_file_costs_its_own_function(copy):
    out = python(
        copy,
        """
        import json, tempfile, pathlib, nbformat
        from autograder.course.scaffold import load_mutants
        from autograder.grading import catalogue
        from autograder.grading.grade import grade_notebook
        spec = catalogue.load("layer_norm")
        lost = {}
        for mutant in load_mutants("layer_norm"):
            nb = nbformat.read(str(spec.solution_path), as_version=4)
            cell = next(c for c in nb.cells if catalogue.nbgrader_meta(c).get("grade_id") == mutant.function)
            cell.source = cell.source.replace(*mutant.edit)
            path = pathlib.Path(tempfile.mkdtemp()) / "m.ipynb"
            nbformat.write(nb, str(path))
            result = grade_notebook(path, "layer_norm")
            lost[mutant.name] = sorted(f for f, e in result["functions"].items() if e["score"] < e["max_score"])
        print(json.dumps(lost))
    """,
    )
    assert json.loads(out.splitlines()[-1]) == {
        "ln_forward_halved": ["ln_forward"],
        "ln_backward_halved": ["ln_backward"],
    }


def test_new_function_adds_cells_tests_and_a_mutant(copy):
    dlgrade(copy, "new", "layer_norm", "--function", "ln_step", "--args", "w, dw", "--points", "2")
    nb = nbformat.read(copy / "solutions/layer_norm.ipynb", as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    # after the last public test cell, before the demo
    assert ids.index("ln_step") == ids.index("test_ln_backward") + 2
    assert ids.index("test_ln_step") == ids.index("ln_step") + 1
    assert nb.cells[ids.index("test_ln_step")].metadata["nbgrader"]["points"] == 2
    assert "def ln_step_test(" in (copy / "assignments/layer_norm/public_tests.py").read_text()
    assert 'graded("ln_step", points=2)' in (copy / "autograder/suites/layer_norm/test_layer_norm.py").read_text()
    assert '"ln_step"' in (copy / "autograder/suites/layer_norm/mutants.py").read_text()
    assert "layer_norm: ok" in dlgrade(copy, "validate", "layer_norm").stdout
    shape = json.loads(python(copy, SHAPE).splitlines()[-1])
    assert shape["exercises"] == [1, 2, 3] and shape["figure_problems"] == [] and shape["stored_check"], shape


def test_new_refuses_existing_pieces_and_bad_names(copy):
    again = dlgrade(copy, "new", "layer_norm", check=False)
    assert again.returncode == 2 and "already has" in again.stderr
    bad = dlgrade(copy, "new", "Layer-Norm", check=False)
    assert bad.returncode == 2 and "lowercase Python identifier" in bad.stderr
    twice = dlgrade(copy, "new", "layer_norm", "--function", "ln_step", check=False)
    assert twice.returncode == 2 and "already has a graded cell" in twice.stderr
    missing = dlgrade(copy, "new", "nothing_here", "--function", "f", check=False)
    assert missing.returncode == 2 and "create the assignment first" in missing.stderr
