"""Taking an upload in: every refusal has a status and a sentence for the learner, and an accepted one
is stored (content-addressed) and queued in one transaction. Shared by the browser form and the API.

Checked before anything is stored, in this order: the learner's rate limit (the database counts their
recent uploads, so it holds across restarts and processes), the size, that the bytes are a notebook
(the engine's own parser), which assignment it is (the engine's own rule: a notebook declaring or
looking like another assignment is refused, naming which), that the assignment is open, and its
deadline (the learner's, with any extension): late work is recorded and marked late unless the
assignment refuses late work. The time is the server's. A refused upload (but for the rate limit) is
kept as a row with its reason, without its bytes, and counts against the rate limit.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from autograder.grading import catalogue
from autograder.grading.submission_file import NotebookError
from autograder.service.blobs import BlobStore
from autograder.service.config import ServiceConfig
from autograder.service.db import Submission, utcnow
from autograder.service.store import Store

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Refused(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Accepted:
    submission: Submission
    duplicate: bool  # the same bytes as the learner's latest submission: nothing new recorded
    late: bool


def safe_filename(name: str | None, assignment: str) -> str:
    """A file name to show and to grade under: the upload's base name reduced to [A-Za-z0-9._-]."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _SAFE.sub("_", base).strip("._")[:100]
    return base if base.endswith(".ipynb") and len(base) > len(".ipynb") else f"{assignment}.ipynb"


def accept(**kwargs) -> Accepted:
    """Take an upload in (see the module's docstring); raises Refused. A refusal other than the rate
    limit's is kept as a row with its reason (store.add_refusal): every upload ends in exactly one row."""
    try:
        return _accept(**kwargs)
    except Refused as refused:
        if refused.status != 429:
            data, assignment = kwargs["data"], kwargs.get("assignment") or ""
            try:
                kwargs["store"].add_refusal(
                    learner=kwargs["learner"],
                    assignment=assignment.strip() if isinstance(assignment, str) else "",
                    filename=safe_filename(kwargs.get("filename"), "submission"),
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    via=kwargs["via"],
                    status=refused.status,
                    reason=refused.message,
                )
            except SQLAlchemyError:  # the learner is told anyway; the database error is not theirs
                pass
        raise


def _accept(
    *,
    store: Store,
    blobs: BlobStore,
    config: ServiceConfig,
    learner: str,
    data: bytes,
    filename: str | None,
    assignment: str | None,
    via: str,
) -> Accepted:
    from autograder.grading.grade import resolve_assignment
    from autograder.grading.notebook import parse_notebook

    window = timedelta(seconds=config.rate_seconds)
    if store.recent_count(learner, utcnow() - window) >= config.rate_count:
        raise Refused(
            429,
            f"too many uploads: at most {config.rate_count} every {config.rate_seconds // 60 or 1} minute(s); "
            "try again in a few minutes",
            retry_after=config.rate_seconds,
        )
    if len(data) > config.max_upload_bytes:
        raise Refused(413, f"the notebook is larger than this course accepts ({config.max_upload_bytes // 2**20} MB)")
    assignment = (assignment or "").strip() or None
    if assignment is not None and assignment not in catalogue.names():
        raise Refused(422, f"there is no assignment called {assignment[:64]!r} in this course")
    shown = safe_filename(filename, assignment or "submission")
    try:
        nb, _ = parse_notebook(data, shown)
        name = resolve_assignment(nb, assignment)
    except NotebookError as exc:
        text = str(exc)
        if "cannot tell which assignment" in text:
            text = "cannot tell which assignment this notebook is: choose the assignment when you upload it"
        raise Refused(422, text)
    row = store.assignment(name)
    if row is None or not row.is_open:
        raise Refused(403, f"{name} is not open for submissions")
    policy = store.course_policy().for_assignment(name, learner)
    now = utcnow()
    late = policy.deadline is not None and now > policy.deadline + policy.grace
    if late and not row.accept_late:
        raise Refused(403, f"the deadline for {name} has passed and this assignment does not accept late work")
    sha256 = blobs.put(data)
    submission, duplicate = store.add_submission(
        learner=learner,
        assignment=name,
        filename=safe_filename(filename, name),
        sha256=sha256,
        size=len(data),
        via=via,
    )
    return Accepted(submission, duplicate, late)


async def accept_from(request, *, learner: str, upload, assignment, via: str) -> Accepted:
    """:func:`accept` for a request's uploaded file (``upload``) and ``assignment`` form field. Parsing,
    the blob's write and the database are blocking: off the event loop (the threadpool), so one upload
    never holds up the others (or any page)."""
    from starlette.concurrency import run_in_threadpool

    data = await upload.read()
    return await run_in_threadpool(
        accept,
        store=request.app.state.store,
        blobs=request.app.state.blobs,
        config=request.app.state.config,
        learner=learner,
        data=data,
        filename=upload.filename,
        assignment=assignment if isinstance(assignment, str) else None,
        via=via,
    )


def retry_after_header(refused: Refused) -> dict:
    return {"Retry-After": str(max(1, math.ceil(refused.retry_after)))} if refused.retry_after else {}
