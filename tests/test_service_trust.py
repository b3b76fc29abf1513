"""dlgrade serve's trust boundaries: a learner reaches only their own submissions and no staff page;
every form that changes something needs the session's CSRF token; the session cookie is signed and
HttpOnly; a learner's filename is never a path; hidden suites, solutions and blobs are never served;
the staff-only traceback stays off the learner's page; pages send a Content-Security-Policy; times
are the server's; staff passwords are argon2 hashes.
"""

from __future__ import annotations

import base64
import json
import re
import socket
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from service_fixtures import serve_in_thread
from service_stand_ins_web import (
    ROOT,
    STAFF_EMAIL,
    STAFF_PASSWORD,
    STAFF_TRACE,
    csrf,
    example,
    get_routes,
    grade_queue,
    grader_error,
    import_roster,
    make_app,
    sign_in_learner,
    sign_in_staff,
    upload_api,
    upload_form,
    wait_graded,
)
from sqlalchemy import text

A = "initialization"


@pytest.fixture
def quiet(tmp_path):
    app = make_app(tmp_path / "course", graders=False)
    tokens = import_roster(app)
    app.state.store.update_assignment(A, is_open=True)
    return app, tokens


def test_a_learner_reaches_only_their_own_submissions_and_no_staff_page(quiet):
    app, tokens = quiet
    bobs = upload_api(TestClient(app), tokens["bob"], example("bob")).json()["id"]
    grade_queue(app)
    alice = sign_in_learner(app, tokens["alice"])
    for id in (bobs, 9999):
        assert alice.get(f"/submissions/{id}").status_code == 404
        api = TestClient(app).get(f"/api/v1/submissions/{id}", headers={"Authorization": f"Bearer {tokens['alice']}"})
        assert api.status_code == 404 and api.json() == {"error": "no such submission"}
    assert sign_in_learner(app, tokens["bob"]).get(f"/submissions/{bobs}").status_code == 200
    pages = [p for p in get_routes(app, "GET", "/staff") if p != "/staff/signin"]
    assert len(pages) >= 10
    for page in pages:
        response = alice.get(page, follow_redirects=False)
        assert (response.status_code, response.headers.get("location")) == (303, "/staff/signin"), page
    assert "bob" not in alice.get("/").text.split('id="history"')[1]
    # A learner's session is no staff session for the staff's forms either.
    refused = alice.post("/staff/regrade", data={"csrf": csrf(alice, "/"), "scope": "all"}, follow_redirects=False)
    assert refused.status_code == 303 and app.state.store.submission(bobs).status == "graded"


def test_every_form_refuses_a_missing_or_wrong_csrf_token(quiet):
    app, tokens = quiet
    posts = [p for p in get_routes(app, "POST") if not p.startswith("/api/")]
    assert {"/signin", "/staff/signin", "/submit", "/token", "/signout", "/staff/roster", "/staff/regrade"} <= set(
        posts
    )
    staff = sign_in_staff(app)
    learner = sign_in_learner(app, tokens["alice"])
    # What each form takes (its field limit counts): accepted, each would change something visible.
    fields = {
        "/signin": {"token": tokens["bob"]},
        "/staff/signin": {"email": STAFF_EMAIL, "password": STAFF_PASSWORD},
        "/submit": {"assignment": A},
        "/staff/regrade": {"scope": "all"},
        "/staff/extensions": {"learner": "alice", "assignment": A, "days": "3"},
        f"/staff/assignments/{A}": {"feedback": "graded", "late": "penalty"},  # would close it
    }
    files = {
        "/submit": {"notebook": ("a.ipynb", example("alice"))},
        "/staff/roster": {"roster": ("r.csv", b"learner\nzed\n")},
    }
    for path in posts:
        for who, client in (("nobody", TestClient(app)), ("learner", learner), ("staff", staff)):
            if path.startswith("/staff/") and path != "/staff/signin" and who != "staff":
                continue  # refused before the form is read (303 to the sign-in page): tested elsewhere
            if path in ("/submit", "/token") and who != "learner":
                continue
            csrf(client, "/signin")  # the session has a CSRF token: the form's must match it
            for given in ({}, {"csrf": "forged-" + "x" * 40}):
                sent = files.get(path)  # the other forms take no file
                response = client.post(path, data={**fields.get(path, {}), **given}, files=sent, follow_redirects=False)
                assert response.status_code == 403, (path, who, given, response.status_code)
    # Nothing changed: nobody signed in through a refused form, no upload, roster, token or extension.
    store = app.state.store
    assert store.submissions() == [] and store.extensions() == []
    assert "zed" not in {p.learner for p in store.learners()}
    assert store.learner_by_token(tokens["alice"]).learner == "alice"
    assert learner.get("/", follow_redirects=False).status_code == 200  # still signed in (no sign-out)
    assert staff.get("/staff", follow_redirects=False).status_code == 200
    assert store.assignment(A).is_open and store.assignment(A).feedback == "practice"


