"""Faults of `dlgrade serve` on its default database (SQLite): a grading worker that dies, a service
restarted with a queue, claims left by graders that stopped, a locked database file, and Dask.

The graders are the real ones (runner.GradeRunner over pool.run_local's spawned workers); only what a
worker runs per submission is a stand-in (tests/service_stand_ins_faults.py), so faults can be planted
in the notebook's bytes. PostgreSQL's faults are in test_service_postgres.py.
"""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import service_stand_ins_faults as stand_ins
from fastapi.testclient import TestClient
from service_stand_ins_faults import ASSIGNMENT, all_graded, marked_notebook, roster_text, wait_until
from sqlalchemy import update

from autograder.batch.roster import parse_roster
from autograder.service import db
from autograder.service import runner as runner_module
from autograder.service.blobs import BlobStore
from autograder.service.config import ServiceConfig
from autograder.service.db import GRADED, GRADING, QUEUED, Submission, utcnow
from autograder.service.runner import GradeRunner
from autograder.service.store import Store
from autograder.service.web import create_app

LEARNERS = [f"learner{n:02d}" for n in range(8)]


@pytest.fixture
def faults_dir(tmp_path, monkeypatch):
    """The stand-ins' folder (calls.log, KILL-ONCE markers), given to spawned workers by environment."""
    folder = tmp_path / "faults"
    folder.mkdir()
    monkeypatch.setenv(stand_ins.DIR_VARIABLE, str(folder))
    return folder


@pytest.fixture
def course(tmp_path):
    """A Store and BlobStore on a fresh SQLite database, with LEARNERS on the roster."""
    engine = db.make_engine(db.sqlite_url(tmp_path / "service.sqlite"))
    db.upgrade(engine)
    store = Store(db.sessions(engine))
    store.ensure_assignments()
    store.import_roster(parse_roster(roster_text(LEARNERS)))
    yield store, BlobStore(tmp_path / "blobs")
    engine.dispose()


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


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def running(runner: GradeRunner):
    """Start ``runner``; the caller stops it (``runner.stop()``)."""
    runner.start()
    return runner


# ------------------------------------------------------------------ 1. a worker dies mid-grade


def test_a_worker_that_dies_mid_grade_has_its_submission_graded_again_and_the_others_graded(course, faults_dir):
    store, blobs = course
    notebooks = {
        "killer": marked_notebook("KILL-ONCE"),
        "beside": marked_notebook("SLEEP=1.0 beside"),  # in flight in the same pool when the killer dies
        "later1": marked_notebook("later 1"),
        "later2": marked_notebook("later 2"),
    }
    ids = {key: queue(store, blobs, LEARNERS[n], data) for n, (key, data) in enumerate(notebooks.items())}
    runner = running(GradeRunner(store, blobs, workers=2, grade=stand_ins.fixed))
    try:
        rows = wait_until(lambda: all_graded(store, 4), 90, "every submission graded")
    finally:
        runner.stop()
    by_id = {row.id: row for row in rows}
    calls = stand_ins.calls(faults_dir)
    runs = Counter(d for _, d in calls)

    assert (faults_dir / f"killed-{digest(notebooks['killer'])}").exists(), "the stand-in never killed its worker"
    killer = by_id[ids["killer"]]
    # Graded, by a second worker: the first one died grading it.
    assert runs[digest(notebooks["killer"])] == 2
    pids = [pid for pid, d in calls if d == digest(notebooks["killer"])]
    assert stand_ins.worker_pid(killer.result) == pids[1] != pids[0]
    for key, id in ids.items():
        row = by_id[id]
        assert row.status == GRADED, key
        assert (row.score, row.max_score) == (stand_ins.SCORE, stand_ins.MAX_SCORE), (key, row.result)
        assert not row.result.get("error"), (key, row.result.get("error"))
        # The pool grades its suspects again itself: the row was claimed once, never queued again.
        assert row.attempts == 1, key
        assert row.claimed_by == ""
    for key in ("later1", "later2"):
        assert runs[digest(notebooks[key])] == 1, key
    assert runner.graded == 4 and runner.errors == 0
    assert len(store.submissions()) == 4


