"""dlgrade serve, function by function, through its pages and API (FastAPI's TestClient; a live uvicorn
where the client or raw sockets need one): staff (sign-in, roster, links, assignment settings,
extensions, the matrix, submissions, regrades, exports, the course page, insights), learners (sign-in,
their assignments and deadlines, uploads, feedback in practice and graded mode, history, tokens, the
submit client) and bad input (wrong assignment, damaged notebooks, oversize bodies, duplicates,
closed assignments, deadlines, the rate limit).

Grading is the stand-ins of tests/service_stand_ins_web.py (a worker's job in milliseconds), or
:func:`service_stand_ins_web.grade_queue` (recorded here, no worker) where only a grade is needed;
the real grader grades alice's, bob's and a copy of alice's initialization notebook once, end to end.
"""

from __future__ import annotations

import csv
import io
import re
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from service_fixtures import serve_in_thread
from service_stand_ins_web import (
    ROSTER,
    STAFF_EMAIL,
    STAND_IN_MESSAGE,
    csrf,
    eight_of_ten,
    example,
    get_routes,
    grade_queue,
    import_roster,
    make_app,
    sign_in_learner,
    sign_in_staff,
    upload_api,
    upload_form,
    wait_graded,
)
from sqlalchemy import func, select, update

from autograder.batch.roster import RosterError, parse_roster
from autograder.service import auth
from autograder.service.db import Submission

A = "initialization"


def rows(app) -> int:
    with app.state.store.sessions() as s:
        return s.scalar(select(func.count(Submission.id)))


def open_assignment(app, name: str = A, **values) -> None:
    app.state.store.update_assignment(name, is_open=True, **values)


@pytest.fixture
def quiet(tmp_path):
    """An app without graders (grades, where needed, come from grade_queue) and its roster's tokens."""
    app = make_app(tmp_path / "course", graders=False)
    tokens = import_roster(app)
    open_assignment(app)
    return app, tokens


@pytest.fixture
def graded(tmp_path):
    """An app whose graders run the eight_of_ten stand-in, started (lifespan), and its roster's tokens."""
    app = make_app(tmp_path / "course", grade=eight_of_ten)
    tokens = import_roster(app)
    open_assignment(app)
    with TestClient(app) as client:
        yield app, tokens, client


# ------------------------------------------------------------------ staff


def test_staff_sign_in_refuses_a_wrong_password_and_every_staff_page_needs_it(quiet):
    app, _ = quiet
    auth.add_staff(app.state.store.sessions, STAFF_EMAIL, "correct horse battery staple")
    pages = [p for p in get_routes(app, "GET", "/staff") if p != "/staff/signin"]
    assert len(pages) >= 10, pages
    c = TestClient(app)
    for page in pages:
        response = c.get(page, follow_redirects=False)
        assert (response.status_code, response.headers.get("location")) == (303, "/staff/signin"), page
    token = csrf(c, "/staff/signin")
    wrong = c.post("/staff/signin", data={"csrf": token, "email": STAFF_EMAIL, "password": "correct horse battery"})
    assert wrong.status_code == 403 and "wrong email or password" in wrong.text
    unknown = c.post("/staff/signin", data={"csrf": token, "email": "x@example.org", "password": "whatever it is!"})
    assert unknown.status_code == 403
    assert c.get("/staff", follow_redirects=False).status_code == 303
    sign_in_staff(app, c)
    for page in pages:
        assert c.get(page, follow_redirects=False).status_code in (200, 303, 404), page
    assert c.get("/staff").status_code == 200


def _import(client, text: str):
    return client.post(
        "/staff/roster",
        data={"csrf": csrf(client, "/staff/roster")},
        files={"roster": ("roster.csv", text.encode(), "text/csv")},
    )


