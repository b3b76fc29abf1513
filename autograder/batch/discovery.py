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

Every learner folder found is in ``Discovery.learners``, an empty one too (the course's rows then say
"missing" for it, see ledger.py), and an empty one is a line in ``Discovery.skipped``.

Two folders are refused with what to give instead: an nbgrader course root (``source/``,
``release/``, ``submitted/``...: its learners are in ``submitted/``) and nbgrader's exchange
``inbound/`` folder (``<learner>+<assignment>+<time>[+<id>]`` folders, whose times and names the
learner's own nbgrader wrote: ``nbgrader collect`` puts them in the course's ``submitted/``).

Nothing is followed through a symbolic link (a learner folder that links to another learner's, or
to the solutions): a link to a folder is skipped with that reason. Every ``*.ipynb`` that is not a
folder is a submission, whatever it is: a link, a fifo or a device named ``.ipynb`` is refused when
it is read (:func:`autograder.grading.submission_file.read_submission_bytes`), which gives it a zero
and the reason.
"""

from __future__ import annotations

import re
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
    learners: set = field(default_factory=set)  # every learner folder found (accepted names), empty ones too


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


NBGRADER_COURSE = ("source", "release", "submitted", "autograded", "feedback")  # nbgrader's course folders
NBGRADER_FILES = ("nbgrader_config.py", "gradebook.db")


EXCHANGE_NAME = re.compile(r"[^+]+\+[^+]+\+\d{4}-\d{2}-\d{2}")  # nbgrader: learner+assignment+2024-05-01 10:00...


def _exchange_entry(name: str) -> bool:
    """``<learner>+<assignment>+<time>[+<random id>]``: a folder of nbgrader's exchange inbound/."""
    return EXCHANGE_NAME.match(name) is not None


def refuse_nbgrader_folders(root: Path, folders: list) -> None:
    """An nbgrader course root or exchange inbound/ is not a submissions folder: say which to give."""
    names = {p.name for p in folders}
    course = [n for n in NBGRADER_COURSE if n in names]
    marker = any((root / n).is_file() for n in NBGRADER_FILES)
    if "submitted" in names and (len(course) >= 2 or marker):
        raise SubmissionsError(
            f"{root} is an nbgrader course folder (it has {', '.join(n + '/' for n in course)}): its learners' notebooks are in "
            f"{root / 'submitted'}; give that folder (source/ and release/ are the course's own notebooks)"
        )
    if folders and sum(_exchange_entry(n) for n in names) * 2 > len(names):
        raise SubmissionsError(
            f"{root} looks like nbgrader's exchange inbound/ folder (<learner>+<assignment>+<time> folders, "
            "named and timed by each learner's own nbgrader): run `nbgrader collect` and give the course's "
            "submitted/ folder, where each learner has one folder and nbgrader's own timestamp"
        )


def discover(root: Path) -> Discovery:
    root = Path(root)
    if not root.exists():
        raise SubmissionsError(f"{root} does not exist")
    if not root.is_dir():
        raise SubmissionsError(f"{root} is not a folder (give the folder that holds the submitted notebooks)")
    refuse_nbgrader_folders(root, [p for p in _entries(root) if _is_folder(p)])

    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    nested: list = []
    skipped: list = []
    top_files: list = []
    folders: set = set()
    for entry in _entries(root):
        if _is_link(entry) and not _is_notebook(entry):
            skipped.append((rel(entry), LINK))  # another learner's folder, the solutions...: not followed
            continue
        if not _is_folder(entry):
            top_files.append(entry)
            continue
        learner = entry.name
        folders.add(learner)
        before = len(nested)
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
        if len(nested) == before and not name_problem(learner):
            skipped.append((rel(entry) + "/", "a learner folder with no notebook: nothing to grade"))

    if nested or (folders and not any(_is_notebook(p) for p in top_files)):
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
        found = Discovery(" + ".join(layouts) or LEARNER_FOLDER, nested, [], sorted(skipped), root)
        found.learners = {name for name in folders if not name_problem(name)}
        for name in sorted(folders - found.learners):
            if not any(sub.learner == name for sub in nested):  # an empty folder: no notebook to list
                found.skipped.append((name + "/", f"learner name refused: {name_problem(name)}"))
    else:
        flat = [Submission(p.stem, p, p.name) for p in top_files if _is_notebook(p)]
        if not flat:
            raise SubmissionsError(
                f"no notebooks found in {root}; expected {root}/<learner>.ipynb, {root}/<learner>/<name>.ipynb "
                f"or nbgrader's {root}/<learner>/<assignment>/<name>.ipynb"
            )
        skipped += [(rel(p), _not_graded(p)) for p in top_files if not _is_notebook(p)]
        found = Discovery(FLAT, flat, [], sorted(skipped), root)
    found.learners |= {sub.learner for sub in found.submissions if not name_problem(sub.learner)}
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
