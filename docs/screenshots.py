"""Make docs/service-learner.png, docs/service-feedback.png and docs/service-staff.png again.

    .venv/bin/python docs/screenshots.py [--stand-in] [--out docs]

The demo course, for real: examples/service/roster.csv imported, every assignment open (regularization's
deadline two days past with 10 % a day off, so its submissions are late; carol has an extension on
optimization), every notebook of examples/submissions/<learner>/<assignment>/ uploaded through the API
of a live server on loopback, graded by the real grader with 2 workers (``--stand-in``: the tests' fast
stand-in, tests/service_stand_ins_load.py), then Debian's headless Chromium (Playwright) at 1280 px wide
takes alice's home page, bob's initialization feedback and the staff matrix. Needs /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

EXAMPLES = ROOT / "examples" / "submissions"
ROSTER = ROOT / "examples" / "service" / "roster.csv"
STAFF = ("staff@example.org", "demo staff password")
MAX_BYTES = 300_000


def demo_course(folder: Path, stand_in: bool):
    import httpx
    from service_fixtures import serve_in_thread

    from autograder.batch.roster import parse_roster
    from autograder.service import auth
    from autograder.service.config import ServiceConfig
    from autograder.service.web import create_app

    grade = None
    if stand_in:
        from service_stand_ins_load import fast_grade as grade
    app = create_app(ServiceConfig(course=folder, workers=2, title="Deep Learning 2026", rate_count=100), grade=grade)
    store = app.state.store
    tokens = store.import_roster(parse_roster(ROSTER.read_text(), str(ROSTER)))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for index, a in enumerate(store.assignments()):
        deadline = now - timedelta(days=2) if a.name == "regularization" else now + timedelta(days=7 + 7 * index)
        store.update_assignment(a.name, is_open=True, deadline=deadline, penalty_per_day=0.1)
    store.set_extension("carol", "optimization", days=3)
    auth.add_staff(store.sessions, *STAFF)
    base, stop = serve_in_thread(app)
    for notebook in sorted(EXAMPLES.glob("*/*/*.ipynb")):
        learner, assignment = notebook.parts[-3], notebook.parts[-2]
        response = httpx.post(
            f"{base}/api/v1/submissions",
            headers={"Authorization": f"Bearer {tokens[learner]}"},
            files={"notebook": (notebook.name, notebook.read_bytes())},
            data={"assignment": assignment},
            timeout=60,
        )
        print(f"{learner}/{assignment}: {response.status_code}")
    deadline = time.monotonic() + 600
    while set(store.queue_counts()) - {"graded"}:
        if time.monotonic() > deadline:
            raise SystemExit(f"not graded within 10 minutes: {store.queue_counts()}")
        time.sleep(0.5)
    return app, base, stop, tokens


def shoot(page, path: Path, *, full_page: bool = True) -> None:
    page.screenshot(path=str(path), full_page=full_page)
    size = path.stat().st_size
    if size > MAX_BYTES:  # fewer colours: text pages lose nothing visible
        from PIL import Image

        Image.open(path).convert("RGB").quantize(colors=64).save(path, optimize=True)
    print(f"{path}: {path.stat().st_size // 1024} kB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stand-in", action="store_true", help="grade with the tests' fast stand-in")
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    from playwright.sync_api import sync_playwright
    from service_fixtures import find_chromium

    with tempfile.TemporaryDirectory(prefix="dlgrade-screenshots-") as tmp:
        app, base, stop, tokens = demo_course(Path(tmp) / "course", args.stand_in)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=find_chromium(), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
                )
                learner = browser.new_page(viewport={"width": 1280, "height": 800})
                learner.goto(f"{base}/join/{tokens['alice']}")
                learner.goto(f"{base}/")
                shoot(learner, out / "service-learner.png")
                [bob] = app.state.store.submissions(learner="bob", assignment="initialization")
                learner.goto(f"{base}/join/{tokens['bob']}")
                learner.goto(f"{base}/submissions/{bob.id}")
                shoot(learner, out / "service-feedback.png")
                staff = browser.new_page(viewport={"width": 1280, "height": 800})
                staff.goto(f"{base}/staff/signin")
                staff.fill('input[name="email"]', STAFF[0])
                staff.fill('input[name="password"]', STAFF[1])
                staff.click("form.card button")
                staff.wait_for_url(f"{base}/staff")
                shoot(staff, out / "service-staff.png")
                browser.close()
        finally:
            stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
