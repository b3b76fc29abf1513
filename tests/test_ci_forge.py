"""examples/ci/course/forge.py against a local stub of the GitHub and GitLab APIs.

The course jobs (examples/ci/course/*.yml) call this script for every request they make; here it
runs as they run it (a subprocess, the token in the environment) against an http.server in a
thread that records each request. Checked: the state for each grade.sh outcome (success only when
graded and at/above --min-score, failure below, error when nothing was graded), the description
(the score), the comment (feedback.md, cleaned and capped), the auth header, the URL-encoding of
GitLab's project path, the exit status the job takes, and the deadline job's listing + triggers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.nbtools import ROOT

FORGE = ROOT / "examples" / "ci" / "course" / "forge.py"
SHA = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "s3cr3t-token-value"


class Stub:
    """Records requests; answers each with the first (method, path prefix) rule that matches."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.rules: list[tuple[str, str, int, object, dict]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                stub.requests.append(
                    {"method": method, "path": self.path, "headers": self.headers, "raw": raw}  # case-insensitive
                )
                code, body, headers = next(
                    ((c, b, h) for m, prefix, c, b, h in stub.rules if m == method and self.path.startswith(prefix)),
                    (201, {}, {}),
                )
                data = json.dumps(body).encode()
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self.handle_one("GET")

            def do_POST(self) -> None:
                self.handle_one("POST")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def on(self, method: str, prefix: str, code: int = 200, body: object = None, headers: dict | None = None) -> None:
        self.rules.append((method, prefix, code, {} if body is None else body, headers or {}))

    def json(self, index: int) -> dict:
        return json.loads(self.requests[index]["raw"])


@pytest.fixture
def stub():
    server = Stub()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def results(tmp_path: Path, score: float | None, max_score: float = 10, feedback: str | bytes = "# Feedback\n") -> Path:
    folder = tmp_path / "results"
    folder.mkdir(parents=True)
    if score is not None:
        (folder / "results.json").write_text(json.dumps({"score": score, "max_score": max_score, "tests": []}))
    if isinstance(feedback, bytes):
        (folder / "feedback.md").write_bytes(feedback)
    elif feedback:
        (folder / "feedback.md").write_text(feedback)
    return folder