def test_a_submission_that_kills_its_worker_every_time_gets_a_zero_saying_so(course, faults_dir):
    store, blobs = course
    killer = marked_notebook("KILL-ALWAYS")
    innocent = marked_notebook("innocent")
    killer_id = queue(store, blobs, LEARNERS[0], killer)
    innocent_id = queue(store, blobs, LEARNERS[1], innocent)
    runner = running(GradeRunner(store, blobs, workers=2, grade=stand_ins.fixed))
    try:
        rows = {r.id: r for r in wait_until(lambda: all_graded(store, 2), 90, "both submissions graded")}
        assert runner.running  # the runner outlived its workers
    finally:
        runner.stop()
    row = rows[killer_id]
    assert row.status == GRADED and row.score == 0.0 and row.max_score > 0
    assert "the grading process died" in row.result["error"]
    assert Counter(d for _, d in stand_ins.calls(faults_dir))[digest(killer)] == 2  # once in the pool, once alone
    assert (rows[innocent_id].score, rows[innocent_id].result.get("error")) == (stand_ins.SCORE, None)


def test_a_grade_function_that_always_kills_its_worker_leaves_no_row_stuck(course, faults_dir):
    store, blobs = course
    ids = [queue(store, blobs, LEARNERS[n], marked_notebook(f"doomed {n}")) for n in range(3)]
    runner = running(GradeRunner(store, blobs, workers=2, grade=stand_ins.kill_always))
    try:
        rows = wait_until(lambda: all_graded(store, 3), 120, "every submission recorded")
    finally:
        runner.stop()
    assert sorted(r.id for r in rows) == sorted(ids)
    for row in rows:
        assert row.score == 0.0 and "the grading process died" in row.result["error"], row.result
        assert row.attempts == 1


# ------------------------------------------------------------------ 2. restarts and stale claims


def test_a_service_restarted_with_a_queue_grades_each_submission_exactly_once(tmp_path, faults_dir):
    folder = tmp_path / "course"
    learners = LEARNERS[:6]
    notebooks = {learner: marked_notebook(f"restart {learner}") for learner in learners}

    # First life: pages and API only (no graders); six uploads wait in the queue.
    first = create_app(ServiceConfig(course=folder, workers=0), graders=False)
    assert first.state.runner is None
    with TestClient(first) as client:
        tokens = first.state.store.import_roster(parse_roster(roster_text(learners)))
        first.state.store.update_assignment(ASSIGNMENT, is_open=True)
        for learner, data in notebooks.items():
            answer = client.post(
                "/api/v1/submissions",
                headers={"Authorization": f"Bearer {tokens[learner]}"},
                files={"notebook": (f"{ASSIGNMENT}.ipynb", data, "application/x-ipynb+json")},
            )
            assert answer.status_code == 201, answer.text
            assert answer.json()["status"] == QUEUED
        assert first.state.store.queue_counts() == {QUEUED: 6}

    # Second life: the same folder and database, graders on.
    second = create_app(ServiceConfig(course=folder, workers=2), grade=stand_ins.fixed)
    with TestClient(second) as client:
        store = second.state.store
        rows = wait_until(lambda: all_graded(store, 6), 90, "the queue drained")
        status = client.get(
            f"/api/v1/submissions/{rows[0].id}", headers={"Authorization": f"Bearer {tokens[rows[0].learner]}"}
        ).json()
        assert (status["status"], status["score"], status["max_score"]) == (
            GRADED,
            stand_ins.SCORE,
            stand_ins.MAX_SCORE,
        )
        graded = second.state.runner.graded
    assert graded == 6
    assert sorted(r.learner for r in rows) == sorted(learners)  # one row per upload, no duplicate rows
    assert all(r.attempts == 1 and r.score == stand_ins.SCORE for r in rows)
    runs = Counter(d for _, d in stand_ins.calls(faults_dir))
    assert runs == Counter({digest(data): 1 for data in notebooks.values()})  # each graded exactly once


def _claim(store: Store, id: int, grader: str, when) -> None:
    """Leave submission ``id`` as a grader that took it at ``when`` would."""
    with store.sessions.begin() as s:
        s.execute(
            update(Submission)
            .where(Submission.id == id)
            .values(status=GRADING, claimed_by=grader, claimed_at=when, attempts=1)
        )


