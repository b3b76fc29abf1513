"""Learner and assignment names are data: the rule they must follow, and where a learner's reports live.

A learner's name is a folder or file name from the submissions folder, chosen by whoever made it
(a learner's repository, an LMS download); an assignment's is a course's suite name. Both become
gradebook cells, terminal lines and a folder of --out, so a batch refuses a name unless it

- has 1 to MAX_NAME characters, none of them a path separator (``/``, ``\\``) or NUL;
- is printable: no control character (C0, DEL, C1), no line or paragraph separator, no bidi
  mark, override or isolate, no other format character, no space but U+0020 (``str.isprintable``);
- does not start or end with a space, and is not ``.`` or ``..``.

A refused learner's notebooks are listed in skipped.txt with the reason and named on the terminal.

Each learner's reports go in OUT/learners/<learner>/<assignment>/ (:func:`learner_folder`): no
learner name can be one of the course's own files (gradebook.csv, index.html, skipped.txt,
batch-state.sqlite, ...), which all sit directly in OUT.
"""

from __future__ import annotations

from pathlib import Path

LEARNERS_DIR = "learners"  # OUT/learners/<learner>/<assignment>/{results.json,junit.xml,feedback.*}
MAX_NAME = 128  # characters: a folder name holds at most 255 bytes, a gradebook cell is read by people


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a learner or assignment identifier (None: it can)."""
    if not name:
        return "an empty name"
    if len(name) > MAX_NAME:
        return f"{len(name)} characters, more than {MAX_NAME}"
    if name in (".", ".."):
        return f"{name!r} names a folder, not a learner"
    if "/" in name or "\\" in name:
        return "holds a path separator"
    if not name.isprintable():
        return "holds a control, format or separator character (line break, tab, escape, bidi override...)"
    if name != name.strip():
        return "starts or ends with a space"
    return None


def learner_folder(out: Path, learner: str, assignment: str) -> Path:
    """Where one learner's reports for one assignment go: OUT/learners/<learner>/<assignment>.

    Raises ValueError for a name :func:`name_problem` refuses (the batch never records one)."""
    for kind, name in (("learner", learner), ("assignment", assignment)):
        why = name_problem(name)
        if why:
            raise ValueError(f"{kind} name {name!r} refused: {why}")
    return Path(out) / LEARNERS_DIR / learner / assignment


def feedback_href(learner: str, assignment: str) -> str:
    """The course page's link (relative to OUT) to a learner's feedback.html."""
    from urllib.parse import quote

    return f"{LEARNERS_DIR}/{quote(learner)}/{quote(assignment)}/feedback.html"