def run(stub: Stub, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {"PATH": "/usr/bin:/bin", "COURSE_TOKEN": TOKEN, **(env or {})}
    done = subprocess.run(
        [sys.executable, str(FORGE), *args, "--api", stub.url],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert TOKEN not in done.stdout + done.stderr  # never printed
    return done


def report(
    stub: Stub, forge: str, folder: Path, code: str, *extra: str, project: str = ""
) -> subprocess.CompletedProcess:
    project = project or ("your-course/hw-alice" if forge == "github" else "your-course/students/hw-alice")
    return run(
        stub,
        "report",
        "--forge",
        forge,
        "--token-env",
        "COURSE_TOKEN",
        "--project",
        project,
        "--sha",
        SHA,
        "--results",
        str(folder),
        "--exit-code",
        code,
        *extra,
    )


@pytest.mark.parametrize(
    "score, code, min_score, state, exit_status, description",
    [
        (10, "0", "100%", "success", 0, "graded 10/10"),
        (7, "0", "60%", "success", 0, "graded 7/10"),
        (7, "1", "80%", "failure", 1, "graded 7/10: below the required score (needs 80%)"),
        (7, "0", "", "failure", 1, "graded 7/10: not full marks"),  # grade.sh run without --min-score
        (10, "0", "", "success", 0, "graded 10/10"),
        (0, "2", "100%", "error", 2, "not graded: the notebook could not be graded (grade.sh exit 2)"),
        (3, "3", "100%", "error", 2, "not graded: the grader failed (grade.sh exit 3), not the learner"),
        (None, "0", "100%", "error", 2, "not graded: the grader wrote no readable results.json"),
        (None, "none", "100%", "error", 2, "not graded: the grading job stopped before grading"),
        (None, "", "100%", "error", 2, "not graded: the grading job stopped before grading"),
        (None, "137", "100%", "error", 2, "not graded: the grading job failed (exit 137)"),
    ],
)
def test_github_state_description_comment_and_exit(
    stub, tmp_path, score, code, min_score, state, exit_status, description
):
    stub.on("POST", "/repos/your-course/hw-alice/commits/", 201, {"html_url": "https://github.example/c/1"})
    folder = results(tmp_path, score, feedback="# Feedback\n\nexercise 1: 3/3\n")
    done = report(stub, "github", folder, code, "--min-score", min_score, "--namespace", "your-course")
    assert done.returncode == exit_status, done.stderr
    comment, status = stub.requests
    assert comment["method"] == "POST" and comment["path"] == f"/repos/your-course/hw-alice/commits/{SHA}/comments"
    assert status["method"] == "POST" and status["path"] == f"/repos/your-course/hw-alice/statuses/{SHA}"
    for request in stub.requests:
        assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert request["headers"]["Accept"] == "application/vnd.github+json"
        assert request["headers"]["Content-Type"] == "application/json"
    assert stub.json(1) == {
        "state": state,
        "context": "dlgrade",
        "description": description,
        "target_url": "https://github.example/c/1",  # the status links to the feedback
    }
    body = stub.json(0)["body"]
    assert body.startswith(f"## dlgrade: {description}\n")
    if score is not None:
        assert "exercise 1: 3/3" in body
    if state == "error":
        assert "This is not a mark" in body


def test_gitlab_encodes_the_project_path_and_maps_the_states(stub, tmp_path):
    folder = results(tmp_path, 7)
    target = "https://gitlab.example/your-course/students/hw-alice/-/commit/" + SHA
    done = report(stub, "gitlab", folder, "1", "--min-score", "8", "--target-url", target)
    assert done.returncode == 1, done.stderr
    comment, status = stub.requests
    encoded = "your-course%2Fstudents%2Fhw-alice"
    assert comment["path"] == f"/projects/{encoded}/repository/commits/{SHA}/comments"
    assert status["path"] == f"/projects/{encoded}/statuses/{SHA}"
    for request in stub.requests:
        assert request["headers"]["PRIVATE-TOKEN"] == TOKEN
        assert "Authorization" not in request["headers"]
    assert stub.json(0)["note"].startswith("## dlgrade: graded 7/10: below the required score (needs 8)\n")
    assert stub.json(1) == {
        "state": "failed",  # GitLab has no `failure`
        "name": "dlgrade",
        "description": "graded 7/10: below the required score (needs 8)",
        "target_url": target,
    }
    stub.requests.clear()
    assert report(stub, "gitlab", results(tmp_path / "ok", 10), "0", "--min-score", "100%").returncode == 0
    assert stub.json(1)["state"] == "success"
    stub.requests.clear()
    assert report(stub, "gitlab", results(tmp_path / "err", None), "3").returncode == 2
    assert stub.json(1)["state"] == "failed"  # nor `error`: the description says it
    assert stub.json(1)["description"].startswith("not graded:")


def test_a_hostile_feedback_is_cleaned_and_bounded(stub, tmp_path):
    stub.on("POST", "/repos/your-course/hw-alice/commits/", 201, {"html_url": "https://github.example/c/1"})
    line = "ok \x1b[31mred\x1b[0m \x00nul \x07bell \u202eevil\u202c \x85c1 tab\there\r\n"
    hostile = (line * 200_000).encode() + b"\xff\xfe not utf-8"  # about 8 MB
    folder = results(tmp_path, 10, feedback=hostile)
    done = report(stub, "github", folder, "0", "--min-score", "100%")
    assert done.returncode == 0, done.stderr
    body = stub.json(0)["body"]
    assert len(body) <= 60_000
    assert "feedback cut at 60,000 characters" in body
    assert "ok [31mred[0m nul bell evil c1 tab\there\n" in body
    for bad in ("\x1b", "\x00", "\x07", "\u202e", "\u202c", "\x85", "\r"):
        assert bad not in body
    summary = tmp_path / "summary.md"  # the job summary gets the same bounded text
    stub.requests.clear()
    run(
        stub,
        "report",
        "--forge",
        "github",
        "--token-env",
        "COURSE_TOKEN",
        "--project",
        "your-course/hw-alice",
        "--sha",
        SHA,
        "--results",
        str(folder),
        "--exit-code",
        "0",
        "--max-comment",
        "1000",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert len(stub.json(0)["body"]) <= 1000
    assert summary.read_text() == stub.json(0)["body"] + "\n"


def test_refused_requests_and_bad_input_fail_the_job(stub, tmp_path):
    folder = results(tmp_path, 10)
    stub.on("POST", "/repos/", 403, {"message": "Resource not accessible"})
    done = report(stub, "github", folder, "0", "--min-score", "100%")
    assert done.returncode == 4 and "HTTP 403" in done.stderr  # a full mark the learner never sees fails the job
    stub.requests.clear()
    for project, extra in (
        ("other-course/hw-alice", ("--namespace", "your-course")),
        ("your-course/../x", ()),
        ("your-course/hw alice", ()),
    ):
        done = report(stub, "github", folder, "0", *extra, project=project)
        assert done.returncode == 4, project
    assert stub.requests == []  # refused before any request
    done = run(stub, "report", "--forge", "github", "--token-env", "NO_SUCH", "--project", "a/b", "--sha", SHA)
    assert done.returncode == 2  # argparse: --results and --exit-code missing
    done = subprocess.run(
        [sys.executable, str(FORGE), "report", "--forge", "github", "--token-env", "EMPTY", "--api", stub.url]
        + ["--project", "your-course/hw-alice", "--sha", SHA, "--results", str(folder), "--exit-code", "0"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 4 and "$EMPTY is empty" in done.stderr


def test_gitlab_deadline_lists_the_group_and_triggers_one_pipeline_per_project(stub):
    group = "/groups/your-course%2Fstudents/projects?"
    first = [
        {"path_with_namespace": f"your-course/students/hw-{i}", "default_branch": "main", "archived": False}
        for i in range(99)
    ] + [{"path_with_namespace": "your-course/students/notes", "default_branch": "main"}]
    second = [
        {"path_with_namespace": "your-course/students/hw-late", "default_branch": "trunk/2"},
        {"path_with_namespace": "your-course/students/hw-empty", "default_branch": None},
        {"path_with_namespace": "your-course/students/hw-old", "default_branch": "main", "archived": True},
    ]
    stub.on("GET", group + "include_subgroups=true&archived=false&simple=true&per_page=100&page=1", 200, first)
    stub.on("GET", group + "include_subgroups=true&archived=false&simple=true&per_page=100&page=2", 200, second)
    stub.on("GET", "/projects/", 200, {"commit": {"id": SHA}})
    done = run(
        stub,
        "deadline",
        "--forge",
        "gitlab",
        "--namespace",
        "your-course/students",
        "--match",
        "/hw-",
        "--token-env",
        "COURSE_TOKEN",
        "--trigger-token-env",
        "TRIGGER",
        "--course-project",
        "42",
        "--ref",
        "main",
        env={"TRIGGER": "trigger-token"},
    )
    assert done.returncode == 0, done.stderr
    assert "100 grading run(s) started, 0 failed" in done.stdout
    gets = [r for r in stub.requests if r["method"] == "GET"]
    assert all(r["headers"]["PRIVATE-TOKEN"] == TOKEN for r in gets)
    branches = [r["path"] for r in gets if "/repository/branches/" in r["path"]]
    assert "/projects/your-course%2Fstudents%2Fhw-late/repository/branches/trunk%2F2" in branches
    assert not any("notes" in p or "hw-empty" in p or "hw-old" in p for p in branches)
    triggers = [r for r in stub.requests if r["method"] == "POST"]
    assert len(triggers) == 100
    for trigger in triggers:
        assert trigger["path"] == "/projects/42/trigger/pipeline"
        assert "PRIVATE-TOKEN" not in trigger["headers"]  # the trigger token is in the form only
        assert trigger["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    form = dict(urllib.parse.parse_qsl(triggers[-1]["raw"].decode()))
    assert form == {
        "token": "trigger-token",
        "ref": "main",
        "variables[LEARNER_PROJECT]": "your-course/students/hw-late",
        "variables[LEARNER_SHA]": SHA,
    }


def test_github_deadline_dispatches_the_grading_workflow(stub):
    stub.on(
        "GET",
        "/orgs/your-course/repos?type=all&per_page=100&page=1",
        200,
        [
            {"full_name": "your-course/hw-alice", "default_branch": "main"},
            {"full_name": "your-course/grading", "default_branch": "main"},
            {"full_name": "your-course/hw-bob", "default_branch": "main"},
        ],
    )
    stub.on("GET", "/repos/your-course/hw-alice/commits/main", 200, {"sha": SHA})
    stub.on("GET", "/repos/your-course/hw-bob/commits/main", 404, {"message": "Git Repository is empty."})
    stub.on("POST", "/repos/your-course/grading/actions/workflows/grade.yml/dispatches", 204, "")
    done = run(
        stub,
        "deadline",
        "--forge",
        "github",
        "--namespace",
        "your-course",
        "--match",
        "/hw-",
        "--token-env",
        "COURSE_TOKEN",
        "--trigger-token-env",
        "DISPATCH",
        "--course-repo",
        "your-course/grading",
        env={"DISPATCH": "dispatch-token"},
    )
    assert done.returncode == 4  # one repository could not be read: the job says so
    assert "1 grading run(s) started, 1 failed" in done.stdout and "hw-bob" in done.stderr
    (dispatch,) = [r for r in stub.requests if r["method"] == "POST"]
    assert dispatch["headers"]["Authorization"] == "Bearer dispatch-token"
    assert json.loads(dispatch["raw"]) == {"ref": "main", "inputs": {"repository": "your-course/hw-alice", "sha": SHA}}
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in stub.requests if r["method"] == "GET")


# The YAML's own command lines, run by sh as the runner runs them (the variables the forge sets,
# the course's `env:`/`variables:`), against the stub.

CI = ROOT / "examples" / "ci" / "course"


def yaml_sh(stub: Stub, tmp_path: Path, script: str, env: dict) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "python3").exists():
        (bin_dir / "python3").symlink_to(sys.executable)
    for name in ("course", "examples"):  # GitHub checks the course out in course/, GitLab at the top
        if not (tmp_path / name).exists():
            (tmp_path / name).symlink_to(ROOT if name == "course" else ROOT / "examples")
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", **env}
    done = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=environment)
    assert TOKEN not in done.stdout + done.stderr
    return done


def test_the_github_workflow_runs_the_script_as_tested(stub, tmp_path):
    import yaml

    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = workflow["jobs"]["grade"]["steps"]
    posted = next(s for s in steps if "forge.py report" in s.get("run", ""))
    results(tmp_path, 7)
    base = {**workflow["env"], "GITHUB_API_URL": stub.url, "LEARNER_STATUS_TOKEN": TOKEN}
    base |= {"REPOSITORY": "your-course/hw-alice", "SHA": SHA}
    for code, state, exit_status in (("1", "failure", 1), ("", "error", 2), ("2", "error", 2)):
        stub.requests.clear()
        done = yaml_sh(stub, tmp_path, posted["run"], {**base, "EXIT_CODE": code})
        assert done.returncode == exit_status, done.stderr  # the job fails with the learner's status
        assert [r["path"] for r in stub.requests] == [
            f"/repos/your-course/hw-alice/commits/{SHA}/comments",
            f"/repos/your-course/hw-alice/statuses/{SHA}",
        ]
        assert stub.json(1)["state"] == state
    stub.requests.clear()
    done = yaml_sh(stub, tmp_path, posted["run"], {**base, "REPOSITORY": "someone-else/hw-alice", "EXIT_CODE": "0"})
    assert done.returncode == 4 and stub.requests == []

    deadline = workflow["jobs"]["deadline"]["steps"][-1]
    stub.on("GET", "/orgs/your-course/repos", 200, [{"full_name": "your-course/hw-alice", "default_branch": "main"}])
    stub.on("GET", "/repos/your-course/hw-alice/commits/main", 200, {"sha": SHA})
    stub.requests.clear()
    env = {**workflow["env"], "GITHUB_API_URL": stub.url, "LEARNER_READ_TOKEN": TOKEN, "GITHUB_TOKEN": "gh-token"}
    env |= {"GITHUB_REPOSITORY": "your-course/grading", "GITHUB_REF_NAME": "main"}
    done = yaml_sh(stub, tmp_path, deadline["run"], env)
    assert done.returncode == 0, done.stderr
    assert stub.requests[-1]["path"] == "/repos/your-course/grading/actions/workflows/grade.yml/dispatches"
    assert stub.requests[-1]["headers"]["Authorization"] == "Bearer gh-token"


def test_the_gitlab_pipeline_runs_the_script_as_tested(stub, tmp_path):
    import yaml

    pipeline = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    grade = pipeline["grade"]
    line = next(s for s in grade["script"] if "forge.py report" in s)
    folder = results(tmp_path, 10)
    base = {**pipeline["variables"], "CI_API_V4_URL": stub.url, "LEARNER_API_TOKEN": TOKEN}
    base |= {"LEARNER_PROJECT": "your-course/students/hw-alice", "LEARNER_SHA": SHA}
    base |= {"CI_SERVER_URL": "https://gitlab.example"}
    done = yaml_sh(stub, tmp_path, f"status=0\n{line}", base)
    assert done.returncode == 0, done.stderr
    encoded = "your-course%2Fstudents%2Fhw-alice"
    assert [r["path"] for r in stub.requests] == [
        f"/projects/{encoded}/repository/commits/{SHA}/comments",
        f"/projects/{encoded}/statuses/{SHA}",
    ]
    assert stub.json(1)["state"] == "success"
    assert stub.json(1)["target_url"] == f"https://gitlab.example/your-course/students/hw-alice/-/commit/{SHA}"
    stub.requests.clear()
    assert yaml_sh(stub, tmp_path, f"status=1\n{line}", base).returncode == 1  # 10/10 yet exit 1: trusted
    assert stub.json(1)["state"] == "failed"

    # The job stopped before grade.sh (no results/exit-code): after_script reports "not graded".
    (folder / "results.json").unlink()
    stub.requests.clear()
    done = yaml_sh(stub, tmp_path, grade["after_script"][0], {**base, "CI_JOB_STATUS": "failed"})
    assert done.returncode == 2, done.stderr
    assert stub.json(1)["description"] == "not graded: the grading job stopped before grading"
    (folder / "exit-code").write_text("3\n")  # graded, the report already went: no second one
    stub.requests.clear()
    assert yaml_sh(stub, tmp_path, grade["after_script"][0], {**base, "CI_JOB_STATUS": "failed"}).returncode == 0
    assert stub.requests == []

    stub.on(
        "GET",
        "/groups/your-course%2Fstudents/projects",
        200,
        [{"path_with_namespace": "your-course/students/hw-alice", "default_branch": "main"}],
    )
    stub.on("GET", f"/projects/{encoded}/repository/branches/main", 200, {"commit": {"id": SHA}})
    stub.requests.clear()
    env = {**pipeline["variables"], "CI_API_V4_URL": stub.url, "LEARNER_API_TOKEN": TOKEN}
    env |= {"GRADING_TRIGGER_TOKEN": "trigger-token", "CI_PROJECT_ID": "42", "CI_DEFAULT_BRANCH": "main"}
    done = yaml_sh(stub, tmp_path, pipeline["deadline"]["script"][0], env)
    assert done.returncode == 0, done.stderr
    assert stub.requests[-1]["path"] == "/projects/42/trigger/pipeline"
    form = dict(urllib.parse.parse_qsl(stub.requests[-1]["raw"].decode()))
    assert form["variables[LEARNER_PROJECT]"] == "your-course/students/hw-alice" and form["token"] == "trigger-token"
