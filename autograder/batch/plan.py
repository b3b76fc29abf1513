"""Planning a batch run: which assignment each submission is (:func:`detect_label`), which of a
learner's notebooks is graded, and which submissions to grade or keep (:func:`plan`), each job with its
last-resort limit (:func:`default_timeout`).

The plan reads each submission once, to hash it and tell its assignment, and keeps no bytes: a job
holds its notebook's path and hash, and is read again as it goes to a worker (``pool.Job.read``)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from autograder.batch import pool
from autograder.batch.discovery import Discovery
from autograder.batch.state import GradeState, assignment_inputs
from autograder.grading import catalogue

UNKNOWN = "unknown"  # assignment label of a notebook nobody can identify


@dataclass(kw_only=True)
class Plan:
    """What a run will do (:func:`plan`): which submissions to grade, which grades to keep."""

    jobs: list = field(default_factory=list)  # [pool.Job] to grade
    kept: list = field(default_factory=list)  # [state.Grade] still current
    unreadable: list = field(default_factory=list)  # [(Submission, label, reason)]
    wrong: list = field(default_factory=list)  # [(Submission, label, the assignment it is)]: a zero for label
    warnings: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # [(source, reason)]
    reasons: Counter = field(default_factory=Counter)
    inputs: dict = field(default_factory=dict)  # assignment label -> state.Inputs of its grades now
    expected: dict = field(default_factory=dict)  # assignment label -> expected seconds per job (ETA, order)


def default_timeout(label: str) -> float:
    """Last-resort limit per submission: far above what the engine's own limits allow."""
    from autograder.grading.time_policy import UNKNOWN_ASSIGNMENT_TASK_TIMEOUT

    if label not in catalogue.names():
        return UNKNOWN_ASSIGNMENT_TASK_TIMEOUT
    return catalogue.load(label).time_policy.batch_task_timeout


# What a job is expected to cost when the state has no grade of its assignment yet: the warm grading
# seconds README's speed section measured (a TensorFlow assignment ~3.3 s, a numpy one ~0.3 s).
PRIOR_SECONDS_TF, PRIOR_SECONDS_NUMPY = 3.5, 0.4


def expected_seconds(label: str, state: GradeState) -> float:
    """A job's expected grading seconds: the median of its assignment's recent grades, else a prior
    from whether it uses TensorFlow. It orders the jobs (slowest first) and weighs the progress ETA."""
    import statistics

    seen = state.execution_times(label)
    if seen:
        return statistics.median(seen)
    if label in catalogue.names() and catalogue.load(label).config.uses_tensorflow:
        return PRIOR_SECONDS_TF
    return PRIOR_SECONDS_NUMPY


def detect_label(data: bytes, name: str) -> str:
    """Which assignment a notebook is, from the bytes that were read for it: its JSON only (nothing
    of it runs here, and the file is not opened again)."""
    from autograder.grading.grade import resolve_assignment
    from autograder.grading.notebook import parse_notebook

    try:
        nb, _ = parse_notebook(data, name)
        return resolve_assignment(nb, None)
    except Exception:  # unreadable or unidentifiable: grade_notebook will explain why
        return UNKNOWN


def _label(sub, data: bytes, previous, sha256: str, assignment: str | None, known: list) -> tuple:
    """(the assignment a submission is graded as, None or the other assignment it turned out to be).

    The label comes from the nbgrader folder, else from ``--assignment`` for a flat (or nbgrader)
    folder, else from the notebook. When the notebook is identifiably another known assignment than its
    label, the second item names that one: the learner gets a "wrong assignment" row, never a silent
    drop and never a grade under the wrong column."""
    same = previous is not None and previous.sha256 == sha256 and previous.assignment in known + [UNKNOWN]
    detected = previous.assignment if same else detect_label(data, sub.path.name)
    if sub.folder_assignment in known:
        label = sub.folder_assignment
    elif assignment:
        label = assignment
    else:
        return detected, None
    return label, (detected if detected in known and detected != label else None)


def _preference(label: str):
    """Which of a learner's notebooks for one assignment is graded: the released file name, then the newest."""
    released = f"{label}.ipynb"

    def key(candidate):
        sub = candidate[0]
        try:
            mtime = sub.path.stat().st_mtime
        except OSError:
            mtime = 0.0
        return (sub.path.name != released, -mtime, sub.source)

    return key


