"""A course-sized batch: ``dlgrade batch`` on N mixed submissions, beside ``nbgrader autograde``.

    .venv/bin/python bench/bench_scale.py                       # 1,000 submissions, nbgrader on 20 of them
    .venv/bin/python bench/bench_scale.py --count 200 --nbgrader-count 10 --dask
    .venv/bin/python bench/bench_scale.py --other ../baseline-checkout --nbgrader-count 0   # A/B, same batch

The batch: every assignment in turn, and per learner one of four kinds, built
the way examples/make_submissions.py builds its learners:

correct   the solution (alice)
partial   the solution with one plausible bug (bob's, BOB_BUGS)
stub      the released notebook, untouched (carol)
hostile   for initialization mallory's notebook (patched comparisons, forged
          results.json, a flood of output, ``os._exit(0)``); for the others the
          solution with its first graded function replaced by one that patches
          numpy's comparisons and returns garbage

Demo/training cells are removed from every notebook (bench/common.py's
``without_demos``): dlgrade never runs them, and nbgrader would spend minutes
training models, which would flatter dlgrade for a reason unrelated to the engine.

Measured: ``dlgrade batch --workers W`` over all N (wall time of the command;
median and p95 of the per-submission grading time from results.json), the
same batch on ``--dask local:W`` (with ``--dask``), and one ``nbgrader
autograde`` per assignment over the first ``--nbgrader-count`` submissions
(nbgrader on all 1,000 would take hours): the ratio is per submission, the
subset's nbgrader seconds per submission against the whole batch's dlgrade
seconds per submission. With ``--docker``, the same batch through
``docker/batch.sh`` (the hardened run line, image dlgrade:cpu, a fresh state
volume), with the ratio to local workers and a check that the scores agree;
the image must exist (``make docker-images``) and an engine must answer. With ``--other
CHECKOUT``, the same batch with that checkout's engine (its own .venv), right after this one's:
the wall-time ratio, and whether every submission got the same score.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, ROOT, NbgraderCourse, load_average, without_demos  # noqa: E402

sys.path.insert(0, str(ROOT / "examples"))
from autograder.grading import catalogue  # noqa: E402

import make_submissions as examples  # noqa: E402

KINDS = ("correct", "partial", "stub", "hostile")

HOSTILE = """\
import numpy as np


def _everything_is_equal():
    np.allclose = np.array_equal = np.isclose = lambda *args, **kwargs: True
    np.testing.assert_allclose = np.testing.assert_array_equal = lambda *args, **kwargs: None


def {function}(*args, _patched=_everything_is_equal(), **kwargs):
    return {{"W1": "trust me"}}
