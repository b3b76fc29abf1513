"""The planted-bug feature (autograder/course/mutants.py, `dlgrade validate NAME --mutants`).

The per-assignment tests (tests/test_<name>_suite.py) grade each declared
mutant; here the machinery itself: edits that do not apply are refused, rounds
keep mutants of one function apart, and the validation fails when a planted
bug leaks into another function, costs nothing, fails other checks than it
declares, or is rejected by a public test while the hidden suite accepts it.
"""

from __future__ import annotations

import pytest

from autograder import cli
from autograder.course import mutants
from autograder.course.mutants import Alternative, Declarations, Mutant, MutantError
from autograder.grading import catalogue

A = "initialization"
ZEROS, RANDOM, HE = "initialize_parameters_zeros", "initialize_parameters_random", "initialize_parameters_he"
SCALE = "np.sqrt(2 / layers_dims[l - 1])"


def he_with(scale):
    return (SCALE, scale)


def test_edits_apply_to_the_solution_once_and_drop_the_solution_markers():
    source = mutants.edited_source(A, HE, he_with("np.sqrt(1 / layers_dims[l - 1])"))
    assert "np.sqrt(1 / layers_dims[l - 1])" in source and SCALE not in source
    assert "### BEGIN SOLUTION" not in source and "### END SOLUTION" not in source
    assert mutants.edited_source(A, HE, "def f():\n    pass") == "def f():\n    pass\n"
    with pytest.raises(MutantError, match="exactly once"):
        mutants.edited_source(A, HE, ("text that is not in the cell", ""))
    with pytest.raises(MutantError, match="found it 2 times"):
        mutants.edited_source(
            A, HE, [("np.random.seed(3)", "np.random.seed(3)\nnp.random.seed(3)"), ("np.random.seed(3)", "")]
        )


def test_rounds_never_share_a_function_and_keep_apart_what_is_declared():
    ms = [
        Mutant("a", ZEROS, ""),
        Mutant("b", RANDOM, ""),
        Mutant("c", ZEROS, ""),
        Mutant("d", HE, "", costs=(HE, RANDOM)),
        Mutant("e", HE, ""),
    ]
    assert [[m.name for m in r] for r in mutants.make_rounds(ms)] == [["a", "b", "e"], ["c", "d"]]
    apart = [({HE}, {ZEROS})]
    assert [[m.name for m in r] for r in mutants.make_rounds(ms, apart)] == [["a", "b"], ["c"], ["d"], ["e"]]
    declared = Declarations(ms, [], [], [["e", "c"]])
    assert [[m.name for m in r] for r in declared.make_rounds()] == [["e", "c"], ["a", "b"], ["d"]]


def test_declarations_name_graded_functions_only(monkeypatch, tmp_path):
    bad = tmp_path / "mutants.py"
    bad.write_text("from autograder.course.mutants import Mutant\nMUTANTS = [Mutant('x', 'no_such_function', '')]\n")
    monkeypatch.setattr(mutants, "mutants_path", lambda name: bad)
    mutants.load.cache_clear()
    try:
        with pytest.raises(MutantError, match="not graded cells"):
            mutants.load(A)
    finally:
        mutants.load.cache_clear()


def fake_result(lost=(), failed=()):
    """A grade result: ``lost`` functions lose a point, ``failed`` = [(function, check name, output)]."""
    functions = {f: {"score": 3.0 - (f in lost), "max_score": 3.0} for f in (ZEROS, RANDOM, HE)}
    tests = [
        {"function": f, "name": f"{f}: {name}", "output": output, "status": "failed"} for f, name, output in failed
    ]
    return {"functions": functions, "tests": tests, "grader_error": False}


def test_verdict_needs_points_of_the_declared_functions_only():
    m = Mutant("m", HE, "", fails=["scale"], feedback=["sqrt(1 / n_prev)"])
    ok = fake_result([HE], [(HE, "the scale", "which is the scale sqrt(1 / n_prev)\nHint: ...")])
    assert mutants.verdict(m, ok) == []
    assert "costs no points" in " ".join(mutants.verdict(m, fake_result()))
    leak = fake_result([HE, ZEROS], [(HE, "the scale", "sqrt(1 / n_prev)"), (ZEROS, "keys", "")])
    assert any("also costs initialize_parameters_zeros" in p for p in mutants.verdict(m, leak))
    # A function with its own mutant in the same notebook may lose points.
    assert mutants.verdict(m, leak, [Mutant("z", ZEROS, "")]) == []
    other_check = fake_result([HE], [(HE, "the scale", "sqrt(1 / n_prev)"), (HE, "independence", "")])
    assert any("failed too" in p for p in mutants.verdict(m, other_check))
    silent = fake_result([HE], [(HE, "the scale", "wrong")])
    assert any("no feedback says" in p for p in mutants.verdict(m, silent))
    # Declared costs widen what may lose points.
    wide = Mutant("w", HE, "", costs=(HE, ZEROS))
    assert mutants.verdict(wide, fake_result([ZEROS])) == []


