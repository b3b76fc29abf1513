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
from autograder.grading.cells import Cell
from autograder.grading.checks import (
    CheckFailed,
    check_close,
    check_dict_close,
    number_list,
    tf_value,
)
from autograder.grading.learner import Learner, LearnerProcess
from autograder.grading.learner_errors import LearnerError
from autograder.grading.probes import (
    probe_here,
    tape_gradients_here,
)
from autograder.grading.time_policy import TimePolicy


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


def test_tf_value_checks_kind_dtype_and_shape_in_that_order():
    from autograder.sandbox.codec import TFValue

    value = TFValue.constant(np.ones((2, 3)))
    assert tf_value(value, "Z", dtype="float32", shape=(2, 3)).shape == (2, 3)
    with pytest.raises(CheckFailed) as failure:
        tf_value(np.ones((2, 3)), "Z")
    assert failure.value.message == "Z should be a TensorFlow EagerTensor, got a ndarray"
    assert "not .numpy()" in failure.value.hint
    with pytest.raises(CheckFailed, match="^Z should be a TensorFlow Variable, got a EagerTensor$"):
        tf_value(value, "Z", kinds=("Variable",))
    with pytest.raises(CheckFailed) as failure:
        tf_value(value, "Z", dtype="float64", shape=(3, 2))  # the dtype is checked before the shape
    assert (failure.value.message, failure.value.hint) == (
        "Z has dtype float32, expected float64",
        "use tf.cast(..., tf.float64)",
    )
    with pytest.raises(CheckFailed) as failure:
        tf_value(value, "Z", shape=(3, 2), shape_hint=lambda shape: f"transposed? {shape}")
    assert failure.value.message == "Z has shape (2, 3), expected (3, 2)"
    assert failure.value.hint == "transposed? (2, 3)"


def test_number_list_reads_one_number_per_item_or_fails():
    from autograder.sandbox.codec import TFValue

    got = number_list([1, 0.5, np.array(0.25), np.array([2.0]), TFValue.constant(3.0)], "costs", "epoch")
    assert got.shape == (5,) and got.tolist() == [1.0, 0.5, 0.25, 2.0, 3.0]
    for bad in ([1.0, True], [1.0, "2"], [np.ones(2)], [None]):
        with pytest.raises(CheckFailed, match="^costs should hold one number per epoch, got a ") as failure:
            number_list(bad, "costs", "epoch", "append floats")
        assert failure.value.hint == "append floats"
    assert number_list([1.0, 2.0], "costs", "epoch", length=2).tolist() == [1.0, 2.0]
    for bad in ([1.0], (1.0, 2.0)):
        with pytest.raises(CheckFailed) as failure:
            number_list(bad, "costs", "epoch", length=2, length_hint="once per epoch")
        assert failure.value.message == "costs should be a list with one value per epoch (2)"
        assert failure.value.hint == "once per epoch"


def test_tape_gradients_here_differentiates_through_the_function_or_reports_none():
    import tensorflow as tf

    assert probe_here({"k": 2}, "def probe(ns, x):\n    return ns['k'] * x\n", x=3) == 6

    def linear(X, params):
        return params["W"] @ X + params["b"]

    def detached(X, params):  # leaves the tape: no gradient for W
        return tf.constant((params["W"] @ X).numpy()) + params["b"]

    def square(Z, Y):
        return tf.reduce_sum(Z * Z * Y)

    rng = np.random.default_rng(0)
    X, R, Z, Y = (rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (2, 4), (2, 3), (2, 3)])
    params = {"W": rng.standard_normal((2, 3)).astype(np.float32), "b": np.zeros((2, 1), np.float32)}
    ns = {"linear": linear, "detached": detached, "square": square}
    grads = tape_gradients_here(ns, "linear", [X, params], wrt=1, weights=R)
    assert list(grads) == ["W", "b"]
    np.testing.assert_allclose(grads["W"], R @ X.T, rtol=1e-5)
    np.testing.assert_allclose(grads["b"], R.sum(axis=1, keepdims=True), rtol=1e-5)
    grads = tape_gradients_here(ns, "detached", [X, params], wrt=1, weights=R)
    assert grads["W"] is None and grads["b"] is not None
    np.testing.assert_allclose(tape_gradients_here(ns, "square", [Z, Y]), 2 * Z * Y, rtol=1e-5)
    np.testing.assert_allclose(tape_gradients_here(ns, "square", [Z, Y], wrt=1), Z * Z, rtol=1e-5)


CELL = """
def spin():
    while True:
        pass

def unfinished():
    raise NotImplementedError()

def symbolic():
    raise NotImplementedError("Cannot convert a symbolic tf.Tensor to a numpy array")
"""
BROKEN_CELL = """
def defined_late(x, rate=UNDEFINED_RATE):
    return x
"""


def process(call_timeout, submission_timeout):
    spec = catalogue.load("optimization")
    cells = [Cell("fine", CELL, ["spin", "unfinished", "symbolic"]), Cell("broken", BROKEN_CELL, ["defined_late"])]
    return LearnerProcess(
        preamble=spec.preamble,
        cells=cells,
        helper_dir=spec.release_dir,
        limits=spec.limits(),
        time_policy=TimePolicy(call=call_timeout, submission=submission_timeout),
    )


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
        assert "its cell stopped with an error before the definition ran (NameError: name 'UNDEFINED_RATE'" in str(
            error.value
        )
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
        report = mutants.grade_mutants(
            "initialization", tmp_path / str(len(list(tmp_path.iterdir()))), only=["he_sqrt_1_over_n_prev"]
        )[0]
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


KEY_PROBE = """
def probe(ns, x):
    return ns["nowhere"](x)
"""
NAME_PROBE = """
def probe(ns, x):
    return nowhere(x)
"""
RAISING_PROBE = """
def probe(ns, x):
    raise ValueError("bad input " + str(x))
"""


def test_a_probe_is_named_after_the_function_it_grades_and_a_missing_function_is_missing():
    """Without what=, a probe's error names the graded function whose checks run; a probe's
    KeyError or NameError for a graded function that is not defined reads as "not defined"."""
    from autograder.grading.learner import LearnerProcess as LP

    spec = catalogue.load("optimization")
    cells = [Cell("fine", CELL, ["spin", "unfinished", "symbolic"]), Cell("other", "x = 1\n", ["nowhere"])]
    p = LP(
        preamble=spec.preamble,
        cells=cells,
        helper_dir=spec.release_dir,
        limits=spec.limits(),
        time_policy=TimePolicy(call=10, submission=60),
    )
    learner = Learner(p)
    try:
        with pytest.raises(LearnerError, match="^a check raised ValueError: bad input 1"):
            learner.probe(RAISING_PROBE, x=1)
        p.begin_function("unfinished")
        with pytest.raises(LearnerError, match="^unfinished raised ValueError: bad input 2"):
            learner.probe(RAISING_PROBE, x=2)
        with pytest.raises(LearnerError, match="^mine raised ValueError"):
            learner.probe(RAISING_PROBE, x=3, what="mine")
        for source in (KEY_PROBE, NAME_PROBE):
            with pytest.raises(LearnerError) as error:
                learner.probe(source, x=1)
            assert error.value.kind == "missing" and "nowhere is not defined by the graded cells" in str(error.value)
    finally:
        p.close()
