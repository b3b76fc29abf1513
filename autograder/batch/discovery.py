"""Find the submissions in a folder, in either of the two layouts we accept.

flat      SUBMISSIONS/<learner>.ipynb                        (learner = file stem)
nbgrader  SUBMISSIONS/<learner>/<assignment>/<name>.ipynb    (nbgrader's submitted/)

Hidden files and folders (``.ipynb_checkpoints``, ``.DS_Store``...) are ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class SubmissionsError(Exception):
    """The folder cannot be used at all; ``str()`` says why."""


@dataclass(frozen=True)
class Submission:
    learner: str
    path: Path
    source: str                 # path relative to the submissions folder: the state's file identity
    folder_assignment: str | None = None   # nbgrader layout: the <assignment> folder's name


@dataclass
class Discovery:
    layout: str                  # "flat" or "nbgrader"
    submissions: list            # [Submission], sorted by learner then path
    warnings: list               # things the instructor should know (ignored files...)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _notebooks(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.suffix == ".ipynb" and p.is_file() and _visible(p))


def discover(root: Path) -> Discovery:
    root = Path(root)
    if not root.exists():
        raise SubmissionsError(f"{root} does not exist")
    if not root.is_dir():
        raise SubmissionsError(f"{root} is not a folder (give the folder that holds the submitted notebooks)")

    nested = []
    for learner_dir in sorted(p for p in root.iterdir() if p.is_dir() and _visible(p)):
        for assignment_dir in sorted(p for p in learner_dir.iterdir() if p.is_dir() and _visible(p)):
            for notebook in _notebooks(assignment_dir):
                nested.append(Submission(
                    learner=learner_dir.name,
                    path=notebook,
                    source=notebook.relative_to(root).as_posix(),
                    folder_assignment=assignment_dir.name,
                ))
    flat = [Submission(learner=p.stem, path=p, source=p.name) for p in _notebooks(root)]

    if nested:
        warnings = []
        if flat:
            warnings.append(f"ignored {len(flat)} notebook(s) directly in {root} ({', '.join(s.source for s in flat[:3])}"
                            f"{', ...' if len(flat) > 3 else ''}): the folder uses nbgrader's "
                            "<learner>/<assignment>/<name>.ipynb layout")
        return Discovery("nbgrader", nested, warnings)
    if not flat:
        raise SubmissionsError(
            f"no notebooks found in {root}; expected {root}/<learner>.ipynb "
            f"or nbgrader's {root}/<learner>/<assignment>/<name>.ipynb")
    return Discovery("flat", flat, [])