def test_claims_of_stopped_graders_are_queued_again_and_live_claims_are_not_stolen(course, faults_dir):
    store, blobs = course
    host = socket.gethostname()
    dead_pid = subprocess.Popen(["true"])  # a process of this host that no longer runs
    dead_pid.wait()
    live = subprocess.Popen(["sleep", "120"])  # a grader of this host that still runs
    runner = GradeRunner(store, blobs, workers=1, grade=stand_ins.fixed)
    now = utcnow()
    ids = {
        key: queue(store, blobs, LEARNERS[n], marked_notebook(key))
        for n, key in enumerate(["dead", "expired", "live", "elsewhere", "queued", "reused"])
    }
    _claim(store, ids["dead"], f"{host}:{dead_pid.pid}", now)
    _claim(store, ids["expired"], "another-host:4242", now - runner.lease - timedelta(minutes=1))
    started = runner_module._started(live.pid)
    assert started
    _claim(store, ids["live"], f"{host}:{live.pid}:{started}", now)
    # The same pid, another start time: the grader that took it is gone (a container restarted: pid 1 again).
    _claim(store, ids["reused"], f"{host}:{live.pid}:{int(started) - 1}", now)
    _claim(store, ids["elsewhere"], "another-host:4243", now - timedelta(seconds=30))
    try:
        runner.start()
        try:
            wait_until(
                lambda: all(store.submission(ids[k]).status == GRADED for k in ("dead", "expired", "queued", "reused")),
                60,
                "the orphaned claims graded",
            )
            # A few more feed rounds: the live claims stay where they are.
            runner.sweep(force=True)
            wait_until(lambda: runner.graded >= 4, 5, "the runner's count")
        finally:
            runner.stop()
    finally:
        live.kill()
        live.wait()
    rows = {key: store.submission(id) for key, id in ids.items()}
    for key in ("dead", "expired", "reused"):
        assert rows[key].status == GRADED and rows[key].score == stand_ins.SCORE, key
        assert rows[key].attempts == 2, key  # claimed by the lost grader, then by this one
        assert rows[key].regrade_reason == "its grader stopped before finishing"
    assert rows["queued"].attempts == 1
    assert (rows["live"].status, rows["live"].claimed_by, rows["live"].attempts) == (
        GRADING,
        f"{host}:{live.pid}:{started}",
        1,
    )
    assert (rows["elsewhere"].status, rows["elsewhere"].claimed_by) == (GRADING, "another-host:4243")
    runs = Counter(d for _, d in stand_ins.calls(faults_dir))
    assert runs[digest(marked_notebook("live"))] == 0 and runs[digest(marked_notebook("elsewhere"))] == 0
    assert runner.graded == 4


# ------------------------------------------------------------------ 3. a locked SQLite database


def _lock(path, seconds: float) -> threading.Event:
    """Hold SQLite's write lock on ``path`` from another connection for ``seconds``; the event is set
    once the lock is held."""
    held = threading.Event()

    def hold():
        connection = sqlite3.connect(path, timeout=0.1, isolation_level=None)
        try:
            connection.execute("BEGIN EXCLUSIVE")  # in WAL mode: no other writer, readers go on
            held.set()
            threading.Event().wait(seconds)
            connection.execute("ROLLBACK")
        finally:
            connection.close()

    threading.Thread(target=hold, daemon=True).start()
    assert held.wait(10), "could not lock the database file"
    return held


def _upload(client, token: str, data: bytes):
    return client.post(
        "/api/v1/submissions",
        headers={"Authorization": f"Bearer {token}"},
        files={"notebook": (f"{ASSIGNMENT}.ipynb", data, "application/x-ipynb+json")},
    )


@pytest.fixture
def sqlite_service(tmp_path):
    app = create_app(ServiceConfig(course=tmp_path / "course", workers=0), graders=False)
    with TestClient(app) as client:
        tokens = app.state.store.import_roster(parse_roster(roster_text(LEARNERS[:2])))
        app.state.store.update_assignment(ASSIGNMENT, is_open=True)
        yield app, client, tokens


def test_a_briefly_locked_sqlite_database_delays_an_upload_without_losing_it(sqlite_service):
    app, client, tokens = sqlite_service
    _lock(app.state.config.course / "service.sqlite", 1.5)
    answer = _upload(client, tokens[LEARNERS[0]], marked_notebook("while locked"))
    assert answer.status_code == 201, answer.text  # the busy timeout waited for the lock
    assert [r.id for r in app.state.store.submissions()] == [answer.json()["id"]]


