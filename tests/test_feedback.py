"""Feedback that says what happened (issue 13, "Hints that mislead").

No expected value in a failure message, not even as the error size of a
single number; dict entries named so that they do not read as indexing; the
time limit a timeout states is the one that applied; a function whose cell
failed to run is not called "not defined by the graded cells"; a
NotImplementedError with a message (numpy on a symbolic tensor) is not "not
implemented yet"; and a course can turn hints off.
"""
from __future__ import annotations

import numpy as np
import pytest

from autograder.grading import catalogue
from autograder.grading.checks import CheckFailed, check_close, check_dict_close
from autograder.grading.learner import Cell, Learner, LearnerError, LearnerProcess


def test_a_single_number_is_reported_without_its_error():
    with pytest.raises(CheckFailed) as failure:
        check_close(np.array([[0.75]]), np.array([[0.5]]), "cost")
    assert failure.value.message == "cost is not the expected value"
    with pytest.raises(CheckFailed, match=r"in 1 of 2 entries \(largest absolute error 0.25\)"):
        check_close(np.array([1.0, 0.75]), np.array([1.0, 0.5]), "v")


def test_dict_entries_are_named_key_of_what():
    with pytest.raises(CheckFailed) as failure:
        check_dict_close({"dW1": np.ones(3)}, {"dW1": np.zeros(3)}, "v for a network [3, 1], beta = 0.9", "hint")
    assert failure.value.message.startswith("dW1 of v for a network [3, 1], beta = 0.9 differs")
    assert "0.9['dW1']" not in failure.value.message


CELL = '''
def spin():
    while True:
        pass

def unfinished():
    raise NotImplementedError()

def symbolic():
    raise NotImplementedError("Cannot convert a symbolic tf.Tensor to a numpy array")
'''
BROKEN_CELL = '''
def defined_late(x, rate=UNDEFINED_RATE):
    return x
'''


def process(call_timeout, submission_timeout):
    spec = catalogue.load("optimization")
    cells = [Cell("fine", CELL, ["spin", "unfinished", "symbolic"]), Cell("broken", BROKEN_CELL, ["defined_late"])]
    return LearnerProcess(spec.preamble, cells, spec.release_dir, spec.limits(), call_timeout, submission_timeout)


def test_errors_say_what_happened():
    p = process(10, 60)
    learner = Learner(p)
    try:
        with pytest.raises(LearnerError, match="unfinished is not implemented yet"):
            learner.unfinished()
        with pytest.raises(LearnerError, match="symbolic raised NotImplementedError: Cannot convert a symbolic"):
            learner.symbolic()
        with pytest.raises(LearnerError) as error:
            learner.defined_late(1)
        assert error.value.kind == "missing"
        assert "its cell stopped with an error before the definition ran (NameError: name 'UNDEFINED_RATE'" \
            in str(error.value)
        with pytest.raises(LearnerError, match="nowhere is not defined by the graded cells"):
            learner.nowhere()
    finally:
        p.close()


def test_a_timeout_states_the_limit_that_applied():
    p = process(1, 60)
    try:
        with pytest.raises(LearnerError, match=r"spin did not finish within 1 s \("):
            Learner(p).spin()
    finally:
        p.close()
    p = process(10, 3)
    try:
        with pytest.raises(LearnerError) as error:
            Learner(p).spin()
        assert "left of the submission's 3 s" in str(error.value) and "within 10 s" not in str(error.value)
    finally:
        p.close()


def test_a_course_can_turn_hints_off(monkeypatch, tmp_path):
    import dataclasses

    from autograder.course import mutants

    toml = tmp_path / "assignment.toml"
    toml.write_text('title = "x"\nhints = false\n')
    assert catalogue.AssignmentConfig.from_toml(toml).hints is False
    assert catalogue.AssignmentConfig().hints is True

    def feedback():
        report = mutants.grade_mutants("initialization", tmp_path / str(len(list(tmp_path.iterdir()))),
                                       only=["he_sqrt_1_over_n_prev"])[0]
        return [t["output"] for t in report.failed]

    with_hints = feedback()
    assert with_hints and all("Hint:" in text for text in with_hints)
    spec = catalogue.load("initialization")
    quiet = dataclasses.replace(spec, config=dataclasses.replace(spec.config, hints=False))
    real_load = catalogue.load
    monkeypatch.setattr(catalogue, "load", lambda name: quiet if name == "initialization" else real_load(name))
    without = feedback()
    assert len(without) == len(with_hints) and not any("Hint:" in text for text in without)
    assert [text.split("\nHint:")[0] for text in with_hints] == without
