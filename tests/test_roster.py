"""Nothing submitted is lost (issue 20, item 7): every roster learner and every assignment ends in
exactly one row (graded, late, unreadable, wrong assignment, missing, not submitted, not on roster),
every notebook and learner folder found has a row or a line saying why not, and the batch refuses
the folders that are not submissions (an nbgrader course root, the exchange's inbound/).

The batches run the real command line (``dlgrade batch``, in process) with the fake grader of
tests/test_batch.py; the notebooks of another assignment are the real released ones, so that the
batch's own assignment detection decides.
"""

from __future__ import annotations

import csv
import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autograder.batch import command, discovery, ledger, roster
from autograder.batch.run import run_batch
from autograder.cli import main as dlgrade
from autograder.grading import catalogue
from tests.test_batch import fake_grade, submission

INIT, REG = "initialization", "regularization"


def released(name: str) -> Path:
    return catalogue.root() / "assignments" / name / f"{name}.ipynb"


@pytest.fixture
def cli(monkeypatch, capsys):
    """``dlgrade batch ARGS...`` as the command line runs it, graded by the fake grader in one worker:
    returns (exit status, stdout, stderr)."""

    def batch(*args, **kwargs):
        kwargs.update(grade=fake_grade, workers=1, progress=False)
        return run_batch(*args, **kwargs)

    monkeypatch.setattr(command, "run_batch", batch)

    def run(*args) -> tuple:
        code = dlgrade(["batch", *map(str, args)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def read_csv(path: Path) -> list:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def copy_released(folder: Path, name: str, as_name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (as_name or f"{name}.ipynb")
    shutil.copy(released(name), target)
    return target


ROSTER = """learner,name,email,sis_user_id,canvas_user_id,sis_login_id,section
alice,Alice Kim,alice@example.edu,S001,1001,akim,A
bob,Bob Lee,bob@example.edu,S002,1002,blee,A
carol,Carol Park,carol@example.edu,S003,1003,,B
dave,Dave Choi,dave@example.edu,S004,1004,dchoi,B
erin,Erin Jung,erin@example.edu,S005,1005,ejung,B
"""


def course(tmp_path: Path) -> tuple:
    """A course folder with one learner in each state, for --assignment initialization."""
    subs = tmp_path / "subs"
    copy_released(subs / "alice", INIT)  # graded
    submission(subs / "bob", INIT, score=3)  # graded (fake)
    (subs / "bob" / "notes.ipynb").symlink_to(released(INIT))  # a second notebook: a link, refused
    copy_released(subs / "carol", REG)  # the wrong assignment, and nothing else
    (subs / "dave").mkdir()  # an empty folder
    submission(subs / "zed", INIT, score=4)  # not on the roster
    (subs / "erin").mkdir()  # erin's notebook is a symlink to the solutions: unreadable
    (subs / "erin" / f"{INIT}.ipynb").symlink_to(catalogue.load(INIT).solution_path)
    return subs, write(tmp_path / "roster.csv", ROSTER)


def test_a_roster_gives_exactly_one_row_per_learner_and_assignment(tmp_path, cli):
    subs, roster_csv = course(tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr = cli(subs, "--out", out, "--assignment", INIT, "--roster", roster_csv)
    assert code == 1, stderr  # every row has a result, and two need a look (carol, zed)
    rows = read_csv(out / "gradebook.csv")
    keys = [(r["learner"], r["assignment"]) for r in rows]
    assert len(keys) == len(set(keys))
    states = {r["learner"]: r["status"] for r in rows}
    assert states == {
        "alice": "graded",
        "bob": "graded",
        "carol": "wrong assignment",
        "dave": "missing",
        "erin": "unreadable",
        "zed": "not on roster",
    }
    by = {r["learner"]: r for r in rows}
    assert "assignment regularization" in by["carol"]["problem"] and by["carol"]["total"] == "0"
    assert "symbolic link" in by["erin"]["problem"] and by["erin"]["total"] == "0"
    assert by["dave"]["total"] == "0" and "no notebook" in by["dave"]["problem"]
    assert "not on the roster" in by["zed"]["problem"] and by["zed"]["total"] == "4"
    # The terminal counts every state and says what needs a look.
    assert "1 wrong assignment" in stdout and "1 missing" in stdout and "1 not on roster" in stdout
    assert "5 on the roster" in stdout
    assert "needs a look" in stderr and "carol" in stderr and "zed" in stderr
    # Every file found that is not a row is a line: bob's link and dave's empty folder.
    skipped = (out / "skipped.txt").read_text()
    assert "bob/notes.ipynb" in skipped and "dave/" in skipped


def test_canvas_gradebook_carries_the_roster_ids(tmp_path, cli):
    subs, roster_csv = course(tmp_path)
    out = tmp_path / "out"
    cli(subs, "--out", out, "--assignment", INIT, "--roster", roster_csv)
    rows = list(csv.reader(io.StringIO((out / "canvas-gradebook.csv").read_text())))
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    people = {row[1]: row for row in rows[2:]}  # by Canvas user id: every row is matchable
    assert set(people) == {"1001", "1002", "1003", "1004", "1005"}  # zed is not on the roster: not here
    assert people["1001"][:5] == ["Alice Kim", "1001", "S001", "akim", "A"]
    assert people["1003"][3] == "carol"  # no SIS login in the roster: the learner id
    assert people["1004"][5] == ""  # missing: blank leaves Canvas' own grade alone
    assert people["1003"][5] == "0" and people["1005"][5] == "0"  # wrong assignment, unreadable: 0


def test_course_summary_and_page_show_each_state(tmp_path, cli):
    subs, roster_csv = course(tmp_path)
    out = tmp_path / "out"
    cli(subs, "--out", out, "--assignment", INIT, "--roster", roster_csv)
    summary = {row["learner"]: row for row in read_csv(out / "course-summary.csv")}
    assert summary["dave"][INIT] == "missing" and summary["carol"][INIT] == "wrong assignment"
    assert summary["erin"][INIT] == "unreadable" and summary["zed"][INIT] == "4"
    page = (out / "index.html").read_text()
    for learner, state in [("dave", "missing"), ("carol", "wrong assignment"), ("zed", "not on roster")]:
        assert f'data-learner="{learner}" data-assignment="{INIT}" data-state="{state}"' in page


def test_without_a_roster_every_notebook_and_folder_still_has_a_row_or_a_line(tmp_path, cli):
    subs, _ = course(tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr = cli(subs, "--out", out, "--assignment", INIT)
    assert code == 1  # carol's notebook is another assignment's
    states = {r["learner"]: r["status"] for r in read_csv(out / "gradebook.csv")}
    assert states == {
        "alice": "graded",
        "bob": "graded",
        "carol": "wrong assignment",
        "dave": "missing",  # an empty folder is a learner with nothing submitted
        "erin": "unreadable",
        "zed": "graded",
    }


def test_another_assignments_notebook_beside_the_right_one_is_a_line_not_a_row(tmp_path, cli):
    subs = tmp_path / "subs"
    submission(subs / "alice", INIT, score=4)
    copy_released(subs / "alice", REG)
    out = tmp_path / "out"
    code, _, _ = cli(subs, "--out", out, "--assignment", INIT)
    assert code == 0
    rows = read_csv(out / "gradebook.csv")
    assert [(r["learner"], r["assignment"], r["status"]) for r in rows] == [("alice", INIT, "graded")]
    line = [ln for ln in (out / "skipped.txt").read_text().splitlines() if ln.startswith("alice/regularization")]
    assert len(line) == 1 and "assignment regularization, not initialization" in line[0]


@pytest.mark.parametrize("layout", ["flat", "nbgrader"])
def test_a_wrong_assignment_notebook_is_a_zero_row_in_every_layout(tmp_path, cli, layout):
    subs = tmp_path / "subs"
    if layout == "flat":
        copy_released(subs, REG, "carol.ipynb")
        submission(subs, "alice", score=4)
    else:
        copy_released(subs / "carol" / INIT, REG, f"{INIT}.ipynb")
        submission(subs / "alice" / INIT, INIT, score=4)
    out = tmp_path / "out"
    code, _, stderr = cli(subs, "--out", out, "--assignment", INIT)
    assert code == 1, stderr
    by = {r["learner"]: r for r in read_csv(out / "gradebook.csv")}
    assert by["carol"]["status"] == "wrong assignment" and by["carol"]["assignment"] == INIT
    assert "this notebook is assignment regularization" in by["carol"]["problem"]
    feedback = (out / "learners" / "carol" / INIT / "feedback.md").read_text()
    assert "assignment regularization, not initialization" in feedback


def test_deadlines_tell_missing_from_not_submitted_and_extensions_show(tmp_path, cli):
    subs = tmp_path / "subs"
    submission(subs / "alice", INIT, score=4)
    (subs / "bob").mkdir()
    past = (datetime.now(UTC) - timedelta(days=3)).isoformat(timespec="seconds")
    ahead = (datetime.now(UTC) + timedelta(days=30)).isoformat(timespec="seconds")
    policy = write(
        tmp_path / "late.toml",
        f'[{INIT}]\ndeadline = {past}\n[{REG}]\ndeadline = {ahead}\n[extensions]\nbob = {{ days = 7, assignment = "{INIT}" }}\n',
    )
    times = write(tmp_path / "times.csv", f"learner,assignment,submitted_at\nalice,{INIT},{past}\n")
    out = tmp_path / "out"
    code, stdout, _ = cli(subs, "--out", out, "--assignment", INIT, "--late-policy", policy, "--times", times)
    assert code == 0
    rows = {(r["learner"], r["assignment"]): r for r in read_csv(out / "gradebook.csv")}
    assert set(rows) == {("alice", INIT), ("alice", REG), ("bob", INIT), ("bob", REG)}
    assert rows["alice", INIT]["status"] == "graded"
    assert rows["alice", REG]["status"] == "not submitted" and rows["alice", REG]["total"] == ""
    assert rows["bob", INIT]["status"] == "not submitted"  # the extension moved bob's deadline ahead
    assert "+7 day(s)" in rows["bob", INIT]["extension"]
    assert rows["bob", REG]["status"] == "not submitted"
    page = (out / "index.html").read_text()
    assert f'data-learner="bob" data-assignment="{INIT}" data-state="not submitted" data-extended="yes"' in page
    assert "3 not submitted" in stdout


def test_the_extension_past_is_missing_not_not_submitted(tmp_path):
    """The ledger alone: a deadline, an extension, and the time they are compared with."""
    now = datetime(2026, 12, 7, tzinfo=UTC)
    due = now - timedelta(days=1)

    def deadlines(learner, assignment):
        return (due + timedelta(days=2), "extension: +2 day(s)") if learner == "bob" else (due, "")

    people = roster.parse_roster("learner\nalice\nbob\n")
    rows = ledger.build([], roster=people, assignments=[INIT], deadlines=deadlines, now=now).rows
    assert [(r.learner, r.state, bool(r.extension)) for r in rows] == [
        ("alice", ledger.MISSING, False),
        ("bob", ledger.NOT_SUBMITTED, True),
    ]


# ------------------------------------------------------------------ the roster file


@pytest.mark.parametrize(
    "text, message",
    [
        ("name,email\nAlice,a@x\n", "no learner column"),
        ("learner,emial\nalice,a@x\n", "unknown column 'emial'"),
        ("learner\nalice\nbob\nalice\n", "line 4: learner 'alice' again (first on line 2)"),
        ("learner\n../etc\n", "line 2: learner '../etc' refused"),
        ("learner\n=1+2\n", None),  # a name a spreadsheet would run: allowed, neutralised in CSVs
        ("learner,name\nalice," + "x" * 300 + "\n", "a cell of 300 characters"),
        ("learner\n", "a header but no learner"),
        ("", "is empty"),
    ],
)
def test_a_bad_roster_is_refused_naming_the_line(text, message):
    if message is None:
        assert roster.parse_roster(text, "r.csv").people[0].learner.startswith("=")
        return
    with pytest.raises(roster.RosterError, match=message.replace("(", r"\(").replace(")", r"\)").replace("|", r"\|")):
        roster.parse_roster(text, "r.csv")


def test_nbgrader_and_canvas_rosters_are_read():
    nb = roster.parse_roster("id,first_name,last_name,email,lms_user_id\nbitdiddle,Ben,Bitdiddle,b@x,77\n")
    person = nb.people[0]
    assert (nb.layout, person.learner, person.name, person.canvas_user_id) == (
        "nbgrader",
        "bitdiddle",
        "Ben Bitdiddle",
        "77",
    )
    export = (
        "Student,ID,SIS User ID,SIS Login ID,Section,Initialization (123)\n"
        "    Points Possible,,,,,10\n"
        '"Kim, Alice",1001,S001,akim,A,9\n'
    )
    canvas = roster.parse_roster(export)
    person = canvas.people[0]
    assert canvas.layout == "Canvas" and len(canvas.people) == 1
    assert (person.learner, person.name, person.canvas_user_id, person.sis_user_id) == (
        "akim",
        "Kim, Alice",
        "1001",
        "S001",
    )


def test_a_bad_roster_is_a_usage_error_before_grading(tmp_path, cli):
    subs = tmp_path / "subs"
    submission(subs, "alice", score=4)
    bad = write(tmp_path / "roster.csv", "learner\nalice\nalice\n")
    code, _, stderr = cli(subs, "--out", tmp_path / "out", "--roster", bad)
    assert code == 2 and "roster.csv line 3" in stderr
    assert not (tmp_path / "out" / "gradebook.csv").exists()


def test_a_roster_that_is_not_utf8_or_too_big_is_refused(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("learner\nJos\xe9\n".encode("latin-1"))
    with pytest.raises(roster.RosterError, match="not UTF-8"):
        roster.load_roster(latin)
    big = tmp_path / "big.csv"
    with open(big, "wb") as handle:
        handle.truncate(roster.MAX_ROSTER_BYTES + 1)
    with pytest.raises(roster.RosterError, match="larger than"):
        roster.load_roster(big)


# ------------------------------------------------------------------ folders that are not submissions


def test_an_nbgrader_course_root_is_refused_naming_submitted(tmp_path, cli):
    root = tmp_path / "course"
    for folder in ("source", "release"):
        copy_released(root / folder / INIT, INIT)
    submission(root / "submitted" / "alice" / INIT, INIT, score=4)
    write(root / "nbgrader_config.py", "c = get_config()\n")
    code, _, stderr = cli(root, "--out", tmp_path / "out")
    assert code == 2 and "nbgrader course folder" in stderr and str(root / "submitted") in stderr
    code, _, _ = cli(root / "submitted", "--out", tmp_path / "out")
    assert code == 0
    rows = read_csv(tmp_path / "out" / "gradebook.csv")
    assert [(r["learner"], r["assignment"]) for r in rows] == [("alice", INIT)]


def test_the_exchange_inbound_folder_is_refused(tmp_path, cli):
    inbound = tmp_path / "inbound"
    for name in (
        "alice+initialization+2026-03-01 10:00:00.000000 UTC+a1b2",
        "bob+initialization+2026-03-02 11:00:00 UTC",
    ):
        submission(inbound / name, INIT, score=4)
    code, _, stderr = cli(inbound, "--out", tmp_path / "out")
    assert code == 2 and "exchange inbound/" in stderr and "nbgrader collect" in stderr
    with pytest.raises(discovery.SubmissionsError):
        discovery.discover(inbound)
