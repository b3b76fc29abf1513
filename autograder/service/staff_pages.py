"""Staff pages: sign in, the roster (import, invitation links), assignments (open/close, deadline, late
policy, feedback mode and release), extensions, the roster x assignment matrix, every submission and its
feedback, regrades, exports (the batch's gradebooks and Canvas CSV, the course page) and insights (pass
rates per hidden check, frequent named mistakes, similar-submission pairs)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from autograder.batch import gradebook
from autograder.batch.course_page import course_page_html
from autograder.batch.roster import RosterError, parse_roster
from autograder.grading import catalogue
from autograder.service import auth, views
from autograder.service.db import GRADED_MODE, PRACTICE
from autograder.service.web import redirect, render

router = APIRouter(prefix="/staff")
MAX_ROSTER_BYTES = 16 * 1024 * 1024


def _staff(request: Request) -> None:
    if not views.signed_in_staff(request):
        raise HTTPException(status_code=303, headers={"Location": "/staff/signin"})


async def _form(request: Request, **limits):
    """A staff form: signed in as staff, and the CSRF token checked (views.checked_form)."""
    _staff(request)
    return await views.checked_form(request, **limits)


@router.get("/signin")
def signin_page(request: Request):
    return render(request, "staff_signin.html")


@router.post("/signin")
async def signin(request: Request):
    form = await views.checked_form(request, max_files=0, max_fields=4)
    staff = auth.check_staff(
        request.app.state.store.sessions, str(form.get("email") or ""), str(form.get("password") or "")[:1024]
    )
    if staff is None:
        return render(request, "staff_signin.html", {"error": "wrong email or password"}, 403)
    request.session.clear()
    request.session["who"] = f"staff:{staff}"
    return redirect("/staff")


@router.get("")
def dashboard(request: Request):
    _staff(request)
    store = request.app.state.store
    ledger = store.ledger()
    matrix: dict = {}
    for row in ledger.rows:
        matrix.setdefault(row.learner, {})[row.assignment] = row
    return render(
        request,
        "staff_home.html",
        {
            "ledger": ledger,
            "matrix": matrix,
            "counts": ledger.counts(),
            "queue": store.queue_counts(),
            "outdated": len(store.outdated()),
        },
    )


# ------------------------------------------------------------------ roster


@router.get("/roster")
def roster_page(request: Request):
    _staff(request)
    return render(request, "staff_roster.html", {"learners": request.app.state.store.learners(), "issued": None})


@router.post("/roster")
async def roster_import(request: Request):
    form = await _form(request, max_files=1, max_fields=4)
    upload = form.get("roster")
    if upload is None or isinstance(upload, str):
        return render(request, "message.html", {"title": "No file", "text": "choose a roster CSV"}, 422)
    data = await upload.read(MAX_ROSTER_BYTES + 1)
    if len(data) > MAX_ROSTER_BYTES:
        return render(request, "message.html", {"title": "Too large", "text": "a roster is at most 16 MB"}, 413)
    try:
        roster = parse_roster(data.decode("utf-8-sig"), "the uploaded roster")
    except (RosterError, UnicodeDecodeError) as exc:
        return render(request, "message.html", {"title": "Roster refused", "text": str(exc)}, 422)
    issued = await run_in_threadpool(request.app.state.store.import_roster, roster)
    base = str(request.base_url).rstrip("/")
    links = {learner: f"{base}/join/{token}" for learner, token in issued.items()}
    return render(
        request,
        "staff_roster.html",
        {
            "learners": request.app.state.store.learners(),
            "issued": links,
            "tokens": issued,
            "count": len(roster.people),
        },
    )


@router.post("/learners/{learner}/token")
async def reissue(request: Request, learner: str):
    await _form(request, max_files=0, max_fields=4)
    try:
        token = request.app.state.store.reissue_token(learner)
    except KeyError:
        raise HTTPException(status_code=404, detail="no such learner")
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        "staff_roster.html",
        {
            "learners": request.app.state.store.learners(),
            "issued": {learner: f"{base}/join/{token}"},
            "tokens": {learner: token},
        },
    )


# ------------------------------------------------------------------ assignments and extensions


@router.get("/assignments")
def assignments_page(request: Request):
    _staff(request)
    store = request.app.state.store
    return render(
        request,
        "staff_assignments.html",
        {"assignments": store.assignments(), "extensions": store.extensions(), "learners": store.learners()},
    )


def _time(text: str, what: str):
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(status_code=422, detail=f"{what}: give a date and time like 2026-12-24T23:59+09:00")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _number(text, what: str, *, allow_blank: bool = False):
    text = str(text or "").strip()
    if allow_blank and not text:
        return None
    try:
        value = float(text or 0)
    except ValueError:
        raise HTTPException(status_code=422, detail=f"{what}: give a number")
    if not 0 <= value <= 10000:
        raise HTTPException(status_code=422, detail=f"{what}: out of range")
    return value


@router.post("/assignments/{name}")
async def assignment_update(request: Request, name: str):
    form = await _form(request, max_files=0, max_fields=16)
    if name not in catalogue.names():
        raise HTTPException(status_code=404, detail="no such assignment")
    feedback = form.get("feedback")
    if feedback not in (PRACTICE, GRADED_MODE):
        raise HTTPException(status_code=422, detail="feedback: practice or graded")
    late = form.get("late")
    if late not in ("penalty", "zero"):
        raise HTTPException(status_code=422, detail="late: penalty or zero")
    zero_after = _number(form.get("zero_after_days"), "zero after days", allow_blank=True)
    request.app.state.store.update_assignment(
        name,
        is_open=form.get("is_open") == "on",
        deadline=_time(str(form.get("deadline") or ""), "deadline"),
        grace_minutes=_number(form.get("grace_minutes"), "grace minutes"),
        penalty_per_day=min(1.0, _number(form.get("penalty_per_day"), "penalty per day")),
        zero_after_days=None if zero_after is None else int(zero_after),
        late=late,
        accept_late=form.get("accept_late") == "on",
        feedback=feedback,
        released=form.get("released") == "on",
    )
    return redirect("/staff/assignments")


@router.post("/extensions")
async def extension(request: Request):
    form = await _form(request, max_files=0, max_fields=8)
    learner, assignment = str(form.get("learner") or ""), str(form.get("assignment") or "")
    try:
        if form.get("remove") == "on":
            request.app.state.store.remove_extension(learner, assignment)
        else:
            request.app.state.store.set_extension(
                learner,
                assignment,
                days=_number(form.get("days"), "days"),
                deadline=_time(str(form.get("deadline") or ""), "new deadline"),
            )
    except KeyError:
        raise HTTPException(status_code=404, detail="no such learner or assignment")
    return redirect("/staff/assignments")


# ------------------------------------------------------------------ submissions and regrades


@router.get("/submissions")
def submissions_page(request: Request, learner: str | None = None, assignment: str | None = None):
    _staff(request)
    store = request.app.state.store
    rows = store.submissions(learner=learner or None, assignment=assignment or None)
    refused = [r for r in store.refusals(learner=learner or None) if not assignment or r.assignment == assignment]
    return render(
        request,
        "staff_submissions.html",
        {
            "rows": rows[:1000],
            "more": max(0, len(rows) - 1000),
            "learner": learner,
            "assignment": assignment,
            "refused": refused,
        },
    )


@router.post("/regrade")
async def regrade(request: Request):
    form = await _form(request, max_files=0, max_fields=8)
    store = request.app.state.store
    scope = form.get("scope")
    if scope == "submission":
        try:
            ids = [int(str(form.get("id")))]
        except ValueError:
            raise HTTPException(status_code=422, detail="id: a submission number")
        count = store.regrade(ids=ids, reason="staff asked for this submission")
    elif scope == "assignment":
        name = str(form.get("assignment") or "")
        if name not in catalogue.names():
            raise HTTPException(status_code=404, detail="no such assignment")
        count = store.regrade(assignment=name, reason=f"staff asked for every {name} submission")
    elif scope == "outdated":
        outdated = store.outdated()
        count = store.regrade(ids=list(outdated), reason="its grade depends on files that changed") if outdated else 0
    elif scope == "all":
        count = store.regrade(reason="staff asked for every submission")
    else:
        raise HTTPException(status_code=422, detail="scope: submission, assignment, outdated or all")
    return render(
        request,
        "message.html",
        {"title": "Regrade queued", "text": f"{count} submission(s) queued again", "back": "/staff"},
    )


# ------------------------------------------------------------------ exports


def _csv(text: str, name: str) -> Response:
    return Response(
        text, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _export(request: Request, write, name: str) -> Response:
    """``write(grades, ledger)`` (a gradebook.py writer) over the course's grades, as a CSV download."""
    _staff(request)
    store = request.app.state.store
    grades = store.grades()
    return _csv(write(grades, store.ledger(grades)), name)


