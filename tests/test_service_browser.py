"""dlgrade serve in a real browser: Debian's headless Chromium driven by Playwright (browser_page) against
the app served by uvicorn on loopback (serve_in_thread). What a learner and a staff member do, through the
pages' own links, forms and file inputs, with the real grader for the learner's upload.

The docs' screenshots are made by docs/screenshots.py (run by hand); these tests write nothing to docs/.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from autograder.batch.roster import parse_roster
from autograder.service import auth
from autograder.service.config import ServiceConfig
from autograder.service.web import create_app

ROOT = Path(__file__).resolve().parent.parent
ROSTER = ROOT / "examples" / "service" / "roster.csv"
ALICE_INIT = ROOT / "examples" / "submissions" / "alice" / "initialization" / "initialization.ipynb"
BOB_INIT = ROOT / "examples" / "submissions" / "bob" / "initialization" / "initialization.ipynb"
STAFF_EMAIL, STAFF_PASSWORD = "teacher@example.org", "a staff password of the course"
GRADING_BOUND_MS = 60_000  # the first grade pays the worker's start (2-5 s); allow a loaded machine

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path):
    """Start an app (``served(grade=..., workers=...)``) on loopback; returns (app, base_url). Stopped after."""
    stops = []

    def start(*, grade=None, workers: int = 1):
        from service_fixtures import serve_in_thread

        app = create_app(
            ServiceConfig(course=tmp_path / "course", workers=workers, title="Deep Learning 2026"), grade=grade
        )
        base_url, stop = serve_in_thread(app)
        stops.append(stop)
        return app, base_url

    yield start
    for stop in reversed(stops):
        stop()


def test_a_learner_uploads_through_the_page_and_reads_the_real_grade(served, browser_page):
    from playwright.sync_api import expect

    app, base = served(workers=1)  # the real grader
    store = app.state.store
    tokens = store.import_roster(parse_roster(ROSTER.read_text(), "roster"))
    store.update_assignment("initialization", is_open=True)
    store.update_assignment("gradient_checking", is_open=True, deadline=datetime.now(UTC) + timedelta(days=7))
    page = browser_page

    # The invitation link signs alice in, shows her token and the server (for submit()), and leads on to
    # her assignments.
    page.goto(f"{base}/join/{tokens['alice']}")
    expect(page.locator("#token")).to_have_text(tokens["alice"])
    expect(page.locator("#server")).to_have_text(base)
    page.click("#continue")
    assert page.url == f"{base}/"
    expect(page.locator("h1")).to_have_text("Alice Kim")
    rows = page.locator("#assignments tr[data-assignment]")
    expect(rows).to_have_count(2)
    assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.assignment)")) == [
        "gradient_checking",
        "initialization",
    ]
    expect(page.locator('tr[data-assignment="gradient_checking"] td').nth(1)).to_contain_text(
        (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    )
    expect(page.locator("#history")).to_contain_text("nothing yet")

    # Upload through the row's file input: the submission page refreshes itself until graded.
    row = page.locator('tr[data-assignment="initialization"]')
    row.locator('input[type="file"]').set_input_files(str(ALICE_INIT))
    row.locator("button").click()
    page.wait_for_url(re.compile(r"/submissions/\d+$"))
    submission_url = page.url
    expect(page.locator("h1")).to_contain_text("initialization")
    expect(page.locator("#status")).to_have_attribute("data-status", "graded", timeout=GRADING_BOUND_MS)
    assert page.url == submission_url
    score = page.locator("#score")
    expect(score).to_contain_text("Score: 11 / 11")
    assert score.locator("[data-score]").get_attribute("data-score") == "11"
    expect(page.locator("#functions")).to_contain_text("initialize_parameters_he")
    assert page.locator('meta[http-equiv="refresh"]').count() == 0  # graded: no more refreshing

    # Home shows the grade, and the history the submission.
    page.get_by_role("link", name="My assignments").click()
    expect(page.locator('tr[data-assignment="initialization"]')).to_contain_text("11 / 11")
    expect(page.locator("#history")).to_contain_text("initialization.ipynb")
    [row] = store.submissions(learner="alice")
    assert (row.status, row.via, row.score) == ("graded", "browser", 11.0)
    assert submission_url.endswith(f"/submissions/{row.id}")

    # Another learner's submission is not hers to see.
    bob = store.add_submission(
        learner="bob", assignment="initialization", filename="x.ipynb", sha256="0" * 64, size=1, via="api"
    )[0]
    response = page.goto(f"{base}/submissions/{bob.id}")
    assert response.status == 404


def test_staff_import_a_roster_set_an_assignment_and_export_the_gradebook(served, browser_page, tmp_path):
    from playwright.sync_api import expect
    from service_stand_ins_load import fast_grade

    app, base = served(grade=fast_grade, workers=1)
    store = app.state.store
    auth.add_staff(store.sessions, STAFF_EMAIL, STAFF_PASSWORD)
    page = browser_page

    # Signing in: a wrong password is refused, the right one leads to the matrix.
    page.goto(f"{base}/staff")
    assert page.url == f"{base}/staff/signin"
    page.fill('input[name="email"]', STAFF_EMAIL)
    page.fill('input[name="password"]', "not the password at all")
    page.click("form.card button")
    expect(page.locator("#error")).to_have_text("wrong email or password")
    page.fill('input[name="email"]', STAFF_EMAIL)
    page.fill('input[name="password"]', STAFF_PASSWORD)
    page.click("form.card button")
    page.wait_for_url(f"{base}/staff")

    # Import the roster through the form: an invitation link and a token per learner, shown once.
    page.get_by_role("link", name="Roster").click()
    page.set_input_files('input[name="roster"]', str(ROSTER))
    page.get_by_role("button", name="Import").click()
    issued = page.locator("#issued")
    expect(issued).to_contain_text("5 on the imported roster")
    links = dict(
        (cells[0], (cells[1], cells[2]))
        for cells in issued.locator("tr").evaluate_all(
            "rows => rows.slice(1).map(r => [...r.querySelectorAll('td')].map(td => td.innerText.trim()))"
        )
    )
    assert sorted(links) == ["alice", "bob", "carol", "dave", "mallory"]
    for learner, (link, token) in links.items():
        assert link == f"{base}/join/{token}", learner
    expect(page.locator("#learners")).to_contain_text("Mallory Choi")

    # Open initialization, with a deadline and feedback in graded mode, through its row's form.
    page.get_by_role("link", name="Assignments").click()
    deadline = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    row = page.locator("#assignment-table tr", has=page.locator("td", has_text=re.compile("^initialization$")))
    row.locator('input[name="is_open"]').check()
    row.locator('input[name="deadline"]').fill(deadline.strftime("%Y-%m-%dT%H:%M+00:00"))
    row.locator('select[name="feedback"]').select_option("graded")
    row.locator("button").click()
    page.wait_for_url(f"{base}/staff/assignments")
    saved = store.assignment("initialization")
    assert (saved.is_open, saved.deadline, saved.feedback, saved.released) == (True, deadline, "graded", False)
    row = page.locator("#assignment-table tr", has=page.locator("td", has_text=re.compile("^initialization$")))
    expect(row.locator('input[name="deadline"]')).to_have_value(deadline.strftime("%Y-%m-%dT%H:%M+00:00"))
    expect(row.locator('select[name="feedback"]')).to_have_value("graded")

    # An extension for carol.
    extension = page.locator("form.card", has=page.get_by_role("button", name="Give extension"))
    extension.locator('select[name="learner"]').select_option("carol")
    extension.locator('select[name="assignment"]').select_option("initialization")
    extension.locator('input[name="days"]').fill("2")
    extension.get_by_role("button", name="Give extension").click()
    expect(page.locator("#extensions")).to_contain_text("carol")
    assert store.course_policy().for_assignment("initialization", "carol").extension

    # Two learners submit through the API with the tokens the page showed.
    for learner, notebook in (("alice", ALICE_INIT), ("bob", BOB_INIT)):
        response = httpx.post(
            f"{base}/api/v1/submissions",
            headers={"Authorization": f"Bearer {links[learner][1]}"},
            files={"notebook": (notebook.name, notebook.read_bytes())},
            data={"assignment": "initialization"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        status_url = response.json()["status_url"]
    # Graded mode: bob's feedback stays hidden from him until release.
    for _ in range(300):
        status = httpx.get(f"{base}{status_url}", headers={"Authorization": f"Bearer {links['bob'][1]}"}).json()
        if status["status"] == "graded":
            break
        page.wait_for_timeout(100)
    assert status["status"] == "graded" and status["feedback_released"] is False and status["score"] is None

    # The matrix: one row per learner, alice and bob graded, carol with her extension, dave nothing.
    page.get_by_role("link", name="Matrix").click()
    matrix = page.locator("#matrix")
    expect(matrix.locator("tr")).to_have_count(1 + 5)

    def cell(learner: str):
        return matrix.locator("tr", has=page.locator(f'a:text-is("{learner}")')).locator("td").nth(1)

    expect(cell("alice")).to_have_class(re.compile(r"\bstate-graded\b"))
    expect(cell("alice")).to_contain_text("11")
    expect(cell("bob")).to_have_class(re.compile(r"\bstate-graded\b"))
    expect(cell("carol")).to_contain_text("not submitted")
    expect(cell("carol")).to_contain_text("(ext)")
    expect(cell("dave")).to_have_class(re.compile(r"\bstate-not-submitted\b"))
    expect(page.locator("#summary")).to_contain_text("2 graded")

    # The Canvas gradebook downloads with a row per roster learner.
    with page.expect_download() as caught:
        page.get_by_role("link", name="canvas-gradebook.csv").click()
    download = caught.value
    assert download.suggested_filename == "canvas-gradebook.csv"
    target = tmp_path / "canvas-gradebook.csv"
    download.save_as(target)
    table = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    header = table[0]
    assert header[0] == "Student" and any("Initialization" in title or "initialization" in title for title in header)
    by_login = {row[header.index("SIS Login ID")]: row for row in table[1:] if "SIS Login ID" in header}
    column = next(i for i, title in enumerate(header) if "nitialization" in title)
    assert float(by_login["alice"][column]) == 11.0
    assert by_login["dave"][column] == ""

    # The course page, from the header.
    page.get_by_role("link", name="Course page").click()
    page.wait_for_url(f"{base}/staff/course/")
    body = page.locator("body")
    expect(body).to_contain_text("alice")
    expect(body).to_contain_text("initialization")