def test_roster_import_issues_links_once_and_refuses_a_bad_roster(tmp_path):
    app = make_app(tmp_path / "course", graders=False)
    c = sign_in_staff(app)
    first = _import(c, ROSTER)
    assert first.status_code == 200, first.text
    links = dict(re.findall(r"<tr><td>(\w+)</td><td><code>http://testserver/join/([\w-]+)</code>", first.text))
    assert sorted(links) == ["alice", "bob", "carol"]
    learner = TestClient(app)
    assert learner.get(f"/join/{links['bob']}").status_code == 200
    assert "Bob Brown" in learner.get("/").text
    digests = {p.learner: p.token_digest for p in app.state.store.learners()}

    again = _import(c, ROSTER + "dave,Dave Doe,,,,,B\n")
    assert again.status_code == 200
    assert (
        re.findall(r"/join/([\w-]+)</code>", again.text)
        and "alice" not in again.text.split('id="issued"')[1].split("</div>")[0]
    )
    assert {p.learner: p.token_digest for p in app.state.store.learners() if p.learner != "dave"} == digests
    same = _import(c, ROSTER)
    assert same.status_code == 200 and 'id="issued"' not in same.text and "/join/" not in same.text
    assert learner.get(f"/join/{links['bob']}", follow_redirects=False).status_code == 200  # still works

    bad = "learner,emial\nerin,erin@example.org\n"
    with pytest.raises(RosterError) as expected:
        parse_roster(bad, "the uploaded roster")
    refused = _import(c, bad)
    assert refused.status_code == 422
    assert str(expected.value).replace("'", "&#39;") in refused.text
    assert "erin" not in {p.learner for p in app.state.store.learners()}


def test_reissuing_a_link_ends_the_old_one(quiet):
    app, tokens = quiet
    c = sign_in_staff(app)
    page = c.post("/staff/learners/alice/token", data={"csrf": csrf(c, "/staff/roster")})
    assert page.status_code == 200
    new = re.search(r"/join/([\w-]+)</code>", page.text).group(1)
    assert new != tokens["alice"]
    assert TestClient(app).get(f"/join/{tokens['alice']}", follow_redirects=False).status_code == 403
    assert TestClient(app).get(f"/join/{new}", follow_redirects=False).status_code == 200
    assert upload_api(TestClient(app), tokens["alice"], example("alice")).status_code == 401
    assert c.post("/staff/learners/nobody/token", data={"csrf": csrf(c, "/staff/roster")}).status_code == 404


def _settings(client, name: str = A, **fields):
    form = {"csrf": csrf(client, "/staff/assignments"), "feedback": "practice", "late": "penalty"}
    form.update({k: v for k, v in fields.items() if v is not None})
    return client.post(f"/staff/assignments/{name}", data=form, follow_redirects=False)


def test_assignment_settings_form(quiet):
    app, _ = quiet
    c = sign_in_staff(app)
    saved = _settings(
        c,
        "gradient_checking",
        is_open="on",
        deadline="2030-01-02T03:04+09:00",
        grace_minutes="15",
        penalty_per_day="0.25",
        zero_after_days="3",
        late="zero",
        feedback="graded",
        released="on",
    )
    assert (saved.status_code, saved.headers["location"]) == (303, "/staff/assignments")
    row = app.state.store.assignment("gradient_checking")
    assert row.is_open and not row.accept_late and row.released
    assert row.deadline == datetime(2030, 1, 1, 18, 4, tzinfo=UTC)
    assert (row.grace_minutes, row.penalty_per_day, row.zero_after_days, row.late, row.feedback) == (
        15.0,
        0.25,
        3,
        "zero",
        "graded",
    )
    page = c.get("/staff/assignments").text
    assert 'value="2030-01-01T18:04+00:00"' in page
    # Closed again, practice mode, accepting late work, no deadline (a form without the boxes ticked).
    assert _settings(c, "gradient_checking", accept_late="on").status_code == 303
    row = app.state.store.assignment("gradient_checking")
    assert not row.is_open and row.accept_late and not row.released
    assert (row.deadline, row.feedback) == (None, "practice")
    # Refused input changes nothing.
    assert _settings(c, "gradient_checking", is_open="on", feedback="sometimes").status_code == 422
    assert _settings(c, "gradient_checking", is_open="on", deadline="next tuesday").status_code == 422
    assert _settings(c, "gradient_checking", is_open="on", penalty_per_day="-1").status_code == 422
    assert _settings(c, "no_such_assignment", is_open="on").status_code == 404
    assert not app.state.store.assignment("gradient_checking").is_open


