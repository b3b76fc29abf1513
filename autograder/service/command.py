"""``dlgrade serve``: the command line over web.create_app (uvicorn) and runner.GradeRunner.

    dlgrade serve --course DIR [--database URL] [--host H] [--port P] [--workers N | --dask ADDRESS]
                  [--no-grader | --grader-only] [--roster CSV] [--open-all] [--demo]
    dlgrade serve --course DIR --add-staff EMAIL        (password from DLGRADE_STAFF_PASSWORD or a prompt)

``--course DIR`` is the service's own folder: its SQLite database (unless --database), the uploaded
blobs and the session key. ``--demo`` fills a new course with the bundled example learners and their
notebooks (examples/service/roster.csv, examples/submissions/) and a staff account, and prints the links.
"""

from __future__ import annotations

import getpass
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from autograder.service.config import MB, ServiceConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("serve", help="the course service: roster, uploads, feedback, deadlines, exports")
    p.add_argument("--course", required=True, type=Path, metavar="DIR", help="the service's folder (created)")
    p.add_argument("--database", metavar="URL", help="postgresql://user@host/db (default: SQLite in --course)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=None, help="local warm grading processes (default: cores - 1)")
    p.add_argument("--dask", metavar="ADDRESS", help="grade on this Dask scheduler instead of local workers")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--no-grader", action="store_true", help="serve pages only (graders run elsewhere)")
    mode.add_argument("--grader-only", action="store_true", help="grade the queue only (no web pages)")
    p.add_argument("--roster", type=Path, metavar="CSV", help="import this roster first; prints new links")
    p.add_argument("--open-all", action="store_true", help="open every assignment for submissions")
    p.add_argument("--demo", action="store_true", help="the bundled example course (learners, notebooks, staff)")
    p.add_argument("--add-staff", metavar="EMAIL", help="add (or reset) a staff account, then exit")
    p.add_argument("--max-upload-mb", type=float, default=16.0)
    p.add_argument("--rate", default="10/300", metavar="N/SECONDS", help="uploads per learner per window")
    p.add_argument("--secure-cookies", action="store_true", help="behind HTTPS: mark the session cookie Secure")
    p.set_defaults(func=cmd_serve)


def config_of(args) -> ServiceConfig:
    from autograder.batch.run import default_workers

    count, _, seconds = args.rate.partition("/")
    if not (count.isdigit() and seconds.isdigit() and int(count) > 0 and int(seconds) > 0):
        raise SystemExit("dlgrade serve: --rate is N/SECONDS, e.g. 10/300")
    workers = args.workers if args.workers is not None else default_workers()
    return ServiceConfig(
        course=args.course.resolve(),
        database=args.database,
        workers=0 if args.no_grader else max(0, workers),
        dask=args.dask,
        max_upload_bytes=int(args.max_upload_mb * MB),
        rate_count=int(count),
        rate_seconds=int(seconds),
        secure_cookies=args.secure_cookies,
    )


def cmd_serve(args) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin lines at every start
    config = config_of(args)
    if args.add_staff:
        return _add_staff(config, args.add_staff)
    if args.grader_only:
        return _grader_only(config)
    import uvicorn

    from autograder.service.web import create_app

    app = create_app(config)
    store = app.state.store
    if args.open_all or args.demo:
        for a in store.assignments():
            store.update_assignment(a.name, is_open=True)
    base = f"http://{args.host}:{args.port}"
    if args.roster:
        _import(store, args.roster, base)
    if args.demo:
        demo(app, base)
    print(f"dlgrade serve: {base}/ (staff: {base}/staff)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _add_staff(config: ServiceConfig, email: str) -> int:
    from autograder.service import auth, db

    password = os.environ.get("DLGRADE_STAFF_PASSWORD") or getpass.getpass(f"password for {email}: ")
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    try:
        auth.add_staff(db.sessions(engine), email, password)
    except auth.AuthError as exc:
        print(f"dlgrade serve: {exc}", file=sys.stderr)
        return 2
    print(f"dlgrade serve: staff account {email} ready")
    return 0


def _grader_only(config: ServiceConfig) -> int:
    from autograder.service import db
    from autograder.service.blobs import BlobStore
    from autograder.service.runner import GradeRunner
    from autograder.service.store import Store

    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    runner = GradeRunner(
        Store(db.sessions(engine)), BlobStore(config.blobs), workers=max(1, config.workers), dask=config.dask
    )
    stopped = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stopped.set())
    runner.start()
    print(
        f"dlgrade serve --grader-only: {runner.workers} worker(s) grading the queue of {config.database_url.split('@')[-1]}",
        flush=True,
    )
    stopped.wait()
    runner.stop()
    return 0


def _import(store, path: Path, base: str) -> None:
    from autograder.batch.roster import load_roster

    issued = store.import_roster(load_roster(path))
    for learner, token in issued.items():
        print(f"  {learner}: {base}/join/{token}")


def demo(app, base: str) -> None:
    """The example course: its roster, a staff account, every example notebook submitted."""
    from autograder.batch.roster import load_roster
    from autograder.service import auth
    from autograder.service.uploads import safe_filename

    config, store, blobs = app.state.config, app.state.store, app.state.blobs
    issued = store.import_roster(load_roster(EXAMPLES / "service" / "roster.csv"))
    if issued:
        lines = [f"{learner},{base}/join/{token}" for learner, token in issued.items()]
        invitations = config.course / "invitations.csv"
        invitations.write_text("learner,link\n" + "\n".join(lines) + "\n")
        os.chmod(invitations, 0o600)
        password = secrets.token_urlsafe(12)
        auth.add_staff(store.sessions, "staff@example.org", password)
        staff_file = config.course / "staff-password.txt"
        staff_file.write_text(f"staff@example.org {password}\n")
        os.chmod(staff_file, 0o600)
        submitted = 0
        for notebook in sorted((EXAMPLES / "submissions").glob("*/*/*.ipynb")):
            learner, assignment = notebook.parts[-3], notebook.parts[-2]
            if store.learner(learner) is None or store.assignment(assignment) is None:
                continue
            data = notebook.read_bytes()
            store.add_submission(
                learner=learner,
                assignment=assignment,
                filename=safe_filename(notebook.name, assignment),
                sha256=blobs.put(data),
                size=len(data),
                via="demo",
            )
            submitted += 1
        store.update_assignment("optimization", feedback="graded", released=False)
        print(f"dlgrade serve --demo: {len(issued)} learners, {submitted} example notebooks queued")
    print(f"  invitation links: {config.course / 'invitations.csv'}")
    print(f"  staff sign-in: {base}/staff/signin with {config.course / 'staff-password.txt'}")