"""


def notebook(name: str, kind: str):
    spec = catalogue.load(name)
    if kind == "stub":
        return without_demos(examples.load(spec.released_notebook))
    nb = without_demos(examples.load(spec.solution_path))
    if kind == "partial":
        function, right, wrong = examples.bob_bug(name)
        cell = examples.graded_cell(nb, function)
        cell.source = cell.source.replace(right, wrong)
    elif kind == "hostile" and name == "initialization":
        for function, source in examples.MALLORY.items():
            examples.graded_cell(nb, function).source = source.rstrip("\n")
    elif kind == "hostile":
        function = spec.graded_functions[0]
        examples.graded_cell(nb, function).source = HOSTILE.format(function=function)
    return nb


def make_batch(count: int, folder: Path) -> list:
    """nbgrader's layout, learner s0000 onwards: [(learner, assignment, kind, path)] in grading order."""
    names = catalogue.names()
    texts = {(n, k): nbformat.writes(notebook(n, k)) for n in names for k in KINDS}
    made = []
    for i in range(count):
        name = names[i % len(names)]
        learner = f"s{i // len(names):04d}"
        kind = KINDS[(i // len(names)) % len(KINDS)]
        path = folder / learner / name / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(texts[(name, kind)])
        made.append((learner, name, kind, path))
    return made


def percentile(values, share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def timed_batch(command: list, what: str, out: Path, cwd: Path = ROOT) -> dict:
    """Run a batch command; its wall time, and the median, p95 and scores of the reports under ``out``.

    No CPU figure: a batch's sandboxed processes are not all reaped through this process
    (RUSAGE_CHILDREN would miss them), so CPU per submission is bench_warm's and bench_ab's."""
    started = time.perf_counter()
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if run.returncode not in (0, 3):
        raise RuntimeError(f"{what} failed ({run.returncode}):\n{run.stderr[-3000:]}")
    scores, seconds = {}, {}
    for results in out.glob("learners/*/*/results.json"):
        result = json.loads(results.read_text())
        key = (results.parent.parent.name, results.parent.name)
        scores[key] = (result["score"], result["max_score"])
        seconds[key] = float(result.get("execution_time") or 0.0)
    times = list(seconds.values())
    return {
        "wall_s": wall,
        "median_s": statistics.median(times),
        "p95_s": percentile(times, 0.95),
        "graded": len(times),
        "exit": run.returncode,
        "scores": scores,
        "seconds": seconds,
    }


def dlgrade_batch(subs: Path, out: Path, extra: list) -> dict:
    return timed_batch(
        [str(BIN / "dlgrade"), "batch", str(subs), "--out", str(out), *extra], f"dlgrade batch {' '.join(extra)}", out
    )


def other_batch(checkout: Path, subs: Path, out: Path, workers: int) -> dict:
    """The same batch with another checkout's engine (its own .venv, run from its folder)."""
    python = checkout / ".venv" / "bin" / "python"
    command = [str(python), "-m", "autograder.cli", "batch", str(subs), "--out", str(out), "--workers", str(workers)]
    return timed_batch(command, f"dlgrade batch in {checkout}", out, cwd=checkout)


def docker_batch(subs: Path, out: Path, workers: int) -> dict:
    """The same batch through docker/batch.sh, as a course team runs it; state in a fresh volume."""
    volume = f"dlgrade-bench-{uuid.uuid4().hex[:8]}"
    try:
        return timed_batch(
            [str(ROOT / "docker" / "batch.sh"), str(subs), str(out), "--state", volume, "--workers", str(workers)],
            "docker/batch.sh",
            out,
        )
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True)


def nbgrader_subset(made: list, root: Path) -> dict:
    by_assignment = defaultdict(list)
    for learner, name, _kind, path in made:
        by_assignment[name].append((learner, path))
    wall, per_assignment = 0.0, {}
    for name, items in by_assignment.items():
        course = NbgraderCourse(root / name, name)
        for learner, path in items:
            course.submit(learner, path)
        started = time.perf_counter()
        try:
            course.autograde()
            error = ""
        except RuntimeError as exc:  # nbgrader gave up on the batch (a hostile notebook): say so, keep the time
            error = str(exc)[-500:]
        seconds = time.perf_counter() - started
        per_assignment[name] = {"submissions": len(items), "wall_s": seconds, "error": error}
        wall += seconds
    return {"wall_s": wall, "submissions": len(made), "per_assignment": per_assignment}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument(
        "--nbgrader-count",
        type=int,
        default=20,
        help="nbgrader grades the first this many (20: every assignment and kind once)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dask", action="store_true", help="also run the batch on --dask local:WORKERS")
    parser.add_argument("--docker", action="store_true", help="also run the batch through docker/batch.sh")
    parser.add_argument(
        "--other",
        help="also run the batch with this checkout's engine (the baseline: wall ratio, same scores)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{args.count} mixed submissions of {len(catalogue.names())} assignments; {load_average()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        tmp = Path(tmp)
        made = make_batch(args.count, tmp / "submitted")
        local = dlgrade_batch(tmp / "submitted", tmp / "local", ["--workers", str(args.workers)])
        print(
            f"dlgrade batch, {args.workers} workers: {local['wall_s']:.1f} s for {local['graded']}",
            flush=True,
        )
        other = None
        if args.other:
            other = other_batch(Path(args.other), tmp / "submitted", tmp / "other", args.workers)
            print(f"{args.other}: {other['wall_s']:.1f} s", flush=True)
        dask = None
        if args.dask:
            dask = dlgrade_batch(tmp / "submitted", tmp / "dask", ["--dask", f"local:{args.workers}"])
            print(f"dlgrade batch, --dask local:{args.workers}: {dask['wall_s']:.1f} s", flush=True)
        docker = None
        if args.docker:
            docker = docker_batch(tmp / "submitted", tmp / "docker", args.workers)
            print(f"docker/batch.sh, {args.workers} workers: {docker['wall_s']:.1f} s", flush=True)
        subset = made[: args.nbgrader_count]
        nbgrader = nbgrader_subset(subset, tmp / "nbgrader") if subset else None

    # What each kind scored (a check that the batch graded what it should).
    # And where the batch's grading time went: each kind's mean seconds and share of the sum.
    by_kind, seconds_by_kind = defaultdict(list), defaultdict(list)
    for learner, name, kind, _ in made:
        score, maximum = local["scores"].get((learner, name), (float("nan"), float("nan")))
        by_kind[(name, kind)].append(score / maximum if maximum else 0.0)
        seconds_by_kind[(name, kind)].append(local["seconds"].get((learner, name), 0.0))
    total_seconds = sum(sum(v) for v in seconds_by_kind.values()) or 1.0

    per_sub = local["wall_s"] / args.count
    figures = {
        "submissions": args.count,
        "workers": args.workers,
        "load": load_average(),
        "dlgrade_batch_wall_s": local["wall_s"],
        "dlgrade_batch_per_submission_s": per_sub,
        "dlgrade_grade_median_s": local["median_s"],
        "dlgrade_grade_p95_s": local["p95_s"],
        "dlgrade_exit": local["exit"],
        "mean_share_of_points": {f"{n}/{k}": statistics.mean(v) for (n, k), v in sorted(by_kind.items())},
        "mean_grading_s": {f"{n}/{k}": statistics.mean(v) for (n, k), v in sorted(seconds_by_kind.items())},
        "share_of_grading_time": {f"{n}/{k}": sum(v) / total_seconds for (n, k), v in sorted(seconds_by_kind.items())},
    }
    if other:
        differ = sorted(
            k
            for k in local["scores"].keys() | other["scores"].keys()
            if local["scores"].get(k) != other["scores"].get(k)
        )
        figures |= {
            "other_checkout": args.other,
            "other_wall_s": other["wall_s"],
            "wall_vs_other": local["wall_s"] / other["wall_s"],
            "same_scores_as_other": not differ,
            "scores_differing_from_other": [f"{learner}/{name}" for learner, name in differ[:50]],
        }
    if dask:
        figures |= {
            "dask_wall_s": dask["wall_s"],
            "dask_per_submission_s": dask["wall_s"] / args.count,
            "dask_grade_median_s": dask["median_s"],
            "dask_grade_p95_s": dask["p95_s"],
            "dask_vs_local_wall": dask["wall_s"] / local["wall_s"],
            "dask_same_scores": dask["scores"] == local["scores"],
        }
    if docker:
        figures |= {
            "docker_wall_s": docker["wall_s"],
            "docker_per_submission_s": docker["wall_s"] / args.count,
            "docker_grade_median_s": docker["median_s"],
            "docker_grade_p95_s": docker["p95_s"],
            "docker_vs_local_wall": docker["wall_s"] / local["wall_s"],
            "docker_same_scores": docker["scores"] == local["scores"],
        }
    if nbgrader:
        nb_per_sub = nbgrader["wall_s"] / nbgrader["submissions"]
        figures |= {
            "nbgrader_submissions": nbgrader["submissions"],
            "nbgrader_wall_s": nbgrader["wall_s"],
            "nbgrader_per_submission_s": nb_per_sub,
            "ratio_nbgrader_vs_dlgrade_per_submission": nb_per_sub / per_sub,
            "nbgrader_per_assignment": nbgrader["per_assignment"],
            "nbgrader_estimated_all_s": nb_per_sub * args.count,
        }

    print(f"\n{'':44}{'total':>10}{'per sub':>10}{'median':>9}{'p95':>9}")
    print(
        f"{f'dlgrade batch, {args.workers} workers, {args.count} subs':44}{local['wall_s']:>9.1f}s{per_sub:>9.3f}s"
        f"{local['median_s']:>8.2f}s{local['p95_s']:>8.2f}s"
    )
    if other:
        print(
            f"{'baseline ' + Path(args.other).name:44}{other['wall_s']:>9.1f}s{other['wall_s'] / args.count:>9.3f}s"
            f"{other['median_s']:>8.2f}s{other['p95_s']:>8.2f}s"
            f"   (this checkout: {figures['wall_vs_other']:.2f}x; "
            f"same scores: {figures['same_scores_as_other']})"
        )
    if dask:
        print(
            f"{f'dlgrade batch --dask local:{args.workers}':44}{dask['wall_s']:>9.1f}s"
            f"{figures['dask_per_submission_s']:>9.3f}s{dask['median_s']:>8.2f}s{dask['p95_s']:>8.2f}s"
            f"   ({figures['dask_vs_local_wall']:.2f}x local; same scores: {figures['dask_same_scores']})"
        )
    if docker:
        print(
            f"{f'docker/batch.sh, {args.workers} workers':44}{docker['wall_s']:>9.1f}s"
            f"{figures['docker_per_submission_s']:>9.3f}s{docker['median_s']:>8.2f}s{docker['p95_s']:>8.2f}s"
            f"   ({figures['docker_vs_local_wall']:.2f}x local; same scores: {figures['docker_same_scores']})"
        )
    if nbgrader:
        print(
            f"{'nbgrader autograde, first ' + str(nbgrader['submissions']) + ' subs':44}{nbgrader['wall_s']:>9.1f}s"
            f"{figures['nbgrader_per_submission_s']:>9.3f}s   -> {figures['ratio_nbgrader_vs_dlgrade_per_submission']:.1f}x "
            f"dlgrade's per-submission time"
        )
    print(
        "per assignment and kind: the share of the points (correct 1, stub 0, partial and hostile below 1),"
        " the mean grading seconds, the share of the batch's grading seconds:"
    )
    for key, share in figures["mean_share_of_points"].items():
        print(
            f"  {key:<36} {share:.2f} {figures['mean_grading_s'][key]:>7.2f}s "
            f"{100 * figures['share_of_grading_time'][key]:>5.1f}%"
        )
    target = out / f"scale-{args.count}.json"
    target.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
