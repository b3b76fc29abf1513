"""The course's roster: who should have submitted, and the ids an LMS matches its rows on.

``dlgrade batch --roster roster.csv`` reads a CSV with a header row. Recognised layouts:

dlgrade    learner,name,email,sis_user_id,canvas_user_id,sis_login_id,section
           (only ``learner`` is required: the name the submissions folder uses for them, a
           <learner>.ipynb or a <learner>/ folder; the other columns may be left out or blank)
nbgrader   id,first_name,last_name,email,lms_user_id   (``nbgrader db student import``'s CSV:
           ``id`` is the learner, ``lms_user_id`` their Canvas user id)
Canvas     Student,ID,SIS User ID,SIS Login ID,Section[,assignment columns...]  (a gradebook
           export: the learner is the SIS Login ID, ``ID`` the Canvas user id; the export's
           assignment columns and its "Points Possible" row are ignored)

Headers are matched without regard to case, spaces or underscores. A roster is staff input, but
it is still bounded and checked before anything uses it: at most MAX_ROSTER_BYTES and MAX_LEARNERS
rows, each cell at most MAX_CELL characters, every learner id passes names.py's rule, no id twice,
no column the layout does not know (a typo such as ``emial`` would silently drop a column).
Every refusal is a :class:`RosterError` naming the file and the line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from autograder.batch.names import name_problem

MAX_ROSTER_BYTES = 16 * 1024 * 1024
MAX_LEARNERS = 100_000
MAX_CELL = 256

DLGRADE_COLUMNS = ("learner", "name", "email", "sis_user_id", "canvas_user_id", "sis_login_id", "section")
NBGRADER_COLUMNS = {"id": "learner", "first_name": "first_name", "last_name": "last_name", "email": "email"}
NBGRADER_COLUMNS["lms_user_id"] = "canvas_user_id"
CANVAS_COLUMNS = {
    "student": "name",
    "id": "canvas_user_id",
    "sis_user_id": "sis_user_id",
    "sis_login_id": "learner",
    "section": "section",
    "integration_id": "integration_id",
}
CANVAS_POINTS_ROW = "points possible"  # the second row of a Canvas export: the maxima


class RosterError(Exception):
    """The roster cannot be used; ``str()`` names the file, the line and why."""


@dataclass(frozen=True, kw_only=True)
class Person:
    """One roster row: ``learner`` is the name the submissions use; the rest is for people and LMSs."""

    learner: str
    name: str = ""
    email: str = ""
    sis_user_id: str = ""
    canvas_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    line: int = 0  # the roster's line, for messages


@dataclass(frozen=True)
class Roster:
    """The roster's people, in the file's order; ``layout`` is which of the layouts above it used."""

    people: tuple
    layout: str
    path: str = ""

    def __contains__(self, learner: object) -> bool:
        return learner in self.by_learner

    @cached_property
    def by_learner(self) -> dict:
        return {person.learner: person for person in self.people}

    def get(self, learner: str) -> Person | None:
        return self.by_learner.get(learner)


def _key(header: str) -> str:
    return "_".join(header.strip().lower().replace("_", " ").split())


def _layout(keys: list, path: str) -> tuple:
    """(layout name, {column index: field}) for the header's keys."""
    if "learner" in keys:
        known = {k: k for k in DLGRADE_COLUMNS}
        layout = "dlgrade"
    elif "student" in keys and "sis_login_id" in keys:
        known = CANVAS_COLUMNS
        layout = "Canvas"
    elif "id" in keys:
        known = NBGRADER_COLUMNS
        layout = "nbgrader"
    else:
        raise RosterError(
            f"{path} line 1: no learner column; expected a header such as "
            f"{','.join(DLGRADE_COLUMNS)} (only learner is required), nbgrader's id,first_name,last_name,"
            "email,lms_user_id, or a Canvas gradebook export (Student,ID,SIS User ID,SIS Login ID,Section)"
        )
    fields: dict = {}
    for index, key in enumerate(keys):
        if key in known:
            if known[key] in fields.values():
                raise RosterError(f"{path} line 1: the column {key} appears twice")
            fields[index] = known[key]
        elif layout != "Canvas":  # a Canvas export's other columns are its assignments
            raise RosterError(f"{path} line 1: unknown column {key!r} for a {layout} roster; known: {', '.join(known)}")
    return layout, fields


def parse_roster(text: str, path: str = "roster.csv") -> Roster:
    """The roster in ``text`` (a CSV with a header row); see the module's docstring."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise RosterError(f"{path} is empty: expected a header row, then one row per learner")
        layout, fields = _layout([_key(h) for h in header], path)
        people: list = []
        seen: dict = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(people) >= MAX_LEARNERS:
                raise RosterError(f"{path} line {line}: more than {MAX_LEARNERS} learners")
            values: dict = {}
            for index, cell in enumerate(row):
                if index in fields:
                    if len(cell) > MAX_CELL:
                        raise RosterError(f"{path} line {line}: a cell of {len(cell)} characters (at most {MAX_CELL})")
                    values[fields[index]] = cell.strip()
            if layout == "Canvas" and values.get("name", "").lower() == CANVAS_POINTS_ROW:
                continue
            learner = values.pop("learner", "")
            why = name_problem(learner)
            if why:
                raise RosterError(f"{path} line {line}: learner {learner!r} refused: {why}")
            if learner in seen:
                raise RosterError(f"{path} line {line}: learner {learner!r} again (first on line {seen[learner]})")
            seen[learner] = line
            first, last = values.pop("first_name", ""), values.pop("last_name", "")
            if first or last:
                values["name"] = f"{first} {last}".strip()
            values.pop("integration_id", None)
            if layout == "Canvas":
                values["sis_login_id"] = learner
            people.append(Person(learner=learner, line=line, **values))
    except csv.Error as exc:
        raise RosterError(f"{path} line {reader.line_num}: not a valid CSV row ({exc})") from exc
    if not people:
        raise RosterError(f"{path} has a header but no learner")
    return Roster(tuple(people), layout, path)


def load_roster(path) -> Roster:
    """Read and check ``path`` (at most MAX_ROSTER_BYTES, UTF-8 with or without a BOM)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_ROSTER_BYTES + 1)
    except OSError as exc:
        raise RosterError(f"cannot read the roster {path}: {exc.strerror}") from exc
    if len(data) > MAX_ROSTER_BYTES:
        raise RosterError(f"{path} is larger than {MAX_ROSTER_BYTES // (1024 * 1024)} MB: not a roster")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RosterError(f"{path} is not UTF-8 text (byte {exc.start}); save it as CSV UTF-8") from exc
    return parse_roster(text, str(path))
