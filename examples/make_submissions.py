"""Generate the example submissions that ``make demo`` grades.

    .venv/bin/python examples/make_submissions.py            # rewrite examples/submissions/
    .venv/bin/python examples/make_submissions.py --check    # exit 1 if the committed files are stale

Layout: nbgrader's ``submitted/<learner>/<assignment>/<assignment>.ipynb``, so
one learner can hand in several assignments. For every assignment with a
solution in solutions/:

alice    the solution notebook with its outputs cleared          full marks
bob      the solution with one function broken (a plausible     loses that function's points only
         mistake, edited into the solution's own source: BOB_BUGS,
         else the first planted bug of the suite's mutants.py)
carol    the released notebook, untouched                         zero

and, for ``initialization`` only, mallory: a hostile notebook that patches
numpy's comparison functions, forges results.json files, floods stdout and
calls ``os._exit(0)`` while her cells are defined. None of it earns a point.

Everything is derived from solutions/ and assignments/, so run this again
after a solution changes; tests/test_examples.py fails until you do.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "examples" / "submissions"
sys.path.insert(0, str(ROOT))
from autograder.course.scaffold import load_mutants  # noqa: E402
from autograder.grading import catalogue  # noqa: E402

# Every assignment the catalogue knows (a solution and a suite): a new one gets its examples too.
ASSIGNMENTS = tuple(catalogue.names())

# assignment -> (function, exact text in the solution's cell, its buggy replacement).
# An assignment not listed here gets the first planted bug of its suite's mutants.py.
BOB_BUGS = {
    # Xavier's 1/n instead of He's 2/n: the variance is half of what the test expects.
    "initialization": (
        "initialize_parameters_he",
        "np.sqrt(2 / layers_dims[l - 1])",
        "np.sqrt(1 / layers_dims[l - 1])",
    ),
    # d(theta * x)/d theta confused with d/dx.
    "gradient_checking": ("backward_propagation", "dtheta = x", "dtheta = theta"),
    # Exponential instead of inverse-time decay.
    "optimization": (
        "update_lr",
        "learning_rate0 / (1 + decay_rate * epoch_num)",
        "learning_rate0 / (1 + decay_rate) ** epoch_num",
    ),
    # lambd / m instead of lambd / (2 m): the derivative's factor put into the cost.
    "regularization": ("compute_cost_with_regularization", "lambd / (2 * m)", "lambd / m"),
    # The mean over the batch instead of the sum the training loop divides itself.
    "tensorflow_intro": (
        "compute_total_loss",
        "total_loss = tf.reduce_sum(losses)",
        "total_loss = tf.reduce_mean(losses)",
    ),
}

# Mallory's cells. Only imports and definitions of a graded cell run, so each trick
# hides in a default argument, which Python evaluates when the ``def`` runs.
MALLORY = {
    "initialize_parameters_zeros": '''\
# GRADED FUNCTION: initialize_parameters_zeros
import builtins
import numpy as np
import numpy.testing


def _everything_is_equal():
    """Make every comparison the grader might use succeed."""
    np.allclose = np.array_equal = np.isclose = lambda *args, **kwargs: True
    np.testing.assert_allclose = np.testing.assert_array_equal = lambda *args, **kwargs: None
    builtins.isinstance = lambda *args: True


def initialize_parameters_zeros(layers_dims, _patched=_everything_is_equal()):
    return {"W1": "trust me"}
''',
    "initialize_parameters_random": '''\
# GRADED FUNCTION: initialize_parameters_random
import json
import os

FORGED = {"score": 11, "max_score": 11, "output": "Initialization: 11 / 11", "tests": []}


def _forge_results():
    """Write a perfect results.json wherever a grader might look for one."""
    for folder in (".", "..", "/tmp", "/results", "/autograder/results", os.path.expanduser("~")):
        try:
            with open(os.path.join(folder, "results.json"), "w") as handle:
                json.dump(FORGED, handle)
        except OSError:
            pass


def initialize_parameters_random(layers_dims, _forged=_forge_results()):
    for _ in range(200_000):  # bury the grader's output
        print("ALL TESTS PASSED " * 8)
    return {}
''',
    "initialize_parameters_he": '''\
# GRADED FUNCTION: initialize_parameters_he
import os


def initialize_parameters_he(layers_dims, _gone=os._exit(0)):
    """Leave before the grader can ask anything, hoping a silent exit reads as success."""
    return {}
''',
}


def bob_bug(name: str) -> tuple:
    if name in BOB_BUGS:
        return BOB_BUGS[name]
    mutants = load_mutants(name)
    if not mutants:
        raise SystemExit(f"{name}: no BOB_BUGS entry and no planted bug in autograder/suites/{name}/mutants.py")
    first = mutants[0]
    return (first.function, *first.edit)


def load(path: Path):
    return nbformat.read(str(path), as_version=4)


def cleared(nb):
    """The notebook as a learner saves it before running anything: no outputs, no counts."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def graded_cell(nb, function: str):
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == function:
            return cell
    raise KeyError(f"no graded cell {function!r}")


def submissions() -> dict:
    """relative path -> notebook text, for every example submission."""
    made = {}
    for name in ASSIGNMENTS:
        solution = ROOT / "solutions" / f"{name}.ipynb"
        released = ROOT / "assignments" / name / f"{name}.ipynb"
        if not solution.exists() or not released.exists():
            continue
        made[f"alice/{name}/{name}.ipynb"] = cleared(load(solution))

        function, right, wrong = bob_bug(name)
        bob = cleared(load(solution))
        cell = graded_cell(bob, function)
        if right not in cell.source:
            raise SystemExit(f"solutions/{name}.ipynb: {function} no longer contains {right!r}; update BOB_BUGS")
        cell.source = cell.source.replace(right, wrong)
        made[f"bob/{name}/{name}.ipynb"] = bob

        made[f"carol/{name}/{name}.ipynb"] = cleared(load(released))

        if name == "initialization":
            mallory = cleared(load(solution))
            for function, source in MALLORY.items():
                graded_cell(mallory, function).source = source.rstrip("\n")
            made[f"mallory/{name}/{name}.ipynb"] = mallory
    return {path: nbformat.writes(nb) + "\n" for path, nb in made.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    wanted = submissions()
    present = {p.relative_to(args.out).as_posix() for p in args.out.rglob("*.ipynb")} if args.out.exists() else set()
    stale = sorted(
        p for p in wanted if not (args.out / p).exists() or (args.out / p).read_text(encoding="utf-8") != wanted[p]
    )
    extra = sorted(present - set(wanted))
    if args.check:
        for path in stale:
            print(f"stale: {args.out / path}")
        for path in extra:
            print(f"not generated by this script: {args.out / path}")
        if stale or extra:
            print("run: .venv/bin/python examples/make_submissions.py")
            return 1
        return 0
    for path in extra:
        (args.out / path).unlink()
    for path, text in wanted.items():
        target = args.out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    print(f"wrote {len(wanted)} notebooks under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