@pytest.mark.slow  # the service's SQLite busy timeout is 30 s: the lock has to outlast it
def test_a_sqlite_database_locked_past_the_busy_timeout_refuses_cleanly_then_accepts(sqlite_service):
    app, client, tokens = sqlite_service
    data = marked_notebook("locked too long")
    _lock(app.state.config.course / "service.sqlite", 33)
    answer = _upload(client, tokens[LEARNERS[0]], data)
    assert answer.status_code == 503, answer.text
    assert "unavailable" in answer.json()["error"] and answer.headers["Retry-After"].isdigit()
    assert app.state.store.submissions() == []  # nothing recorded (the blob may stay: content-addressed)
    wait_until(lambda: _upload(client, tokens[LEARNERS[0]], data).status_code == 201, 20, "the same upload accepted")
    rows = app.state.store.submissions()
    assert len(rows) == 1 and rows[0].sha256 == digest(data)
    assert app.state.blobs.path(rows[0].sha256).read_bytes() == data


# ------------------------------------------------------------------ 6. Dask


def test_the_runner_grades_on_a_local_dask_cluster(course, faults_dir):
    pytest.importorskip("distributed")
    store, blobs = course
    data = marked_notebook("dask")
    id = queue(store, blobs, LEARNERS[0], data)
    runner = running(GradeRunner(store, blobs, dask="local:1", grade=stand_ins.fixed))
    try:
        row = wait_until(lambda: (r := store.submission(id)).status == GRADED and r, 90, "graded on Dask")
    finally:
        runner.stop()
    assert (row.score, row.max_score, row.attempts) == (stand_ins.SCORE, stand_ins.MAX_SCORE, 1)
    assert [d for _, d in stand_ins.calls(faults_dir)] == [digest(data)]


def test_a_regrade_asked_while_grading_keeps_the_new_grade_not_the_stale_one(course, faults_dir):
    store, blobs = course
    data = marked_notebook("SLEEP=2 regraded while grading")
    id = queue(store, blobs, LEARNERS[0], data)
    runner = running(GradeRunner(store, blobs, workers=2, grade=stand_ins.fixed))
    try:
        wait_until(lambda: len(stand_ins.calls(faults_dir)) == 1, 30, "the first grade started")
        assert store.regrade(ids=[id], reason="the suite changed") == 1
        # The free worker takes it again at once: two grades of it in flight, the first one stale.
        wait_until(lambda: len(stand_ins.calls(faults_dir)) == 2, 30, "the second grade started")
        row = wait_until(lambda: (r := store.submission(id)).status == GRADED and r, 30, "graded")
        time.sleep(2.5)  # the second grade finishes too
    finally:
        runner.stop()
    row = store.submission(id)
    (stale_pid, _), (fresh_pid, _) = stand_ins.calls(faults_dir)
    assert stale_pid != fresh_pid
    assert row.attempts == 2
    assert stand_ins.worker_pid(row.result) == fresh_pid, "the grade asked for before the regrade was kept"
    assert row.graded_at is not None and len(store.submissions()) == 1


def test_when_the_pool_itself_fails_its_claims_are_queued_again_at_once_and_graded(course, faults_dir, monkeypatch):
    """A pool that fails (not a worker: the pool, e.g. it cannot start processes) after taking a
    submission: the runner puts its claims back in the queue now, not after the lease, and grades them."""
    from autograder.batch import pool
    from autograder.service import runner as runner_module

    store, blobs = course
    id = queue(store, blobs, LEARNERS[0], marked_notebook("pool fails once"))
    real = pool.run_local
    failures = []

    def failing_once(jobs, workers, on_done, grade, *, feed, stop):
        if not failures:
            taken = feed(1)  # the claim is now a row in "grading"
            failures.append([job.source for job in taken])
            raise RuntimeError("the pool could not start its workers")
        return real(jobs, workers, on_done, grade, feed=feed, stop=stop)

    monkeypatch.setattr(runner_module.pool, "run_local", failing_once)
    runner = running(GradeRunner(store, blobs, workers=1, grade=stand_ins.fixed))
    assert runner.lease > timedelta(minutes=10)  # so only the runner's own requeue can beat this wait
    try:
        rows = wait_until(lambda: all_graded(store, 1), 60, "the submission graded after the pool failed")
    finally:
        runner.stop()
    assert failures == [[f"submission {id}, attempt 1"]]
    assert rows[0].attempts == 2 and rows[0].score == stand_ins.SCORE
    assert "stopped before finishing" in rows[0].regrade_reason