def test_extensions_days_new_deadline_and_removal(quiet):
    app, tokens = quiet
    deadline = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    app.state.store.update_assignment(A, deadline=deadline)
    c = sign_in_staff(app)

    def give(**fields):
        form = {"csrf": csrf(c, "/staff/assignments"), "learner": "alice", "assignment": A, **fields}
        return c.post("/staff/extensions", data=form, follow_redirects=False)

    def alice_deadline():
        listed = TestClient(app).get("/api/v1/assignments", headers={"Authorization": f"Bearer {tokens['alice']}"})
        return {a["name"]: a["deadline"] for a in listed.json()["assignments"]}[A]

    assert give(days="2").status_code == 303
    assert alice_deadline() == "2030-05-03T12:00:00+00:00"
    assert "<td>alice</td><td>initialization</td><td>2</td>" in c.get("/staff/assignments").text
    assert give(days="0", deadline="2030-06-01T08:00+02:00").status_code == 303
    assert alice_deadline() == "2030-06-01T06:00:00+00:00"
    assert len(app.state.store.extensions()) == 1
    bob = TestClient(app).get("/api/v1/assignments", headers={"Authorization": f"Bearer {tokens['bob']}"})
    assert {a["name"]: a["deadline"] for a in bob.json()["assignments"]}[A] == "2030-05-01T12:00:00+00:00"
    assert give(remove="on").status_code == 303
    assert alice_deadline() == "2030-05-01T12:00:00+00:00" and app.state.store.extensions() == []
    assert give(learner="nobody", days="1").status_code == 404


def _matrix(page: str) -> dict:
    table = page.split('id="matrix"', 1)[1].split("</table>", 1)[0]
    header = re.findall(r"<th>([^<]+)</th>", table)[1:]
    cells = {}
    for row in table.split("<tr>")[2:]:
        learner = re.search(r'learner=\w+">(\w+)</a>', row).group(1)
        found = re.findall(r'<td class="state-([\w-]+)"[^>]*>(.*?)</td>', row, re.S)
        assert len(found) == len(header), row
        for assignment, (state, text) in zip(header, found, strict=True):
            cells[learner, assignment] = (state, " ".join(text.split()))
    return cells


def test_matrix_one_cell_per_learner_and_assignment(quiet):
    app, tokens = quiet
    store = app.state.store
    now = datetime.now(UTC)
    import_roster(app, ROSTER + "dave,Dave Doe,,,,,B\n")
    store.update_assignment(A, deadline=now - timedelta(hours=12), penalty_per_day=0.1)
    open_assignment(app, "gradient_checking", deadline=now + timedelta(days=7))
    store.set_extension("alice", A, days=3)
    c = TestClient(app)
    assert upload_api(c, tokens["alice"], example("alice")).json()["late"] is False  # within her extension
    assert upload_api(c, tokens["bob"], example("bob")).json()["late"] is True
    grade_queue(app)
    cells = _matrix(sign_in_staff(app).get("/staff").text)
    assert len(cells) == 4 * 2  # only the open assignments, or those with a deadline
    assert cells["alice", A] == ("graded", "8 (ext)")
    assert cells["bob", A][0] == "late" and cells["bob", A][1].startswith("7 late")
    assert cells["carol", A] == ("missing", "missing")
    assert cells["dave", A] == ("missing", "missing")
    assert {cells[p, "gradient_checking"] for p in ("alice", "bob", "carol", "dave")} == {
        ("not-submitted", "not submitted")
    }


def test_staff_opens_any_submission_and_regrades_one_an_assignment_outdated_and_all(graded):
    app, tokens, c = graded
    store = app.state.store
    open_assignment(app, "gradient_checking")
    ids = [upload_api(c, tokens[who], example(who)).json()["id"] for who in ("alice", "bob")]
    ids.append(upload_api(c, tokens["carol"], example("carol", "gradient_checking"), assignment=None).json()["id"])
    for id in ids:
        wait_graded(app, id)
    staff = sign_in_staff(app)
    page = staff.get(f"/submissions/{ids[1]}")
    assert page.status_code == 200 and "by bob" in page.text and STAND_IN_MESSAGE in page.text
    listed = staff.get("/staff/submissions?learner=bob").text
    assert f'href="/submissions/{ids[1]}"' in listed and f'href="/submissions/{ids[0]}"' not in listed

    def regrade(**fields):
        response = staff.post("/staff/regrade", data={"csrf": csrf(staff, "/staff"), **fields})
        assert response.status_code == 200, response.text
        return int(re.search(r"(\d+) submission\(s\) queued again", response.text).group(1))

    def attempts():
        return {id: store.submission(id).attempts for id in ids}

    assert regrade(scope="submission", id=str(ids[0])) == 1
    wait_graded(app, ids[0], attempts=2)
    assert attempts() == {ids[0]: 2, ids[1]: 1, ids[2]: 1}
    assert regrade(scope="assignment", assignment=A) == 2
    wait_graded(app, ids[0], attempts=3)
    wait_graded(app, ids[1], attempts=2)
    assert attempts() == {ids[0]: 3, ids[1]: 2, ids[2]: 1}
    # An outdated grade: graded with another hidden suite than today's.
    assert store.outdated() == {}
    with store.sessions.begin() as s:
        s.execute(update(Submission).where(Submission.id == ids[2]).values(suite="an older suite"))
    assert list(store.outdated()) == [ids[2]]
    assert "1 grade(s) depend on files that changed" in staff.get("/staff").text
    assert regrade(scope="outdated") == 1
    row = wait_graded(app, ids[2], attempts=2)
    assert row.suite != "an older suite" and store.outdated() == {}
    assert attempts() == {ids[0]: 3, ids[1]: 2, ids[2]: 2}
    assert regrade(scope="all") == 3
    for id, n in zip(ids, (4, 3, 3), strict=True):
        assert wait_graded(app, id, attempts=n).result["score"] == 8.0
    assert staff.post("/staff/regrade", data={"csrf": csrf(staff, "/staff"), "scope": "everything"}).status_code == 422


