"""The learner's submit client (autograder/service/client.py, released as dlgrade_submit.py).

Against a fake `dlgrade serve` started here (http.server on 127.0.0.1:0) that answers as the
HTTP API contract says, and checks what the client sends: the multipart body's file bytes and
filename, and the Bearer token.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from autograder.course import release
from autograder.grading import catalogue
from autograder.service import client
from autograder.service.client import SubmitError, SubmitUsageError, submit

TOKEN = "tok-3f9a-secret"
FEEDBACK = "## initialization\n\n- `initialize_parameters_zeros`: 1 / 1\n- `initialize_parameters_he`: 0.5 / 1"


def parse_multipart(content_type: str, body: bytes) -> dict:
    """{field: (filename or None, bytes)}, failing on anything that is not well-formed form-data."""
    kind, _, params = content_type.partition(";")
    assert kind.strip() == "multipart/form-data", content_type
    boundary = params.strip().removeprefix("boundary=").encode()
    assert boundary and b'"' not in boundary
    chunks = body.split(b"--" + boundary)
    assert chunks[0] == b"" and chunks[-1] == b"--\r\n", "no closing boundary"
    fields = {}
    for chunk in chunks[1:-1]:
        assert chunk.startswith(b"\r\n") and chunk.endswith(b"\r\n"), chunk[:80]
        head, sep, data = chunk[2:-2].partition(b"\r\n\r\n")
        assert sep, "a part without headers"
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        disposition = headers["Content-Disposition"]
        assert disposition.startswith("form-data; ")
        params = dict(p.split("=", 1) for p in disposition.removeprefix("form-data; ").split("; "))
        filename = params.get("filename")
        fields[params["name"].strip('"')] = (filename.strip('"') if filename else None, data)
    return fields


class FakeServer:
    """What `dlgrade serve` answers, per the contract; ``refuse`` makes the upload fail."""

    def __init__(self):
        self.requests: list[dict] = []
        self.refuse: tuple[int, bytes, dict] | None = None  # (status, body, headers)
        self.polls_before_graded = 2
        self.feedback_released = True
        self.score: float | None = 3.5
        self.late = False
        self.polls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, payload, headers=None):
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def authorized(self):
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self.answer(401, {"error": "Your token is not valid: get a new one from the invitation page."})
                    return False
                return True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                record = {"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body}
                server.requests.append(record)
                if not self.authorized():
                    return
                if self.path != "/api/v1/submissions":
                    return self.answer(404, {"error": "Not found."})
                record["fields"] = parse_multipart(self.headers["Content-Type"], body)
                if server.refuse:
                    status, payload, headers = server.refuse
                    return self.answer(status, payload, headers)
                filename, data = record["fields"]["notebook"]
                assignment = json.loads(data)["metadata"]["dlgrade"]["assignment"]
                self.answer(
                    201,
                    {
                        "id": 7,
                        "assignment": assignment,
                        "status": "queued",
                        "late": server.late,
                        "submitted_at": "2025-03-01T10:00:00+00:00",
                        "url": "/submissions/7",
                        "status_url": "/api/v1/submissions/7",
                    },
                )

            def do_GET(self):
                server.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
                if not self.authorized():
                    return
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://elsewhere.invalid/steal")
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                if self.path != "/api/v1/submissions/7":
                    return self.answer(404, {"error": "Not found."})
                server.polls += 1
                graded = server.polls > server.polls_before_graded
                self.answer(
                    200,
                    {
                        "id": 7,
                        "assignment": "initialization",
                        "status": "graded" if graded else ("grading" if server.polls > 1 else "queued"),
                        "score": server.score if graded else None,
                        "max_score": 4.0 if graded else None,
                        "late": server.late,
                        "feedback_released": graded and server.feedback_released,
                        "feedback": FEEDBACK if graded and server.feedback_released else None,
                    },
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake():
    server = FakeServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def clean_environment(tmp_path, monkeypatch):
    """No server or token from the developer's environment or home: each test says its own."""
    monkeypatch.delenv("DLGRADE_SERVER", raising=False)
    monkeypatch.delenv("DLGRADE_TOKEN", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def notebook(folder: Path, name: str = "initialization", *, assignment: str | None = None) -> Path:
    """A small notebook that names its assignment as released ones do, with non-ASCII text in it."""
    nb = {
        "cells": [{"cell_type": "code", "metadata": {}, "source": "x = 'é ∑'\n", "outputs": [], "execution_count": 1}],
        "metadata": {"dlgrade": {"assignment": assignment or name}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = folder / f"{name}.ipynb"
    path.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    return path


def run(path, fake, lines, **kwargs):
    kwargs = {"server": fake.url, "token": TOKEN, "poll": 0.01, "out": lines.append} | kwargs
    return submit(path, **kwargs)


# ------------------------------------------------------------------ uploading and waiting


def test_submit_uploads_the_file_and_waits_for_the_grade(tmp_path, fake):
    path = notebook(tmp_path)
    lines: list[str] = []
    status = run(path, fake, lines)
    post = fake.requests[0]
    assert post["method"] == "POST" and post["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert post["fields"] == {"notebook": ("initialization.ipynb", path.read_bytes())}  # no assignment field
    assert "é ∑".encode() in post["fields"]["notebook"][1]
    assert [r["path"] for r in fake.requests[1:]] == ["/api/v1/submissions/7"] * 3
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    assert status["status"] == "graded" and status["score"] == 3.5 and isinstance(status, dict)
    text = "\n".join(lines)
    assert "Score: 3.5 / 4" in text and FEEDBACK in text
    assert f"{fake.url}/submissions/7" in text
    assert "Warning" not in text  # just saved
    assert TOKEN not in text


def test_the_assignment_field_is_sent_when_given(tmp_path, fake):
    run(notebook(tmp_path), fake, [], assignment="initialization", wait=False)
    assert fake.requests[0]["fields"]["assignment"] == (None, b"initialization")


def test_unreleased_feedback_says_when_it_comes(tmp_path, fake):
    fake.feedback_released, fake.late = False, True
    lines: list[str] = []
    status = run(notebook(tmp_path), fake, lines)
    text = "\n".join(lines)
    assert status["feedback"] is None and FEEDBACK not in text
    assert "feedback will be visible when staff release it" in text
    assert "Score: 3.5 / 4 (late)" in text


def test_a_hidden_score_says_so(tmp_path, fake):
    fake.score, fake.feedback_released = None, False
    lines: list[str] = []
    run(notebook(tmp_path), fake, lines)
    assert any("score will be visible when staff release it" in line for line in lines), lines


def test_no_wait_returns_the_new_submission(tmp_path, fake):
    status = run(notebook(tmp_path), fake, [], wait=False)
    assert status["id"] == 7 and status["status"] == "queued" and status["status_url"] == "/api/v1/submissions/7"
    assert [r["method"] for r in fake.requests] == ["POST"]


def test_waiting_stops_at_the_timeout_with_the_last_status(tmp_path, fake):
    fake.polls_before_graded = 10**6
    lines: list[str] = []
    start = time.monotonic()
    status = run(notebook(tmp_path), fake, lines, timeout=0.3, poll=0.05)
    assert time.monotonic() - start < 5
    assert status["status"] in ("queued", "grading")
    assert any("Not graded yet" in line and "/submissions/7" in line for line in lines), lines


def test_the_status_page_keeps_the_servers_prefix(tmp_path, fake, monkeypatch):
    """A server behind a path prefix (https://host/course): its paths are under that prefix."""
    seen = []
    original = client.request

    def request(method, url, *args, **kwargs):
        seen.append(url)
        return original(method, url, *args, **kwargs)

    monkeypatch.setattr(client, "request", request)
    with pytest.raises(SubmitError) as caught:  # the fake has no prefix: it answers 404 to the upload
        run(notebook(tmp_path), fake, [], server=fake.url + "/course/")
    assert caught.value.status == 404
    assert seen == [fake.url + "/course/api/v1/submissions"]
    assert client._absolute("https://h/course", "/api/v1/submissions/7") == "https://h/course/api/v1/submissions/7"


# ------------------------------------------------------------------ the server's refusals


@pytest.mark.parametrize(
    ("status", "message", "headers", "expected"),
    [
        (403, "The deadline of initialization has passed: it is closed.", {}, None),
        (413, "The notebook is over 16 MB.", {}, None),
        (422, "This is not a notebook of initialization.", {}, None),
        (429, "Too many submissions: wait a little.", {"Retry-After": "30"}, "try again in 30 seconds"),
        (503, "The grader is busy.", {}, "try again in a few minutes"),
        (503, "The database is unavailable.", {"Retry-After": "600"}, "try again in 10 minutes"),
    ],
)
def test_each_refusal_is_a_submit_error_with_the_servers_message(tmp_path, fake, status, message, headers, expected):
    fake.refuse = (status, json.dumps({"error": message}).encode(), headers)
    lines: list[str] = []
    with pytest.raises(SubmitError) as caught:
        run(notebook(tmp_path), fake, lines)
    error = caught.value
    assert error.status == status and message in error.message and message in str(error)
    assert not isinstance(error, SubmitUsageError)
    if expected:
        assert expected in error.message
    assert error.retry_after == (float(headers["Retry-After"]) if headers else None)
    assert error.__cause__ is None and error.__suppress_context__  # no urllib traceback chained
    assert TOKEN not in error.message + "".join(lines)


def test_a_bad_token_is_a_401_that_says_where_tokens_come_from(tmp_path, fake):
    with pytest.raises(SubmitError) as caught:
        run(notebook(tmp_path), fake, [], token="not-the-token")
    assert caught.value.status == 401 and "Your token is not valid" in caught.value.message
    assert "DLGRADE_TOKEN" in caught.value.message and "not-the-token" not in caught.value.message


def test_an_answer_that_is_not_dlgrades_still_says_what_it_was(tmp_path, fake):
    fake.refuse = (502, b"<html>Bad Gateway</html>", {})
    with pytest.raises(SubmitError) as caught:
        run(notebook(tmp_path), fake, [])
    assert caught.value.status == 502 and "HTTP 502" in caught.value.message


def test_an_unreachable_server_is_a_submit_error(tmp_path, fake):
    url = fake.url
    fake.close()
    with pytest.raises(SubmitError) as caught:
        run(notebook(tmp_path), fake, [], server=url)
    assert caught.value.status is None and "could not reach" in caught.value.message


def test_a_redirect_is_not_followed_with_the_token(fake):
    with pytest.raises(SubmitError) as caught:
        client.request("GET", fake.url + "/redirect", TOKEN)
    assert caught.value.status == 302 and "elsewhere.invalid" in caught.value.message
    assert [r["path"] for r in fake.requests] == ["/redirect"]


# ------------------------------------------------------------------ before any request


def test_no_token_is_a_clear_error_and_sends_nothing(tmp_path, fake):
    with pytest.raises(SubmitUsageError) as caught:
        submit(notebook(tmp_path), server=fake.url, out=lambda line: None)
    assert "no token" in caught.value.message and "invitation page" in caught.value.message
    assert caught.value.status is None and fake.requests == []


def test_no_server_is_a_clear_error(tmp_path):
    with pytest.raises(SubmitUsageError, match="no server"):
        submit(notebook(tmp_path), token=TOKEN, out=lambda line: None)
    with pytest.raises(SubmitUsageError, match="web address"):
        submit(notebook(tmp_path), server="grader.example.org", token=TOKEN, out=lambda line: None)


def test_server_and_token_come_from_the_environment_then_the_home_files(tmp_path, fake, monkeypatch):
    home = Path(os.environ["HOME"])
    (home / ".dlgrade").mkdir()
    (home / ".dlgrade" / "server").write_text(fake.url + "\n")
    (home / ".dlgrade" / "token").write_text(f"{TOKEN}\nsecond line ignored\n")
    assert run(notebook(tmp_path), fake, [], server=None, token=None, wait=False)["id"] == 7
    monkeypatch.setenv("DLGRADE_TOKEN", "from-the-environment")
    monkeypatch.setenv("DLGRADE_SERVER", fake.url)
    with pytest.raises(SubmitError) as caught:  # the environment wins over the file
        run(notebook(tmp_path), fake, [], server=None, token=None, wait=False)
    assert caught.value.status == 401
    assert fake.requests[-1]["headers"]["Authorization"] == "Bearer from-the-environment"


def test_an_oversize_file_is_refused_before_any_request(tmp_path, fake):
    path = tmp_path / "initialization.ipynb"
    with open(path, "wb") as handle:
        handle.truncate(client.MAX_BYTES + 1)
    with pytest.raises(SubmitUsageError) as caught:
        run(path, fake, [])
    assert "over the 16.0 MB limit" in caught.value.message and "Clear Outputs" in caught.value.message
    assert fake.requests == []


def test_a_python_file_is_refused(tmp_path, fake):
    path = tmp_path / "initialization.py"
    path.write_text("x = 1\n")
    with pytest.raises(SubmitUsageError, match="not a notebook"):
        run(path, fake, [])
    assert fake.requests == []


def test_a_stale_save_warns_to_press_ctrl_s(tmp_path, fake):
    path = notebook(tmp_path)
    old = time.time() - 300
    os.utime(path, (old, old))
    lines: list[str] = []
    run(path, fake, lines, wait=False)
    warning = lines[0]
    assert warning.startswith("Warning") and "5 minutes ago" in warning and "Ctrl-S" in warning
    assert fake.requests  # a warning, not a refusal


def test_the_default_notebook_is_the_folders_one_assignment_notebook(tmp_path, fake, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SubmitUsageError, match="no assignment notebook.*notebook="):
        run(None, fake, [])
    notebook(tmp_path, "scratch", assignment="initialization")  # a copy under another name: not it
    (tmp_path / "damaged.ipynb").write_text("{not json")
    path = notebook(tmp_path)
    run(None, fake, [], wait=False)
    assert fake.requests[-1]["fields"]["notebook"] == ("initialization.ipynb", path.read_bytes())
    notebook(tmp_path, "optimization")
    with pytest.raises(SubmitUsageError, match=r"several.*initialization.ipynb, optimization.ipynb.*notebook="):
        run(None, fake, [])


# ------------------------------------------------------------------ dlgrade submit


def cli(argv):
    parser = argparse.ArgumentParser(prog="dlgrade")
    client.add_submit_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["submit", *argv])
    return args.func(args)


def test_cli_exit_statuses(tmp_path, fake, capsys, monkeypatch):
    path = str(notebook(tmp_path))
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    server = ["--server", fake.url]
    monkeypatch.setattr(client.time, "sleep", lambda seconds: None)  # no need to wait between polls here
    assert cli([path, *server, "--token", TOKEN]) == 0
    assert "Score: 3.5 / 4" in capsys.readouterr().out
    assert cli([path, *server, "--token-file", str(token_file), "--no-wait"]) == 0
    fake.polls, fake.polls_before_graded = 0, 10**6
    assert cli([path, *server, "--token", TOKEN, "--timeout", "0"]) == 1  # submitted, not graded in time
    fake.refuse = (403, b'{"error": "initialization is closed."}', {})
    assert cli([path, *server, "--token", TOKEN]) == 1
    assert "dlgrade submit: initialization is closed." in capsys.readouterr().err
    assert cli([path, *server]) == 2  # no token
    err = capsys.readouterr().err
    assert "no token" in err and TOKEN not in err
    assert cli([path, *server, "--token-file", str(tmp_path / "missing")]) == 2
    assert "cannot read the token file" in capsys.readouterr().err
    assert cli([str(tmp_path / "missing.ipynb"), *server, "--token", TOKEN]) == 2
    with pytest.raises(SystemExit):
        cli([path, "--token", TOKEN, "--token-file", str(token_file)])  # one or the other


# ------------------------------------------------------------------ what a learner's folder holds


def test_client_imports_only_the_standard_library():
    tree = ast.parse(Path(client.__file__).read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import"
            modules.add(node.module.split(".")[0])
    assert modules and modules - {"__future__"} <= sys.stdlib_module_names, modules - sys.stdlib_module_names
    assert not any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "__import__" for n in ast.walk(tree))


def test_the_released_copy_submits_without_dlgrade_installed(tmp_path, fake):
    """An assignment folder's dlgrade_submit.py, run by a Python with no site-packages at all (-S)."""
    spec = catalogue.load("initialization")
    copy = tmp_path / "initialization"
    shutil.copytree(spec.release_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert (copy / release.SUBMIT_CLIENT_NAME).read_text() == release.submit_client()
    (tmp_path / "token").write_text(TOKEN)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ["HOME"], "DLGRADE_SERVER": fake.url}
    script = (
        "import sys; sys.path.insert(0, '.'); from dlgrade_submit import submit; "
        f"s = submit(token=open({str(tmp_path / 'token')!r}).read(), poll=0.01); "
        "print('status', s['status'], 'dlgrade' in sys.modules, 'autograder' in sys.modules)"
    )
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script], cwd=copy, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "status graded False False" in run.stdout and "Score: 3.5 / 4" in run.stdout
    assert fake.requests[0]["fields"]["notebook"] == ("initialization.ipynb", spec.released_notebook.read_bytes())
    as_script = subprocess.run(
        [sys.executable, "-I", "-S", release.SUBMIT_CLIENT_NAME, "--token-file", str(tmp_path / "token"), "--no-wait"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert as_script.returncode == 0, as_script.stdout + as_script.stderr
    assert "submission 7" in as_script.stdout
