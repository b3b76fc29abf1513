"""Grading in real containers, with exactly the documented run lines (docker/grade.sh, docker/batch.sh).

- the example submissions score in the container exactly as outside it (both sandboxes:
  bubblewrap with the shipped seccomp profile, and the setpriv fallback);
- grade.sh takes a single notebook, a folder, and nbgrader's layout, and its messages name the
  user's paths, not the container's; no "Exception ignored" noise;
- a batch killed with `docker kill` resumes from its state volume and grades only what is left.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from tests.docker.conftest import docker, host_batch, record_time, script
from tests.nbtools import ROOT

pytestmark = pytest.mark.docker

EXAMPLES = ROOT / "examples" / "submissions"


def gradebook(path):
    with open(path) as handle:
        return {row["learner"] + "/" + row["assignment"]: row for row in csv.DictReader(handle)}


def scores(book: dict) -> dict:
    """learner/assignment -> every numeric column (total and per function), as floats."""
    out = {}
    for key, row in book.items():
        out[key] = {
            k: float(v)
            for k, v in row.items()
            if k not in ("learner", "assignment") and v not in ("", None) and v.replace(".", "", 1).isdigit()
        }
    return out


def function_scores(results) -> dict:
    """learner/assignment -> {function: score}, from each batch report (learners/<learner>/<assignment>/results.json)."""
    out = {}
    for report in sorted(results.glob("learners/*/*/results.json")):
        data = json.loads(report.read_text())
        key = f"{report.parent.parent.name}/{report.parent.name}"
        out[key] = {name: entry["score"] for name, entry in data["functions"].items()}
    assert out, f"no report below {results}"
    return out


@pytest.fixture(scope="module")
def host_gradebook(tmp_path_factory):
    """The example submissions graded outside Docker, by the same engine (dlgrade batch)."""
    out = tmp_path_factory.mktemp("host-batch")
    started = time.monotonic()
    host_batch(EXAMPLES, out)
    record_time(f"grading: host batch of the examples: {time.monotonic() - started:.0f} s")
    return gradebook(out / "gradebook.csv"), function_scores(out)


@pytest.mark.parametrize("sandbox", ["bwrap", "setpriv"])
def test_examples_score_the_same_in_the_container(docker_env, host_gradebook, tmp_path, sandbox):
    results = tmp_path / "results"
    volume = f"dlgrade-test-{uuid.uuid4().hex[:8]}"
    extra = ["--setpriv"] if sandbox == "setpriv" else []
    started = time.monotonic()
    try:
        run = script(docker_env, "batch.sh", EXAMPLES, results, "--state", volume, *extra, timeout=1800)
    finally:
        docker(docker_env, "volume", "rm", "-f", volume, check=False)
    seconds = time.monotonic() - started
    record_time(f"grading: container batch of the examples ({sandbox}): {seconds:.0f} s")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    host_book, host_functions = host_gradebook
    assert scores(gradebook(results / "gradebook.csv")) == scores(host_book)
    assert function_scores(results) == host_functions  # every function, not only totals
    for report in results.glob("learners/*/*/results.json"):
        assert json.loads(report.read_text())["sandbox"] == sandbox, report
    assert "Exception ignored" not in run.stdout + run.stderr
    assert "/state" not in run.stdout and "/tmp/dlgrade" not in run.stdout  # the user's paths only
    assert str(results) in run.stdout or "results" in run.stdout


def test_grade_sh_single_notebook_folder_and_nbgrader_layout(docker_env, tmp_path):
    single = EXAMPLES / "bob" / "initialization" / "initialization.ipynb"
    run = script(docker_env, "grade.sh", single, tmp_path / "one", "--min-score", "10")
    assert run.returncode == 1, run.stdout + run.stderr  # 9.5 / 11 < 10
    assert "below the required 10" in run.stderr  # the message goes to stderr
    report = json.loads((tmp_path / "one" / "results.json").read_text())
    # bob's He scale is wrong (9 / 11 of values) and its shapes right (two shape checks, 0.25 each)
    assert report["score"] == 9.5 and report["sandbox"] == "bwrap"
    assert f"reports written to {tmp_path / 'one'}/" in run.stdout  # not /tmp/dlgrade-...
    assert "Exception ignored" not in run.stderr and "PermissionError" not in run.stderr

    # nbgrader's layout (<learner>/<assignment>/<name>.ipynb), as graders have it
    run = script(docker_env, "grade.sh", EXAMPLES / "mallory", tmp_path / "layout")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "layout" / "initialization" / "initialization" / "results.json").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    run = script(docker_env, "grade.sh", empty, tmp_path / "none")
    assert run.returncode == 2 and f"no notebook (*.ipynb) in {empty}" in run.stderr


def test_container_refuses_without_a_sandbox_it_can_build(docker_env, tmp_path):
    """Docker's default seccomp profile: bubblewrap cannot start, and the grader says what to do."""
    notebook = EXAMPLES / "bob" / "initialization" / "initialization.ipynb"
    run = docker(
        docker_env,
        "run",
        "--rm",
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "SETUID",
        "--cap-add",
        "SETGID",
        "--security-opt",
        "no-new-privileges",
        "--user",
        "0:0",
        "-v",
        f"{notebook}:/submission/initialization.ipynb:ro",
        "dlgrade:cpu",
        "grade",
        check=False,
    )
    assert run.returncode == 2
    assert "seccomp=docker/seccomp-bwrap.json" in run.stderr and "DLGRADE_SANDBOX=setpriv" in run.stderr