def _csv_rows(text: str) -> list:
    return list(csv.reader(io.StringIO(text)))


def test_exports_and_the_course_page(quiet):
    app, tokens = quiet
    app.state.store.update_assignment(A, deadline=datetime.now(UTC) + timedelta(days=7))
    c = TestClient(app)
    alice = upload_api(c, tokens["alice"], example("alice")).json()["id"]
    grade_queue(app)
    staff = sign_in_staff(app)

    book = staff.get("/staff/export/gradebook.csv")
    assert book.status_code == 200 and book.headers["content-type"].startswith("text/csv")
    assert 'filename="gradebook.csv"' in book.headers["content-disposition"]
    by = {(r[0], r[1]): r for r in _csv_rows(book.text)[1:]}
    assert by["alice", A][2:5] == ["8", "10", "graded"]
    assert by["bob", A][4] == "not submitted"

    canvas = _csv_rows(staff.get("/staff/export/canvas-gradebook.csv").text)
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[1][0].strip() == "Points Possible" and canvas[1][5] == "10"
    people = {r[0]: r for r in canvas[2:]}
    assert people["Alice Adams"] == ["Alice Adams", "1001", "S-100", "alice.login", "A", "8"]
    assert people["Bob Brown"] == ["Bob Brown", "1002", "S-200", "bob.login", "A", ""]

    summary = _csv_rows(staff.get("/staff/export/course-summary.csv").text)
    assert summary[0][:2] == ["learner", A]
    assert {r[0]: r[1] for r in summary[2:]} == {"alice": "8", "bob": "not submitted", "carol": "not submitted"}

    course = staff.get("/staff/course/")
    assert course.status_code == 200 and "Content-Security-Policy" in course.headers
    link = re.search(r'href="(learners/alice/initialization/feedback\.html)"', course.text).group(1)
    followed = staff.get(f"/staff/course/{link}", follow_redirects=False)
    assert (followed.status_code, followed.headers["location"]) == (303, f"/submissions/{alice}")
    assert staff.get("/staff/course/learners/bob/initialization/feedback.html").status_code == 404
    # The course page's own links to its CSV files lead to them.
    for name in re.findall(r'href="([\w-]+\.csv)"', course.text):
        assert staff.get(f"/staff/course/{name}").status_code == 200, name


def test_real_grader_end_to_end_feedback_and_insights(tmp_path):
    """The real grader: alice (full marks), bob (one planted bug: the solution otherwise, so copydetect
    pairs him with alice too), carol (the released stub) and dave (alice's notebook, copied)."""
    app = make_app(tmp_path / "course")
    tokens = import_roster(app, ROSTER + "dave,Dave Doe,,,,,B\n")
    open_assignment(app)
    with TestClient(app) as c:
        ids = {who: upload_api(c, tokens[who], example(who)).json()["id"] for who in ("alice", "bob", "carol")}
        ids["dave"] = upload_api(c, tokens["dave"], example("alice")).json()["id"]
        for id in ids.values():
            wait_graded(app, id, timeout=180)
        alice = sign_in_learner(app, tokens["alice"])
        page = alice.get(f"/submissions/{ids['alice']}").text
        score, top = re.search(r'data-score="([\d.]+)".*?data-max="([\d.]+)"', page, re.S).groups()
        assert float(score) == float(top) > 0 and 'id="functions"' in page
        bob = sign_in_learner(app, tokens["bob"]).get(f"/submissions/{ids['bob']}").text
        assert "initialize_parameters_he" in bob and "What to fix" in bob

        insights = sign_in_staff(app).get(f"/staff/insights/{A}").text
        rates = insights.split('id="rates"')[1].split("</table>")[0]
        he = re.findall(r"initialize_parameters_he</code></td><td>[^<]*</td><td class=\"num\">(\d+) / (\d+)<", rates)
        assert he and all(int(p) <= int(n) for p, n in he) and any(int(p) < int(n) for p, n in he), rates
        # alice, bob and dave pass the zeros checks, carol's stub fails them; bob fails a He check too.
        zeros = re.findall(r"initialize_parameters_zeros</code></td><td>[^<]*</td><td class=\"num\">([^<]*)<", rates)
        assert zeros and set(zeros) == {"3 / 4"}, rates
        assert re.search(
            r"initialize_parameters_he</code></td><td>[^<]*</td><td class=\"num\">2 / 4</td><td class=\"num\">50%",
            rates,
        )
        mistakes = insights.split('id="mistakes"')[1].split("</table>")[0]
        assert "initialize_parameters_he" in mistakes and "none" not in mistakes
        pairs = insights.split('id="pairs"')[1].split("</table>")[0]
        assert re.search(r"<td>alice</td><td>dave</td><td class=\"num\">1\.00</td>", pairs), pairs
        assert "carol" not in pairs