def test_a_public_test_that_rejects_what_the_hidden_suite_accepts_is_reported():
    m = Mutant("m", HE, "")
    public = {ZEROS: ("passed", ""), RANDOM: ("failed", "AssertionError: random"), HE: ("failed", "AssertionError: he")}
    assert mutants.disagreements(m, fake_result([HE]), public) == []
    problems = mutants.disagreements(m, fake_result([]), public)
    assert len(problems) == 1 and "public test of initialize_parameters_he rejects it" in problems[0]
    assert "AssertionError: he" in problems[0]


def leaking(declared):
    """The declared mutants plus one in He's cell that also redefines initialize_parameters_random."""
    source = mutants.edited_source(A, HE, he_with("np.sqrt(1 / layers_dims[l - 1])"))
    leak = Mutant(
        "he_cell_redefines_random", HE, source + "\ndef initialize_parameters_random(layers_dims):\n    return {}\n"
    )
    # Graded in a notebook of its own: a round's other member that changes initialize_parameters_random
    # would make random's lost points look declared (make_rounds' limit, stated there).
    apart = [*declared.keep_apart, ({HE}, {"initialize_parameters_random"})]
    return Declarations(declared.mutants + [leak], declared.alternatives, apart, declared.rounds)


def test_validate_mutants_passes_and_fails_when_a_bug_leaks(monkeypatch, capsys):
    assert cli.main(["validate", A, "--mutants"]) == 0
    assert f"{A}: ok" in capsys.readouterr().out
    declared = mutants.load(A)
    monkeypatch.setattr(mutants, "load", lambda name: leaking(declared))
    assert cli.main(["validate", A, "--mutants"]) == 1
    out = capsys.readouterr().out
    assert (
        "he_cell_redefines_random: planted in initialize_parameters_he, also costs initialize_parameters_random" in out
    )
    # The leak is pinned on its mutant: the notebook's other members were graded alone and are fine.
    assert out.count("  - ") == 1, out


def test_a_correct_answer_that_loses_points_fails_validation(monkeypatch):
    declared = mutants.load(A)
    wrong = Alternative("not_really_correct", {HE: he_with("np.sqrt(1 / layers_dims[l - 1])")})
    monkeypatch.setattr(mutants, "load", lambda name: Declarations(declared.mutants[:1], [wrong], [], []))
    problems = mutants.validate_mutants(A)
    assert any("not_really_correct (a correct answer) scores" in p for p in problems), problems
    assert any(
        "not_really_correct (a correct answer) fails the public tests of initialize_parameters_he" in p
        for p in problems
    ), problems


def test_the_hidden_suite_rejects_a_loss_that_the_public_test_rejects(tmp_path):
    """The learner study's case: a loss of shape (1,) failed the public test and passed the hidden suite."""
    report = mutants.grade_mutants("tensorflow_intro", tmp_path, only=["loss_of_shape_1"], isolated=True, public=True)[
        0
    ]
    assert report.public["compute_total_loss"][0] == "failed", report.public["compute_total_loss"]
    assert "compute_total_loss" in mutants.lost_points(report.result)
    assert report.problems == [], report.problems


@pytest.mark.slow
@pytest.mark.parametrize("name", catalogue.names())
def test_every_assignment_validates_with_its_mutants(name):
    """`dlgrade validate NAME --mutants` for every assignment: planted bugs cost their own functions, the
    public tests never reject what the hidden suite accepts, and every correct answer passes both."""
    assert mutants.validate_mutants(name) == []


def test_validate_reports_public_tests_that_fail_on_the_solution_or_pass_on_the_stub(tmp_path):
    """`dlgrade validate` runs the public tests on the solution (all must pass) and the stub (all must fail)."""
    import dataclasses
    import shutil

    import nbformat

    from autograder.course.validate import public_problems

    spec = catalogue.load(A)
    assert public_problems(spec) == []
    wrong = mutants.build_notebook(A, {HE: mutants.edited_source(A, HE, he_with("np.sqrt(1 / layers_dims[l - 1])"))})
    nbformat.write(wrong, str(tmp_path / "solution.ipynb"))
    release = tmp_path / "release"
    shutil.copytree(spec.release_dir, release)
    shutil.copy(spec.solution_path, release / f"{A}.ipynb")  # a "stub" that is the solution
    problems = public_problems(
        dataclasses.replace(spec, solution_path=tmp_path / "solution.ipynb", release_dir=release)
    )
    assert f"the public tests of {HE} fail on the solution" in problems, problems
    assert f"the public tests of {ZEROS}, {RANDOM}, {HE} pass on the released stub" in problems, problems
