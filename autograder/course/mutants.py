"""Planted bugs ("mutants"): each one must cost points of its own function, and only of it.

An assignment declares its planted bugs in ``autograder/suites/<name>/mutants.py``;
``dlgrade validate NAME --mutants`` builds each buggy notebook from the solution,
grades it, and fails unless the bug costs points, and only of the functions it
declares. The repository's tests call the same functions (:func:`grade_mutants`,
:func:`grade_alternatives`), so a new assignment copies no test helpers.

Format of ``autograder/suites/<name>/mutants.py``::

    from autograder.course.mutants import Alternative, Mutant

    MUTANTS = [
        # (old, new): ``old`` occurs exactly once in the solution's cell of the function.
        Mutant("cost_lambd_over_m", "compute_cost_with_regularization",
               ("lambd / (2 * m)", "lambd / m"),
               feedback=["uses lambd / m"]),
        # [(old, new), ...]: several replacements, applied in order.
        Mutant("no_bias_correction", "update_parameters_with_adam",
               [("v[key] / (1 - beta1 ** t)", "v[key]"), ("s[key] / (1 - beta2 ** t)", "s[key]")],
               fails=["divide by 1 - beta**t", "returned parameters"]),
        # A str: the whole new source of the graded cell.
        Mutant("gc_returns_zero", "gradient_check", GC_HEADER + "    return 0.0\\n"),
        # A bug that may also cost another function (e.g. one reused by the next one).
        Mutant("one_hot_numpy", "one_hot_matrix", (...), costs=("one_hot_matrix", "model")),
        # With other cells edited beside it (correct code that must keep full marks): a layer
        # that binds the buggy function when it is defined, which must not cost the layer.
        Mutant("bn_var_layer_alias", "batchnorm_forward", (...), beside={"affine_bn_relu_forward": ALIAS}),
    ]

    # Optional: other correct answers; each notebook (all its edits at once) must get full marks.
    ALTERNATIVES = [
        Alternative("unseeded_default_rng", {"initialize_parameters_random": SOURCE_1,
                                             "initialize_parameters_he": ("randn", "standard_normal")}),
    ]

    # Optional: mutants of functions in the first set never share a notebook with
    # mutants of functions in the second (see "Rounds" below).
    KEEP_APART = [({"gradient_check"}, {"forward_propagation", "backward_propagation"})]

    # Optional: notebooks chosen by hand (lists of mutant names); the other mutants are grouped as below.
    ROUNDS = [["linear_draws_W_first", "one_hot_wrong_axis"], ["sigmoid_no_cast", "loss_mean"]]

``Mutant(name, function, edit, costs=(function,), fails=(), feedback=(), beside={})``:

- ``name``: unique within the assignment; shown in reports and used as test id.
- ``function``: the graded function (the nbgrader ``grade_id`` of its solution cell) whose cell is edited.
- ``edit``: how the solution's cell becomes the buggy cell: ``(old, new)``, a list of
  such pairs, or the whole new source (a str). Each ``old`` must occur exactly once
  at the time it is applied. The nbgrader ``### BEGIN SOLUTION`` / ``### END SOLUTION``
  lines are removed after the edits, as in a learner's cell (so an edit may use them as anchors).
- ``costs``: the graded functions allowed to lose points (default: ``(function,)``).
  The mutant must lose at least one point among them, and no other function may lose any.
- ``fails``: optional fragments of hidden check names: every failed check of the
  ``costs`` functions contains one of them, and each fragment is in some failed check's name.
- ``feedback``: optional strings; each must appear in the feedback of some failed check of ``costs``.
- ``beside``: other graded cells edited in the same notebook (function -> edit, as ``edit``):
  correct code, which must keep full marks unless listed in ``costs``.

Rounds: grading a notebook costs a second (several with TensorFlow), so mutants whose
functions (``function`` and ``costs``) do not overlap share one notebook, in declaration
order. A function outside every member's ``costs`` that loses points is a leak; the
members are then graded alone to name the one that leaks. A leak into a function that
has its own mutant in the same notebook cannot be seen: ``KEEP_APART`` keeps the pairs
that matter in separate notebooks, ``ROUNDS`` fixes notebooks by hand (e.g. so that
each keeps some functions without a bug), and ``isolated=True`` grades every mutant alone.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import nbformat

from autograder.grading import catalogue

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


@dataclass(frozen=True)
class Mutant:
    name: str
    function: str
    edit: object  # (old, new), [(old, new), ...] or the whole new source
    costs: tuple = ()  # functions allowed to lose points; () means (function,)
    fails: tuple = ()  # fragments of the names of the checks that must fail
    feedback: tuple = ()  # strings the feedback of the failed checks must contain
    beside: dict = field(
        default_factory=dict, hash=False
    )  # other cells edited with it (function -> edit): correct code

    def __post_init__(self):
        object.__setattr__(self, "costs", tuple(self.costs) or (self.function,))
        object.__setattr__(self, "beside", dict(self.beside))
        object.__setattr__(self, "fails", tuple(self.fails))
        object.__setattr__(self, "feedback", tuple(self.feedback))

    @property
    def touches(self) -> set:
        """The functions this mutant's notebook may change: its own, those it may cost, those edited beside it."""
        return {self.function, *self.costs, *self.beside}

    def sources(self, name: str) -> dict:
        """function -> the new source of each cell this mutant edits (its own and ``beside``)."""
        edits = {**self.beside, self.function: self.edit}
        return {function: edited_source(name, function, edit) for function, edit in edits.items()}