def plan(
    discovery: Discovery,
    state: GradeState,
    *,
    assignment: str | None,
    task_timeout: float | None,
    force: bool = False,
    only=None,
) -> Plan:
    """Split the selected submissions into jobs to grade, grades to keep and unreadable files.

    ``assignment``: only this assignment (None: every one); ``task_timeout``: each job's limit
    (None: :func:`default_timeout`); ``force``: grade again even what is current; ``only``:
    learner names (None: every learner).
    """
    from autograder.grading import notebook
    from autograder.grading.submission_file import NotebookError, read_submission_bytes

    known = catalogue.names()
    result = Plan(warnings=list(discovery.warnings), skipped=list(discovery.skipped))
    # (learner, label) -> [(sub, sha256, previous, other assignment or None)]: no bytes kept (pool.Job.read)
    groups: dict = {}
    unread: dict = {}  # (learner, label) -> [(sub, reason)]: files that could not be read
    for sub in discovery.submissions:
        if only is not None and sub.learner not in only:
            continue
        if assignment and sub.folder_assignment in known and sub.folder_assignment != assignment:
            continue  # another assignment's folder (nbgrader layout)
        try:  # a regular file only, never through a link below the root, refused on its size unread
            data = read_submission_bytes(sub.path, notebook.MAX_NOTEBOOK_BYTES, shown=sub.source, below=discovery.root)
        except NotebookError as exc:  # a link, a fifo, a device, too big, or unreadable: a zero, and why
            label = assignment or (sub.folder_assignment if sub.folder_assignment in known else UNKNOWN)
            unread.setdefault((sub.learner, label), []).append((sub, str(exc)))
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        previous = state.find(sub.source)
        label, other = _label(sub, data, previous, sha256, assignment, known)
        groups.setdefault((sub.learner, label), []).append((sub, sha256, previous, other))
        del data  # read again when its job goes to a worker

    for (learner, label), refused in unread.items():
        readable = [c for c in groups.get((learner, label), []) if c[3] is None]
        if readable:  # the learner's readable notebook for it is graded; this one is a line
            result.skipped += [
                (sub.source, f"{reason} ({learner} / {label} is graded from another notebook)")
                for sub, reason in refused
            ]
            continue
        refused.sort(key=lambda entry: entry[0].source)
        result.unreadable.append((refused[0][0], label, refused[0][1]))  # the row: a zero, and why
        row = refused[0][0].source
        result.skipped += [
            (sub.source, f"{reason} ({learner} / {label} is {row}'s row)") for sub, reason in refused[1:]
        ]
        # Another assignment's notebook beside it (all that is left of the group): a line too.
        result.skipped += [
            (c[0].source, f"assignment {c[3]}, not {label} ({learner} / {label} is {row}'s row)")
            for c in groups.pop((learner, label), [])
        ]

    for (learner, label), candidates in groups.items():
        right = [c for c in candidates if c[3] is None]
        if not right:  # only other assignments' notebooks: one zero row for this one, saying which
            candidates.sort(key=_preference(label))
            sub, other = candidates[0][0], candidates[0][3]
            result.wrong.append((sub, label, other))
            result.skipped += [
                (c[0].source, f"assignment {c[3]}, not {label} (and {learner} / {label} is {sub.source}'s row)")
                for c in candidates[1:]
            ]
            continue
        result.skipped += [
            (c[0].source, f"assignment {c[3]}, not {label}: {learner}'s {label} notebook is graded instead")
            for c in candidates
            if c[3] is not None
        ]
        candidates = right
        candidates.sort(key=_preference(label))
        sub, sha256, previous, _ = candidates[0]
        if len(candidates) > 1:
            ignored = [c[0].source for c in candidates[1:]]
            why = (
                f"not the released name {label}.ipynb"
                if sub.path.name == f"{label}.ipynb"
                else "older than the one graded"
            )
            result.warnings.append(
                f"{learner} has {len(candidates)} notebooks for {label}: graded {sub.source}; "
                f"ignored {', '.join(ignored)} ({why})"
            )
            result.skipped += [
                (source, f"{learner} / {label}: {sub.source} was graded instead ({why})") for source in ignored
            ]
        if label not in result.inputs:
            result.inputs[label] = assignment_inputs(label)
        inputs = result.inputs[label]
        if previous is not None and previous.sha256 == sha256 and previous.assignment == label:
            reasons = ["--force"] if force else [f"{label}: {why}" for why in inputs.changes(previous.inputs)]
            if not reasons:
                result.kept.append(previous)
                continue
        elif previous is not None:
            reasons = ["the notebook changed"]
        else:
            other = state.find_key(learner, label)
            reasons = [f"now graded from {sub.source} instead of {other.source}" if other else "new submission"]
        result.reasons.update(reasons)
        result.jobs.append(
            pool.Job(
                learner=learner,
                assignment=label,
                grade_as=label if label in known else None,
                name=sub.path.name,
                path=sub.path,
                below=discovery.root,
                source=sub.source,
                sha256=sha256,
                timeout=task_timeout or default_timeout(label),
            )
        )
    # The slowest assignments first (sort is stable: learner order within one), so the batch does not
    # end with one worker grading the TensorFlow submissions while the others idle.
    cost = {label: expected_seconds(label, state) for label in {job.assignment for job in result.jobs}}
    result.jobs.sort(key=lambda job: -cost[job.assignment])
    result.expected = {label: cost[label] for label in cost}
    result.kept.sort(key=lambda g: (g.learner, g.assignment))
    for _sub, label, _ in result.unreadable:
        result.reasons["unreadable file"] += 1
        result.inputs.setdefault(label, assignment_inputs(label))
    for _sub, label, _ in result.wrong:
        result.reasons["another assignment's notebook"] += 1
        result.inputs.setdefault(label, assignment_inputs(label))
    return result
