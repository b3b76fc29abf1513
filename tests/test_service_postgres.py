"""`dlgrade serve` on PostgreSQL (the throwaway cluster of tests/service_fixtures.py): the main flow,
the Alembic migrations, two graders on one queue, a database that goes away for a moment, and
`dlgrade serve --grader-only` as a real process.

What a worker runs per submission is a stand-in (tests/service_stand_ins_faults.py) except in the
--grader-only test, which grades a real example notebook with the real grader.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import service_stand_ins_faults as stand_ins
from fastapi.testclient import TestClient
from service_stand_ins_faults import ASSIGNMENT, all_graded, marked_notebook, roster_text, wait_until
from sqlalchemy import inspect, text

from autograder.batch.roster import parse_roster
from autograder.service import auth, db
from autograder.service.blobs import BlobStore
from autograder.service.config import ServiceConfig
from autograder.service.db import GRADED
from autograder.service.runner import GradeRunner
from autograder.service.store import Store
from autograder.service.web import create_app

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]
STAFF, PASSWORD = "staff@example.org", "correct horse battery"


@pytest.fixture
def faults_dir(tmp_path, monkeypatch):
    folder = tmp_path / "faults"
    folder.mkdir()
    monkeypatch.setenv(stand_ins.DIR_VARIABLE, str(folder))
    return folder


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload(client, token: str, data: bytes):
    return client.post(
        "/api/v1/submissions",
        headers={"Authorization": f"Bearer {token}"},
        files={"notebook": (f"{ASSIGNMENT}.ipynb", data, "application/x-ipynb+json")},
    )


def csrf(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def open_course(folder: Path, url: str, learners) -> tuple:
    """A store on ``url`` (schema upgraded) with ``learners`` on the roster: (engine, store, blobs, tokens)."""
    engine = db.make_engine(url)
    db.upgrade(engine)
    store = Store(db.sessions(engine))
    store.ensure_assignments()
    tokens = store.import_roster(parse_roster(roster_text(learners)))
    return engine, store, BlobStore(folder / "blobs"), tokens


def queue(store: Store, blobs: BlobStore, learner: str, data: bytes) -> int:
    row, duplicate = store.add_submission(
        learner=learner,
        assignment=ASSIGNMENT,
        filename=f"{ASSIGNMENT}.ipynb",
        sha256=blobs.put(data),
        size=len(data),
        via="api",
    )
    assert not duplicate
    return row.id


# ------------------------------------------------------------------ the main flow


def test_the_main_flow_on_postgresql(tmp_path, fresh_postgres_url, faults_dir):
    app = create_app(
        ServiceConfig(course=tmp_path / "course", database=fresh_postgres_url, workers=1), grade=stand_ins.fixed
    )
    assert app.state.engine.dialect.name == "postgresql"
    with TestClient(app) as client:
        store = app.state.store
        tokens = store.import_roster(parse_roster(roster_text(["alice", "bob", "carol"])))
        store.update_assignment(ASSIGNMENT, is_open=True)
        auth.add_staff(store.sessions, STAFF, PASSWORD)
        ids = {}
        for learner in ("alice", "bob"):
            answer = upload(client, tokens[learner], marked_notebook(f"flow {learner}"))
            assert answer.status_code == 201, answer.text
            ids[learner] = answer.json()["id"]
        wait_until(lambda: all_graded(store, 2), 60, "both uploads graded")
        status = client.get(
            f"/api/v1/submissions/{ids['alice']}", headers={"Authorization": f"Bearer {tokens['alice']}"}
        )
        assert status.json()["status"] == GRADED
        assert (status.json()["score"], status.json()["max_score"]) == (stand_ins.SCORE, stand_ins.MAX_SCORE)
        # bob cannot read alice's submission
        assert (
            client.get(
                f"/api/v1/submissions/{ids['alice']}", headers={"Authorization": f"Bearer {tokens['bob']}"}
            ).status_code
            == 404
        )

        ledger = {(row.learner, row.assignment): row for row in store.ledger().rows}
        assert ledger[("alice", ASSIGNMENT)].state == "graded"
        assert ledger[("alice", ASSIGNMENT)].result.score == stand_ins.SCORE
        assert ledger[("carol", ASSIGNMENT)].grade is None  # nothing submitted: a row all the same

        token = csrf(client, "/staff/signin")
        signed = client.post(
            "/staff/signin", data={"csrf": token, "email": STAFF, "password": PASSWORD}, follow_redirects=False
        )
        assert signed.status_code == 303, signed.text
        matrix = client.get("/staff")
        assert matrix.status_code == 200 and "alice" in matrix.text and "carol" in matrix.text
        gradebook = client.get("/staff/export/gradebook.csv")
        assert gradebook.status_code == 200
        rows = list(csv.DictReader(io.StringIO(gradebook.text)))
        alice = [r for r in rows if "alice" in r.values()]
        assert alice and any(v in ("3", "3.0", "3.00") for v in alice[0].values()), gradebook.text
        for export in ("canvas-gradebook.csv", "course-summary.csv"):
            answer = client.get(f"/staff/export/{export}")
            assert answer.status_code == 200 and "bob" in answer.text, export
        assert client.get("/staff/course/").status_code == 200
    assert Counter(d for _, d in stand_ins.calls(faults_dir)) == Counter(
        {digest(marked_notebook(f"flow {learner}")): 1 for learner in ("alice", "bob")}
    )


# ------------------------------------------------------------------ migrations


def _schema(engine) -> dict:
    found = inspect(engine)
    return {
        table: (
            sorted((c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)),
            sorted(i["name"] for i in found.get_indexes(table)),
        )
        for table in sorted(found.get_table_names())
    }


def test_migrations_create_the_schema_on_an_empty_database_and_a_second_run_changes_nothing(fresh_postgres_url):
    engine = db.make_engine(fresh_postgres_url)
    try:
        assert inspect(engine).get_table_names() == []
        db.upgrade(engine)
        schema = _schema(engine)
        assert {"staff", "learners", "assignments", "extensions", "submissions", "alembic_version"} <= set(schema)
        assert "submissions_by_status" in schema["submissions"][1]
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        assert len(versions) == 1
        store = Store(db.sessions(engine))
        store.import_roster(parse_roster(roster_text(["alice"])))

        db.upgrade(engine)  # again: a no-op
        assert _schema(engine) == schema
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == versions
        assert [row.learner for row in store.learners()] == ["alice"]  # the data stays
    finally:
        engine.dispose()


# ------------------------------------------------------------------ two graders, one queue


def test_two_graders_on_one_database_never_grade_the_same_submission_twice(tmp_path, postgres_database, faults_dir):
    url = postgres_database()
    learners = [f"l{n:02d}" for n in range(40)]
    engine, store, blobs, _ = open_course(tmp_path, url, learners)
    notebooks = {learner: marked_notebook(f"SLEEP=0.2 {learner}") for learner in learners}
    ids = [queue(store, blobs, learner, data) for learner, data in notebooks.items()]

    # Two graders as two processes would have them: each its own engine and store.
    engines, runners, claimed = [], [], []
    for _ in range(2):
        engines.append(db.make_engine(url))
        grader_store = Store(db.sessions(engines[-1]))
        took: list = []
        original = grader_store.claim

        def spy(limit, grader, original=original, took=took):
            got = original(limit, grader)
            took.extend(c.id for c in got)
            return got

        grader_store.claim = spy
        claimed.append(took)
        runners.append(GradeRunner(grader_store, blobs, workers=2, grade=stand_ins.fixed))
    try:
        for runner in runners:
            runner.start()
        rows = wait_until(lambda: all_graded(store, 40), 120, "the 40 submissions graded")
    finally:
        for runner in runners:
            runner.stop()
        for one in engines:
            one.dispose()
        engine.dispose()

    assert not set(claimed[0]) & set(claimed[1]), "both graders claimed the same submission"
    assert sorted(claimed[0] + claimed[1]) == sorted(ids)  # each claimed exactly once
    assert claimed[0] and claimed[1], f"one grader did all the work: {len(claimed[0])} / {len(claimed[1])}"
    assert [r.graded for r in runners] == [len(claimed[0]), len(claimed[1])]
    assert all(r.attempts == 1 and r.score == stand_ins.SCORE for r in rows)
    runs = Counter(d for _, d in stand_ins.calls(faults_dir))
    assert runs == Counter({digest(data): 1 for data in notebooks.values()})  # each graded exactly once


# ------------------------------------------------------------------ the database goes away


def test_a_database_that_goes_away_fails_requests_cleanly_and_the_graders_survive(
    tmp_path, postgres_database, postgres_control, faults_dir
):
    url = postgres_database()
    app = create_app(ServiceConfig(course=tmp_path / "course", database=url, workers=1), grade=stand_ins.fixed)
    with TestClient(app) as client:
        store, runner = app.state.store, app.state.runner
        tokens = store.import_roster(parse_roster(roster_text(["alice", "bob", "carol"])))
        store.update_assignment(ASSIGNMENT, is_open=True)
        assert client.get(f"/join/{tokens['alice']}", follow_redirects=False).status_code == 200
        form_csrf = csrf(client, "/")
        data = marked_notebook("during the outage")
        # A grade in flight when the database goes: it finishes while the database is away.
        in_flight = marked_notebook("SLEEP=3 in flight")
        answer = upload(client, tokens["carol"], in_flight)
        assert answer.status_code == 201
        carol_id = answer.json()["id"]
        wait_until(lambda: stand_ins.calls(faults_dir), 30, "carol's grade started")

        postgres_control.stop()
        try:
            refused = upload(client, tokens["alice"], data)
            assert refused.status_code == 503, refused.text
            assert "unavailable" in refused.json()["error"]
            assert refused.headers["Retry-After"].isdigit()
            page = client.get("/")
            assert page.status_code == 503 and "text/html" in page.headers["content-type"]
            assert "unavailable" in page.text
            form = client.post(
                "/submit",
                data={"csrf": form_csrf, "assignment": ASSIGNMENT},
                files={"notebook": (f"{ASSIGNMENT}.ipynb", data, "application/x-ipynb+json")},
            )
            assert form.status_code == 503 and "unavailable" in form.text
            # carol's grade comes back while the database is away: it cannot be recorded yet
            wait_until(lambda: runner.errors >= 1, 30, "the grader failing to record carol's grade")
            time.sleep(1.5)  # the grader keeps trying to claim meanwhile
            assert runner.running
        finally:
            postgres_control.start()

        # Nothing half-written: no row of the refused uploads, carol's row not half-recorded.
        ids = [row.id for row in store.submissions()]
        assert ids == [carol_id]
        accepted = upload(client, tokens["alice"], data)
        assert accepted.status_code == 201, accepted.text
        alice_id = accepted.json()["id"]
        wait_until(lambda: all_graded(store, 2), 60, "alice's and carol's submissions graded")
        alice, carol = store.submission(alice_id), store.submission(carol_id)
        assert (alice.score, alice.attempts) == (stand_ins.SCORE, 1)
        assert carol.score == stand_ins.SCORE and carol.result["score"] == stand_ins.SCORE
        assert app.state.blobs.path(alice.sha256).read_bytes() == data
    runs = Counter(d for _, d in stand_ins.calls(faults_dir))
    assert runs[digest(data)] == 1
    # carol's grade was kept through the outage and recorded once it was back: not graded again
    assert runs[digest(in_flight)] == 1 and carol.attempts == 1


# ------------------------------------------------------------------ dlgrade serve --grader-only


def test_grader_only_grades_a_queue_another_process_filled_and_stops_on_sigterm(tmp_path, fresh_postgres_url):
    course = tmp_path / "course"
    engine, store, blobs, _ = open_course(course, fresh_postgres_url, ["alice"])
    data = (ROOT / "examples" / "submissions" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes()
    id = queue(store, blobs, "alice", data)
    log = (tmp_path / "grader.log").open("w+")
    grader = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autograder.cli",
            "serve",
            "--grader-only",
            "--course",
            str(course),
            "--database",
            fresh_postgres_url,
            "--workers",
            "1",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        row = wait_until(
            lambda: (r := store.submission(id)).status == GRADED and r or grader.poll() is not None and r,
            120,
            "the grader process to grade alice's notebook",
            interval=0.5,
        )
        assert grader.poll() is None, "the grader exited: " + (log.seek(0) or log.read())
        assert row.status == GRADED and row.attempts == 1
        assert row.max_score > 0 and row.score == row.max_score, row.result  # alice's notebook is full marks
        assert not row.result.get("error")
        grader.send_signal(signal.SIGTERM)
        assert grader.wait(timeout=60) == 0
        assert store.queue_counts() == {GRADED: 1}
        assert store.submission(id).claimed_by == ""
    finally:
        if grader.poll() is None:
            grader.kill()
            grader.wait()
        engine.dispose()
    log.seek(0)
    assert "--grader-only" in log.read()