@dataclass(frozen=True)
class Alternative:
    """Another correct answer: the solution with every cell of ``edits`` edited gets full marks."""

    name: str
    edits: dict  # function -> edit (as Mutant.edit)


@dataclass
class Declarations:
    mutants: list
    alternatives: list
    keep_apart: list
    rounds: list = field(default_factory=list)  # lists of mutant names graded together

    def make_rounds(self, only=None) -> list:
        """The notebooks (lists of Mutant) the mutants are graded in: ``rounds`` first, then greedily."""
        wanted = [m for m in self.mutants if only is None or m.name in set(only)]
        by_name = {m.name: m for m in wanted}
        fixed = [[by_name[n] for n in names if n in by_name] for names in self.rounds]
        fixed = [r for r in fixed if r]
        placed = {m.name for r in fixed for m in r}
        return fixed + make_rounds([m for m in wanted if m.name not in placed], self.keep_apart)


class MutantError(ValueError):
    """A mutants.py that does not fit its solution (unknown function, an edit that does not apply)."""


# ------------------------------------------------------------------ reading the declarations


def mutants_path(name: str) -> Path:
    return catalogue.SUITES_DIR / name / "mutants.py"


@cache
def load(name: str) -> Declarations:
    """The assignment's declared mutants (empty when it has no mutants.py)."""
    spec = catalogue.load(name)
    path = mutants_path(name)
    if not path.exists():
        return Declarations([], [], [])
    module_name = f"dlgrade_mutants_{name}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    assert module_spec is not None and module_spec.loader is not None, path
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    declared = Declarations(
        list(getattr(module, "MUTANTS", [])),
        list(getattr(module, "ALTERNATIVES", [])),
        [(set(a), set(b)) for a, b in getattr(module, "KEEP_APART", [])],
        [list(r) for r in getattr(module, "ROUNDS", [])],
    )
    seen = set()
    for mutant in declared.mutants + declared.alternatives:
        if mutant.name in seen:
            raise MutantError(f"{path}: two entries are named {mutant.name!r}")
        seen.add(mutant.name)
        functions = mutant.edits if isinstance(mutant, Alternative) else mutant.touches
        unknown = sorted(set(functions) - set(spec.graded_functions))
        if unknown:
            raise MutantError(f"{path}: {mutant.name} names functions that are not graded cells: {unknown}")
    names = [m.name for m in declared.mutants]
    for members in declared.rounds:
        if set(members) - set(names) or len(set(members)) != len(members):
            raise MutantError(f"{path}: ROUNDS entry {members} names unknown or repeated mutants")
        touched = [f for n in members for f in mutant_named(declared, n).touches]
        if len(touched) != len(set(touched)):
            raise MutantError(f"{path}: ROUNDS entry {members} has two mutants touching one function")
    if len([n for r in declared.rounds for n in r]) != len({n for r in declared.rounds for n in r}):
        raise MutantError(f"{path}: a mutant is in two ROUNDS entries")
    return declared


def mutant_named(declared: Declarations, mutant_name: str) -> Mutant:
    return next(m for m in declared.mutants if m.name == mutant_name)


def mutant(name: str, mutant_name: str) -> Mutant:
    """The declared mutant of assignment ``name`` called ``mutant_name``."""
    return mutant_named(load(name), mutant_name)


# ------------------------------------------------------------------ building notebooks


@cache
def _solution_cells(name: str) -> dict:
    nb = nbformat.read(str(catalogue.load(name).solution_path), as_version=4)
    return {
        catalogue.nbgrader_meta(cell).get("grade_id"): cell.source
        for cell in nb.cells
        if catalogue.nbgrader_meta(cell).get("solution") and cell.cell_type == "code"
    }


def solution_source(name: str, function: str) -> str:
    """The solution notebook's graded cell of ``function``, nbgrader markers included."""
    try:
        return _solution_cells(name)[function]
    except KeyError:
        raise MutantError(f"{name}: no graded cell for {function}") from None


