"""Warm-worker grading time per submission, every numpy assignment side by side, in one run.

    python bench/bench_warm.py [--assignments batch_norm,practical_setup,initialization] [--rounds 12]

What one `dlgrade batch` worker spends per submission once its zygote is
warm: grade_notebook() in this process, on the submissions of
bench/common.make_submissions (correct, stub, one function left as the stub,
in turn). The assignments are graded round-robin, one submission of each per
round, so a shared machine's load falls on all of them alike; the table gives
each median, its ratio to the first assignment's (the baseline) and the
fastest run (the least disturbed by other load), and the median CPU seconds per submission of the
whole process tree (grader and sandbox: common.tree_cpu_seconds), steady on a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, load_average, make_submissions, median, tree_cpu_seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--assignments",
        default="initialization,batch_norm,practical_setup",
        help="comma-separated; the first is the baseline of the ratios",
    )
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args(argv)
    names = [n for n in args.assignments.split(",") if n]
    from autograder.grading.grade import grade_notebook

    print(f"{', '.join(names)}: {args.rounds} rounds; {load_average()}")
    times: dict = {n: [] for n in names}
    cpu: dict = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        subs = {n: make_submissions(n, args.rounds, Path(tmp) / n) for n in names}
        for n in names:
            grade_notebook(subs[n][0], n)  # start the zygote: paid once per worker
        for i in range(args.rounds):
            for n in names:
                started, cpu_before = time.perf_counter(), tree_cpu_seconds()
                grade_notebook(subs[n][i], n)
                times[n].append(time.perf_counter() - started)
                cpu[n].append(tree_cpu_seconds() - cpu_before)
    base = median(times[names[0]])
    figures = {"rounds": args.rounds, "load": load_average(), "assignments": {}}
    print(f"{'assignment':20}{'median':>9}{'ratio':>8}{'fastest':>9}{'CPU':>9}")
    for n in names:
        m, c = median(times[n]), median(cpu[n])
        figures["assignments"][n] = {
            "median_s": m,
            "ratio_to_" + names[0]: m / base,
            "fastest_s": min(times[n]),
            "median_cpu_s": c,
        }
        print(f"{n:20}{m:>8.3f}s{m / base:>7.2f}x{min(times[n]):>8.3f}s{c:>8.3f}s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "warm.json").write_text(json.dumps(figures, indent=2))
    print(f"figures written to {out / 'warm.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