@router.get("/export/gradebook.csv")
@router.get("/course/gradebook.csv")  # the course page's own (relative) link
def export_gradebook(request: Request):
    return _export(request, gradebook.gradebook_csv, "gradebook.csv")


@router.get("/export/canvas-gradebook.csv")
@router.get("/course/canvas-gradebook.csv")  # the course page's own (relative) link
def export_canvas(request: Request):
    return _export(request, gradebook.canvas_csv, "canvas-gradebook.csv")


@router.get("/export/course-summary.csv")
@router.get("/course/course-summary.csv")  # the course page's own (relative) link
def export_summary(request: Request):
    return _export(request, gradebook.course_summary_csv, "course-summary.csv")


@router.get("/course/")
def course_page(request: Request):
    _staff(request)
    store = request.app.state.store
    grades = store.grades()
    response = HTMLResponse(course_page_html(grades, store.ledger(grades)))
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return response


@router.get("/course/learners/{learner}/{assignment}/feedback.html")
def course_page_link(request: Request, learner: str, assignment: str):
    """The course page's links (written for a batch's folder) lead to the latest submission's page."""
    _staff(request)
    rows = request.app.state.store.submissions(learner=learner, assignment=assignment)
    if not rows:
        raise HTTPException(status_code=404, detail="no submission")
    return redirect(f"/submissions/{rows[0].id}")


# ------------------------------------------------------------------ insights


@router.get("/insights/{assignment}")
def insights_page(request: Request, assignment: str):
    _staff(request)
    if assignment not in catalogue.names():
        raise HTTPException(status_code=404, detail="no such assignment")
    from autograder.service import insights, similarity

    store = request.app.state.store
    grades = [g for g in store.grades() if g.assignment == assignment]
    latest = [row for row in store.latest(graded_only=True) if row.assignment == assignment]
    notebooks = []
    for row in latest[: similarity.MAX_LEARNERS]:
        try:
            notebooks.append(
                (row.learner, request.app.state.blobs.get(row.sha256, request.app.state.config.max_upload_bytes))
            )
        except Exception:  # a blob that cannot be read is left out of the comparison, not fatal
            continue
    return render(
        request,
        "staff_insights.html",
        {
            "assignment": assignment,
            "rates": insights.check_pass_rates(grades),
            "mistakes": insights.frequent_mistakes(grades),
            "pairs": similarity.similar_pairs(assignment, notebooks),
            "compared": len(notebooks),
        },
    )
