"""The API the notebook's ``submit()`` and ``dlgrade submit`` use (client.py): a learner's token in
``Authorization: Bearer``, JSON answers, ``{"error": ...}`` with a status on refusal. No cookies."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from autograder.grading.reports import feedback_markdown
from autograder.service import uploads, views

router = APIRouter(prefix="/api/v1")


def _learner(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    row = request.app.state.store.learner_by_token(token.strip())
    return row.learner if row is not None else None


def _error(status: int, text: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status, headers=headers)


def _status(request: Request, row) -> dict:
    store = request.app.state.store
    assignment = store.assignment(row.assignment)
    visible = views.feedback_visible(row, assignment)
    judged = store.judged(row) if row.result is not None else None
    late = bool(judged is not None and judged.late is not None and judged.late.days_late)
    return {
        "id": row.id,
        "assignment": row.assignment,
        "status": row.status,
        "submitted_at": row.submitted_at.isoformat(timespec="seconds"),
        "score": judged.score if visible and judged is not None else None,
        "max_score": judged.max_score if visible and judged is not None else None,
        "late": late,
        "feedback_released": visible,
        "feedback": feedback_markdown(judged) if visible and judged is not None else None,
        "url": f"/submissions/{row.id}",
    }


@router.post("/submissions")
async def submit(request: Request):
    learner = await run_in_threadpool(_learner, request)
    if learner is None:
        return _error(401, "missing or unknown token: copy yours from the course page (My token)")
    form = await request.form(max_files=1, max_fields=4)
    upload = form.get("notebook")
    if upload is None or isinstance(upload, str):
        return _error(422, "send the notebook as a file field called 'notebook'")
    try:
        accepted = await uploads.accept_from(
            request, learner=learner, upload=upload, assignment=form.get("assignment"), via="api"
        )
    except uploads.Refused as refused:
        return _error(refused.status, refused.message, uploads.retry_after_header(refused))
    row = accepted.submission
    body = {
        "id": row.id,
        "assignment": row.assignment,
        "status": row.status,
        "late": accepted.late,
        "duplicate": accepted.duplicate,
        "submitted_at": row.submitted_at.isoformat(timespec="seconds"),
        "url": f"/submissions/{row.id}",
        "status_url": f"/api/v1/submissions/{row.id}",
    }
    return JSONResponse(body, status_code=200 if accepted.duplicate else 201)


@router.get("/submissions/{id}")
def submission(request: Request, id: int):
    learner = _learner(request)
    if learner is None:
        return _error(401, "missing or unknown token")
    row = request.app.state.store.submission(id)
    if row is None or row.learner != learner:
        return _error(404, "no such submission")
    return _status(request, row)


@router.get("/assignments")
def assignments(request: Request):
    learner = _learner(request)
    if learner is None:
        return _error(401, "missing or unknown token")
    store = request.app.state.store
    policy = store.course_policy()
    found = []
    for a in store.assignments():
        if a.is_open:
            mine = policy.for_assignment(a.name, learner)
            found.append(
                {
                    "name": a.name,
                    "deadline": mine.deadline.isoformat(timespec="seconds") if mine.deadline else None,
                    "extension": mine.extension,
                    "feedback": a.feedback,
                }
            )
    return {"assignments": found}
