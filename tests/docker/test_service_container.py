"""`dlgrade serve --grader-only` in the grading image, with the grading image's run line.

The course folder (database, session key, blobs) is made and filled on the host through the Store,
mounted read-write at /course, and graded by the container's warm worker: a hostile upload (issue 11's
planting notebook) and a reader looking for the course's files are queued first, then three victims.
The host's database is polled until every row is graded. Nothing of the course folder may be read,
planted or changed by the learners' code, and the victims score exactly as the engine grades them on
the host. `docker stop` then ends the grader with SIGTERM (the entrypoint execs it): exit 0, at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
import uuid

import pytest

from tests.docker.conftest import DOCKER_DIR, docker, record_time
from tests.docker.test_grading import EXAMPLES
from tests.docker.test_isolation import HOSTILE
from tests.nbtools import with_function, write

pytestmark = pytest.mark.docker

GRADER_UID = 10001
VICTIMS = ("alice", "bob", "carol")
ATTACKERS = ("aaa-attacker", "aab-reader")  # queued first, graded by the worker that grades the victims
DATABASE_FILES = ("service.sqlite", "service.sqlite-wal", "service.sqlite-shm")

# Looks for the course folder from inside a learner function, and says what it reached: every file
# of /course it could read (and how many bytes), every folder it could list, every file it could write.
READER = r"""
def initialize_parameters_zeros(layers_dims):
    import glob, os
    targets = ["/course/service.sqlite", "/course/service.sqlite-wal", "/course/secret.key"]
    for root in ("/course", "/proc/1/root/course", "/proc/1/cwd/course"):
        targets += [root + "/service.sqlite", root + "/secret.key"] + glob.glob(root + "/blobs/*/*")
    targets += glob.glob("/proc/*/root/course/secret.key")
    read = []
    for path in targets:
        try:
            with open(path, "rb") as handle:
                read.append(path + ":" + str(len(handle.read(4096))))
        except OSError:
            pass
    for path in glob.glob("/proc/*/fd/*"):  # a descriptor left open on the database or a blob
        try:
            target = os.readlink(path)
        except OSError:
            continue
        if "course" in target or "sqlite" in target or "secret" in target or "blobs" in target:
            read.append(path + "->" + target)
    listed = []
    for folder in ("/course", "/course/blobs", "/proc/1/root/course", "/mnt", "/srv"):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        if names:  # an empty folder of the learner's own view holds nothing of the course
            listed.append(folder + ":" + ",".join(names))
    # Anything named like the course's files anywhere this process can walk (not the libraries).
    skip = ("/proc", "/sys", "/dev", "/usr", "/opt/venv", "/etc", "/lib", "/lib64", "/bin", "/sbin")
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip and d != "site-packages"]
        for name in files:
            if name.startswith(("service.sqlite", "secret.key")) or len(name) == 64:
                read.append(os.path.join(root, name))
    planted = []
    for target in ("/course/PWNED", "/course/blobs/PWNED", "/proc/1/root/course/PWNED", "/course/secret.key"):
        try:
            with open(target, "a") as handle:
                handle.write("x")
            planted.append(target)
        except OSError:
            pass
    raise RuntimeError("DLGRADE-READER read=" + repr(read) + " listed=" + repr(listed) + " planted=" + repr(planted) + " END")
"""


def course_files(course) -> dict:
    """relative path -> (size, sha256) of every file of the course folder but the database's own."""
    found = {}
    for root, dirs, files in os.walk(course):
        for name in dirs + files:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, course)
            if relative in DATABASE_FILES:
                continue
            if os.path.isfile(path) and not os.path.islink(path):
                data = open(path, "rb").read()
                found[relative] = (len(data), hashlib.sha256(data).hexdigest())
            else:
                found[relative] = ("folder" if os.path.isdir(path) else "other", "")
    return found


