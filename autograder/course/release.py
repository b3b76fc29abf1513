"""Generate the released notebooks from the solutions with nbgrader's preprocessors.

nbgrader is used as a library: its preprocessors run on the solution notebook
in memory, without a course database or a course directory. The released
notebook is a pure function of the solution notebook, so ``check_release``
can tell whether ``assignments/`` has drifted. The whole-notebook check the
last cell runs (``notebook_check.py``) is copied into every assignment folder
from its one source here (edit it there only), so a learner's folder stands
alone; so is ``assignments/requirements.txt``, the learner's environment
(:data:`LEARNER_REQUIREMENTS`: what the notebooks need, no nbgrader). The submit client
(autograder/service/client.py, standard library only) is copied the same way, as
``dlgrade_submit.py``: a learner hands in from the notebook's last cell with
``from dlgrade_submit import submit; submit()`` without dlgrade installed (docs/SUBMIT.md).
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    LockCells,
)
from traitlets.config import Config

from autograder.grading import catalogue

NOTEBOOK_CHECK = Path(__file__).with_name("notebook_check.py")
NOTEBOOK_CHECK_NAME = "notebook_check.py"  # its name in each assignment folder (public_tests imports it)
SUBMIT_CLIENT = Path(__file__).parent.parent / "service" / "client.py"
SUBMIT_CLIENT_NAME = "dlgrade_submit.py"  # its name in each assignment folder (the learner imports it)
_SUBMIT_CLIENT_HEADER = """\
# Hand in this folder's notebook to the course's dlgrade server: `from dlgrade_submit import submit; submit()`.
# Written by `dlgrade release` from autograder/service/client.py: edit that file, not this copy.
"""


def submit_client() -> str:
    """dlgrade_submit.py, as every assignment folder has it: the submit client, under a header."""
    return _SUBMIT_CLIENT_HEADER + SUBMIT_CLIENT.read_text(encoding="utf-8")


# How the notebook is graded, stated in the first cell of every solution (and
# so of every released notebook); tests/test_release.py checks it is there.
# It describes the statement rule of autograder/sandbox/statements.py.
GRADING_RULES = """\
**How this notebook is graded.** Write your code in the graded cells, between `# YOUR CODE HERE`
and the end of each graded function, and keep the functions' names. The grader takes the
*definitions* of every code cell, top to bottom, and then calls your functions with its own inputs:

- it runs imports, `def` and `class` statements, and assignments to names (`x = ...`, `a, b = ...`)
  whose value is built only from numbers, strings, names defined by lines it runs, arithmetic,
  comparisons, lambdas, tuples, lists, sets and dicts, and these calls (with arguments of the same kind):
  - numpy's `array`, `asarray`, `zeros`, `ones`, `full`, `eye`, `identity`, `arange`, `linspace`,
    `dtype`, `float16`, `float32`, `float64`, `int8`, `int16`, `int32`, `int64`, `uint8`, `bool_`,
    `random.default_rng`, `random.RandomState` and `random.SeedSequence`;
  - tensorflow's `constant` and `random.Generator.from_seed`;
  - math's `sqrt`, `log` and `exp`;
  - the builtins `range`, `len`, `int`, `float`, `complex`, `str`, `bool`, `list`, `tuple`, `dict`,
    `set`, `frozenset`, `abs`, `min`, `max` and `round`;

  for example `LEARNING_RATE = 0.01`, `W = np.array([[1.0, 2.0]])` or `rng = np.random.default_rng(0)`.
  A call may go through any name an import gave it, in any cell above: `npr.default_rng(0)` after
  `import numpy.random as npr`, `default_rng(0)` after `from numpy.random import default_rng`.
  A name you rebind after importing it (`default_rng = my_function`, `def default_rng(...)`, a loop
  variable) no longer counts as the import. Your functions may use helpers, constants and imports from any cell;
- it does **not** run anything else: training runs, plots, `print`, loops, `if` blocks, `np.random.seed(...)`,
  item or attribute assignments (`d["k"] = 1`), or assignments computed by other calls such as
  `parameters = model(...)`; a line that holds such code is not run at all (`x = 1; train()`).
  A graded function must not need a variable that only such code creates; the report lists what was not run;
- each function is scored on its own: a cell that fails or hangs costs only what it defines.

