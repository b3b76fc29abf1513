"""A batch's memory: one SQLite row per (learner, assignment), committed per submission.

Why SQLite in WAL mode with synchronous=FULL: every grade is committed (and on
disk) before the next one is recorded, so a batch killed at any moment (even
``kill -9``) loses nothing that it reported as graded, and a reader (the
gradebook, an instructor's ``sqlite3`` shell) never blocks the writer.

A row remembers the submission file's sha256: a submission is graded again only
when its file changed.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS grades (
    learner     TEXT NOT NULL,
    assignment  TEXT NOT NULL,
    source      TEXT NOT NULL,   -- the file, relative to the submissions folder
    sha256      TEXT NOT NULL,   -- of the bytes that were graded
    score       REAL NOT NULL,
    max_score   REAL NOT NULL,
    result      TEXT NOT NULL,   -- the results.json document
    graded_at   TEXT NOT NULL,   -- UTC, ISO 8601
    PRIMARY KEY (learner, assignment)
);
CREATE INDEX IF NOT EXISTS grades_by_source ON grades (source);
"""


@dataclass(frozen=True)
class Grade:
    learner: str
    assignment: str
    source: str
    sha256: str
    result: dict
    graded_at: str


class StateError(Exception):
    pass


class GradeState:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)  # we BEGIN/COMMIT ourselves
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise StateError(f"{self.path} was written by another dlgrade version (schema {version})")
            self.db.executescript(SCHEMA)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StateError(f"cannot use the batch state {self.path}: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def find(self, source: str) -> Grade | None:
        """The grade recorded for this submission file, if any."""
        row = self.db.execute("SELECT learner, assignment, source, sha256, result, graded_at FROM grades "
                              "WHERE source = ?", (source,)).fetchone()
        return self._grade(row) if row else None

    def record(self, learner: str, assignment: str, source: str, sha256: str, result: dict) -> list:
        """Store one grade and commit. Returns the (learner, assignment) keys this replaced
        under another assignment (the same file now declares a different assignment)."""
        graded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            stale = self.db.execute(
                "SELECT learner, assignment FROM grades WHERE source = ? AND NOT (learner = ? AND assignment = ?)",
                (source, learner, assignment)).fetchall()
            self.db.execute("DELETE FROM grades WHERE source = ? AND NOT (learner = ? AND assignment = ?)",
                            (source, learner, assignment))
            self.db.execute(
                "INSERT OR REPLACE INTO grades (learner, assignment, source, sha256, score, max_score, result, graded_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (learner, assignment, source, sha256, float(result.get("score") or 0.0),
                 float(result.get("max_score") or 0.0), json.dumps(result), graded_at))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return [tuple(row) for row in stale]

    def grades(self) -> list:
        """Every grade, sorted by assignment then learner."""
        rows = self.db.execute(
            "SELECT learner, assignment, source, sha256, result, graded_at FROM grades ORDER BY assignment, learner")
        return [self._grade(row) for row in rows]

    @staticmethod
    def _grade(row) -> Grade:
        learner, assignment, source, sha256, result, graded_at = row
        return Grade(learner, assignment, source, sha256, json.loads(result), graded_at)