def rows(keeper: sqlite3.Connection) -> dict:
    """Every table but the grades' columns: what a grader must leave as it was."""
    tables = [name for (name,) in keeper.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    out = {}
    for table in sorted(tables):
        columns = "*"
        if table == "submissions":
            columns = "id, learner, assignment, filename, sha256, size, submitted_at, via"
        out[table] = keeper.execute(f"SELECT {columns} FROM {table} ORDER BY 1").fetchall()
    return out


def comparable(result: dict) -> dict:
    """What must not differ between the host's grade and the container's: scores and each test's outcome."""
    return {
        "score": result["score"],
        "max_score": result["max_score"],
        "grader_error": result.get("grader_error"),
        "functions": result["functions"],
        "tests": [(t["name"], t["status"], t["score"], t["max_score"]) for t in result["tests"]],
    }


def test_service_graders_in_a_container_keep_the_course_folder(docker_env, tmp_path):
    from autograder.batch.roster import parse_roster
    from autograder.grading.grade import grade_notebook
    from autograder.service import auth, db
    from autograder.service.blobs import BlobStore
    from autograder.service.store import Store

    # The baseline: the victims graded by the engine on the host.
    baseline = {
        learner: comparable(
            grade_notebook(EXAMPLES / learner / "initialization" / "initialization.ipynb", "initialization").to_dict()
        )
        for learner in VICTIMS
    }

    # The course folder, made and filled on the host as `dlgrade serve` would.
    course = tmp_path / "course"
    course.mkdir()
    engine = db.make_engine(db.sqlite_url(course / "service.sqlite"))
    db.upgrade(engine)
    store = Store(db.sessions(engine))
    store.ensure_assignments(open_all=True)
    store.import_roster(parse_roster("learner\n" + "\n".join(ATTACKERS + VICTIMS) + "\n"))
    auth.add_staff(store.sessions, "staff@example.org", "a staff password of the course")
    secret = auth.secret_key(course / "secret.key").encode()
    blobs = BlobStore(course / "blobs")
    notebooks = {
        "aaa-attacker": write(
            with_function("initialization", "initialize_parameters_zeros", HOSTILE),
            tmp_path / "uploads" / "aaa-attacker.ipynb",
        ),
        "aab-reader": write(
            with_function("initialization", "initialize_parameters_zeros", READER),
            tmp_path / "uploads" / "aab-reader.ipynb",
        ),
        **{learner: EXAMPLES / learner / "initialization" / "initialization.ipynb" for learner in VICTIMS},
    }
    ids = {}
    for learner in ATTACKERS + VICTIMS:  # queued in this order: the attackers first
        data = notebooks[learner].read_bytes()
        row, duplicate = store.add_submission(
            learner=learner,
            assignment="initialization",
            filename="initialization.ipynb",
            sha256=blobs.put(data),
            size=len(data),
            via="api",
        )
        assert not duplicate
        ids[learner] = row.id
    # One connection held open for the whole run: the WAL and shared-memory files exist (and belong to
    # the grader after the chown below) until the container has stopped, so this root process never
    # creates one that the container's uid could not write.
    keeper = sqlite3.connect(course / "service.sqlite")
    keeper.execute("SELECT count(*) FROM submissions").fetchone()
    for root, dirs, files in os.walk(course):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, GRADER_UID, GRADER_UID)
    os.chmod(course, 0o750)  # as docker/compose.yaml's course-init leaves the course volume
    files_before, rows_before = course_files(course), rows(keeper)
    blob_files = [f for f, (size, _) in files_before.items() if f.startswith("blobs/") and size != "folder"]
    assert "secret.key" in files_before and len(blob_files) == len(ATTACKERS + VICTIMS)

    name = f"dlgrade-serve-test-{uuid.uuid4().hex[:8]}"
    # The grading image's run line (docker/batch.sh, docker/compose.yaml's x-grader): uid 0 with
    # SETUID/SETGID only, dropping to the grader (uid 10001) before any Python; bubblewrap's profile.
    run_line = [
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/tmp:rw,noexec,nosuid,nodev,size=2g",
        "--memory",
        "8g",
        "--memory-swap",
        "8g",
        "--pids-limit",
        "512",
        "--cpus",
        "2",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "SETUID",
        "--cap-add",
        "SETGID",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        f"seccomp={DOCKER_DIR / 'seccomp-bwrap.json'}",
        "--security-opt",
        "systempaths=unconfined",
        "--user",
        "0:0",
    ]
    started = time.monotonic()
    docker(
        docker_env,
        "run",
        "-d",
        "--name",
        name,
        *run_line,
        "-v",
        f"{course}:/course",
        "dlgrade:cpu",
        "serve",
        "--course",
        "/course",
        "--grader-only",
        "--workers",
        "1",
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            submissions = {row.learner: row for row in store.submissions()}
            if all(row.status == db.GRADED for row in submissions.values()):
                break
            state = docker(docker_env, "inspect", "-f", "{{.State.Status}}", name).stdout.strip()
            logs = docker(docker_env, "logs", name, check=False)
            assert state == "running", f"the grader stopped ({state}):\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
            assert time.monotonic() < deadline, (
                f"not graded in 300 s: {[(r.learner, r.status) for r in submissions.values()]}\n{logs.stderr[-3000:]}"
            )
            time.sleep(2)
        graded_in = time.monotonic() - started
        # Nothing planted in the container's own /tmp either (looked for as the grader, while it runs).
        planted = docker(
            docker_env, "exec", "-u", f"{GRADER_UID}:{GRADER_UID}", name, "find", "/tmp", "-name", "PWNED*", check=False
        )
        assert planted.stdout.strip() == "", planted.stdout
        stopping = time.monotonic()
        docker(docker_env, "stop", "-t", "30", name, timeout=120)
        stopped_in = time.monotonic() - stopping
        exit_code = docker(docker_env, "inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
        logs = docker(docker_env, "logs", name, check=False)
    finally:
        docker(docker_env, "rm", "-f", name, check=False)
    print(logs.stdout[-3000:], logs.stderr[-3000:])
    record_time(
        f"grading: dlgrade serve --grader-only in a container, 5 uploads: {graded_in:.0f} s; "
        f"docker stop: exit {exit_code} after {stopped_in:.1f} s"
    )
    assert "grader-only: 1 worker(s)" in logs.stdout + logs.stderr
    # SIGTERM reaches `dlgrade serve`, which finishes and exits 0 (not SIGKILL after the grace period).
    assert exit_code == "0" and stopped_in < 25, (exit_code, stopped_in, logs.stderr[-2000:])

    # Each submission graded once, by the container's grader.
    submissions = {row.learner: row for row in store.submissions()}
    assert sorted(submissions) == sorted(ATTACKERS + VICTIMS)
    for learner, row in submissions.items():
        assert row.id == ids[learner] and row.status == db.GRADED and row.attempts == 1, (learner, row.attempts)
        assert row.result["sandbox"] == "bwrap", (learner, row.result.get("sandbox"))
    # The victims score exactly as on the host: total, every function, every test's outcome.
    for learner in VICTIMS:
        assert comparable(submissions[learner].result) == baseline[learner], learner
        assert submissions[learner].score == baseline[learner]["score"]

    # The attackers lose only the function they abused, and reached nothing.
    for learner in ATTACKERS:
        result = submissions[learner].result
        assert result["score"] == 11 - 3 and result["functions"]["initialize_parameters_zeros"]["score"] == 0
    hostile = json.dumps(submissions["aaa-attacker"].result)
    match = re.search(r"DLGRADE-HOSTILE planted=(\d+) seen=(.*?) END", hostile)
    assert match, hostile[-2000:]
    assert match.group(2) == "[]", match.group(2)
    reader = json.dumps(submissions["aab-reader"].result)
    match = re.search(r"DLGRADE-READER read=(.*?) listed=(.*?) planted=(.*?) END", reader)
    assert match, reader[-2000:]
    print("reader found:", match.groups())
    assert match.groups() == ("[]", "[]", "[]"), match.groups()

    # The course folder: no file planted, none changed (blobs, session key); the database's rows but
    # the grades as they were; every file still the grader's.
    assert course_files(course) == files_before
    assert (course / "secret.key").read_bytes() == secret
    assert rows(keeper) == rows_before
    keeper.close()
    engine.dispose()
    assert {p.stat().st_uid for p in course.rglob("*")} <= {GRADER_UID}
