"""Warm grading time per submission: this checkout against another one, in one run.

    python bench/bench_ab.py --other /path/to/old/checkout [--assignment initialization]
                             [--count 12] [--rounds 3] [--out bench/out]

Both checkouts grade the *same* notebooks (made by this checkout's
``make_submissions``), each with its own ``.venv`` in a worker process of its
own that first grades one submission (the zygote's start, paid once per
worker) and then times ``grade_notebook`` on every submission, as a
``dlgrade batch`` worker does. Rounds alternate old, new, new in one learner
child (see below), old, ... so that a change of the machine's load hits every
variant alike. Prints the median seconds per submission of each variant and
the ratios, the median CPU seconds per submission of each worker's whole process tree (grader and
sandbox, common.tree_cpu_seconds: steady when the machine is loaded), and the scores (they must agree).

"new, one child": this checkout with the hidden suite's function boundary
turned off in the bench worker only (every graded function's checks in one
learner child with the whole submission's budget, as before per-function
children): what per-function children cost, measured apart from the rest of
the changes. It is a measurement, not a mode of dlgrade.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

WORKER_BODY = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
paths, name, one_child = sys.argv[3:], sys.argv[2], False
if name.startswith("one-child:"):
    name, one_child = name.split(":", 1)[1], True
try:
    from autograder.grading.grade import grade_notebook
    import autograder.grading.grade as grade_module
except ImportError:   # older layout
    from autograder.grading import grade_notebook
    grade_module = None
if one_child:
    grade_module.FunctionBoundary.pytest_runtest_setup = lambda self, item: None
    grade_module.LearnerProcess.begin_function = lambda self, name: None
grade_notebook(paths[0], name)   # start the zygote
times, cpu, scores = [], [], {}
for path in paths:
    started, cpu_before = time.perf_counter(), tree_cpu_seconds()
    result = grade_notebook(path, name)
    times.append(time.perf_counter() - started)
    cpu.append(tree_cpu_seconds() - cpu_before)
    scores[path.rsplit("/", 1)[-1]] = result["score"]
print(json.dumps({"times": times, "cpu": cpu, "scores": scores}))
"""


def worker_source() -> str:
    """The worker's script: common.tree_cpu_seconds (the same code in both checkouts' workers), then the loop."""
    import inspect

    from common import tree_cpu_seconds

    return inspect.getsource(tree_cpu_seconds) + WORKER_BODY


def run_worker(checkout: Path, name: str, paths: list) -> dict:
    python = checkout / ".venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [str(python), "-c", worker_source(), str(checkout), name, *map(str, paths)],
        cwd=checkout,
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if run.returncode != 0:
        raise RuntimeError(f"worker in {checkout} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    from common import load_average, make_submissions

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", required=True, help="the baseline checkout (with its own .venv)")
    parser.add_argument("--assignment", default="initialization")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args(argv)
    other, name = Path(args.other).resolve(), args.assignment
    print(f"{name}: {args.count} submissions x {args.rounds} rounds; {load_average()}")
    variants = {"old": (other, name), "new": (ROOT, name), "new, one child": (ROOT, f"one-child:{name}")}
    times: dict = {v: [] for v in variants}
    cpu: dict = {v: [] for v in variants}
    scores = {}
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        paths = make_submissions(name, args.count, Path(tmp) / "submissions")
        for _ in range(args.rounds):
            for variant, (checkout, label) in variants.items():
                got = run_worker(checkout, label, paths)
                times[variant] += got["times"]
                cpu[variant] += got["cpu"]
                scores.setdefault(variant, got["scores"])
    medians = {v: statistics.median(t) for v, t in times.items()}
    cpu_medians = {v: statistics.median(c) for v, c in cpu.items()}
    figures = {
        "assignment": name,
        "submissions": args.count,
        "rounds": args.rounds,
        "median_s": medians,
        "median_cpu_s": cpu_medians,
        "cpu_ratio_new_vs_old": cpu_medians["new"] / cpu_medians["old"],
        "ratio_new_vs_old": medians["new"] / medians["old"],
        "ratio_new_vs_one_child": medians["new"] / medians["new, one child"],
        "load": load_average(),
    }
    for variant, median in medians.items():
        print(
            f"  {variant:16} median {median:.3f} s per submission, CPU {cpu_medians[variant]:.3f} s "
            f"(n={len(times[variant])})"
        )
    print(
        f"  new / old: {figures['ratio_new_vs_old']:.2f}x (CPU {figures['cpu_ratio_new_vs_old']:.2f}x); new / new-one-child: "
        f"{figures['ratio_new_vs_one_child']:.2f}x; {figures['load']}"
    )
    disagree = {s: {v: scores[v][s] for v in scores} for s in scores["new"] if len({scores[v][s] for v in scores}) > 1}
    print("scores agree" if not disagree else f"scores differ: {disagree}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"ab-{name}.json").write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
