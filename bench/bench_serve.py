"""dlgrade serve: how long a learner waits for feedback, and how long staff wait for the matrix.

    python bench/bench_serve.py [--uploads 10] [--tf-uploads 5] [--learners 500] [--skip-latency] [--skip-matrix]

(a) Upload to feedback visible, one grader worker kept warm: after a warm-up submission, each upload of a
real example notebook (examples/submissions/alice/<assignment>, a distinct trailing newline each time so
no upload is a duplicate) goes to POST /api/v1/submissions, then GET /api/v1/submissions/{id} is polled
every 20 ms until it reports ``graded`` with its feedback: median and p90 of that wall time, and the median
CPU seconds of the whole process tree per upload (common.tree_cpu_seconds: the app, the worker and the
sandbox). The baseline, in the same run on the same bytes: the engine grading the notebook directly
(grade_notebook in this process, warm), so the ratio is the service's overhead (queue poll, claim, record,
the API). numpy (initialization) and tensorflow_intro, with fewer uploads for the latter.

(b) The staff matrix for LEARNERS x the 7 assignments: the database is filled through the store (a
generated roster, one graded submission per learner and assignment recorded by add_submission, claim and
record with a small engine-shaped result; no grader runs), then GET /staff is timed (median of 5), and the
exports. TestClient, no network; SQLite in WAL mode (the default database).

Targets (the issue): <= 2 s median upload-to-feedback for a numpy assignment with a warm worker, <= 5 s
for tensorflow_intro, <= 1 s for the 500 x 7 matrix. Figures go to bench/out/serve.json.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import ROOT, load_average, median, tree_cpu_seconds

EXAMPLES = ROOT / "examples" / "submissions" / "alice"
PASSWORD = "a long enough staff password"


def p90(values) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def variants(assignment: str, count: int) -> list:
    data = (EXAMPLES / assignment / f"{assignment}.ipynb").read_bytes()
    return [data + b"\n" * (i + 1) for i in range(count)]  # still the same JSON; distinct bytes


# ------------------------------------------------------------------ (a) upload to feedback


def upload_latency(plan: list, folder: Path) -> dict:
    """``plan``: [(assignment, count)]; each assignment gets one warm-up upload, then ``count`` timed."""
    from fastapi.testclient import TestClient

    from autograder.batch.roster import parse_roster
    from autograder.service.config import ServiceConfig
    from autograder.service.web import create_app

    app = create_app(ServiceConfig(course=folder / "course", workers=1, rate_count=10_000))
    store = app.state.store
    token = store.import_roster(parse_roster("learner,name\nalice,Alice Kim\n", "bench roster"))["alice"]
    for assignment, _ in plan:
        store.update_assignment(assignment, is_open=True)
    headers = {"Authorization": f"Bearer {token}"}
    figures = {}
    with TestClient(app) as client:

        def one(assignment: str, data: bytes) -> tuple:
            started, cpu = time.perf_counter(), tree_cpu_seconds()
            response = client.post(
                "/api/v1/submissions",
                headers=headers,
                files={"notebook": (f"{assignment}.ipynb", data)},
                data={"assignment": assignment},
            )
            assert response.status_code == 201, response.text
            url = response.json()["status_url"]
            while True:
                status = client.get(url, headers=headers).json()
                if status["status"] == "graded" and status["feedback"]:
                    break
                if time.perf_counter() - started > 300:
                    raise RuntimeError(f"{assignment}: not graded within 300 s")
                time.sleep(0.02)
            return time.perf_counter() - started, tree_cpu_seconds() - cpu, status["score"], status["max_score"]

        for assignment, count in plan:
            notebooks = variants(assignment, count + 1)
            first, _, _, _ = one(assignment, notebooks[0])  # the worker's start and the zygote: paid once
            runs = [one(assignment, data) for data in notebooks[1:]]
            figures[assignment] = {
                "first_upload_s": first,
                "service_s": [r[0] for r in runs],
                "service_cpu_s": [r[1] for r in runs],
                "score": f"{runs[-1][2]:g} / {runs[-1][3]:g}",
            }
    return figures


def engine_baseline(plan: list, folder: Path) -> dict:
    """The same notebooks graded by grade_notebook in this process, warm (one warm-up each)."""
    from autograder.grading.grade import grade_notebook

    found = {}
    for assignment, count in plan:
        paths = []
        for i, data in enumerate(variants(assignment, count + 1)):
            path = folder / "engine" / assignment / f"{i:02d}" / f"{assignment}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            paths.append(path)
        grade_notebook(paths[0], assignment)
        times, cpu = [], []
        for path in paths[1:]:
            started, before = time.perf_counter(), tree_cpu_seconds()
            grade_notebook(path, assignment)
            times.append(time.perf_counter() - started)
            cpu.append(tree_cpu_seconds() - before)
        found[assignment] = {"engine_s": times, "engine_cpu_s": cpu}
    return found


# ------------------------------------------------------------------ (b) the staff matrix


def fake_result(assignment: str, learner: str, seed: int) -> dict:
    """An engine-shaped result (every graded function, one check each), some functions failed."""
    from autograder.grading import catalogue
    from autograder.grading.results import FunctionScore, Result, TestResult

    spec = catalogue.load(assignment)
    functions, tests = {}, []
    for index, function in enumerate(spec.graded_functions):
        points = spec.points.get(function, 0.0)
        passed = (seed + index) % 5 != 0
        functions[function] = FunctionScore(points if passed else 0.0, points, int(passed), 1)
        tests.append(
            TestResult(
                function=function,
                check=f"{function} returns the expected values",
                max_score=points,
                passed=passed,
                score=points if passed else 0.0,
                message="" if passed else "values differ from the expected ones: max abs difference 0.5",
                hint="" if passed else "check the scaling factor",
                kind="check",
            )
        )
    return Result(
        assignment=assignment,
        submission=f"{assignment}.ipynb",
        title=spec.title if hasattr(spec, "title") else assignment,
        score=sum(f.score for f in functions.values()),
        max_score=sum(f.max_score for f in functions.values()),
        tests=tests,
        functions=functions,
        execution_time=0.4,
    ).to_dict()


def staff_matrix(learners: int, folder: Path, rounds: int = 5) -> dict:
    from fastapi.testclient import TestClient

    from autograder.batch.roster import parse_roster
    from autograder.batch.state import assignment_inputs
    from autograder.grading import catalogue
    from autograder.service import auth
    from autograder.service.config import ServiceConfig
    from autograder.service.web import create_app

    app = create_app(ServiceConfig(course=folder / "matrix"), graders=False)
    store = app.state.store
    names = catalogue.names()
    started = time.perf_counter()
    roster = "learner,name,email,sis_user_id,canvas_user_id,sis_login_id,section\n" + "".join(
        f"s{i:04d},Learner {i},s{i:04d}@example.org,S{i},{9000 + i},s{i:04d},{'AB'[i % 2]}\n" for i in range(learners)
    )
    store.import_roster(parse_roster(roster, "bench roster"))
    past = datetime.now(UTC) + timedelta(days=-1)
    for index, name in enumerate(names):  # some deadlines passed (late rows), some not
        store.update_assignment(name, is_open=True, deadline=past if index % 2 else None, penalty_per_day=0.1)
    inputs = {name: assignment_inputs(name) for name in names}
    count = 0
    for i in range(learners):
        for j, name in enumerate(names):
            if (i + j) % 23 == 0:  # a few not submitted
                continue
            store.add_submission(
                learner=f"s{i:04d}",
                assignment=name,
                filename=f"{name}.ipynb",
                sha256=f"{i:032x}{j:032x}",
                size=20_000,
                via="api",
            )
            count += 1
    results = {}
    while True:
        claimed = store.claim(500, "bench")
        if not claimed:
            break
        for c in claimed:
            key = (c.assignment, int(c.learner[1:]) % 7)
            if key not in results:
                results[key] = fake_result(c.assignment, c.learner, key[1])
            assert store.record(c.id, results[key], inputs[c.assignment])
    filled = time.perf_counter() - started
    auth.add_staff(store.sessions, "staff@example.org", PASSWORD)
    timings = {}
    with TestClient(app) as client:
        page = client.get("/staff/signin").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        client.post("/staff/signin", data={"csrf": csrf, "email": "staff@example.org", "password": PASSWORD})
        for label, url in (
            ("GET /staff (matrix)", "/staff"),
            ("gradebook.csv", "/staff/export/gradebook.csv"),
            ("canvas-gradebook.csv", "/staff/export/canvas-gradebook.csv"),
            ("course-summary.csv", "/staff/export/course-summary.csv"),
            ("course page", "/staff/course/"),
        ):
            times, size = [], 0
            for _ in range(rounds):
                began = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - began)
                assert response.status_code == 200, (url, response.status_code)
                size = len(response.content)
            timings[label] = {"median_s": median(times), "fastest_s": min(times), "bytes": size}
        cells = client.get("/staff").text.count('class="state-')
    return {
        "learners": learners,
        "assignments": len(names),
        "submissions": count,
        "fill_s": filled,
        "matrix_cells": cells,
        "pages": timings,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--numpy", default="initialization", help="the numpy assignment of (a)")
    parser.add_argument("--uploads", type=int, default=10, help="timed uploads of the numpy assignment")
    parser.add_argument("--tf-uploads", type=int, default=5, help="timed uploads of tensorflow_intro (0: none)")
    parser.add_argument("--learners", type=int, default=500)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-matrix", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args(argv)
    plan = [(args.numpy, args.uploads)] + ([("tensorflow_intro", args.tf_uploads)] if args.tf_uploads else [])
    print(f"dlgrade serve; {load_average()}")
    figures: dict = {"load": load_average()}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        tmp = Path(tmp)
        if not args.skip_latency:
            service = upload_latency(plan, tmp)
            engine = engine_baseline(plan, tmp)
            figures["upload_to_feedback"] = {}
            print(
                "\n| assignment | uploads | service median | service p90 | engine median | ratio | "
                "service CPU | engine CPU | first upload | score |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
            for assignment, count in plan:
                s, e = service[assignment], engine[assignment]
                row = {
                    "uploads": count,
                    "service_median_s": median(s["service_s"]),
                    "service_p90_s": p90(s["service_s"]),
                    "engine_median_s": median(e["engine_s"]),
                    "service_cpu_median_s": median(s["service_cpu_s"]),
                    "engine_cpu_median_s": median(e["engine_cpu_s"]),
                    "first_upload_s": s["first_upload_s"],
                    "score": s["score"],
                }
                row["ratio_service_to_engine"] = row["service_median_s"] / row["engine_median_s"]
                figures["upload_to_feedback"][assignment] = row
                print(
                    f"| {assignment} | {count} | {row['service_median_s']:.2f} s | {row['service_p90_s']:.2f} s | "
                    f"{row['engine_median_s']:.2f} s | {row['ratio_service_to_engine']:.2f}x | "
                    f"{row['service_cpu_median_s']:.2f} s | {row['engine_cpu_median_s']:.2f} s | "
                    f"{row['first_upload_s']:.1f} s | {row['score']} |"
                )
        if not args.skip_matrix:
            matrix = staff_matrix(args.learners, tmp)
            figures["staff"] = matrix
            print(
                f"\nstaff pages: {matrix['learners']} learners x {matrix['assignments']} assignments, "
                f"{matrix['submissions']} graded submissions ({matrix['matrix_cells']} cells; filled in "
                f"{matrix['fill_s']:.1f} s)\n"
            )
            print("| page | median | fastest | size |")
            print("|---|---:|---:|---:|")
            for label, t in matrix["pages"].items():
                print(f"| {label} | {t['median_s']:.3f} s | {t['fastest_s']:.3f} s | {t['bytes'] / 1024:.0f} kB |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve.json").write_text(json.dumps(figures, indent=2))
    print(f"\nfigures written to {out / 'serve.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
