"""Shared pieces of the benchmarks: submissions, an nbgrader course, timing.

Both engines grade the *same* notebook files. The files are the solution
notebook (correct), the released stub (untouched) and partly wrong mixes, with
the training-demo cells removed: dlgrade never runs demo cells anyway, and
nbgrader would spend minutes training models in every submission, which would
flatter dlgrade for a reason that has nothing to do with the engine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.grading import catalogue  # noqa: E402

BIN = Path(sys.executable).parent


def is_kept(cell) -> bool:
    """Markdown, the imports cell, graded cells and test cells; no demo code."""
    if cell.cell_type != "code":
        return True
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade_id")) or "from public_tests import" in cell.source


def without_demos(nb):
    nb = nbformat.from_dict(nb)
    nb.cells = [c for c in nb.cells if is_kept(c)]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def make_submissions(name: str, count: int, folder: Path) -> list[Path]:
    """``count`` notebooks cycling through correct, stub and one-function-wrong."""
    spec = catalogue.load(name)
    solution = without_demos(nbformat.read(str(spec.solution_path), as_version=4))
    stub = without_demos(nbformat.read(str(spec.released_notebook), as_version=4))
    stub_cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in stub.cells}
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        kind = i % 3
        nb = nbformat.from_dict(solution if kind != 1 else stub)
        if kind == 2:  # one graded function left as the stub
            function = spec.graded_functions[(i // 3) % len(spec.graded_functions)]
            nb = nbformat.from_dict(solution)
            for cell in nb.cells:
                if cell.metadata.get("nbgrader", {}).get("grade_id") == function:
                    cell.source = stub_cells[function].source
        path = folder / f"s{i:03d}.ipynb"
        nbformat.write(nb, str(path))
        paths.append(path)
    return paths


class NbgraderCourse:
    """A throwaway nbgrader course directory with one assignment (the baseline)."""

    def __init__(self, root: Path, name: str):
        self.root, self.name = root, name
        spec = catalogue.load(name)
        source = root / "source" / name
        source.mkdir(parents=True, exist_ok=True)
        nbformat.write(
            without_demos(nbformat.read(str(spec.solution_path), as_version=4)), str(source / f"{name}.ipynb")
        )
        self.helpers = [p for p in spec.release_dir.iterdir() if p.suffix == ".py"]
        for helper in self.helpers:
            shutil.copy(helper, source / helper.name)
        (root / "nbgrader_config.py").write_text(
            "c = get_config()\n"
            f"c.CourseDirectory.root = {str(root)!r}\n"
            "c.CourseDirectory.course_id = 'bench'\n"
            "c.ExecutePreprocessor.timeout = 600\n"
        )
        self.nbgrader("generate_assignment", name, "--force", "--create")

    def nbgrader(self, *args) -> float:
        started = time.perf_counter()
        run = subprocess.run(
            [str(BIN / "nbgrader"), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            # nbgrader runs `alembic` by name: the venv's bin must be on PATH
            # even when this script is started as .venv/bin/python (make bench).
            env={**os.environ, "PYTHONWARNINGS": "ignore", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        )
        if run.returncode != 0:
            raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}")
        return time.perf_counter() - started

    def submit(self, student: str, notebook: Path) -> None:
        folder = self.root / "submitted" / student / self.name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(notebook, folder / f"{self.name}.ipynb")
        for helper in self.helpers:
            shutil.copy(helper, folder / helper.name)

    def autograde(self, student: str | None = None) -> float:
        args = ["autograde", self.name, "--create", "--force"]
        if student:
            args += ["--student", student]
        return self.nbgrader(*args)

    def scores(self) -> dict:
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gradebook:
            return {s.student.id: s.score for s in gradebook.assignment_submissions(self.name)}


def timed_cli(*args) -> float:
    started = time.perf_counter()
    subprocess.run(list(args), cwd=ROOT, capture_output=True, check=False)
    return time.perf_counter() - started


def median(values) -> float:
    return statistics.median(values)


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min), {os.cpu_count()} cores"


def run_benchmark(argv, description: str, default_assignment: str, default_count: int) -> dict:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default=default_assignment)
    parser.add_argument("--count", type=int, default=default_count)
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
        from autograder.grading.grade import grade_notebook

        grade_notebook(subs[0], name)  # start the zygote: paid once per worker
        warm, dl_scores = [], {}
        for path in subs:
            started = time.perf_counter()
            result = grade_notebook(path, name)
            warm.append(time.perf_counter() - started)
            dl_scores[path.stem] = result["score"]

        # ---- dlgrade, one command per submission (cold: interpreter, numpy, zygote)
        cold = [timed_cli(str(BIN / "dlgrade"), "grade", str(p), "--json") for p in subs[:5]]

        # ---- dlgrade batch over all of them
        batch_wall = timed_cli(
            str(BIN / "dlgrade"),
            "batch",
            str(tmp / "submissions"),
            "--out",
            str(tmp / "batch-out"),
            "--assignment",
            name,
        )

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
    figures["ratio_warm_vs_nbgrader_per_student"] = (
        figures["nbgrader_per_student_median_s"] / figures["dlgrade_warm_median_s"]
    )
    figures["ratio_cli_vs_nbgrader_per_student"] = (
        figures["nbgrader_per_student_median_s"] / figures["dlgrade_cli_median_s"]
    )
    figures["ratio_batch_vs_nbgrader_all"] = (
        figures["nbgrader_all_per_submission_s"] / figures["dlgrade_batch_per_submission_s"]
    )
    figures["load"] = load_average()

    print(f"{'':34}{'dlgrade':>10}{'nbgrader':>10}{'ratio':>8}")
    print(
        f"{'one submission, fresh command':34}{figures['dlgrade_cli_median_s']:>9.2f}s"
        f"{figures['nbgrader_per_student_median_s']:>9.2f}s{figures['ratio_cli_vs_nbgrader_per_student']:>7.1f}x"
    )
    print(
        f"{'one submission, warm worker':34}{figures['dlgrade_warm_median_s']:>9.2f}s"
        f"{figures['nbgrader_per_student_median_s']:>9.2f}s{figures['ratio_warm_vs_nbgrader_per_student']:>7.1f}x"
    )
    print(
        f"{'whole batch, per submission':34}{figures['dlgrade_batch_per_submission_s']:>9.2f}s"
        f"{figures['nbgrader_all_per_submission_s']:>9.2f}s{figures['ratio_batch_vs_nbgrader_all']:>7.1f}x"
    )
    print("scores (dlgrade hidden suite / nbgrader public test cells):")
    for stem in sorted(dl_scores)[:6]:
        print(f"  {stem}: {dl_scores[stem]:g} / {nb_scores.get(stem, float('nan')):g}")
    (out / f"{name}.json").write_text(json.dumps(figures, indent=2))
    print(f"figures written to {out / f'{name}.json'}")
    return figures


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and every process below it, dead ones included.

    This process's own time, its reaped children's (RUSAGE_CHILDREN), and for every live descendant
    (the zygote, a prepared spare) its own time plus that of the children it reaped: the sandboxed
    children of a grade are reaped by the zygote (or by bwrap's init, itself reaped by it), so their
    CPU lands in a live ancestor's cutime/cstime. The difference over one grade is its CPU, on the
    trusted side and in the sandbox. Not counted: a process reparented to init (none in dlgrade's
    trees). CPU, unlike wall time, stays steady when the machine is loaded.
    """
    import os
    import resource

    tick = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(value) for value in fields[11:15]) / tick  # utime stime cutime cstime
    below = set()
    frontier = [me]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in below:
                below.add(pid)
                frontier.append(pid)
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime + sum(times[pid] for pid in below)