# ------------------------------------------------------------------ learners


def test_invitation_link_and_token_form_sign_in(quiet):
    app, tokens = quiet
    c = TestClient(app)
    assert c.get("/", follow_redirects=False).headers["location"] == "/signin"
    welcome = c.get(f"/join/{tokens['alice']}")
    # The welcome page: signed in, with the server and the token for submit() and the terminal.
    assert welcome.status_code == 200 and welcome.headers["cache-control"] == "no-store"
    assert f'<code id="token">{tokens["alice"]}</code>' in welcome.text
    assert '<code id="server">http://testserver</code>' in welcome.text
    assert "Alice Adams" in c.get("/").text
    other = TestClient(app)
    form = {"csrf": csrf(other, "/signin"), "token": tokens["bob"]}
    assert other.post("/signin", data=form, follow_redirects=False).headers["location"] == "/"
    assert "Bob Brown" in other.get("/").text
    stranger = TestClient(app)
    refused = stranger.post("/signin", data={"csrf": csrf(stranger, "/signin"), "token": "not-a-token"})
    assert refused.status_code == 403 and "unknown token" in refused.text
    assert stranger.get("/join/not-a-token").status_code == 403
    assert stranger.get("/", follow_redirects=False).status_code == 303


def test_home_lists_open_assignments_with_the_learners_own_deadline(quiet):
    app, tokens = quiet
    deadline = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    app.state.store.update_assignment(A, deadline=deadline)
    app.state.store.set_extension("alice", A, days=3)

    def row(who: str, name: str = A) -> str | None:
        page = sign_in_learner(app, tokens[who]).get("/").text
        found = re.search(rf'<tr data-assignment="{name}">(.*?)</tr>', page, re.S)
        return found.group(1) if found else None

    assert "2030-05-04T12:00+00:00" in row("alice") and "2030-05-01T12:00" not in row("alice")
    assert "2030-05-01T12:00+00:00" in row("bob")
    assert row("bob", "gradient_checking") is None  # closed
    assert 'name="assignment" value="initialization"' in row("bob")


def test_upload_from_the_browser_form_and_from_the_api(quiet):
    app, tokens = quiet
    c = sign_in_learner(app, tokens["alice"])
    browser = upload_form(c, example("alice"))
    assert browser.status_code == 303
    id = int(browser.headers["location"].rsplit("/", 1)[1])
    page = c.get(f"/submissions/{id}")
    assert page.status_code == 200 and 'data-status="queued"' in page.text
    api = upload_api(TestClient(app), tokens["alice"], example("bob"))
    assert api.status_code == 201, api.text
    body = api.json()
    assert body["assignment"] == A and body["status"] == "queued" and body["duplicate"] is False
    assert [(s.id, s.via) for s in app.state.store.submissions(learner="alice")] == [
        (body["id"], "api"),
        (id, "browser"),
    ]
    status = TestClient(app).get(body["status_url"], headers={"Authorization": f"Bearer {tokens['alice']}"})
    assert status.json()["status"] == "queued" and status.json()["score"] is None
    assert upload_api(TestClient(app), "wrong-token", example("bob")).status_code == 401