def edited_source(name: str, function: str, edit) -> str:
    """The cell of ``function`` after ``edit`` (see the module docstring), without solution markers."""
    if isinstance(edit, str):
        source = edit
    else:
        pairs = [edit] if isinstance(edit, tuple) and len(edit) == 2 and isinstance(edit[0], str) else list(edit)
        source = solution_source(name, function)
        for old, new in pairs:
            count = source.count(old)
            if count != 1:
                raise MutantError(
                    f"{name}: the edit of {function} needs {old!r} exactly once in the "
                    f"solution's cell, found it {count} times"
                )
            source = source.replace(old, new)
    return "\n".join(line for line in source.splitlines() if line.strip() not in SOLUTION_MARKERS) + "\n"


def build_notebook(name: str, sources: dict):
    """The solution notebook with the graded cells of ``sources`` (function -> new source) replaced."""
    nb = nbformat.read(str(catalogue.load(name).solution_path), as_version=4)
    left = dict(sources)
    for cell in nb.cells:
        function = catalogue.nbgrader_meta(cell).get("grade_id")
        if cell.cell_type == "code" and function in left:
            cell.source = left.pop(function)
    if left:
        raise MutantError(f"{name}: no graded cell for {sorted(left)}")
    return nb


def _grade(name: str, sources: dict, folder: Path, label: str, public: bool = False) -> tuple:
    """(hidden-suite result, public-test results or None) of the solution with ``sources`` in place."""
    from autograder.course.public import public_results
    from autograder.grading.grade import grade_notebook

    nb = build_notebook(name, sources)
    path = folder / f"{label}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return grade_notebook(path, name), (public_results(nb, name)[0] if public else None)


# ------------------------------------------------------------------ rounds and verdicts


def make_rounds(mutants: list, keep_apart: list | tuple = ()) -> list:
    """Group mutants into notebooks whose members touch disjoint functions, in declaration order.

    A limit of sharing a notebook: points a mutant costs a function that another member changes are
    put down to that member (its verdict checks them against its ``fails``, when it declares them).
    ``keep_apart`` keeps such pairs in different notebooks."""
    rounds: list[list] = []
    for m in mutants:
        for members in rounds:
            touched = set().union(*(o.touches for o in members))
            apart = any((m.function in a and touched & b) or (m.function in b and touched & a) for a, b in keep_apart)
            if not (m.touches & touched) and not apart:
                members.append(m)
                break
        else:
            rounds.append([m])
    return rounds


def failed_tests(result: dict, functions) -> list:
    """The failed hidden checks (test entries) of ``functions`` (a name or several); a shape check that
    only repeats its values check's failure is left out (shapes.follows_its_values_check: one mistake)."""
    from autograder.grading.shapes import follows_its_values_check

    functions = {functions} if isinstance(functions, str) else set(functions)
    return [
        t
        for t in result["tests"]
        if t["function"] in functions
        and t["status"] != "passed"
        and not follows_its_values_check(t["name"], t.get("output", ""))
    ]


def failed_checks(result: dict, functions) -> list:
    """'check: feedback' of every failed hidden check of ``functions``."""
    return [t["name"] + ": " + t["output"] for t in failed_tests(result, functions)]


def lost_points(result: dict) -> dict:
    """function -> points lost in ``result`` (functions with full marks left out)."""
    return {f: e["max_score"] - e["score"] for f, e in result["functions"].items() if e["score"] < e["max_score"]}


@dataclass
class MutantReport:
    mutant: Mutant
    result: dict  # the grade of the notebook the mutant was planted in
    shared_with: list = field(default_factory=list)  # names of the other mutants of that notebook
    problems: list = field(default_factory=list)
    public: dict | None = None  # function -> (status, output) of the public tests on that notebook

    @property
    def failed(self) -> list:
        """The failed checks (test entries) of the functions this mutant may cost."""
        return failed_tests(self.result, self.mutant.costs)


def verdict(m: Mutant, result: dict, others: list | tuple = ()) -> list:
    """What is wrong with how ``result`` (a notebook holding ``m`` and ``others``) treated ``m``."""
    if result.get("grader_error"):
        return [f"{m.name}: the grader failed: {result.get('output', '')}"]
    problems = []
    lost = lost_points(result)
    mine = {f: p for f, p in lost.items() if f in m.costs}
    if not mine:
        problems.append(f"{m.name}: planted in {m.function}, costs no points of {', '.join(m.costs)}")
    allowed = set(m.costs).union(*(o.touches for o in others))
    for function in sorted(set(lost) - allowed):
        problems.append(
            f"{m.name}: planted in {m.function}, also costs {function} {lost[function]:g} point(s)"
            f" ({'; '.join(t['name'] for t in failed_tests(result, function))[:200]})"
        )
    failed = failed_tests(result, m.costs)
    names = [t["name"] for t in failed]
    for fragment in m.fails:
        if not any(fragment in n for n in names):
            problems.append(f"{m.name}: no failed check named like {fragment!r} (failed: {names})")
    if m.fails:
        for n in names:
            if not any(fragment in n for fragment in m.fails):
                problems.append(f"{m.name}: check {n!r} failed too, not one of {list(m.fails)}")
    for text in m.feedback:
        if not any(text in t["output"] for t in failed):
            problems.append(f"{m.name}: no feedback says {text!r}")
    return problems


