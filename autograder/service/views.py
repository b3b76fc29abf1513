"""What a page or the API may show of a submission, and to whom."""

from __future__ import annotations

from fastapi import HTTPException, Request

from autograder.service.db import GRADED, PRACTICE, Submission


def feedback_visible(submission: Submission, assignment) -> bool:
    """Practice mode: as soon as it is graded; graded mode: once staff release the assignment's feedback."""
    if submission.status != GRADED and submission.result is None:
        return False
    if assignment is None:
        return False
    return assignment.feedback == PRACTICE or bool(assignment.released)


def signed_in_learner(request: Request) -> str | None:
    who = request.session.get("who") or ""
    return who.removeprefix("learner:") if who.startswith("learner:") else None


def signed_in_staff(request: Request) -> bool:
    return (request.session.get("who") or "").startswith("staff:")


async def checked_form(request: Request, **limits):
    """The request's form (``limits``: Starlette's max_files, max_fields), refused with 403 unless it
    carries the session's CSRF token (auth.check_csrf)."""
    from autograder.service import auth

    form = await request.form(**limits)
    if not auth.check_csrf(request.session, form.get("csrf")):
        raise HTTPException(status_code=403, detail="this form is out of date: reload the page and try again")
    return form


def own_submission(request: Request, id: int, learner: str | None) -> Submission:
    """The submission, if ``learner`` (or staff) may see it; 404 otherwise (never "exists, not yours")."""
    row = request.app.state.store.submission(id)
    if row is None or not (signed_in_staff(request) or (learner is not None and row.learner == learner)):
        raise HTTPException(status_code=404, detail="no such submission")
    return row