def test_feedback_in_practice_mode_and_in_graded_mode_after_release(graded):
    app, tokens, _ = graded
    alice = sign_in_learner(app, tokens["alice"])
    id = int(upload_form(alice, example("alice")).headers["location"].rsplit("/", 1)[1])
    wait_graded(app, id)
    page = alice.get(f"/submissions/{id}").text
    assert 'id="feedback"' in page and STAND_IN_MESSAGE in page and 'data-score="8"' in page
    api = {"Authorization": f"Bearer {tokens['alice']}"}
    assert TestClient(app).get(f"/api/v1/submissions/{id}", headers=api).json()["score"] == 8.0

    staff = sign_in_staff(app)
    form = {"csrf": csrf(staff, "/staff/assignments"), "is_open": "on", "feedback": "graded", "late": "penalty"}
    assert staff.post(f"/staff/assignments/{A}", data=form, follow_redirects=False).status_code == 303
    page = alice.get(f"/submissions/{id}").text
    assert 'id="not-released"' in page and STAND_IN_MESSAGE not in page and "data-score" not in page
    assert "released later" in alice.get("/").text
    hidden = TestClient(app).get(f"/api/v1/submissions/{id}", headers=api).json()
    assert (hidden["score"], hidden["feedback"], hidden["feedback_released"]) == (None, None, False)
    # Staff see it before the release.
    assert STAND_IN_MESSAGE in staff.get(f"/submissions/{id}").text

    form = {**form, "csrf": csrf(staff, "/staff/assignments"), "released": "on"}
    assert staff.post(f"/staff/assignments/{A}", data=form, follow_redirects=False).status_code == 303
    page = alice.get(f"/submissions/{id}").text
    assert 'id="feedback"' in page and STAND_IN_MESSAGE in page
    shown = TestClient(app).get(f"/api/v1/submissions/{id}", headers=api).json()
    assert shown["score"] == 8.0 and shown["feedback_released"] is True and "8" in shown["feedback"]


def test_history_lists_only_the_learners_own_submissions(quiet):
    app, tokens = quiet
    c = TestClient(app)
    mine = [upload_api(c, tokens["alice"], example(who)).json()["id"] for who in ("alice", "bob")]
    theirs = upload_api(c, tokens["bob"], example("carol")).json()["id"]
    history = sign_in_learner(app, tokens["alice"]).get("/").text.split('id="history"')[1]
    assert sorted(int(i) for i in re.findall(r'href="/submissions/(\d+)"', history)) == sorted(mine)
    assert theirs not in mine


def test_token_page_makes_a_new_token_for_the_api(quiet):
    app, tokens = quiet
    c = sign_in_learner(app, tokens["alice"])
    assert 'id="token"' not in c.get("/token").text
    page = c.post("/token", data={"csrf": csrf(c, "/token")})
    new = re.search(r'<pre id="token">([\w-]+)</pre>', page.text).group(1)
    assert new != tokens["alice"]
    api = TestClient(app)
    assert api.get("/api/v1/assignments", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    assert api.get("/api/v1/assignments", headers={"Authorization": f"Bearer {tokens['alice']}"}).status_code == 401
    assert upload_api(api, new, example("alice")).status_code == 201


def test_submit_client_against_a_live_server_reaches_graded(tmp_path):
    from autograder.service.client import submit

    app = make_app(tmp_path / "course", grade=eight_of_ten)
    tokens = import_roster(app)
    open_assignment(app)
    notebook = tmp_path / "initialization.ipynb"
    notebook.write_bytes(example("alice"))
    base, stop = serve_in_thread(app, lifespan="on")
    try:
        said = []
        status = submit(notebook, server=base, token=tokens["alice"], timeout=60, poll=0.2, out=said.append)
    finally:
        stop()
    assert status["status"] == "graded" and status["score"] == 8.0 and status["max_score"] == 10.0
    assert STAND_IN_MESSAGE in status["feedback"]
    assert [s.via for s in app.state.store.submissions()] == ["api"]
    assert any("8" in line for line in said[-3:]), said


# ------------------------------------------------------------------ bad input


def test_a_notebook_of_another_assignment_is_refused_naming_both(quiet):
    app, tokens = quiet
    open_assignment(app, "gradient_checking")
    c = TestClient(app)
    refused = upload_api(c, tokens["alice"], example("alice"), assignment="gradient_checking")
    assert refused.status_code == 422
    assert "initialization" in refused.json()["error"] and "gradient_checking" in refused.json()["error"]
    browser = upload_form(sign_in_learner(app, tokens["alice"]), example("alice"), assignment="gradient_checking")
    assert browser.status_code == 422 and "initialization" in browser.text and "gradient_checking" in browser.text
    assert rows(app) == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is { not json", "is not valid JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00 an image", "is not a text file"),
        (b'{"hello": "world"}', "is JSON but not a Jupyter notebook"),
        (b"[1, 2, 3]", "is JSON but not a Jupyter notebook"),
    ],
)
def test_a_damaged_notebook_is_refused_with_the_reason_and_nothing_stored(quiet, data, reason):
    app, tokens = quiet
    refused = upload_api(TestClient(app), tokens["alice"], data)
    assert refused.status_code == 422 and reason in refused.json()["error"], refused.json()
    browser = upload_form(sign_in_learner(app, tokens["alice"]), data)
    assert browser.status_code == 422 and 'id="message"' in browser.text
    assert rows(app) == 0
    assert not any(p.is_file() for p in app.state.config.blobs.rglob("*"))


