"""The time policy (grading/time_policy.py): every limit derived in one place, and the total holds.

``submission_timeout`` is the most learner time one submission gets: each
graded function has a fixed share (total / n) charged across all its checks,
no work gets more than the submission has left, and a configuration whose
share cannot hold three full calls is refused. The unit tests check the
derivations and the refusals; the process tests run a submission whose
functions each use their whole share (a tiny policy: 0.3 s calls, 3 s in all)
and show that it stops at the total, with each failure naming its budget.
"""

from __future__ import annotations

import dataclasses
import shutil
import time

import pytest

from autograder.grading import catalogue
from autograder.grading.catalogue import AssignmentConfig, ConfigError
from autograder.grading.cells import Cell
from autograder.grading.learner import Learner, LearnerProcess
from autograder.grading.learner_errors import ErrorKind, LearnerError
from autograder.grading.time_policy import UNKNOWN_ASSIGNMENT_TASK_TIMEOUT, TimePolicy

# ------------------------------------------------------------------ the policy itself


def test_the_policy_is_derived_from_the_config():
    policy = TimePolicy.from_config(AssignmentConfig(call_timeout=10, submission_timeout=120), 4)
    assert (policy.call, policy.function, policy.submission, policy.long_call) == (10, 30, 120, 10)
    assert policy.imports == 30  # the imports cell: three calls
    assert policy.cpu_seconds == 150  # RLIMIT_CPU: a backstop above the total
    assert policy.batch_task_timeout == 3 * 120 + 300
    longer = TimePolicy.from_config(AssignmentConfig(call_timeout=10, submission_timeout=210, long_call_timeout=30), 7)
    assert (longer.function, longer.long_call) == (30, 30)
    # No graded function: the whole submission is one share.
    assert TimePolicy.from_config(AssignmentConfig(), 0).function == AssignmentConfig().submission_timeout


def test_the_policy_is_frozen_and_keyword_only():
    with pytest.raises(TypeError):
        TimePolicy(10, 120)
    policy = TimePolicy(call=1, submission=3)
    assert policy.function == 3 and policy.long_call == 1  # one share: the whole submission
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.call = 2
    for bad in (
        dict(call=0, submission=3),
        dict(call=1, submission=-1),
        dict(call=1, submission=3, function=4),
        dict(call=float("nan"), submission=3),
    ):
        with pytest.raises(ConfigError):
            TimePolicy(**bad)


def test_a_share_smaller_than_three_calls_is_refused_with_both_ways_out():
    config = AssignmentConfig(call_timeout=10, submission_timeout=120)
    with pytest.raises(ConfigError) as error:
        TimePolicy.from_config(config, 10, source="suites/x/assignment.toml")
    message = str(error.value)
    assert message.startswith("suites/x/assignment.toml: ")
    assert "12 s" in message and "3 x call_timeout (30 s)" in message
    assert "submission_timeout to at least 300" in message and "call_timeout to at most 4" in message
    # What it suggests is accepted.
    TimePolicy.from_config(dataclasses.replace(config, submission_timeout=300), 10)
    TimePolicy.from_config(dataclasses.replace(config, call_timeout=4), 10)


def test_a_long_call_must_fit_a_share_and_be_at_least_a_call():
    with pytest.raises(ConfigError, match="long_call_timeout 60 s is more than each graded function's share"):
        TimePolicy.from_config(AssignmentConfig(call_timeout=10, submission_timeout=210, long_call_timeout=60), 7)
    with pytest.raises(ConfigError, match="less than call_timeout"):
        TimePolicy.from_config(AssignmentConfig(call_timeout=10, submission_timeout=120, long_call_timeout=5), 2)


def test_every_shipped_assignment_states_what_holds():
    """The shares sum to the stated total, hold three calls, and the sandbox and batch limits come from them."""
    from autograder.batch.plan import default_timeout

    for name in catalogue.names():
        spec = catalogue.load(name)
        policy = spec.time_policy
        n = len(spec.graded_functions)
        assert policy.submission == spec.config.submission_timeout
        assert policy.function * n == pytest.approx(policy.submission), name
        assert policy.function >= 3 * policy.call - 1e-9 and policy.call <= policy.long_call <= policy.function
        assert spec.limits().cpu_seconds == policy.cpu_seconds
        assert default_timeout(name) == policy.batch_task_timeout
    assert default_timeout("no-such-assignment") == UNKNOWN_ASSIGNMENT_TASK_TIMEOUT
    tf = catalogue.load("tensorflow_intro").time_policy
    assert tf.long_call == 30 and tf.function == 30  # model's two training runs share its 30 s


def test_loading_an_assignment_whose_limits_cannot_hold_fails_naming_its_file(tmp_path, monkeypatch):
    suites = tmp_path / "suites"
    shutil.copytree(catalogue.SUITES_DIR / "initialization", suites / "initialization")
    toml = suites / "initialization" / "assignment.toml"
    toml.write_text(toml.read_text().replace("call_timeout = 10 ", "call_timeout = 50 "))
    monkeypatch.setattr(catalogue, "SUITES_DIR", suites)
    catalogue.load.cache_clear()
    try:
        with pytest.raises(ConfigError) as error:
            catalogue.load("initialization")
        assert str(toml) in str(error.value) and "3 x call_timeout (150 s)" in str(error.value)
    finally:
        catalogue.load.cache_clear()


# ------------------------------------------------------------------ the total holds