HARDENED = [
    "run",
    "--rm",
    "--network",
    "none",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--security-opt",
    f"seccomp={ROOT / 'docker' / 'seccomp-bwrap.json'}",
    "--security-opt",
    "systempaths=unconfined",
    "--user",
    "0:0",
]


def test_entrypoint_refuses_without_setuid_and_when_the_learner_could_read_the_suites(docker_env, tmp_path):
    """(Were host-side entrypoint tests before the container ones.) Without CAP_SETUID the
    entrypoint cannot drop to the grader and says so; with the grader's files made world-readable
    (an image built or changed wrongly) it refuses to grade rather than let a learner read them."""
    notebook = EXAMPLES / "bob" / "initialization" / "initialization.ipynb"
    mount = ["-v", f"{notebook}:/submission/initialization.ipynb:ro"]
    run = docker(docker_env, *HARDENED, *mount, "dlgrade:cpu", "grade", check=False)
    assert run.returncode == 2 and "SETUID" in run.stderr, run.stderr
    (tmp_path / "results").mkdir()
    run = docker(
        docker_env,
        *HARDENED,
        "--cap-add",
        "SETUID",
        "--cap-add",
        "SETGID",
        *mount,
        "-v",
        f"{tmp_path / 'results'}:/results",
        "--entrypoint",
        "sh",
        "dlgrade:cpu",
        "-c",
        "chmod -R o+rX /opt/dlgrade && exec /usr/local/bin/dlgrade-entrypoint grade",
        check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "can read" in run.stderr and "refusing to grade" in run.stderr
    assert not (tmp_path / "results" / "results.json").exists()


def test_reports_belong_to_the_owner_of_the_results_folder(docker_env, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    os.chown(results, 12345, 12345)
    tmp_path.chmod(0o755)
    run = script(docker_env, "grade.sh", EXAMPLES / "alice" / "initialization" / "initialization.ipynb", results)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in ("results.json", "junit.xml", "feedback.md"):
        assert (results / name).stat().st_uid == 12345, name
    assert "Score: 11 / 11" in (results / "feedback.md").read_text()
    assert "<testsuite" in (results / "junit.xml").read_text()


def numpy_submissions(folder, count: int):
    """`count` learners with bob's and alice's initialization notebooks, alternating."""
    for i in range(count):
        source = "alice" if i % 2 else "bob"
        target = folder / f"learner{i:02d}" / "initialization"
        target.mkdir(parents=True)
        shutil.copy(EXAMPLES / source / "initialization" / "initialization.ipynb", target)
    return folder


def test_batch_resumes_after_docker_kill(docker_env, tmp_path):
    subs = numpy_submissions(tmp_path / "submitted", 16)
    results = tmp_path / "results"
    volume = f"dlgrade-test-{uuid.uuid4().hex[:8]}"
    env = {**docker_env}
    try:
        # batch.sh execs `docker run`; its container is the only one of this test's volume.
        first = subprocess.Popen(
            ["sh", str(ROOT / "docker" / "batch.sh"), str(subs), str(results), "--state", volume, "--workers", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        container = ""
        deadline = time.monotonic() + 300
        graded = 0
        while time.monotonic() < deadline and graded < 3:
            time.sleep(2)
            ids = docker(env, "ps", "-q", "--filter", f"volume={volume}").stdout.split()
            if ids:
                container = ids[0]
                rows = docker(
                    env,
                    "exec",
                    "-u",
                    "10001",
                    container,
                    "sh",
                    "-c",
                    "ls /state/learners/*/initialization/results.json 2>/dev/null | wc -l",
                    check=False,
                )
                graded = int(rows.stdout.strip() or 0)
        assert container and graded >= 3, "the batch did not get going"
        docker(env, "kill", container)
        first.wait(timeout=60)
        assert first.returncode != 0
        again = script(env, "batch.sh", subs, results, "--state", volume, "--workers", "1", timeout=900)
        assert again.returncode == 0, again.stdout[-3000:]
        kept = int(__import__("re").search(r"(\d+) unchanged since the last run", again.stdout).group(1))
        assert 3 <= kept < 16, again.stdout[-2000:]
        book = gradebook(results / "gradebook.csv")
        assert len(book) == 16
        for key, row in book.items():
            learner = int(key.split("/")[0][len("learner") :])
            assert float(row["total"]) == (11.0 if learner % 2 else 9.5), key
    finally:
        docker(env, "volume", "rm", "-f", volume, check=False)


def test_batch_sh_takes_the_course_files_roster_policy_and_times(docker_env, tmp_path):
    """--roster, --late-policy and --times reach the container (each file mounted alone, read-only):
    every roster learner has a row, the Canvas CSV has their ids, the staff times are used."""
    subs = tmp_path / "subs"
    (subs / "alice" / "initialization").mkdir(parents=True)
    shutil.copy(EXAMPLES / "alice" / "initialization" / "initialization.ipynb", subs / "alice" / "initialization")
    (subs / "dave").mkdir()  # an empty folder: a learner with nothing submitted
    staff = tmp_path / "staff"
    staff.mkdir()
    (staff / "roster.csv").write_text(
        "learner,name,canvas_user_id\nalice,Alice Kim,1001\nbob,Bob Lee,1002\ndave,Dave,1004\n"
    )
    (staff / "late.toml").write_text("[initialization]\ndeadline = 2026-03-01T23:59:00+09:00\npenalty_per_day = 0.1\n")
    (staff / "times.csv").write_text(
        "learner,assignment,submitted_at\nalice,initialization,2026-03-02T12:00:00+09:00\n"
    )
    results, volume = tmp_path / "results", f"dlgrade-test-{uuid.uuid4().hex[:8]}"
    try:
        run = script(
            docker_env,
            "batch.sh",
            subs,
            results,
            "--state",
            volume,
            "--assignment",
            "initialization",
            "--roster",
            staff / "roster.csv",
            "--late-policy",
            staff / "late.toml",
            "--times",
            staff / "times.csv",
            timeout=900,
        )
    finally:
        docker(docker_env, "volume", "rm", "-f", volume, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with open(results / "gradebook.csv", newline="") as handle:
        rows = {row["learner"]: row for row in csv.DictReader(handle)}
    assert {name: row["status"] for name, row in rows.items()} == {"alice": "late", "bob": "missing", "dave": "missing"}
    assert rows["alice"]["time_source"] == "staff-csv" and rows["alice"]["days_late"] == "1"
    canvas = (results / "canvas-gradebook.csv").read_text()
    assert "Alice Kim,1001" in canvas and "Bob Lee,1002" in canvas
    assert "3 on the roster" in run.stdout and "2 missing" in run.stdout


def test_batch_sh_trusts_nbgrader_times_in_a_submitted_folder(docker_env, tmp_path):
    """nbgrader's submitted/ tree keeps its name inside the container, so its timestamp.txt is trusted there
    as on the host; the same tree under another name gives no trusted time."""
    policy = tmp_path / "late.toml"
    policy.write_text("[initialization]\ndeadline = 2026-03-01T00:00:00+00:00\npenalty_per_day = 0.1\n")
    rows = {}
    for name in ("submitted", "collected"):
        notebook = tmp_path / name / "alice" / "initialization"
        notebook.mkdir(parents=True)
        shutil.copy(EXAMPLES / "alice" / "initialization" / "initialization.ipynb", notebook)
        (notebook / "timestamp.txt").write_text("2026-03-02 12:00:00.000000 UTC")
        results, volume = tmp_path / f"results-{name}", f"dlgrade-test-{uuid.uuid4().hex[:8]}"
        try:
            run = script(docker_env, "batch.sh", tmp_path / name, results, "--state", volume, "--late-policy", policy)
        finally:
            docker(docker_env, "volume", "rm", "-f", volume, check=False)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        with open(results / "gradebook.csv", newline="") as handle:
            rows[name] = next(csv.DictReader(handle))
    assert (rows["submitted"]["time_source"], rows["submitted"]["days_late"]) == ("nbgrader", "2")
    assert rows["collected"]["time_source"] == "none"