The last cell runs every public test and shows a table of what passed; the hidden tests check more."""

# The learner's environment (assignments/requirements.txt): what the notebooks, helper modules and
# public tests import, and JupyterLab with a kernel, at the versions the grader runs (constraints.txt).
# nbgrader is left out: its JupyterLab extensions show the staff's menus (Create Assignment, Formgrader).
LEARNER_PACKAGES = ("numpy", "scikit-learn", "matplotlib", "tensorflow-cpu", "jupyterlab", "ipykernel")
LEARNER_REQUIREMENTS_NAME = "requirements.txt"
_LEARNER_HEADER = """\
# What the notebooks in this folder need: numpy, scikit-learn, matplotlib, TensorFlow, and
# JupyterLab with a Python kernel. In this folder:
#   python3 -m venv .venv
#   .venv/bin/python -m pip install -r requirements.txt
#   .venv/bin/jupyter lab initialization/initialization.ipynb
# or, for a Jupyter you already have, register the kernel and pick "Python (deep learning course)":
#   .venv/bin/python -m ipykernel install --user --name dl-course --display-name "Python (deep learning course)"
"""


def learner_requirements() -> str:
    """assignments/requirements.txt: LEARNER_PACKAGES pinned as in constraints.txt (tensorflow off x86_64)."""
    pins = {}
    constraints = catalogue.root() / "constraints.txt"  # a course without one gets the names unpinned
    for line in (constraints.read_text(encoding="utf-8") if constraints.is_file() else "").splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[name.lower().replace("_", "-")] = version.strip()
    lines = []
    for package in LEARNER_PACKAGES:
        pin = f"=={pins[package]}" if package in pins else ""
        if package == "tensorflow-cpu":
            lines += [
                f"tensorflow-cpu{pin}; platform_machine == 'x86_64'",
                f"tensorflow{pin}; platform_machine != 'x86_64'",
            ]
        else:
            lines.append(package + pin)
    return _LEARNER_HEADER + "\n".join(lines) + "\n"


# The stub a learner sees in place of ### BEGIN SOLUTION ... ### END SOLUTION.
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def _preprocessors():
    config = Config()
    config.ClearSolutions.code_stub = {"python": CODE_STUB}
    config.ClearSolutions.enforce_metadata = True
    config.LockCells.lock_grade_cells = True
    config.LockCells.lock_readonly_cells = True
    config.LockCells.lock_solution_cells = False
    return [
        CheckCellMetadata(config=config),
        LockCells(config=config),
        ClearSolutions(config=config),
        ClearOutput(config=config),
        ClearHiddenTests(config=config),
        ClearMarkScheme(config=config),
        ComputeChecksums(config=config),
    ]


def released_notebook(solution_path: Path):
    nb = nbformat.read(str(solution_path), as_version=4)
    nb = copy.deepcopy(nb)
    resources: dict = {}
    for preprocessor in _preprocessors():
        nb, resources = preprocessor.preprocess(nb, resources)
    # Widget state and nbclient's execution timings are noise in a released notebook.
    nb.metadata.pop("widgets", None)
    if isinstance(nb.metadata.get("dlgrade"), dict):  # which code produced the solution's outputs
        nb.metadata["dlgrade"].pop("outputs_from", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def render(nb) -> str:
    return nbformat.writes(nb) + "\n"


def release(name: str) -> Path:
    spec = catalogue.load(name)
    target = spec.released_notebook
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(released_notebook(spec.solution_path)), encoding="utf-8")
    (target.parent / NOTEBOOK_CHECK_NAME).write_text(NOTEBOOK_CHECK.read_text(encoding="utf-8"), encoding="utf-8")
    (target.parent / SUBMIT_CLIENT_NAME).write_text(submit_client(), encoding="utf-8")
    (target.parent.parent / LEARNER_REQUIREMENTS_NAME).write_text(learner_requirements(), encoding="utf-8")
    return target


def drift(name: str) -> bool:
    """True when the released notebook, or a file release copies beside it, is not what release would write now."""
    spec = catalogue.load(name)
    expected = render(released_notebook(spec.solution_path))
    try:
        current = spec.released_notebook.read_text(encoding="utf-8")
        check = (spec.released_notebook.parent / NOTEBOOK_CHECK_NAME).read_text(encoding="utf-8")
        client = (spec.released_notebook.parent / SUBMIT_CLIENT_NAME).read_text(encoding="utf-8")
        requirements = (spec.released_notebook.parent.parent / LEARNER_REQUIREMENTS_NAME).read_text(encoding="utf-8")
    except FileNotFoundError:
        return True
    return (
        current != expected
        or check != NOTEBOOK_CHECK.read_text(encoding="utf-8")
        or client != submit_client()
        or requirements != learner_requirements()
    )
