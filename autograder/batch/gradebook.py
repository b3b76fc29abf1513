"""The course's view of a batch: gradebook.csv, plots, and the score table.

Everything here is computed from the batch state's grades (see state.py), so a
resumed or repeated batch always regenerates the same files from the same grades.
"""
from __future__ import annotations

import csv
import io
import textwrap
from collections import defaultdict
from pathlib import Path

from autograder.grading.reports import atomic_write

FIXED_COLUMNS = ["learner", "assignment", "total", "max"]
PROBLEM_COLUMN = "problem"     # why a submission could not be graded; empty otherwise


def _number(value) -> str:
    return f"{float(value):g}"


def function_columns(grades: list) -> list:
    """Every graded function, in the order the assignments' notebooks define them."""
    columns = []
    for grade in grades:
        for name in grade.result.get("functions", {}):
            if name not in columns:
                columns.append(name)
    return columns


def problem(result: dict) -> str:
    if result.get("error"):
        return str(result["error"]).splitlines()[0]
    if result.get("grader_error"):
        return "a hidden check failed to run (grader error); see results.json"
    return ""


def gradebook_csv(grades: list) -> str:
    functions = function_columns(grades)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIXED_COLUMNS + functions + [PROBLEM_COLUMN])
    for grade in sorted(grades, key=lambda g: (g.learner, g.assignment)):
        result = grade.result
        scores = result.get("functions", {})
        writer.writerow(
            [grade.learner, grade.assignment, _number(result.get("score", 0)), _number(result.get("max_score", 0))]
            + [_number(scores[f]["score"]) if f in scores else "" for f in functions]
            + [problem(result)])
    return out.getvalue()


def write_gradebook(grades: list, path: Path) -> Path:
    atomic_write(Path(path), gradebook_csv(grades))
    return Path(path)


# ------------------------------------------------------------------ plots

def _by_assignment(grades: list) -> dict:
    groups = defaultdict(list)
    for grade in grades:
        groups[grade.assignment].append(grade)
    return dict(sorted(groups.items()))


def pass_rates(grades: list) -> dict:
    """Hidden check name -> (passed, graded) over the submissions whose suite ran."""
    rates: dict = {}
    for grade in grades:
        if grade.result.get("error"):
            continue  # never graded: it says nothing about which checks are hard
        for test in grade.result.get("tests", []):
            passed, total = rates.get(test["name"], (0, 0))
            rates[test["name"]] = (passed + (test["status"] == "passed"), total + 1)
    return rates


def _save(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write(path, buffer.getvalue())


def score_histogram(assignment: str, grades: list, path: Path) -> Path:
    import numpy as np
    from matplotlib.figure import Figure  # the object API: no pyplot, no GUI backend, Agg canvas
    from matplotlib.ticker import MaxNLocator

    scores = [float(g.result.get("score", 0)) for g in grades]
    top = max([float(g.result.get("max_score", 0)) for g in grades] + [max(scores, default=0), 1.0])
    # One bar per whole point (centred on it) while that stays readable; 20 bins beyond.
    bins = np.arange(-0.5, np.ceil(top) + 1) if top <= 40 else np.linspace(0, top, 21)
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    axes.hist(scores, bins=bins, color="#4477aa", edgecolor="white")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(f"score (out of {top:g})")
    axes.set_ylabel("submissions")
    axes.set_title(f"{assignment}: scores of {len(scores)} submission(s)", fontsize=11)
    figure.tight_layout()
    _save(figure, path)
    return path


def _check_label(name: str, width: int = 60) -> str:
    """'f: f returns W1' -> 'f: returns W1', wrapped on two lines at most."""
    function, _, check = name.partition(": ")
    if check.startswith(function + " "):
        check = check[len(function) + 1:]
    lines = textwrap.wrap(f"{function}: {check}" if check else name, width) or [name]
    if len(lines) > 2:
        lines = [lines[0], lines[1][: width - 3] + "..."]
    return "\n".join(lines)


def pass_rate_chart(assignment: str, grades: list, path: Path) -> Path:
    from matplotlib.figure import Figure

    rates = pass_rates(grades)
    graded = sum(1 for g in grades if not g.result.get("error"))
    figure = Figure(figsize=(10, 1.5 + 0.45 * max(1, len(rates))))
    axes = figure.add_subplot()
    if rates:
        values = [100 * passed / total for passed, total in rates.values()]
        axes.barh(range(len(rates)), values, color="#228833")
        axes.set_yticks(range(len(rates)), [_check_label(name) for name in rates], fontsize=8)
        axes.invert_yaxis()  # suite order, top to bottom
        for row, ((passed, total), value) in enumerate(zip(rates.values(), values)):
            axes.text(min(value, 100) + 1, row, f"{passed}/{total}", va="center", fontsize=8)
    else:
        axes.text(0.5, 0.5, "no submission could be graded", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlim(0, 110)
    axes.set_xticks(range(0, 101, 20))
    axes.set_xlabel("submissions passing (%)")
    axes.set_title(f"{assignment}: pass rate per hidden check ({graded} graded submission(s))", fontsize=11)
    figure.tight_layout()
    _save(figure, path)
    return path


def write_plots(grades: list, folder: Path) -> list:
    folder = Path(folder)
    written = []
    for assignment, group in _by_assignment(grades).items():
        if not any(g.result.get("max_score") for g in group):
            continue  # notebooks no assignment could be told for: nothing to plot
        written.append(score_histogram(assignment, group, folder / f"{assignment}-scores.png"))
        written.append(pass_rate_chart(assignment, group, folder / f"{assignment}-pass-rate.png"))
    return written


# ------------------------------------------------------------------ the table a newcomer reads

def score_table(grades: list) -> str:
    rows = [("learner", "assignment", "score", "status")]
    for grade in sorted(grades, key=lambda g: (g.assignment, g.learner)):
        result = grade.result
        score = f"{float(result.get('score', 0)):g} / {float(result.get('max_score', 0)):g}"
        failed = [t for t in result.get("tests", []) if t.get("status") != "passed"]
        why = problem(result)
        if why:
            note = f"not graded: {why}"
        elif failed:
            note = f"{len(failed)} of {len(result.get('tests', []))} checks failed"
        else:
            note = "all checks passed"
        rows.append((grade.learner, grade.assignment, score, note if len(note) <= 90 else note[:87] + "..."))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for i, row in enumerate(rows):
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths + [max(len(row[3]) for row in rows)]))
    return "\n".join(lines)
