"""dlgrade serve under load, over real HTTP: a live uvicorn server on loopback (serve_in_thread),
learners uploading concurrently through the API, two grader workers running a stand-in grade function
(tests/service_stand_ins_load.fast_grade: the test measures the service, not grading).

What must hold: every upload is answered 201 (a 503, the service's documented "try again" with
Retry-After, is retried by the client and counted), exactly one submission row per upload, each graded
exactly once (one call of the grade function per upload, seen in the stand-in's own log, not only in the
database), none lost, and the queue drained within a bound. Counts and timings are printed (pytest -s).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from autograder.batch.roster import parse_roster
from autograder.grading import catalogue
from autograder.service.config import ServiceConfig
from autograder.service.db import GRADED
from autograder.service.web import create_app

ASSIGNMENT = "initialization"
DRAIN_BOUND_S = 120.0


def stub_variants(count_per_learner: int, learners: list[str]) -> dict:
    """{learner: [notebook bytes]}: the released stub with a comment naming the learner and the upload
    (distinct bytes everywhere)."""
    stub = json.loads(Path(catalogue.load(ASSIGNMENT).released_notebook).read_text())
    first_code = next(i for i, cell in enumerate(stub["cells"]) if cell["cell_type"] == "code")
    variants = {}
    for learner in learners:
        variants[learner] = []
        for n in range(count_per_learner):
            nb = json.loads(json.dumps(stub))
            source = nb["cells"][first_code]["source"]
            source = "".join(source) if isinstance(source, list) else source
            nb["cells"][first_code]["source"] = f"# load test: {learner}, upload {n}\n" + source
            variants[learner].append(json.dumps(nb).encode())
    return variants


def roster_csv(learners: list[str]) -> str:
    lines = ["learner,name,email"]
    lines += [f"{name},Learner {name},{name}@example.org" for name in learners]
    return "\n".join(lines) + "\n"


def run_load(
    tmp_path: Path, monkeypatch, *, learners: int, per_learner: int, workers: int = 2, database: str | None = None
) -> dict:
    log = tmp_path / "graded.log"
    monkeypatch.setenv("DLGRADE_LOAD_LOG", str(log))  # inherited by the spawned grader workers
    from service_stand_ins_load import fast_grade

    names = [f"l{i:03d}" for i in range(learners)]
    config = ServiceConfig(
        course=tmp_path / "course",
        database=database,
        workers=workers,
        rate_count=per_learner + 10,  # above what the test needs: no 429
        rate_seconds=300,
    )
    app = create_app(config, grade=fast_grade)
    store = app.state.store
    tokens = store.import_roster(parse_roster(roster_csv(names), "load roster"))
    store.update_assignment(ASSIGNMENT, is_open=True)
    notebooks = stub_variants(per_learner, names)
    expected = {hashlib.sha256(data).hexdigest() for group in notebooks.values() for data in group}
    assert len(expected) == learners * per_learner

    from service_fixtures import serve_in_thread

    base_url, stop = serve_in_thread(app)
    statuses: Counter = Counter()
    retries: Counter = Counter()
    latencies: list = []
    ids: list = []
    lock = threading.Lock()
    start_gate = threading.Barrier(learners)

    def learner_session(learner: str) -> None:
        headers = {"Authorization": f"Bearer {tokens[learner]}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=60.0) as client:
            start_gate.wait()
            for n, data in enumerate(notebooks[learner]):
                for _attempt in range(10):
                    began = time.perf_counter()
                    response = client.post(
                        "/api/v1/submissions",
                        files={"notebook": (f"{ASSIGNMENT}.ipynb", data, "application/x-ipynb+json")},
                        data={"assignment": ASSIGNMENT},
                    )
                    took = time.perf_counter() - began
                    with lock:
                        statuses[response.status_code] += 1
                        latencies.append(took)
                    if response.status_code == 503:  # the documented "try again": Retry-After
                        with lock:
                            retries[learner] += 1
                        time.sleep(min(2.0, float(response.headers.get("Retry-After", "1"))))
                        continue
                    break
                assert response.status_code == 201, f"{learner} upload {n}: {response.status_code} {response.text}"
                with lock:
                    ids.append(response.json()["id"])

    try:
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=learners) as threads:
            for future in [threads.submit(learner_session, name) for name in names]:
                future.result()
        uploaded = time.perf_counter() - began
        while True:
            counts = store.queue_counts()
            if counts.get(GRADED, 0) >= len(expected) and set(counts) == {GRADED}:
                break
            assert time.perf_counter() - began < DRAIN_BOUND_S, f"queue not drained within {DRAIN_BOUND_S} s: {counts}"
            time.sleep(0.05)
        drained = time.perf_counter() - began
        graded_by_runner = app.state.runner.graded
    finally:
        stop()

    rows = store.submissions()
    lines = log.read_text().splitlines() if log.exists() else []
    calls = Counter(line.split()[1] for line in lines)
    pids = Counter(line.split()[0] for line in lines)
    figures = {
        "database": "postgresql" if database else "sqlite",
        "learners": learners,
        "uploads": learners * per_learner,
        "workers": workers,
        "statuses": dict(statuses),
        "retried_503": sum(retries.values()),
        "rows": len(rows),
        "graded_rows": sum(1 for r in rows if r.status == GRADED and r.result is not None),
        "grade_calls": len(lines),
        "grader_pids": dict(pids),
        "upload_phase_s": round(uploaded, 2),
        "drained_s": round(drained, 2),
        "upload_latency_median_s": round(statistics.median(latencies), 4),
        "upload_latency_p90_s": round(statistics.quantiles(latencies, n=10)[-1], 4),
        "upload_latency_max_s": round(max(latencies), 4),
    }
    print("\nservice load:", json.dumps(figures))

    # Every upload answered 201 once it went through (503s retried), one row each, no row extra.
    assert len(ids) == len(expected) == len(set(ids))
    assert statuses[201] == len(expected), statuses
    assert set(statuses) <= {201, 503}, statuses
    assert len(rows) == len(expected)
    assert {r.id for r in rows} == set(ids)
    assert {r.sha256 for r in rows} == expected
    # Graded exactly once: one call of the grade function per upload, one result per row.
    assert len(lines) == len(expected), f"{len(lines)} grade calls for {len(expected)} uploads"
    assert set(calls) == expected and set(calls.values()) == {1}, [d for d, c in calls.items() if c != 1]
    assert all(r.status == GRADED and r.result is not None for r in rows)
    assert all(r.attempts == 1 for r in rows), Counter(r.attempts for r in rows)
    assert all(r.result["score"] == r.result["max_score"] > 0 for r in rows)
    assert graded_by_runner == len(expected)
    # Both workers took part, and every result names a worker that logged a grade.
    assert len(pids) == workers, pids
    noted = Counter(next(n for n in r.result["notes"] if n.startswith("graded by pid ")).split()[-1] for r in rows)
    assert noted == pids
    return figures


def test_200_uploads_from_50_concurrent_learners_are_each_graded_once(tmp_path, monkeypatch):
    figures = run_load(tmp_path, monkeypatch, learners=50, per_learner=4)
    assert figures["drained_s"] < DRAIN_BOUND_S


@pytest.mark.postgres
def test_200_uploads_from_50_concurrent_learners_on_postgresql(tmp_path, monkeypatch, fresh_postgres_url):
    figures = run_load(tmp_path, monkeypatch, learners=50, per_learner=4, database=fresh_postgres_url)
    assert figures["drained_s"] < DRAIN_BOUND_S
