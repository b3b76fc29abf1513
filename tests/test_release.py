"""One source of truth: released notebooks are generated from solutions/."""

from __future__ import annotations

import nbformat
import pytest

from autograder.course import release
from autograder.course.release import CODE_STUB
from autograder.grading import catalogue

NAMES = catalogue.names()


def test_every_assignment_folder_has_the_same_shape():
    assert NAMES, "no assignment discovered"
    for name in NAMES:
        spec = catalogue.load(name)
        folder = spec.released_notebook.parent
        for piece in (f"{name}.ipynb", f"{name}_utils.py", "public_tests.py", release.SUBMIT_CLIENT_NAME):
            assert (folder / piece).is_file(), f"{folder / piece} is missing"
        suite = catalogue.root() / "autograder" / "suites" / name
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
    graded = {
        c.metadata["nbgrader"]["grade_id"]: c for c in released.cells if c.metadata.get("nbgrader", {}).get("solution")
    }
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


@pytest.mark.parametrize("edit", ["stale", "missing"])
def test_a_stale_or_missing_submit_client_is_drift(tmp_path, monkeypatch, edit):
    """assignments/<name>/dlgrade_submit.py is autograder/service/client.py under release's header."""
    import shutil

    name = NAMES[0]
    spec = catalogue.load(name)
    folder = tmp_path / name
    shutil.copytree(spec.release_dir, folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(type(spec), "released_notebook", property(lambda self: folder / f"{name}.ipynb"))
    monkeypatch.setattr(catalogue, "load", lambda _name: spec)
    shutil.copy(catalogue.root() / "assignments" / release.LEARNER_REQUIREMENTS_NAME, tmp_path)
    assert not release.drift(name)
    assert (folder / release.SUBMIT_CLIENT_NAME).read_text() == release.submit_client()
    assert release.submit_client().endswith(release.SUBMIT_CLIENT.read_text())
    client = folder / release.SUBMIT_CLIENT_NAME
    if edit == "stale":
        client.write_text(client.read_text().replace("MAX_BYTES = 16", "MAX_BYTES = 32"))
    else:
        client.unlink()
    assert release.drift(name)


@pytest.mark.parametrize("name", NAMES)
def test_helper_module_imports_nothing_heavy(name):
    """The grader imports <name>_utils before every submission: sklearn, matplotlib and
    TensorFlow must be imported lazily inside the functions that need them."""
    import subprocess
    import sys

    spec = catalogue.load(name)
    code = (
        f"import sys; import {name}_utils; "
        "print(sorted(m for m in ('sklearn', 'matplotlib', 'tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=spec.release_dir, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"{name}_utils imports {out.stdout.strip()} at module level"


# ------------------------------------------------------------ what a learner sees


@pytest.mark.parametrize("name", NAMES)
def test_first_cell_states_how_the_notebook_is_graded(name):
    released = nbformat.read(str(catalogue.load(name).released_notebook), as_version=4)
    assert released.cells[0].cell_type == "markdown"
    assert release.GRADING_RULES in released.cells[0].source


@pytest.mark.parametrize("name", NAMES)
def test_last_cell_checks_the_whole_notebook(name):
    released = nbformat.read(str(catalogue.load(name).released_notebook), as_version=4)
    assert released.cells[-1].cell_type == "code" and released.cells[-1].source.strip() == "check_all()"
    assert "submit" in released.cells[-2].source.lower()
    folder = catalogue.load(name).release_dir
    assert (folder / "notebook_check.py").read_text() == release.NOTEBOOK_CHECK.read_text()


def test_check_all_shows_a_table_of_every_public_test(capsys):
    from tests.nbtools import load_public_tests

    name = "initialization"
    public_tests = load_public_tests(name)
    reference = vars(catalogue.reference(name))
    public_tests.check_all(dict(reference))
    out = capsys.readouterr().out
    for function in catalogue.load(name).graded_functions:
        assert any(line.startswith(function) and "passed" in line for line in out.splitlines()), out
    assert "3 of 3 public tests passed." in out and "How to submit" in out

    def stub(layers_dims):
        raise NotImplementedError()

    def wrong(layers_dims):
        return {}

    namespace = dict(reference, initialize_parameters_zeros=stub, initialize_parameters_random=wrong)
    del namespace["initialize_parameters_he"]
    public_tests.check_all(namespace)
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("initialize_")}
    assert "not done" in rows["initialize_parameters_zeros"]
    assert "failed" in rows["initialize_parameters_random"] and "missing keys" in rows["initialize_parameters_random"]
    assert "missing" in rows["initialize_parameters_he"]


@pytest.mark.parametrize("name", NAMES)
def test_exercises_are_numbered_like_the_graded_functions(name):
    """Every notebook labels its exercises Exercise 1, 2, ... one number per graded function."""
    import re

    spec = catalogue.load(name)
    nb = nbformat.read(str(spec.solution_path), as_version=4)
    numbers = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for match in re.finditer(r"Exercises? (\d+)((?: and \d+)*)", cell.source):
                numbers += [int(match[1])] + [int(n) for n in re.findall(r"\d+", match[2])]
    assert numbers == list(range(1, len(spec.graded_functions) + 1))


@pytest.mark.parametrize("name", NAMES)
def test_plot_helpers_draw_and_return_nothing(name):
    """A cell ending with a plot call must show the figure, not `<Axes: ...>` above it."""
    import ast

    path = catalogue.load(name).release_dir / f"{name}_utils.py"
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("plot_"):
            returns = [r for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None]
            assert not returns, f"{name}_utils.{node.name} returns a value; a notebook cell would print it"


def test_readme_says_how_to_get_a_kernel_and_its_commands_work(tmp_path):
    """The learner section gives a kernel with numpy, TensorFlow and scikit-learn, and the commands run."""
    import importlib.util
    import json
    import subprocess
    import sys
    from pathlib import Path

    readme = (catalogue.root() / "README.md").read_text()
    learners = readme[readme.index("## Learners") : readme.index("## Graders")]
    # The learner's environment, from the released folder (its requirements file says the same commands).
    requirements = (catalogue.root() / "assignments" / release.LEARNER_REQUIREMENTS_NAME).read_text()
    for command in (
        ".venv/bin/python -m pip install -r requirements.txt",
        ".venv/bin/jupyter lab initialization/initialization.ipynb",
        ".venv/bin/python -m ipykernel install --user --name dl-course",
    ):
        assert command in learners and command in requirements, command
    for module in ("numpy", "tensorflow", "sklearn", "matplotlib", "ipykernel", "jupyterlab"):
        assert importlib.util.find_spec(module), f"{module} is not installed in the project's environment"
    assert (Path(sys.executable).parent / "jupyter-lab").exists()
    # The kernel-spec command, into a scratch prefix instead of the user's home.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ipykernel",
            "install",
            "--prefix",
            str(tmp_path),
            "--name",
            "dl-course",
            "--display-name",
            "Python (deep learning course)",
        ],
        check=True,
        capture_output=True,
    )
    spec = json.loads((tmp_path / "share" / "jupyter" / "kernels" / "dl-course" / "kernel.json").read_text())
    assert (
        spec["display_name"] == "Python (deep learning course)"
        and Path(spec["argv"][0]).resolve() == Path(sys.executable).resolve()
    )


def test_readme_table_lists_every_assignment():
    """The README's assignment table has a row per assignment the catalogue discovers (docs/AUTHORING.md:
    "Add the README table row yourself"); a new assignment without its row fails here."""
    import re

    readme = (catalogue.root() / "README.md").read_text()
    table = readme[: readme.index("## ")] if "## " in readme else readme
    rows = re.findall(r"^\| \d+ \| `(\w+)` \|", table, flags=re.M)
    assert sorted(rows) == sorted(NAMES), rows
