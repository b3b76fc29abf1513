"""Picklable stand-in grade functions for the service's web and trust tests (tests/test_service_web.py,
tests/test_service_trust.py): ``(name, data, assignment) -> Result``, run in the GradeRunner's spawned
workers instead of the real grader (which costs seconds per submission). tests/ is on the workers'
sys.path (pyproject's pythonpath), so they import this module by its plain name."""

from __future__ import annotations

import re
import time
from pathlib import Path

from autograder.grading.results import FunctionScore, Result, TestResult

STAND_IN_MESSAGE = "stand-in check: the returned array has the wrong shape"
STAFF_TRACE = "Traceback (most recent call last):\n  File 'grader_internal_secret.py', line 7\nKeyError: 'SECRET-TRACE'"


def eight_of_ten(name: str, data: bytes, assignment: str | None) -> Result:
    """8 of 10 points: one check passed (8), one failed (2) with :data:`STAND_IN_MESSAGE`."""
    return Result(
        assignment=assignment,
        submission=name,
        title=f"{assignment} (stand-in)",
        score=8.0,
        max_score=10.0,
        tests=[
            TestResult("stand_in_function", "computes the right values", 8.0, True, score=8.0, kind="check"),
            TestResult("stand_in_function", "returns the right shape", 2.0, False, message=STAND_IN_MESSAGE),
        ],
        functions={"stand_in_function": FunctionScore(8.0, 10.0, 1, 2)},
    )


def grader_error(name: str, data: bytes, assignment: str | None) -> Result:
    """A grader failure, as pool.grade_submission returns one: zero, a reason, and a staff-only traceback."""
    from autograder.batch.pool import failed_result

    return failed_result(
        name,
        assignment,
        "the grader failed on this submission (KeyError); staff have been told",
        grader_error=True,
        staff_traceback=STAFF_TRACE,
    )


# ------------------------------------------------------------------ helpers the two test modules share
# (plain functions, not fixtures: kept here so that neither test module imports the other)

ROOT = Path(__file__).resolve().parent.parent
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
STAFF_EMAIL, STAFF_PASSWORD = "staff@example.org", "correct horse battery staple"
ROSTER = (
    "learner,name,email,sis_user_id,canvas_user_id,sis_login_id,section\n"
    "alice,Alice Adams,alice@example.org,S-100,1001,alice.login,A\n"
    "bob,Bob Brown,bob@example.org,S-200,1002,bob.login,A\n"
    "carol,Carol Chen,carol@example.org,S-300,1003,carol.login,B\n"
)


def example(learner: str, assignment: str = "initialization") -> bytes:
    """An example submission's bytes (examples/submissions: alice full marks, bob one bug, carol the stub)."""
    return (ROOT / "examples" / "submissions" / learner / assignment / f"{assignment}.ipynb").read_bytes()


def make_app(course, *, grade=None, graders: bool = True, **config):
    """The service on a fresh SQLite course folder; ``grade``: a stand-in of this module (None: the real one)."""
    from autograder.service.config import ServiceConfig
    from autograder.service.web import create_app

    return create_app(ServiceConfig(course=course, workers=1, **config), graders=graders, grade=grade)


def csrf(client, page: str = "/signin") -> str:
    response = client.get(page)
    found = CSRF.search(response.text)
    assert found, f"no CSRF token on {page} ({response.status_code})"
    return found.group(1)


def import_roster(app, text: str = ROSTER) -> dict:
    from autograder.batch.roster import parse_roster

    return app.state.store.import_roster(parse_roster(text))


def sign_in_staff(app, client=None):
    """A client signed in as staff (through the sign-in form); the staff member is added if missing."""
    from fastapi.testclient import TestClient

    from autograder.service import auth

    if auth.staff_count(app.state.store.sessions) == 0:
        auth.add_staff(app.state.store.sessions, STAFF_EMAIL, STAFF_PASSWORD)
    client = client or TestClient(app)
    token = csrf(client, "/staff/signin")
    response = client.post(
        "/staff/signin",
        data={"csrf": token, "email": STAFF_EMAIL, "password": STAFF_PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def sign_in_learner(app, token: str, client=None):
    """A client signed in as a learner through their invitation link."""
    from fastapi.testclient import TestClient

    client = client or TestClient(app)
    response = client.get(f"/join/{token}", follow_redirects=False)
    assert response.status_code == 200 and 'id="submit-setup"' in response.text, response.text
    return client


def upload_api(client, token: str, data: bytes, *, assignment: str | None = "initialization", filename=None):
    fields = {"assignment": assignment} if assignment else {}
    return client.post(
        "/api/v1/submissions",
        headers={"Authorization": f"Bearer {token}"},
        data=fields,
        files={"notebook": (filename or f"{assignment or 'notebook'}.ipynb", data, "application/x-ipynb+json")},
    )


def upload_form(client, data: bytes, *, assignment: str = "initialization", filename=None, extra=None):
    fields = {"csrf": csrf(client, "/"), "assignment": assignment, **(extra or {})}
    return client.post(
        "/submit",
        data=fields,
        files={"notebook": (filename or f"{assignment}.ipynb", data, "application/x-ipynb+json")},
        follow_redirects=False,
    )


def grade_queue(app, grade=eight_of_ten) -> list:
    """Grade what is queued here, in this process, as the runner would record it (for apps without
    graders): returns the graded ids."""
    from autograder.batch.state import assignment_inputs

    store = app.state.store
    done = []
    for claimed in store.claim(1000, "test"):
        result = grade(claimed.filename, b"", claimed.assignment)
        assert store.record(claimed.id, result.to_dict(), assignment_inputs(claimed.assignment))
        done.append(claimed.id)
    return done


def wait_graded(app, id: int, *, attempts: int = 1, timeout: float = 60.0):
    """The submission once its grader recorded a grade (at least ``attempts`` claims), else fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = app.state.store.submission(id)
        if row.status == "graded" and row.attempts >= attempts:
            return row
        time.sleep(0.05)
    raise AssertionError(f"submission {id} not graded within {timeout} s: {row.status}, {row.attempts} attempt(s)")


def get_routes(app, method: str, prefix: str = "") -> list:
    """The app's paths for ``method`` under ``prefix``, path parameters filled with a learner, an assignment."""
    values = {"learner": "alice", "assignment": "initialization", "name": "initialization", "id": "1"}

    def walk(routes):  # FastAPI >= 0.16x keeps an included router's routes behind an _IncludedRouter
        for route in routes:
            inner = getattr(route, "original_router", None)
            yield from walk(inner.routes) if inner is not None else [route]

    paths = []
    for route in walk(app.routes):
        if method in (getattr(route, "methods", None) or ()) and route.path.startswith(prefix):
            paths.append(re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], route.path))
    return paths
