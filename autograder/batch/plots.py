"""The batch's plots, PNG files under --out/plots: per assignment a score histogram
(<a>-scores.png) and the pass rate of each hidden check (<a>-pass-rate.png), redrawn only when the
grades they show changed; and the numbers and colours the course page's charts share with them."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from autograder.batch.gradebook import by_assignment, grade_result
from autograder.grading.reports import atomic_write


def pass_rates(grades: list) -> dict:
    """Hidden check name -> (passed, graded) over the submissions whose suite ran."""
    rates: dict = {}
    for grade in grades:
        result = grade_result(grade)
        if result.unreadable:
            continue  # never graded: it says nothing about which checks are hard
        for test in result.tests:
            passed, total = rates.get(test.name, (0, 0))
            rates[test.name] = (passed + test.passed, total + 1)
    return rates


def rate_colour(fraction: float) -> str:
    """Red (nobody passes) through amber to green (everybody passes), as #rrggbb."""
    import colorsys

    red, green, blue = colorsys.hls_to_rgb(max(0.0, min(1.0, fraction)) * 120 / 360, 0.42, 0.65)
    return f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"


def _save(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write(path, buffer.getvalue())


def graded_scores(grades: list) -> tuple:
    """(scores of the graded submissions, the assignment's maximum)."""
    results = [grade_result(g) for g in grades]
    scores = [r.score for r in results if not r.unreadable]
    top = max([r.max_score for r in results] + [max(scores, default=0), 1.0])
    return scores, top


def histogram_bins(top: float) -> list:
    """Bin edges: one bar per whole point (centred on it) while that stays readable; 20 bins beyond."""
    import numpy as np

    return list(np.arange(-0.5, np.ceil(top) + 1)) if top <= 40 else list(np.linspace(0, top, 21))


def score_histogram(assignment: str, grades: list, path: Path) -> Path:
    from matplotlib.figure import Figure  # the object API: no pyplot, no GUI backend, Agg canvas
    from matplotlib.ticker import MaxNLocator

    scores, top = graded_scores(grades)
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    axes.hist(scores, bins=histogram_bins(top), color="#4477aa", edgecolor="white")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(f"score (out of {top:g})")
    axes.set_ylabel("submissions")
    axes.set_title(f"{assignment}: scores of {len(scores)} graded submission(s)", fontsize=11)
    figure.tight_layout()
    _save(figure, path)
    return path


def check_label(name: str, width: int = 60) -> str:
    """'f: f returns W1' -> 'f: returns W1', wrapped on two lines at most."""
    function, _, check = name.partition(": ")
    if check.startswith(function + " "):
        check = check[len(function) + 1 :]
    lines = textwrap.wrap(f"{function}: {check}" if check else name, width) or [name]
    if len(lines) > 2:
        lines = [lines[0], lines[1][: width - 3] + "..."]
    return "\n".join(lines)


def pass_rate_chart(assignment: str, grades: list, path: Path) -> Path:
    from matplotlib.figure import Figure

    rates = pass_rates(grades)
    graded = sum(1 for g in grades if not grade_result(g).unreadable)
    figure = Figure(figsize=(10, 1.5 + 0.45 * max(1, len(rates))))
    axes = figure.add_subplot()
    if rates:
        values = [100 * passed / total for passed, total in rates.values()]
        axes.barh(range(len(rates)), values, color=[rate_colour(v / 100) for v in values])
        axes.set_yticks(range(len(rates)), [check_label(name) for name in rates], fontsize=8)
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


def _digest(grades: list) -> str:
    """What a plot depends on: the scores and check outcomes of the group."""
    import hashlib

    rows = sorted(
        (
            g.learner,
            grade_result(g).score,
            grade_result(g).max_score,
            grade_result(g).unreadable,
            tuple((t.name, t.passed) for t in grade_result(g).tests),
        )
        for g in grades
    )
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def write_plots(grades: list, folder: Path) -> list:
    """Draw each assignment's histogram and pass-rate chart; only those whose grades changed (matplotlib
    costs ~1 s a figure). Returns the plots drawn now."""
    folder = Path(folder)
    drawn = []
    for assignment, group in by_assignment(grades).items():
        if not any(grade_result(g).max_score for g in group):
            continue  # notebooks no assignment could be told for: nothing to plot
        digest = _digest(group)
        stamp = folder / f".{assignment}.digest"
        scores, rates = folder / f"{assignment}-scores.png", folder / f"{assignment}-pass-rate.png"
        try:
            unchanged = stamp.read_text() == digest and scores.exists() and rates.exists()
        except OSError:
            unchanged = False
        if unchanged:
            continue
        drawn.append(score_histogram(assignment, group, scores))
        drawn.append(pass_rate_chart(assignment, group, rates))
        atomic_write(stamp, digest)
    return drawn
