"""Late submissions: a course policy (deadline, grace, penalty per day or zero) applied to submission times
read from a CSV, nbgrader's timestamp.txt or the file's mtime, shown in the gradebook and the feedback."""

from __future__ import annotations

import csv
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from autograder.batch import late
from autograder.batch.run import run_batch
from autograder.grading.reports import feedback_markdown, junit_xml
from autograder.grading.results import TestResult
from tests.test_batch import fake_grade, quiet, submission
from tests.test_reports import a_result

DEADLINE = datetime(2026, 3, 1, 23, 59, tzinfo=timezone(timedelta(hours=9)))


def policy_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "late.toml"
    path.write_text(text)
    return path


def four_of_four():
    return a_result([TestResult("f", "works", 4.0, True, score=4.0)])


# ------------------------------------------------------------------ the policy


def test_penalty_per_day_after_the_grace_period(tmp_path):
    policy = late.load_policy(
        policy_file(
            tmp_path,
            """
[default]
grace_minutes = 15
penalty_per_day = 0.25
[hw]
deadline = 2026-03-01T23:59:00+09:00
""",
        )
    ).for_assignment("hw")
    result = four_of_four()
    cases = {
        DEADLINE - timedelta(hours=1): (0, 4.0),
        DEADLINE + timedelta(minutes=14): (0, 4.0),
        DEADLINE + timedelta(minutes=16): (1, 3.0),
        DEADLINE + timedelta(hours=24, minutes=16): (2, 2.0),
        DEADLINE + timedelta(days=10): (10, 0.0),
    }
    for when, (days, score) in cases.items():
        graded = policy.apply(result, when, "test")
        assert (graded.late.days_late, graded.score) == (days, score), when
        assert graded.late.raw_score == 4.0
    assert result.score == 4.0 and result.late is None  # the raw result is left as it was


def test_zero_policies(tmp_path):
    policies = late.load_policy(
        policy_file(
            tmp_path,
            """
[strict]
deadline = 2026-03-01T23:59:00+09:00
late = "zero"
[capped]
deadline = 2026-03-01T23:59:00+09:00
penalty_per_day = 0.1
zero_after_days = 2
""",
        )
    )
    just_late = DEADLINE + timedelta(seconds=1)
    assert policies.for_assignment("strict").apply(four_of_four(), just_late, "t").score == 0
    capped = policies.for_assignment("capped")
    assert capped.apply(four_of_four(), DEADLINE + timedelta(days=1.5), "t").score == pytest.approx(3.2)
    assert capped.apply(four_of_four(), DEADLINE + timedelta(days=2.5), "t").score == 0
    assert policies.for_assignment("other").apply(four_of_four(), just_late, "t").late is None  # no deadline


@pytest.mark.parametrize(
    "text, message",
    [
        ("[hw]\ndeadlin = 2026-03-01T23:59:00Z\n", "unknown key(s) deadlin; known: deadline"),
        ("[hw]\ndeadline = 2026-03-01T23:59:00\n", "has no UTC offset"),
        ('[hw]\ndeadline = 2026-03-01T23:59:00Z\nlate = "never"\n', 'expected "penalty" or "zero"'),
        ("deadline = 2026-03-01T23:59:00Z\n", "must be inside a table"),
    ],
)
def test_a_bad_policy_is_refused_with_the_file_and_the_key(tmp_path, text, message):
    path = policy_file(tmp_path, text)
    with pytest.raises(late.LatePolicyError) as error:
        late.load_policy(path)
    assert message in str(error.value) and str(path) in str(error.value)


# ------------------------------------------------------------------ submission times


