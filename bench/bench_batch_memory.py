"""Peak memory of the batch process over many large notebooks: this checkout against another one.

    python bench/bench_batch_memory.py [--other /path/to/old/checkout] [--count 300] [--size-mb 1]
                                       [--workers 2] [--dask local:2]

Makes ``--count`` notebooks of about ``--size-mb`` each (valid notebooks whose bulk is one cell's
output, as in a learner's notebook with its plots), then, for each checkout, runs ``run_batch`` over
them in a fresh process with a trivial grade function (it only counts the bytes it was given, in
the workers), and prints that process's peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``: the batch
process alone, not its workers) and the batch's wall time. ``--dask`` runs the batch on a Dask
cluster instead of local workers (``local:N``: its scheduler runs in the batch process).

Each checkout runs with its own ``.venv`` when it has one (else this Python), with the checkout
first on PYTHONPATH; the module each imported is printed. A measurement, not a test: nothing here
fails on a number.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def trivial_grade(name: str, data: bytes, assignment) -> dict:
    """Full marks for any notebook: the grade function of a batch whose grading costs nothing."""
    return {
        "score": 1.0,
        "max_score": 1.0,
        "tests": [],
        "functions": {},
        "assignment": assignment,
        "submission": name,
        "notes": [f"{len(data)} bytes"],
        "grader_error": False,
    }


def make_submissions(folder: Path, count: int, size: int) -> None:
    """``count`` learner folders, each with one notebook of about ``size`` bytes (distinct bytes)."""
    line = "0123456789abcdef" * 4 + "\n"
    for i in range(count):
        output = f"learner {i}\n" + line * (size // len(line))
        notebook = {
            "cells": [
                {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": f"# learner {i}"},
                {
                    "cell_type": "code",
                    "id": "plot",
                    "execution_count": 1,
                    "metadata": {},
                    "outputs": [{"output_type": "stream", "name": "stdout", "text": output}],
                    "source": "print(results)",
                },
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        learner = folder / f"learner{i:04}"
        learner.mkdir(parents=True)
        (learner / "homework.ipynb").write_text(json.dumps(notebook))


def measure(submissions: str, out: str, workers: int, dask: str | None) -> None:
    """In the child: one batch, then its peak RSS as one JSON line."""
    import autograder
    from autograder.batch.run import run_batch

    started = time.perf_counter()
    summary = run_batch(
        submissions,
        out,
        workers=workers,
        dask=dask,
        grade=trivial_grade,
        progress=False,
        log=lambda *args, **kwargs: None,
    )
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "module": autograder.__file__,
                "graded": summary.graded,
                "failed": summary.failed,
                "peak_rss_mb": peak_kb / 1024,
                "seconds": seconds,
            }
        )
    )


def run_child(checkout: Path, submissions: Path, out: Path, workers: int, dask: str | None) -> dict:
    python = checkout / ".venv" / "bin" / "python"
    python = python if python.exists() else Path(sys.executable)
    env = dict(os.environ, PYTHONPATH=str(checkout))
    command = [str(python), str(Path(__file__).resolve()), "--measure", str(submissions), str(out)]
    command += ["--workers", str(workers)] + (["--dask", dask] if dask else [])
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"the batch in {checkout} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", help="the baseline checkout (with its own .venv, or this Python's packages)")
    parser.add_argument("--count", type=int, default=300, help="notebooks (default 300)")
    parser.add_argument("--size-mb", type=float, default=1.0, help="size of each notebook in MB (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    parser.add_argument("--dask", help="a Dask address instead of local workers, e.g. local:2")
    parser.add_argument("--measure", nargs=2, metavar=("SUBMISSIONS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        measure(*args.measure, args.workers, args.dask)
        return 0

    variants = {"new": ROOT} | ({"old": Path(args.other).resolve()} if args.other else {})
    with tempfile.TemporaryDirectory(prefix="dlgrade-bench-memory-") as folder:
        submissions = Path(folder) / "submissions"
        make_submissions(submissions, args.count, int(args.size_mb * 2**20))
        total = sum(p.stat().st_size for p in submissions.rglob("*.ipynb")) / 2**20
        where = f"Dask {args.dask}" if args.dask else f"{args.workers} local worker(s)"
        print(f"{args.count} notebooks, {total:.0f} MB in all, {where}, trivial grade")
        for name, checkout in variants.items():
            figures = run_child(checkout, submissions, Path(folder) / f"out-{name}", args.workers, args.dask)
            print(
                f"{name:>4}: peak RSS of the batch process {figures['peak_rss_mb']:7.1f} MB, "
                f"{figures['seconds']:6.1f} s, {figures['graded']} graded ({figures['failed']} not), "
                f"autograder from {Path(figures['module']).parent.parent}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