def test_an_unknown_assignment_is_refused(quiet):
    app, tokens = quiet
    refused = upload_api(TestClient(app), tokens["alice"], example("alice"), assignment="no_such_thing")
    assert refused.status_code == 422 and "no assignment called 'no_such_thing'" in refused.json()["error"]
    assert rows(app) == 0


def _raw(base: str, head: bytes, chunks=(), timeout: float = 10.0) -> tuple:
    """Send ``head`` then ``chunks`` to the live server until it answers; returns (status line, bytes of
    the chunks sent before the answer came)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)
        sent = 0
        sock.setblocking(False)
        answer = b""
        started = time.monotonic()
        chunks = iter(chunks)
        while time.monotonic() - started < timeout:
            try:
                answer += sock.recv(65536)
                if b"\r\n" in answer:
                    break
            except BlockingIOError:
                pass
            chunk = next(chunks, None)
            if chunk is None:
                time.sleep(0.01)
                continue
            try:
                sock.sendall(chunk)
                sent += len(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.01)
        return answer.split(b"\r\n", 1)[0].decode(), sent


def test_an_oversize_upload_is_refused_before_its_body_is_read(tmp_path):
    limit = 200_000
    app = make_app(tmp_path / "course", graders=False, max_upload_bytes=limit)
    tokens = import_roster(app)
    open_assignment(app)
    head = (
        "POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {tokens['alice']}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
    )
    base, stop = serve_in_thread(app)
    try:
        # A Content-Length over the limit: refused at once, before a byte of the body is sent.
        status, _ = _raw(base, (head + "Content-Length: 50000000\r\n\r\n").encode())
        assert status.split()[1] == "413", status

        # Chunked, no length: refused once the bytes so far pass the limit, long before the 50 MB end.
        def chunk(piece: bytes) -> bytes:
            return b"%x\r\n%s\r\n" % (len(piece), piece)

        start = b'--b\r\nContent-Disposition: form-data; name="notebook"; filename="a.ipynb"\r\n\r\n'
        pieces = [chunk(start)] + [chunk(b"x" * 65536)] * 800
        status, sent = _raw(base, (head + "Transfer-Encoding: chunked\r\n\r\n").encode(), pieces)
        assert status.split()[1] == "413", status
        assert sent < 5_000_000, sent
    finally:
        stop()
    # Through the TestClient too: a generator body (chunked) over the limit.
    c = TestClient(app)
    body = (b'--b\r\nContent-Disposition: form-data; name="notebook"; filename="a.ipynb"\r\n\r\n', b"x" * 400_000)
    response = c.post(
        "/api/v1/submissions",
        content=iter(body),
        headers={"Authorization": f"Bearer {tokens['alice']}", "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 413 and "larger than" in response.json()["error"]
    assert rows(app) == 0
    assert not any(p.is_file() for p in app.state.config.blobs.rglob("*"))


def test_the_same_bytes_twice_are_a_duplicate(quiet):
    app, tokens = quiet
    c = TestClient(app)
    first = upload_api(c, tokens["alice"], example("alice"))
    grade_queue(app)
    graded_at = app.state.store.submission(first.json()["id"]).graded_at
    again = upload_api(c, tokens["alice"], example("alice"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True and again.json()["id"] == first.json()["id"]
    assert rows(app) == 1 and grade_queue(app) == []
    assert app.state.store.submission(first.json()["id"]).graded_at == graded_at


def test_a_closed_assignment_refuses_uploads(quiet):
    app, tokens = quiet
    app.state.store.update_assignment(A, is_open=False)
    refused = upload_api(TestClient(app), tokens["alice"], example("alice"))
    assert refused.status_code == 403 and "not open" in refused.json()["error"]
    assert rows(app) == 0


def test_after_the_deadline_work_is_recorded_late_with_the_penalty(quiet):
    app, tokens = quiet
    app.state.store.update_assignment(A, deadline=datetime.now(UTC) - timedelta(hours=1), penalty_per_day=0.5)
    response = upload_api(TestClient(app), tokens["alice"], example("alice"))
    assert response.status_code == 201 and response.json()["late"] is True
    id = response.json()["id"]
    grade_queue(app)
    status = TestClient(app).get(f"/api/v1/submissions/{id}", headers={"Authorization": f"Bearer {tokens['alice']}"})
    assert status.json()["late"] is True
    assert status.json()["score"] == 3.0  # 8, less half the maximum (10) for one day late
    page = sign_in_learner(app, tokens["alice"])
    assert 'data-score="3"' in page.get(f"/submissions/{id}").text
    assert re.search(r"3 / 10 <span class=\"bad\">late</span>", page.get("/").text)
    assert app.state.store.submission(id).score == 8.0  # raw, the policy applies on reading


def test_late_work_refused_when_the_assignment_does_not_accept_it(quiet):
    app, tokens = quiet
    app.state.store.update_assignment(A, deadline=datetime.now(UTC) - timedelta(hours=1), accept_late=False)
    refused = upload_api(TestClient(app), tokens["alice"], example("alice"))
    assert refused.status_code == 403 and "deadline" in refused.json()["error"]
    assert rows(app) == 0
    # An extension lets that learner in.
    app.state.store.set_extension("bob", A, days=1)
    assert upload_api(TestClient(app), tokens["bob"], example("bob")).status_code == 201


def test_the_rate_limit_refuses_one_upload_too_many_with_retry_after(tmp_path):
    app = make_app(tmp_path / "course", graders=False, rate_count=2, rate_seconds=600)
    tokens = import_roster(app)
    open_assignment(app)
    c = TestClient(app)
    assert [upload_api(c, tokens["alice"], example(who)).status_code for who in ("alice", "bob")] == [201, 201]
    refused = upload_api(c, tokens["alice"], example("carol"))
    assert refused.status_code == 429 and refused.headers["retry-after"] == "600"
    browser = upload_form(sign_in_learner(app, tokens["alice"]), example("carol"))
    assert browser.status_code == 429 and browser.headers.get("retry-after") == "600"
    assert rows(app) == 2
    assert upload_api(c, tokens["bob"], example("carol")).status_code == 201  # per learner


def test_every_refused_upload_is_a_row_with_its_reason_seen_by_staff_and_the_learner(quiet):
    """Nothing submitted is lost: an upload is either a submission or a refusal kept with what the
    learner was told (without its bytes); refusals count against the rate limit; 429s are not rows."""
    app, tokens = quiet
    open_assignment(app, "gradient_checking")
    c = TestClient(app)
    assert upload_api(c, tokens["alice"], b"this is { not json", filename="../../bad name\x07.ipynb").status_code == 422
    assert upload_api(c, tokens["alice"], example("alice"), assignment="gradient_checking").status_code == 422
    assert upload_api(c, tokens["bob"], example("bob")).status_code == 201
    store = app.state.store
    refused = store.refusals()
    assert rows(app) == 1 and len(refused) == 2
    by_reason = {r.status: r for r in refused}
    assert {r.learner for r in refused} == {"alice"}
    assert "not valid JSON" in refused[1].reason
    assert re.fullmatch(r"bad_name_\w*\.ipynb", refused[1].filename)  # cleaned: no path, no control character
    assert "gradient_checking" in refused[0].reason and refused[0].assignment == "gradient_checking"
    assert set(by_reason) == {422}
    assert not any(p.is_file() for p in app.state.config.blobs.rglob("*") if refused[0].sha256 in p.name)
    staff = sign_in_staff(app)
    page = staff.get("/staff/submissions").text
    assert page.count("not valid JSON") == 1 and refused[1].filename in page
    learner_page = sign_in_learner(app, tokens["alice"]).get("/").text
    assert 'id="refused"' in learner_page and "not valid JSON" in learner_page
    assert 'id="refused"' not in sign_in_learner(app, tokens["bob"]).get("/").text


def test_refusals_count_against_the_rate_limit_and_429s_are_not_recorded(tmp_path):
    app = make_app(tmp_path / "course", graders=False, rate_count=2, rate_seconds=600)
    tokens = import_roster(app)
    open_assignment(app)
    c = TestClient(app)
    assert [upload_api(c, tokens["alice"], b"{ damaged").status_code for _ in range(2)] == [422, 422]
    assert upload_api(c, tokens["alice"], example("alice")).status_code == 429
    assert upload_api(c, tokens["alice"], example("alice")).status_code == 429
    assert len(app.state.store.refusals()) == 2 and rows(app) == 0