def disagreements(m: Mutant, result: dict, public: dict) -> list:
    """The functions of ``m.costs`` whose public test rejects ``m`` while the hidden suite gives them full marks.

    What a public test rejects, the hidden suite must reject too. (A public
    test of another function may fail as well, when it calls the mutated
    function: gradient_check's public test runs the learner's
    forward_propagation. That is not the hidden suite's business.)
    """
    lost = lost_points(result)
    return [
        f"{m.name}: the public test of {f} rejects it, but the hidden suite gives {f} full marks"
        f" ({(public[f][1].strip().splitlines() or ['no output'])[-1][:200]})"
        for f in m.costs
        if public[f][0] != "passed" and f not in lost
    ]


def grade_mutants(
    name: str, folder: Path | None = None, only=None, isolated: bool = False, public: bool = False
) -> list:
    """Grade the declared mutants (or those named in ``only``); one report per mutant, in order.

    ``public``: also run the public tests on each notebook and report the
    functions whose public test rejects a mutant that the hidden suite accepts.
    """
    declared = load(name)
    rounds = (
        [[m] for m in declared.mutants if only is None or m.name in set(only)]
        if isolated
        else declared.make_rounds(only)
    )
    with _folder(folder) as where:
        reports = []
        for i, members in enumerate(rounds):
            sources = {f: source for m in members for f, source in m.sources(name).items()}
            result, public_tests = _grade(name, sources, where, f"round{i}", public)
            leaked = set(lost_points(result)) - set().union(*(m.costs for m in members))
            for m in members:
                others = [o for o in members if o is not m]
                if leaked and others:
                    # Somebody leaks: grade each member alone to say who.
                    alone, alone_public = _grade(name, m.sources(name), where, f"{m.name}-alone", public)
                    report = MutantReport(m, alone, [], verdict(m, alone), alone_public)
                else:
                    report = MutantReport(m, result, [o.name for o in others], verdict(m, result, others), public_tests)
                if report.public is not None:
                    report.problems += disagreements(m, report.result, report.public)
                reports.append(report)
        return reports


def grade_alternatives(name: str, folder: Path | None = None, only=None, public: bool = False) -> dict:
    """Grade the declared other correct answers: name -> grade result (with ``public``: (result, public tests))."""
    results = {}
    with _folder(folder) as where:
        for alt in load(name).alternatives:
            if only is None or alt.name in set(only):
                sources = {f: edited_source(name, f, edit) for f, edit in alt.edits.items()}
                graded = _grade(name, sources, where, alt.name, public)
                results[alt.name] = graded if public else graded[0]
    return results


def validate_mutants(name: str) -> list:
    """Problems of the declared mutants and alternatives (empty when every one behaves).

    Each mutant costs points of its declared functions only; the public tests
    never reject what the hidden suite accepts (on the mutants), and accept
    every declared correct answer.
    """
    declared = load(name)
    if not declared.mutants:
        return [f"{mutants_path(name).relative_to(catalogue.root())} declares no planted bug"]
    problems = [p for report in grade_mutants(name, public=True) for p in report.problems]
    for alt_name, (result, public) in grade_alternatives(name, public=True).items():
        if result["score"] != result["max_score"] or result.get("grader_error"):
            failed = [t["name"] for t in result["tests"] if t["status"] != "passed"]
            problems.append(
                f"{alt_name} (a correct answer) scores {result['score']:g} / {result['max_score']:g}: "
                + "; ".join(failed[:5])
            )
        rejected = [f for f, (status, _) in public.items() if status != "passed"]
        if rejected:
            problems.append(f"{alt_name} (a correct answer) fails the public tests of {', '.join(rejected)}")
    return problems


def _folder(folder):
    """The given folder, or a temporary one removed afterwards (a context manager giving a path)."""
    if folder is not None:
        return contextlib.nullcontext(Path(folder))
    return _TemporaryPath(prefix="dlgrade-mutants-")


class _TemporaryPath(tempfile.TemporaryDirectory):
    def __enter__(self) -> Path:
        return Path(self.name)
