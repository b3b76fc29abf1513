"""dlgrade vs nbgrader autograde on numpy-assignment submissions, in one run.

    python bench/bench_numpy.py [--assignment initialization] [--count 12] [--out bench/out]

Prints, for the same notebooks:
  - nbgrader: `nbgrader autograde --student X` per submission (median s), and
    one `nbgrader autograde` over all of them (s per submission);
  - dlgrade: `dlgrade grade` per submission as a fresh command (median s),
    grade_notebook() in one warm process (median s per submission, what
    `dlgrade batch` does in each worker), and `dlgrade batch` (s per submission);
and the ratios. Scores of both engines are printed to show they agree on the
correct and the stub submissions.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import BIN, NbgraderCourse, ROOT, load_average, make_submissions, median, timed_cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="initialization")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args(argv)
    name = args.assignment
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{name}: {args.count} submissions; {load_average()}")

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmp = Path(tmp)
        subs = make_submissions(name, args.count, tmp / "submissions")

        # ---- dlgrade, warm process (what each batch worker does)
        from autograder.grading import grade_notebook

        grade_notebook(subs[0], name)   # start the zygote: paid once per worker
        warm, dl_scores = [], {}
        for path in subs:
            started = time.perf_counter()
            result = grade_notebook(path, name)
            warm.append(time.perf_counter() - started)
            dl_scores[path.stem] = result["score"]

        # ---- dlgrade, one command per submission (cold: interpreter, numpy, zygote)
        cold = [timed_cli(str(BIN / "dlgrade"), "grade", str(p), "--json") for p in subs[:5]]

        # ---- dlgrade batch over all of them
        batch_wall = timed_cli(str(BIN / "dlgrade"), "batch", str(tmp / "submissions"),
                               "--out", str(tmp / "batch-out"), "--assignment", name)

        # ---- nbgrader autograde, the baseline
        course = NbgraderCourse(tmp / "course", name)
        for path in subs:
            course.submit(path.stem, path)
        per_student = [course.autograde(path.stem) for path in subs[:5]]
        all_wall = course.autograde()
        nb_scores = course.scores()

    figures = {
        "assignment": name,
        "submissions": args.count,
        "dlgrade_warm_median_s": median(warm),
        "dlgrade_cli_median_s": median(cold),
        "dlgrade_batch_per_submission_s": batch_wall / args.count,
        "nbgrader_per_student_median_s": median(per_student),
        "nbgrader_all_per_submission_s": all_wall / args.count,
    }
    figures["ratio_warm_vs_nbgrader_per_student"] = figures["nbgrader_per_student_median_s"] / figures["dlgrade_warm_median_s"]
    figures["ratio_cli_vs_nbgrader_per_student"] = figures["nbgrader_per_student_median_s"] / figures["dlgrade_cli_median_s"]
    figures["ratio_batch_vs_nbgrader_all"] = figures["nbgrader_all_per_submission_s"] / figures["dlgrade_batch_per_submission_s"]
    figures["load"] = load_average()

    print(f"{'':34}{'dlgrade':>10}{'nbgrader':>10}{'ratio':>8}")
    print(f"{'one submission, fresh command':34}{figures['dlgrade_cli_median_s']:>9.2f}s"
          f"{figures['nbgrader_per_student_median_s']:>9.2f}s{figures['ratio_cli_vs_nbgrader_per_student']:>7.1f}x")
    print(f"{'one submission, warm worker':34}{figures['dlgrade_warm_median_s']:>9.2f}s"
          f"{figures['nbgrader_per_student_median_s']:>9.2f}s{figures['ratio_warm_vs_nbgrader_per_student']:>7.1f}x")
    print(f"{'whole batch, per submission':34}{figures['dlgrade_batch_per_submission_s']:>9.2f}s"
          f"{figures['nbgrader_all_per_submission_s']:>9.2f}s{figures['ratio_batch_vs_nbgrader_all']:>7.1f}x")
    print("scores (dlgrade hidden suite / nbgrader public test cells):")
    for stem in sorted(dl_scores)[:6]:
        print(f"  {stem}: {dl_scores[stem]:g} / {nb_scores.get(stem, float('nan')):g}")
    (out / f"numpy-{name}.json").write_text(json.dumps(figures, indent=2))
    print(f"figures written to {out / f'numpy-{name}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