def test_times_come_from_the_staff_csv_then_nbgrader_then_only_what_the_course_accepts(tmp_path):
    folder = tmp_path / "alice" / "hw"
    folder.mkdir(parents=True)
    notebook = folder / "hw.ipynb"
    notebook.write_text("{}")
    os.utime(notebook, (DEADLINE.timestamp() + 7200, DEADLINE.timestamp() + 7200))
    assert late.submission_time(notebook, "alice", "hw", {}, nbgrader=False) == (None, "none")
    assert late.submission_time(notebook, "alice", "hw", {}, nbgrader=False, times_from="mtime") == (
        DEADLINE + timedelta(hours=2),
        "mtime",
    )
    (folder / "timestamp.txt").write_text("2026-03-01 14:00:00.000000 UTC")  # as nbgrader writes it
    stamped = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
    assert late.submission_time(notebook, "alice", "hw", {}, nbgrader=True) == (stamped, "nbgrader")
    assert late.submission_time(notebook, "alice", "hw", {}, nbgrader=False) == (None, "none")
    assert late.submission_time(notebook, "alice", "hw", {}, nbgrader=False, times_from="timestamp-file") == (
        stamped,
        "timestamp-file",
    )
    times_csv = tmp_path / "times.csv"
    times_csv.write_text(
        "learner,assignment,submitted_at\nalice,hw,2026-03-05T10:00:00+09:00\nbob,,2026-03-01T00:00Z\n"
    )
    times = late.read_times_csv(times_csv)
    assert late.submission_time(notebook, "alice", "hw", times, nbgrader=True) == (
        datetime(2026, 3, 5, 1, 0, tzinfo=UTC),
        "staff-csv",
    )
    assert ("bob", None) in times
    assert late.in_nbgrader_tree(tmp_path / "submitted", "alice/hw/hw.ipynb")
    assert not late.in_nbgrader_tree(tmp_path / "repos", "alice/hw/hw.ipynb")
    assert not late.in_nbgrader_tree(tmp_path / "submitted", "alice/hw.ipynb")


def test_a_bad_times_csv_names_the_line(tmp_path):
    path = tmp_path / "times.csv"
    path.write_text("learner,submitted_at\nalice,yesterday-ish\n")
    with pytest.raises(late.LatePolicyError, match="line 2"):
        late.read_times_csv(path)


# ------------------------------------------------------------------ shown in the reports and gradebook


def test_feedback_and_junit_show_the_lateness():
    graded = late.Policy(deadline=DEADLINE, penalty_per_day=0.25).apply(
        four_of_four(), DEADLINE + timedelta(hours=30), "timestamp.txt"
    )
    text = feedback_markdown(graded)
    assert "**Score: 2 / 4** (4 before the late penalty of 2)" in text
    assert "2 day(s) late" in text and "timestamp.txt" in text
    assert 'name="late"' in junit_xml(graded)


def test_batch_applies_the_policy_without_regrading(tmp_path, monkeypatch):
    subs, out = tmp_path / "submitted", tmp_path / "out"
    for learner, hours_late in (("alice", -1), ("bob", 30)):
        folder = subs / learner / "hw"
        submission(folder, "hw", score=4)
        when = DEADLINE + timedelta(hours=hours_late)
        (folder / "timestamp.txt").write_text(when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    policy = policy_file(tmp_path, "[default]\ndeadline = 2026-03-01T23:59:00+09:00\npenalty_per_day = 0.25\n")

    def lateness():
        return late.Lateness(late.load_policy(policy), {}, subs)

    run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet, lateness=lateness())
    with open(out / "gradebook.csv") as handle:
        book = {row["learner"]: row for row in csv.DictReader(handle)}
    assert (book["alice"]["total"], book["alice"]["status"], book["alice"]["days_late"]) == ("4", "graded", "0")
    assert (book["bob"]["total"], book["bob"]["status"], book["bob"]["days_late"]) == ("2", "late", "2")
    assert book["bob"]["late_penalty"] == "2"
    assert "2 day(s) late" in (out / "learners" / "bob" / "unknown" / "feedback.md").read_text()
    assert "late" in (out / "index.html").read_text()

    # The course moves the deadline: the next run rewrites the gradebook and feedback, grading nothing again.
    policy.write_text("[default]\ndeadline = 2026-03-03T23:59:00+09:00\npenalty_per_day = 0.25\n")
    summary = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet, lateness=lateness())
    assert summary.graded == 0 and summary.kept == 2
    with open(out / "gradebook.csv") as handle:
        book = {row["learner"]: row for row in csv.DictReader(handle)}
    assert (book["bob"]["total"], book["bob"]["status"]) == ("4", "graded")
    assert "on time" in (out / "learners" / "bob" / "unknown" / "feedback.md").read_text()