# Three graded functions, each using its whole share in its own way: one call at a time
# (each within the 0.3 s call limit), one call with a long timeout, one probe with a long timeout.
SLOW_CELLS = [
    Cell(
        "slow",
        "import time\ndef update_parameters_with_gd(parameters, grads, learning_rate):\n"
        "    time.sleep(0.2)\n    return 1\n",
        ["update_parameters_with_gd"],
    ),
    Cell(
        "spin",
        "def random_mini_batches(X, Y, mini_batch_size=64, seed=0):\n    while True:\n        pass\n",
        ["random_mini_batches"],
    ),
    Cell("spin_too", "def initialize_velocity(parameters):\n    while True:\n        pass\n", ["initialize_velocity"]),
    Cell("extra", "def update_lr(learning_rate0, epoch_num, decay_rate):\n    return 1\n", ["update_lr"]),
]
SPIN_PROBE = """
def probe(ns):
    return ns["initialize_velocity"]({})
"""
POLICY = TimePolicy.split(call=0.3, submission=3.0, functions=3)  # 1 s a function


class CountingSpawner:
    """The assignment's zygote (children start in the background), counting starts."""

    starts_in_background = True

    def __init__(self, spawner):
        self.spawner, self.starts = spawner, 0

    def spawn(self):
        self.starts += 1
        return self.spawner.spawn()

    def close(self):
        self.spawner.close()


def use_up(learner: Learner, name: str) -> LearnerError:
    """Call ``name``'s way until its budget stops it; the error that did."""
    for _ in range(20):
        try:
            if name == "update_parameters_with_gd":
                learner.update_parameters_with_gd({}, {}, 0.1)
            elif name == "random_mini_batches":
                learner.call(name, [], [], timeout=10)  # a suite's long timeout: the share still bounds it
            else:
                learner.probe(SPIN_PROBE, timeout=10)
        except LearnerError as exc:
            if exc.kind is ErrorKind.BUDGET:
                return exc
            raise
    raise AssertionError(f"{name} was never stopped by its budget")


@pytest.fixture
def process():
    from autograder.grading.grade import warm_spawner

    spec = catalogue.load("optimization")
    spawner = CountingSpawner(warm_spawner(spec))
    process = LearnerProcess(
        preamble=spec.preamble, cells=SLOW_CELLS, limits=spec.limits(), time_policy=POLICY, spawner=spawner
    )
    spawner.spawner.warm()  # the zygote's own start is no submission's
    yield process
    process.close()


def test_functions_that_each_use_their_whole_share_stop_at_the_submission_total(process):
    learner = Learner(process)
    functions = ["update_parameters_with_gd", "random_mini_batches", "initialize_velocity"]
    started = time.monotonic()
    errors = {}
    for name in functions:
        process.begin_function(name)
        errors[name] = use_up(learner, name)
    wall = time.monotonic() - started
    for name in functions:
        # Each failure names the budget that applied: the function's own 1 s share.
        assert f"{name}'s 1 s time budget" in str(errors[name]), str(errors[name])
        # A hog costs only its own share: every function had all of its own.
        assert 1.0 - 0.05 <= process.spent[name] <= 1.0 + 1e-6, process.spent
    # Learner time is charged up to the limit that cut each request: never past the total.
    assert process.learner_seconds <= POLICY.submission + 1e-6
    # Wall time: the learner's 3 s, plus starting the children (not learner time; here in the
    # background, forked from the zygote) and ending them.
    assert wall <= POLICY.submission + process.start_seconds + 1.0, (wall, process.start_seconds)

    # Coming back to a function goes on from what it has left: nothing, and no child is started.
    starts = process.spawner.starts
    before = time.monotonic()
    process.begin_function(functions[0])
    with pytest.raises(LearnerError, match="^update_parameters_with_gd's 1 s time budget was used up") as error:
        learner.update_parameters_with_gd({}, {}, 0.1)
    assert error.value.kind is ErrorKind.BUDGET
    assert process.spawner.starts == starts and time.monotonic() - before < 1.0
    # A function beyond the three shares (a suite grading more than the policy was split for)
    # gets what the submission has left: nothing.
    process.begin_function("update_lr")
    with pytest.raises(LearnerError, match="^the submission's 3 s time budget was used up before this check"):
        learner.update_lr(0.1, 1, 1.0)
    assert process.learner_seconds <= POLICY.submission + 1e-6


def test_a_function_left_early_keeps_the_rest_of_its_share(process):
    """The share is charged across visits: what a function left unused is there when it comes back."""
    learner = Learner(process)
    process.begin_function("update_parameters_with_gd")
    for _ in range(2):
        assert learner.update_parameters_with_gd({}, {}, 0.1) == 1
    used = process.spent["update_parameters_with_gd"]
    assert 0.4 <= used < 0.7
    process.begin_function("update_lr")
    assert learner.update_lr(0.1, 1, 1.0) == 1
    process.begin_function("update_parameters_with_gd")
    calls = 0
    with pytest.raises(LearnerError, match="update_parameters_with_gd's 1 s time budget") as error:
        for calls in range(10):  # noqa: B007 (read after the loop)
            learner.update_parameters_with_gd({}, {}, 0.1)
    assert error.value.kind is ErrorKind.BUDGET
    assert calls <= 3  # what the first visit left (about 0.5 s), not a new 1 s share (four or five calls)
    assert 1.0 - 0.05 <= process.spent["update_parameters_with_gd"] <= 1.0 + 1e-6
