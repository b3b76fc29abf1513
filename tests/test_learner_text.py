"""What learners read speaks to learners (issue 21, item 6).

The released notebooks state figures as what a learner will see, with the
hardware named, never as the authors' runs ("on our shared 2-core machine",
"no GPU was available", "across our executions"); the submit text names only
what a learner with the released folder has; and the learner's environment,
``assignments/requirements.txt``, holds what the notebooks import and
JupyterLab, never nbgrader (whose extensions show the staff's menus).
"""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from autograder.course import notebook_check, release
from autograder.grading import catalogue
from autograder.sandbox.statements import parse_cell

NAMES = catalogue.names()

# Authoring and machine talk: each is a phrase of the authors' about their own runs or tools.
AUTHORING = [
    r"\bour (shared|machine|runs|executions|dataset)\b",
    r"\bin our runs\b",
    r"\bacross (our )?executions\b",
    r"\bshared 2-core\b",
    r"\bno GPU was available\b",
    r"\bnot checked here\b",
    r"\bwhat we measured\b",
    r"\bwe measured?\b",
    r"\bfrom ours\b",
    r"\bthis checkout\b",
    r"\bdlgrade\b",
    r"\bnbgrader\b",
    r"\bexecute-solutions\b",
    r"\bsolutions/",
    r"\bautograder/",
]
_AUTHORING = re.compile("|".join(AUTHORING), re.IGNORECASE)


def authoring_talk(text: str) -> list:
    return [m.group(0) for m in _AUTHORING.finditer(text)]


@pytest.mark.parametrize("name", NAMES)
def test_released_notebooks_speak_to_learners(name):
    nb = nbformat.read(str(catalogue.load(name).released_notebook), as_version=4)
    found = {
        f"cell {number} ({cell.cell_type})": authoring_talk(cell.source)
        for number, cell in enumerate(nb.cells, start=1)
        if authoring_talk(cell.source)
    }
    assert not found, f"{name}: authoring or machine talk in the released notebook: {found}"


def test_the_phrase_list_catches_what_the_issue_quoted():
    for quoted in ("on our shared 2-core machine", "not checked here (no GPU was available)", "across our executions"):
        assert authoring_talk(quoted), quoted
    assert not authoring_talk("on a 2-core CPU each run takes 10 to 40 s; your run prints its times")


def test_the_submit_text_names_only_what_a_learner_has():
    """check_all() prints it in every notebook: no command a learner with the released folder lacks."""
    assert not authoring_talk(notebook_check.SUBMIT_TEXT), notebook_check.SUBMIT_TEXT
    assert ".ipynb" in notebook_check.SUBMIT_TEXT and "Restart & Run All" in notebook_check.SUBMIT_TEXT


def _requirement_names(text: str) -> set:
    return {re.split(r"[=<>;\[ ]", line.strip())[0].lower() for line in text.splitlines() if line.strip()[:1].isalnum()}


def test_the_learner_environment_has_what_the_notebooks_import_and_no_nbgrader():
    path = catalogue.root() / "assignments" / release.LEARNER_REQUIREMENTS_NAME
    text = path.read_text()
    assert text == release.learner_requirements(), "assignments/requirements.txt is stale: run `dlgrade release`"
    names = _requirement_names(text)
    assert "nbgrader" not in names and not any("nbgrader" in n for n in names)
    assert {"jupyterlab", "ipykernel"} <= names
    # Every third-party module a learner's folder imports is in it.
    distribution = {"numpy": "numpy", "sklearn": "scikit-learn", "matplotlib": "matplotlib", "tensorflow": "tensorflow"}
    imported = set()
    for name in NAMES:
        folder = catalogue.load(name).release_dir
        sources = [p.read_text() for p in folder.glob("*.py")]
        nb = nbformat.read(str(catalogue.load(name).released_notebook), as_version=4)
        sources += [c.source for c in nb.cells if c.cell_type == "code"]
        for source in sources:
            for node in ast.walk(parse_cell(source)[1]):
                if isinstance(node, ast.Import):
                    imported |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module.split(".")[0])
    needed = {distribution[m] for m in imported if m in distribution}
    assert needed == set(distribution.values()), imported
    assert all(any(n == d or n.startswith(d + "-") for n in names) for d in needed), (needed, names)