def _session(client) -> str:
    return client.cookies.get("dlgrade_session")


def test_the_session_cookie_is_signed_and_http_only(quiet):
    app, tokens = quiet
    c = TestClient(app)
    joined = c.get(f"/join/{tokens['alice']}", follow_redirects=False)
    cookie = joined.headers["set-cookie"]
    assert cookie.startswith("dlgrade_session=") and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    value = _session(c)
    payload, _, signature = value.partition(".")
    claims = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["who"] == "learner:alice"
    assert c.get("/", follow_redirects=False).status_code == 200

    # The same payload with a changed signature, or a payload that claims staff: signed out.
    tampered_signature = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    forged_payload = base64.b64encode(json.dumps({"who": "staff:1", "csrf": "x"}).encode()).decode()
    for forged in (tampered_signature, f"{forged_payload}.{signature}", forged_payload):
        other = TestClient(app)
        other.cookies.set("dlgrade_session", forged)
        assert other.get("/", follow_redirects=False).headers["location"] == "/signin", forged
        assert other.get("/staff", follow_redirects=False).headers["location"] == "/staff/signin"


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd", "../../../tmp/evil.ipynb", "..\\..\\windows\\evil.ipynb", "a\x1b[31mred\x07\x7f.ipynb"],
)
def test_an_uploaded_filename_is_never_a_path_and_is_shown_cleaned(quiet, filename):
    app, tokens = quiet
    course = app.state.config.course
    before = {p.relative_to(course) for p in course.rglob("*")}
    response = upload_api(TestClient(app), tokens["alice"], example("alice"), filename=filename)
    assert response.status_code == 201, response.text
    row = app.state.store.submission(response.json()["id"])
    assert re.fullmatch(r"[A-Za-z0-9._-]+\.ipynb", row.filename) and ".." not in row.filename
    blobs = [p for p in app.state.config.blobs.rglob("*") if p.is_file()]
    assert [p.relative_to(app.state.config.blobs).as_posix() for p in blobs] == [f"{row.sha256[:2]}/{row.sha256}"]
    created = {p.relative_to(course) for p in course.rglob("*")} - before
    assert all(p.parts[0] == "blobs" for p in created), created
    assert not (ROOT / "etc").exists() and not (course.parent / "etc").exists()
    page = sign_in_learner(app, tokens["alice"]).get("/").text
    assert f"<td>{row.filename}</td>" in page and "\x1b" not in page and "../" not in page.split("<main>")[1]
    assert "\x1b" not in sign_in_staff(app).get("/staff/submissions").text


