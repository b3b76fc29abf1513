"""One source of truth: released notebooks are generated from solutions/."""
from __future__ import annotations

import nbformat
import pytest

from autograder.grading import catalogue

from autograder.course import release
from autograder.course.release import CODE_STUB

NAMES = catalogue.names()


def test_every_assignment_folder_has_the_same_shape():
    assert NAMES, "no assignment discovered"
    for name in NAMES:
        spec = catalogue.load(name)
        folder = spec.released_notebook.parent
        for piece in (f"{name}.ipynb", f"{name}_utils.py", "public_tests.py"):
            assert (folder / piece).is_file(), f"{folder / piece} is missing"
        suite = catalogue.ROOT / "autograder" / "suites" / name
        assert (suite / f"test_{name}.py").is_file() and (suite / "assignment.toml").is_file()


@pytest.mark.parametrize("name", NAMES)
def test_released_notebook_has_not_drifted(name):
    assert not release.drift(name), f"assignments/{name}/{name}.ipynb is stale: run `dlgrade release`"


@pytest.mark.parametrize("name", NAMES)
def test_released_notebook_hides_solutions_and_hidden_tests(name):
    spec = catalogue.load(name)
    released = nbformat.read(str(spec.released_notebook), as_version=4)
    text = nbformat.writes(released)
    assert "### BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    graded = {c.metadata["nbgrader"]["grade_id"]: c for c in released.cells
              if c.metadata.get("nbgrader", {}).get("solution")}
    assert set(spec.graded_functions) <= set(graded)
    for function in spec.graded_functions:
        # nbgrader indents the stub to the solution region's indentation.
        stub_lines = [line.strip() for line in graded[function].source.splitlines()]
        assert all(line in stub_lines for line in CODE_STUB.splitlines()), f"{function} is not stubbed"
    assert all(not c.get("outputs") for c in released.cells if c.cell_type == "code")


def test_drift_is_detected(tmp_path, monkeypatch):
    """The drift check can fail: a hand edit of a released notebook is caught."""
    name = NAMES[0]
    spec = catalogue.load(name)
    nb = nbformat.read(str(spec.released_notebook), as_version=4)
    nb.cells[0].source += "\n\nA hand edit."
    edited = tmp_path / spec.released_notebook.name
    nbformat.write(nb, str(edited))
    monkeypatch.setattr(type(spec), "released_notebook", property(lambda self: edited))
    monkeypatch.setattr(catalogue, "load", lambda _name: spec)
    assert release.drift(name)


@pytest.mark.parametrize("name", NAMES)
def test_helper_module_imports_nothing_heavy(name):
    """The grader imports <name>_utils before every submission: sklearn, matplotlib and
    TensorFlow must be imported lazily inside the functions that need them."""
    import subprocess
    import sys

    spec = catalogue.load(name)
    code = (f"import sys; import {name}_utils; "
            "print(sorted(m for m in ('sklearn', 'matplotlib', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=spec.release_dir, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"{name}_utils imports {out.stdout.strip()} at module level"