def test_batch_command_refuses_a_bad_policy_before_grading(tmp_path, capsys):
    from autograder.cli import main as dlgrade

    submission(tmp_path / "subs", "alice", score=1)
    bad = policy_file(tmp_path, "[hw]\ndeadline = tomorrow\n")
    assert dlgrade(["batch", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--late-policy", str(bad)]) == 2
    assert "late.toml" in capsys.readouterr().err
    times = tmp_path / "times.csv"
    times.write_text("learner,submitted_at\n")
    assert (
        dlgrade(["batch", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--submission-times", str(times)])
        == 2
    )
    assert "needs --late-policy" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ times from a source the course controls (issue 20)

POLICY = "[default]\ndeadline = 2026-03-01T23:59:00+09:00\npenalty_per_day = 0.25\n"


def nbgrader_stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def batch_cli(monkeypatch, *args) -> int:
    """``dlgrade batch`` as a course runs it, with the fake grader (the times are what is tested)."""
    import functools

    from autograder.batch import command
    from autograder.cli import main as dlgrade

    monkeypatch.setattr(command, "run_batch", functools.partial(run_batch, grade=fake_grade, progress=False))
    return dlgrade(["batch", *map(str, args), "--workers", "1"])


def gradebook_rows(out: Path) -> dict:
    with open(out / "gradebook.csv") as handle:
        return {row["learner"]: row for row in csv.DictReader(handle)}


def test_a_timestamp_txt_a_learner_wrote_or_a_fresh_mtime_is_not_trusted(tmp_path, monkeypatch, capsys):
    subs, out = tmp_path / "repos", tmp_path / "out"
    # alice's repository says she was on time; bob's says he was late: neither is the course's word.
    for learner, hours in (("alice", -1), ("bob", 30)):
        submission(subs / learner, "hw", score=4)
        (subs / learner / "timestamp.txt").write_text(nbgrader_stamp(DEADLINE + timedelta(hours=hours)))
    # carol's folder was copied: its notebook's mtime is 281 days after the deadline.
    copied = submission(subs / "carol", "hw", score=4)
    os.utime(copied, (DEADLINE.timestamp() + 281 * 86400,) * 2)
    policy = policy_file(tmp_path, POLICY)
    assert batch_cli(monkeypatch, subs, "--out", out, "--late-policy", policy) == 0
    book = gradebook_rows(out)
    for learner in ("alice", "bob", "carol"):
        row = book[learner]
        assert (row["total"], row["status"], row["time_source"]) == ("4", "graded", "none"), row
        assert row["days_late"] == "time unknown: not judged late" and row["late_penalty"] == ""
    err = capsys.readouterr().err
    assert "3 submission(s) have no submission time" in err and "--times FILE" in err and "--times-from mtime" in err
    assert "time unknown: not judged late" in (out / "index.html").read_text()
    assert "not judged late" in (out / "learners" / "bob" / "unknown" / "feedback.md").read_text()

    # Asked for, file times are used, and the column says so; no regrade is needed.
    assert batch_cli(monkeypatch, subs, "--out", out, "--late-policy", policy, "--times-from", "mtime") == 0
    book = gradebook_rows(out)
    assert (book["carol"]["time_source"], book["carol"]["days_late"], book["carol"]["total"]) == ("mtime", "281", "0")
    assert "no submission time" not in capsys.readouterr().err

    # So is the learner's timestamp.txt, when the course accepts it.
    assert batch_cli(monkeypatch, subs, "--out", out, "--late-policy", policy, "--times-from", "timestamp-file") == 0
    book = gradebook_rows(out)
    assert (book["alice"]["time_source"], book["alice"]["days_late"], book["alice"]["total"]) == (
        "timestamp-file",
        "0",
        "4",
    )
    assert (book["bob"]["time_source"], book["bob"]["days_late"], book["bob"]["total"]) == ("timestamp-file", "2", "2")
    assert book["carol"]["time_source"] == "none"


def test_nbgrader_submitted_tree_is_trusted_and_a_look_alike_is_not(tmp_path, monkeypatch):
    policy = policy_file(tmp_path, POLICY)
    for root, trusted in (("course/submitted", True), ("classroom-repos", False)):
        subs, out = tmp_path / root, tmp_path / f"out-{trusted}"
        folder = subs / "bob" / "hw"
        submission(folder, "hw", score=4)
        (folder / "timestamp.txt").write_text(nbgrader_stamp(DEADLINE + timedelta(hours=30)))
        assert batch_cli(monkeypatch, subs, "--out", out, "--late-policy", policy) == 0
        bob = gradebook_rows(out)["bob"]
        if trusted:
            assert (bob["time_source"], bob["days_late"], bob["total"], bob["status"]) == ("nbgrader", "2", "2", "late")
        else:
            assert (bob["time_source"], bob["total"], bob["status"]) == ("none", "4", "graded")


def test_the_staff_times_csv_sets_times(tmp_path, monkeypatch):
    subs, out = tmp_path / "repos", tmp_path / "out"
    for learner in ("alice", "bob"):
        submission(subs / learner, "hw", score=4)
        (subs / learner / "timestamp.txt").write_text(nbgrader_stamp(DEADLINE - timedelta(days=3)))
    times = tmp_path / "times.csv"
    times.write_text(
        "learner,assignment,submitted_at\nalice,unknown,2026-03-01T20:00:00+09:00\nbob,,2026-03-02T23:00:00Z\n"
    )
    policy = policy_file(tmp_path, POLICY)
    assert batch_cli(monkeypatch, subs, "--out", out, "--late-policy", policy, "--times", times) == 0
    book = gradebook_rows(out)
    assert (book["alice"]["time_source"], book["alice"]["days_late"], book["alice"]["total"]) == ("staff-csv", "0", "4")
    assert book["alice"]["submitted_at"] == "2026-03-01T20:00:00+09:00"
    assert (book["bob"]["time_source"], book["bob"]["days_late"], book["bob"]["total"]) == ("staff-csv", "2", "2")


def test_an_extension_moves_one_learners_deadline(tmp_path, monkeypatch):
    subs, out = tmp_path / "course" / "submitted", tmp_path / "out"
    for learner in ("alice", "bob", "carol"):
        folder = subs / learner / "hw"
        submission(folder, "hw", score=4)
        (folder / "timestamp.txt").write_text(nbgrader_stamp(DEADLINE + timedelta(hours=30)))
    policy = policy_file(
        tmp_path,
        POLICY + '[extensions]\nbob = 2\ncarol = { assignment = "unknown", deadline = 2026-03-02T12:00:00+09:00 }\n',
    )
    assert batch_cli(monkeypatch, subs, "--out", out, "--late-policy", policy) == 0
    book = gradebook_rows(out)
    assert (book["alice"]["days_late"], book["alice"]["total"], book["alice"]["extension"]) == ("2", "2", "")
    assert (book["bob"]["days_late"], book["bob"]["total"], book["bob"]["extension"]) == (
        "0",
        "4",
        "extension: +2 day(s)",
    )
    assert (book["carol"]["days_late"], book["carol"]["total"]) == ("1", "3")
    assert book["carol"]["extension"] == "extension: deadline 2026-03-02T12:00:00+09:00"
    with open(out / "gradebooks" / "unknown.csv") as handle:
        per_assignment = {row["learner"]: row for row in csv.DictReader(handle)}
    assert per_assignment["bob"]["extension"] == "extension: +2 day(s)"
    page = (out / "index.html").read_text()
    assert "extension: +2 day(s)" in page and "extension: deadline 2026-03-02T12:00:00+09:00" in page


@pytest.mark.parametrize(
    "times_text, policy_text, message",
    [
        ("learner,assignment,submitted_at\nalice,,2026-03-01T10:00:00Z\nbob,,2026-03-01T10:00:00\n", POLICY, "line 3"),
        ("learner,assignment,submitted_at\nalice,,2026-03-01T10:00Z\nalice,,2026-03-02T10:00Z\n", POLICY, "line 3"),
        ("learner,assignment,submitted_at\n,,2026-03-01T10:00Z\n", POLICY, "line 2"),
        (None, POLICY + "[extensions]\nbob = { days = -1 }\n", "[extensions] bob"),
        (None, POLICY + "[extensions]\nbob = { deadline = 2026-03-05T10:00:00Z }\n", "needs assignment"),
        (None, POLICY + "[extensions]\nbob = { days = 1, deadline = 2026-03-05T10:00:00Z }\n", "either days"),
        (None, POLICY + "[extensions]\nbob = 2\n\ncarol = \n", "line 7"),
    ],
)
def test_a_malformed_times_csv_or_policy_is_a_usage_error_naming_the_line(
    tmp_path, monkeypatch, capsys, times_text, policy_text, message
):
    subs = tmp_path / "repos"
    submission(subs / "alice", "hw", score=4)
    args = [subs, "--out", tmp_path / "out", "--late-policy", policy_file(tmp_path, policy_text)]
    if times_text is not None:
        times = tmp_path / "times.csv"
        times.write_text(times_text)
        args += ["--times", times]
    assert batch_cli(monkeypatch, *args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