def _raw_get(base: str, path: str) -> tuple:
    """GET ``path`` exactly as given (no client normalises its dots away): (status, body)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_hidden_suites_solutions_and_blobs_are_never_served(quiet):
    app, tokens = quiet
    sub = upload_api(TestClient(app), tokens["alice"], example("alice")).json()["id"]
    sha = app.state.store.submission(sub).sha256
    secrets = {
        "suite": (ROOT / "autograder/suites/initialization/test_initialization.py").read_bytes(),
        "solution": (ROOT / "solutions/initialization.ipynb").read_bytes(),
        "blob": example("alice"),
        "key": app.state.config.secret_path.read_bytes(),
    }
    paths = [
        "/autograder/suites/initialization/test_initialization.py",
        "/suites/initialization/test_initialization.py",
        "/solutions/initialization.ipynb",
        "/static/../../solutions/initialization.ipynb",
        "/static/%2e%2e/%2e%2e/solutions/initialization.ipynb",
        "/static/..%2f..%2fsolutions/initialization.ipynb",
        f"/blobs/{sha[:2]}/{sha}",
        f"/blobs/{sha}",
        "/secret.key",
        "/service.sqlite",
        "/../solutions/initialization.ipynb",
        "/submissions/../solutions/initialization.ipynb",
    ]
    base, stop = serve_in_thread(app)
    try:
        for who in (TestClient(app), sign_in_learner(app, tokens["alice"]), sign_in_staff(app)):
            for path in paths:
                response = who.get(path, follow_redirects=False)
                assert response.status_code == 404, (path, response.status_code)
                assert not any(s[:400] in response.content for s in secrets.values()), path
        for path in paths:
            status, body = _raw_get(base, path)
            assert status in (400, 404), (path, status)
            assert not any(s[:400] in body for s in secrets.values()), path
    finally:
        stop()


def test_the_staff_traceback_is_on_the_staff_page_only(tmp_path):
    app = make_app(tmp_path / "course", grade=grader_error)
    tokens = import_roster(app)
    app.state.store.update_assignment(A, is_open=True)
    with TestClient(app) as c:
        id = upload_api(c, tokens["alice"], example("alice")).json()["id"]
        row = wait_graded(app, id)
    assert row.result["grader_error"] is True
    learner = sign_in_learner(app, tokens["alice"]).get(f"/submissions/{id}").text
    assert "staff have been told" in learner
    assert "SECRET-TRACE" not in learner and "grader_internal_secret" not in learner
    api = TestClient(app).get(f"/api/v1/submissions/{id}", headers={"Authorization": f"Bearer {tokens['alice']}"})
    assert "SECRET-TRACE" not in api.text
    staff = sign_in_staff(app).get(f"/submissions/{id}").text
    assert "Grader traceback (staff only)" in staff and "KeyError: &#39;SECRET-TRACE&#39;" in staff
    assert STAFF_TRACE.splitlines()[0] in staff


def test_pages_send_a_content_security_policy(quiet):
    app, tokens = quiet
    id = upload_api(TestClient(app), tokens["alice"], example("alice")).json()["id"]
    grade_queue(app)
    anonymous, learner, staff = TestClient(app), sign_in_learner(app, tokens["alice"]), sign_in_staff(app)
    pages = [(anonymous, "/signin"), (anonymous, "/staff/signin"), (learner, "/"), (learner, "/token")]
    pages += [(learner, f"/submissions/{id}"), (staff, f"/submissions/{id}"), (staff, "/staff/course/")]
    pages += [(staff, p) for p in get_routes(app, "GET", "/staff") if "{" not in p and not p.endswith(".csv")]
    refused = upload_form(learner, b"not json")
    assert refused.status_code == 422
    responses = [client.get(path) for client, path in pages] + [refused]
    for response in responses:
        if response.headers["content-type"].startswith("text/html"):
            policy = response.headers.get("content-security-policy", "")
            # The pages: scripts off; the course page (batch/course_page.py): nothing but inline style.
            strict = "default-src 'self'" in policy and "script-src 'none'" in policy
            assert strict or "default-src 'none'" in policy, (response.url, policy)
            assert "frame-ancestors 'none'" in policy or response.url.path == "/staff/course/"


def test_times_are_the_servers(quiet):
    app, tokens = quiet
    learner = sign_in_learner(app, tokens["alice"])
    before = datetime.now(UTC)
    forged = {"submitted_at": "2000-01-01T00:00:00+00:00"}
    headers = {"X-Submitted-At": "2000-01-01T00:00:00Z", "Date": "Sat, 01 Jan 2000 00:00:00 GMT"}
    fields = {"csrf": csrf(learner, "/"), "assignment": A, **forged}
    browser = learner.post(
        "/submit",
        data=fields,
        headers=headers,
        files={"notebook": ("a.ipynb", example("alice"))},
        follow_redirects=False,
    )
    assert browser.status_code == 303, browser.text
    api = TestClient(app).post(
        "/api/v1/submissions",
        headers={"Authorization": f"Bearer {tokens['bob']}", **headers},
        data={"assignment": A, **forged},
        files={"notebook": ("b.ipynb", example("bob"))},
    )
    assert api.status_code == 201, api.text
    after = datetime.now(UTC)
    rows = app.state.store.submissions()
    assert len(rows) == 2
    for row in rows:
        assert before - timedelta(seconds=1) <= row.submitted_at <= after + timedelta(seconds=1), row.submitted_at
    assert api.json()["submitted_at"].startswith(str(before.year))


def test_staff_passwords_are_stored_as_argon2_hashes(quiet):
    app, _ = quiet
    sign_in_staff(app)
    with app.state.engine.connect() as connection:
        stored = connection.execute(text("select email, password_hash from staff")).all()
    assert [email for email, _ in stored] == [STAFF_EMAIL]
    digest = stored[0][1]
    assert digest.startswith("$argon2id$") and STAFF_PASSWORD not in digest
    assert "correct" not in digest and len(digest) > 60
