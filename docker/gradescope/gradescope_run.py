"""Grade one Gradescope submission with dlgrade: what run_autograder runs.

Reads (under DLGRADE_GRADESCOPE_ROOT, default /autograder):
    submission/                 the learner's upload; the notebook graded is <assignment>.ipynb if present,
                                else the newest .ipynb (the others are named in the output); no symbolic
                                link is followed: a notebook that is one scores 0 and says so
    submission_metadata.json    Gradescope's: created_at (the submission time) and assignment.due_date
    source/assignment.txt       which assignment this autograder grades (or DLGRADE_ASSIGNMENT)
    source/late.toml            optional: the course's late policy (autograder/batch/late.py); without a
                                deadline of its own, Gradescope's due date is the deadline
Writes:
    results/results.json        Result.to_gradescope(): Gradescope's fields, each test's visibility as its
                                suite declares it (@pytest.mark.graded(..., visibility=...)), dlgrade's
                                own keys under extra_data
    results/feedback.md, results/feedback.html   the same feedback as `dlgrade grade --out`

It always exits 0 with a results.json: a notebook that cannot be graded gets a
zero and its reason, and a grader failure a zero, its reason for the learner
and the traceback on stdout (which Gradescope shows to instructors only).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path


def gradescope_root() -> Path:
    return Path(os.environ.get("DLGRADE_GRADESCOPE_ROOT", "/autograder"))


def assignment_name(source: Path) -> str | None:
    if os.environ.get("DLGRADE_ASSIGNMENT"):
        return os.environ["DLGRADE_ASSIGNMENT"]
    named = source / "assignment.txt"
    if not named.exists():
        return None
    return named.read_text().strip() or None


def submitted_notebooks(folder: Path) -> tuple:
    """(every ``*.ipynb`` below ``folder`` that is not a folder, the folders that are links).

    Nothing is followed through a symbolic link: a linked folder is not entered (it is named in
    the notes), and a notebook that is a link, a fifo or a device is still found, so that grading
    refuses it with the reason (autograder/grading/submission_file.py) and the learner sees why."""
    found, linked = [], []
    for top, folders, files in os.walk(folder):  # followlinks=False: a linked folder is listed, not entered
        here = Path(top)
        for name in sorted(folders):
            if (here / name).is_symlink() and not name.startswith("."):
                linked.append((here / name).relative_to(folder).as_posix())
        folders[:] = sorted(n for n in folders if not n.startswith(".") and not (here / n).is_symlink())
        found += [here / n for n in sorted(files) if n.endswith(".ipynb") and not n.startswith(".")]
    return found, linked


def choose_notebook(folder: Path, assignment: str | None):
    """(the notebook to grade or None, the other notebooks that were ignored)."""
    found, _ = submitted_notebooks(folder)
    if not found:
        return None, []
    released = [p for p in found if assignment and p.name == f"{assignment}.ipynb"]
    chosen = min(released, key=lambda p: len(p.parts)) if released else max(found, key=lambda p: p.lstat().st_mtime)
    return chosen, sorted(p.relative_to(folder).as_posix() for p in found if p != chosen)


def apply_late_policy(result, root: Path, source: Path, assignment: str | None):
    from autograder.batch import late

    policy_file, metadata_file = source / "late.toml", root / "submission_metadata.json"
    if not policy_file.exists() or not metadata_file.exists() or assignment is None:
        return result
    metadata = json.loads(metadata_file.read_text())
    policy = late.load_policy(policy_file).for_assignment(assignment)
    due = (metadata.get("assignment") or {}).get("due_date")
    if policy.deadline is None and due:
        policy = dataclasses.replace(policy, deadline=late.parse_time(due))
    return policy.apply(result, late.parse_time(metadata["created_at"]), "Gradescope submission time")


def grade(root: Path):
    from autograder.grading import catalogue
    from autograder.grading.grade import grade_notebook
    from autograder.grading.results import zero_result

    source = root / "source"
    assignment = assignment_name(source)
    spec = catalogue.load(assignment) if assignment else None
    notebook, ignored = choose_notebook(root / "submission", assignment)
    _, linked = submitted_notebooks(root / "submission")
    not_followed = f" (not followed: {', '.join(linked)}, symbolic links to folders)" if linked else ""
    if notebook is None:
        expected = f"{assignment}.ipynb" if assignment else "your .ipynb notebook"
        return zero_result(
            "", spec, f"no notebook (.ipynb) was found in your submission: upload {expected}{not_followed}"
        )
    # Read without following a link: a notebook that is a link (to the solution, say) scores 0 and says why.
    result = grade_notebook(notebook, assignment)
    if linked:
        result.notes.append(f"not followed: {', '.join(linked)} (symbolic links to folders)")
    if ignored:
        result.notes.append(
            f"graded {notebook.relative_to(root / 'submission').as_posix()}; ignored " + ", ".join(ignored)
        )
    return apply_late_policy(result, root, source, assignment)


def main() -> int:
    from autograder.grading.reports import atomic_write, feedback_html, feedback_markdown, gradescope_json
    from autograder.grading.results import zero_result

    root = gradescope_root()
    started = time.monotonic()
    try:
        result = grade(root)
    except Exception as exc:  # a grader bug: the learner gets a zero and a reason, staff the traceback
        print(traceback.format_exc())
        result = zero_result(
            "",
            None,
            f"the grader failed on this submission ({type(exc).__name__}); the course staff can see why",
            grader_error=True,
            execution_time=time.monotonic() - started,
        )
    results = root / "results"
    atomic_write(results / "results.json", gradescope_json(result))
    atomic_write(results / "feedback.md", feedback_markdown(result))
    atomic_write(results / "feedback.html", feedback_html(result))
    import autograder

    # stdout is for instructors (Gradescope hides it from learners): say what graded what.
    print(f"{result.output}\ngraded by {Path(autograder.__file__).parent} (sandbox: {result.sandbox})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
