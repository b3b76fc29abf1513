"""The ASGI application: FastAPI routes (learner_pages.py, api.py, staff_pages.py) over one Store.

What every request goes through, outermost first: a body limit (an upload over the limit is refused
with 413 as soon as its Content-Length, or its bytes so far, pass it: never read whole), signed-cookie
sessions, and handlers that turn a database that went away into 503 with nothing half-written.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from starlette.middleware.sessions import SessionMiddleware

from autograder.service import auth, db
from autograder.service.blobs import BlobStore
from autograder.service.config import ServiceConfig
from autograder.service.runner import GradeRunner
from autograder.service.store import Store

log = logging.getLogger("dlgrade.serve")
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
FORM_OVERHEAD = 64 * 1024  # a form's other fields and multipart headers, beyond the notebook itself


class BodyLimit:
    """Refuse a request body over ``limit`` bytes before reading it (Content-Length) or while reading it."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                return await _too_large(scope, send, self.limit)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _too_large(scope, send, self.limit)


class _TooLarge(Exception):
    pass


async def _too_large(scope, send, limit: int):
    text = f"the upload is larger than this course accepts ({(limit - FORM_OVERHEAD) // (1024 * 1024)} MB)"
    response: Response
    if scope.get("path", "").startswith("/api/"):
        response = JSONResponse({"error": text}, status_code=413)
    else:
        response = HTMLResponse(f"<!DOCTYPE html><title>Too large</title><p>{text}.</p>", status_code=413)
    await response(scope, _no_body, send)


async def _no_body() -> dict:
    return {"type": "http.disconnect"}


def create_app(config: ServiceConfig, *, graders: bool = True, grade=None) -> FastAPI:
    """The service for ``config``: its database upgraded, its assignments listed, its graders started
    for the app's lifetime (``graders``: with ``config.workers`` local workers or ``config.dask``).
    ``grade``: what a worker runs per submission (default pool.grade_submission; tests pass stand-ins)."""
    from autograder.batch import pool

    config.course.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    store = Store(db.sessions(engine))
    store.ensure_assignments()
    blobs = BlobStore(config.blobs)
    runner = None
    if graders and (config.workers or config.dask):
        runner = GradeRunner(
            store, blobs, workers=config.workers, dask=config.dask, grade=grade or pool.grade_submission
        )

    @asynccontextmanager
    async def lifespan(app):
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            engine.dispose()

    app = FastAPI(title=config.title, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.config = config
    app.state.store = store
    app.state.blobs = blobs
    app.state.runner = runner
    app.state.engine = engine
    app.add_middleware(
        SessionMiddleware,
        secret_key=auth.secret_key(config.secret_path),
        session_cookie="dlgrade_session",
        max_age=14 * 24 * 3600,
        same_site="lax",
        https_only=config.secure_cookies,
    )
    app.add_middleware(BodyLimit, limit=config.max_upload_bytes + FORM_OVERHEAD)

    @app.exception_handler(OperationalError)
    @app.exception_handler(SQLAlchemyError)
    async def database_away(request: Request, exc: Exception):
        log.warning("database error on %s: %s", request.url.path, type(exc).__name__)
        text = "the course database is unavailable for a moment; nothing was recorded, try again in a minute"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": text}, status_code=503, headers={"Retry-After": "30"})
        return render(request, "message.html", {"title": "Try again soon", "text": text}, status_code=503)

    from autograder.service import api, learner_pages, staff_pages

    app.include_router(learner_pages.router)
    app.include_router(api.router)
    app.include_router(staff_pages.router)

    @app.get("/health")
    def health():
        return {"ok": True, "queue": store.queue_counts(), "graders": runner.running if runner else None}

    return app


def render(request: Request, template: str, context: dict | None = None, status_code: int = 200) -> HTMLResponse:
    session = request.session
    values = {
        "request": request,
        "csrf": auth.csrf_token(session),
        "title": request.app.state.config.title,
        "course": request.app.state.config.title,
        "who": session.get("who"),
        **(context or {}),
    }
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; script-src 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
