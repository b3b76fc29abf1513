"""service/insights.py on hand-built grades: pass rates per hidden check, frequent mistakes."""

from __future__ import annotations

import pytest

from autograder.batch.state import Grade
from autograder.grading.results import FunctionScore, Result, TestResult, zero_result
from autograder.service.insights import (
    MAX_WHAT,
    CheckRate,
    Mistake,
    check_pass_rates,
    frequent_mistakes,
    mistake_text,
)

ASSIGNMENT = "optimization"  # a real assignment: its notebook gives the function order


def grade(learner: str, tests: list, *, assignment: str = ASSIGNMENT, as_dict: bool = True, **extra) -> Grade:
    functions = {t.function: FunctionScore(0.0, 1.0) for t in tests}
    result = Result(assignment, f"{learner}.ipynb", assignment, 0.0, 1.0, tests=tests, functions=functions, **extra)
    return Grade(learner, assignment, f"{learner}.ipynb", "0" * 64, result.to_dict() if as_dict else result, "")


def passed(function: str, check: str) -> TestResult:
    return TestResult(function, check, 1.0, True, score=1.0, kind="check")


def failed(function: str, check: str, message: str = "wrong", hint: str = "", kind: str = "check") -> TestResult:
    return TestResult(function, check, 1.0, False, message=message, hint=hint, kind=kind)


LR, ADAM, GD = "update_lr", "update_parameters_with_adam", "update_parameters_with_gd"


def test_pass_rates_count_each_check_and_follow_the_notebook_order():
    grades = [
        # update_lr's checks come first in these results; the notebook has update_parameters_with_gd first.
        grade("ann", [passed(LR, "decays"), passed(LR, "float"), failed(GD, "every layer")]),
        grade("bob", [failed(LR, "decays"), passed(LR, "float"), passed(GD, "every layer")], as_dict=False),
        grade("cy", [failed(LR, "decays"), passed(LR, "float"), failed(GD, "every layer")]),
    ]
    assert check_pass_rates(grades) == [
        CheckRate(ASSIGNMENT, GD, "every layer", 1, 3),
        CheckRate(ASSIGNMENT, LR, "decays", 1, 3),
        CheckRate(ASSIGNMENT, LR, "float", 3, 3),
    ]
    assert [round(r.rate, 3) for r in check_pass_rates(grades)] == [0.333, 0.333, 1.0]


def test_unreadable_grades_and_grader_errors_are_not_attempts():
    from autograder.grading import catalogue

    spec = catalogue.load(ASSIGNMENT)
    unreadable = zero_result("dee.ipynb", spec, "dee.ipynb is not valid JSON")
    crashed = zero_result("eve.ipynb", spec, "the grader failed", grader_error=True)
    grades = [
        grade("ann", [passed(LR, "decays"), failed(ADAM, "bias correction", kind="grader-error")]),
        grade("bob", [failed(LR, "decays"), passed(ADAM, "bias correction")]),
        Grade("dee", ASSIGNMENT, "dee.ipynb", "", unreadable.to_dict(), ""),
        Grade("eve", ASSIGNMENT, "eve.ipynb", "", crashed.to_dict(), ""),
        Grade("fay", ASSIGNMENT, "fay.ipynb", "", {"tests": "not a list"}, ""),  # no dlgrade document
    ]
    assert check_pass_rates(grades) == [
        CheckRate(ASSIGNMENT, ADAM, "bias correction", 1, 1),
        CheckRate(ASSIGNMENT, LR, "decays", 1, 2),
    ]
    assert frequent_mistakes(grades) == [Mistake(ASSIGNMENT, LR, "decays", "wrong", 1, ("bob",))]
    assert CheckRate("a", "f", "c", 0, 0).rate == 0.0


def test_assignments_apart_sorted_by_name_and_unknown_ones_in_their_results_order():
    grades = [
        grade("ann", [failed("second", "b"), passed("first", "a")], assignment="zz_course_extra"),
        grade("ann", [passed(LR, "decays")]),
    ]
    assert [(r.assignment, r.function) for r in check_pass_rates(grades)] == [
        (ASSIGNMENT, LR),
        ("zz_course_extra", "second"),
        ("zz_course_extra", "first"),
    ]
    assert check_pass_rates([]) == [] and frequent_mistakes([]) == []


def test_a_mistake_is_one_across_learners_whatever_their_numbers():
    diagnosis = "the update subtracts the gradient: W = W - learning_rate * dW"
    grades = [
        grade(
            learner,
            [failed(GD, "every layer", f"W{layer} differs in {bad} of 12 entries (largest error {err})", diagnosis)],
        )
        for learner, layer, bad, err in [("cy", 1, 3, 0.25), ("ann", 1, 12, -1.5e-3), ("bob", 1, 7, 4)]
    ]
    grades += [
        # no hint: the message names it; shapes and sizes differ per learner
        grade("ann", [failed(LR, "decays", "learning rate has shape (3, 1), expected ()")]),
        grade("dee", [failed(LR, "decays", "learning rate has shape (7, 2, 2), expected ()\nmore detail 5")]),
        grade("eve", [failed(LR, "decays", "learning rate is 0.5, which is not the expected value")]),
        # not mistakes: passed, an untouched stub, a missing function, a grader error
        grade("fay", [passed(GD, "every layer")]),
        grade("gus", [failed(GD, "every layer", f"{GD} is not implemented yet: its cell is still the released stub")]),
        grade("hal", [failed(GD, "every layer", f"{GD} is not defined in the notebook.", kind="missing")]),
        grade("ivy", [failed(GD, "every layer", diagnosis, diagnosis, kind="grader-error")]),
    ]
    mistakes = frequent_mistakes(grades)
    assert mistakes == [
        Mistake(ASSIGNMENT, GD, "every layer", diagnosis, 3, ("ann", "bob", "cy")),
        Mistake(ASSIGNMENT, LR, "decays", "learning rate has shape (#, ...), expected ()", 2, ("ann", "dee")),
        Mistake(ASSIGNMENT, LR, "decays", "learning rate is #, which is not the expected value", 1, ("eve",)),
    ]
    assert frequent_mistakes(grades, limit=1) == mistakes[:1]
    assert frequent_mistakes(grades, limit=0) == []


def test_a_learner_counts_once_and_few_are_named():
    grades = [grade(f"learner{i:02}", [failed(LR, "decays", f"off by {i}")]) for i in range(12)]
    grades.append(grade("learner03", [failed(LR, "decays", "off by 99"), failed(LR, "decays", "off by 98")]))
    [mistake] = frequent_mistakes(grades)
    assert mistake.what == "off by #"
    assert mistake.count == 12
    assert mistake.learners == ("learner00", "learner01", "learner02", "learner03", "learner04")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("W1 differs at [0, 1]: got 0.123, expected -4e-05", "W1 differs at [#, ...]: got #, expected #"),
        (
            "dW2 of grads has dtype int64, expected a float dtype",
            "dW2 of grads has dtype int64, expected a float dtype",
        ),
        ("  \n\n  first line  \nsecond 3", "first line"),
        ("bad\x1b[31m red\u202e text", "bad[31m red text"),
        ("", ""),
    ],
)
def test_mistake_text(text, expected):
    assert mistake_text(text) == expected


def test_mistake_text_is_capped_and_keeps_no_array():
    long = "got " + ", ".join(str(i / 7) for i in range(5000)) + " " + "x" * 5000
    text = mistake_text(long)
    assert len(text) <= MAX_WHAT and text.startswith("got #, ...") and text.endswith("...")
    assert not any(ch.isdigit() for ch in text)
