"""Find the submissions in a folder, in the layouts courses hand them in.

flat            SUBMISSIONS/<learner>.ipynb                      (one assignment's downloads; learner = file stem)
learner folders SUBMISSIONS/<learner>/<name>.ipynb               (GitHub Classroom repositories, LMS downloads)
nbgrader        SUBMISSIONS/<learner>/<assignment>/<name>.ipynb  (nbgrader's submitted/)

Learner folders and nbgrader's may be mixed (per learner, per notebook). When a
folder holds learner folders, notebooks directly in it are skipped. Hidden files
and folders (``.ipynb_checkpoints``, ``.DS_Store``...) and nbgrader's
``timestamp.txt`` are ignored silently; every other file that is not graded is
listed in ``Discovery.skipped`` with the reason, one entry per file. A learner whose name
names.py refuses (a control character, a path separator, too long...) is not graded: each of
its notebooks is listed in ``Discovery.skipped`` with the reason.

Nothing is followed through a symbolic link (a learner folder that links to another learner's, or
to the solutions): a link to a folder is skipped with that reason. Every ``*.ipynb`` that is not a
folder is a submission, whatever it is: a link, a fifo or a device named ``.ipynb`` is refused when
it is read (:func:`autograder.grading.submission_file.read_submission_bytes`), which gives it a zero
and the reason.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

from autograder.batch.names import name_problem

FLAT, LEARNER_FOLDER, NBGRADER = "flat", "learner folders", "nbgrader"
EXPECTED = {"timestamp.txt"}  # nbgrader writes it beside each submission
LINK = "a symbolic link, not followed (submissions must be real files and folders)"


class SubmissionsError(Exception):
    """The folder cannot be used at all; ``str()`` says why."""


@dataclass(frozen=True)
class Submission:
    learner: str
    path: Path
    source: str  # path relative to the submissions folder: the state's file identity
    folder_assignment: str | None = None  # nbgrader layout: the <assignment> folder's name
    layout: str = FLAT


@dataclass
class Discovery:
    layout: str  # FLAT, LEARNER_FOLDER, NBGRADER, or "learner folders + nbgrader"
    submissions: list  # [Submission], sorted by learner then path
    warnings: list  # things the instructor should know
    skipped: list = field(default_factory=list)  # [(source, reason)] files that are not graded
    root: Path | None = None  # the submissions folder: no link below it is followed when reading


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _mode(path: Path) -> int:
    """The entry's own type and mode (a link is a link); 0 when it vanished."""
    try:
        return path.lstat().st_mode
    except OSError:
        return 0


def _is_folder(path: Path) -> bool:
    return stat.S_ISDIR(_mode(path))


def _is_link(path: Path) -> bool:
    return stat.S_ISLNK(_mode(path))


def _is_notebook(path: Path) -> bool:
    """Named ``*.ipynb`` and not a folder: read (or refused with its reason) as a submission."""
    mode = _mode(path)
    return path.suffix == ".ipynb" and mode != 0 and not stat.S_ISDIR(mode)


def _not_graded(path: Path) -> str:
    if _is_link(path):
        return LINK
    return "a folder" if _is_folder(path) else "not a notebook (.ipynb)"


def _entries(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if _visible(p))


def discover(root: Path) -> Discovery:
    root = Path(root)
    if not root.exists():
        raise SubmissionsError(f"{root} does not exist")
    if not root.is_dir():
        raise SubmissionsError(f"{root} is not a folder (give the folder that holds the submitted notebooks)")

    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    nested, skipped, top_files = [], [], []
    for entry in _entries(root):
        if _is_link(entry) and not _is_notebook(entry):
            skipped.append((rel(entry), LINK))  # another learner's folder, the solutions...: not followed
            continue
        if not _is_folder(entry):
            top_files.append(entry)
            continue
        learner = entry.name
        for inner in _entries(entry):
            if _is_notebook(inner):
                nested.append(Submission(learner, inner, rel(inner), None, LEARNER_FOLDER))
            elif _is_folder(inner):
                for item in _entries(inner):
                    if _is_notebook(item):
                        nested.append(Submission(learner, item, rel(item), inner.name, NBGRADER))
                    elif item.name not in EXPECTED:
                        skipped.append((rel(item), _not_graded(item)))
            elif inner.name not in EXPECTED:
                skipped.append((rel(inner), _not_graded(inner)))

    if nested:
        for path in top_files:
            skipped.append(
                (
                    rel(path),
                    "directly in the submissions folder, which holds learner folders"
                    if _is_notebook(path)
                    else _not_graded(path),
                )
            )
        layouts = sorted({s.layout for s in nested}, key=[LEARNER_FOLDER, NBGRADER].index)
        found = Discovery(" + ".join(layouts), nested, [], sorted(skipped), root)
    else:
        flat = [Submission(p.stem, p, p.name) for p in top_files if _is_notebook(p)]
        if not flat:
            raise SubmissionsError(
                f"no notebooks found in {root}; expected {root}/<learner>.ipynb, {root}/<learner>/<name>.ipynb "
                f"or nbgrader's {root}/<learner>/<assignment>/<name>.ipynb"
            )
        skipped += [(rel(p), _not_graded(p)) for p in top_files if not _is_notebook(p)]
        found = Discovery(FLAT, flat, [], sorted(skipped), root)
    accepted: list = []
    refused: dict = {}
    for sub in found.submissions:
        why = name_problem(sub.learner)
        if why:
            found.skipped.append((sub.source, f"learner name refused: {why}"))
            refused.setdefault((sub.learner, why), []).append(sub.source)
        else:
            accepted.append(sub)
    found.submissions = accepted
    found.skipped.sort()
    for (learner, why), sources in sorted(refused.items()):
        found.warnings.append(
            f"learner name refused: {learner} ({why}); its {len(sources)} notebook(s) are not graded "
            "and are listed in skipped.txt"
        )
    if found.skipped:
        shown = ", ".join(f"{source} ({why})" for source, why in found.skipped[:3])
        more = f" and {len(found.skipped) - 3} more" if len(found.skipped) > 3 else ""
        found.warnings.append(f"skipped {len(found.skipped)} file(s) that are not graded: {shown}{more}")
    return found
