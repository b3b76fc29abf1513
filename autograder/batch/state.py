"""A batch's memory: one SQLite row per (learner, assignment), committed per submission.

Why SQLite in WAL mode with synchronous=FULL: every grade is committed (and on
disk) before the next one is recorded, so a batch killed at any moment (even
``kill -9``) loses nothing that it reported as graded, and a reader (the
gradebook, an instructor's ``sqlite3`` shell) never blocks the writer.

A row remembers everything its grade depends on (:class:`Inputs`): the
submission's bytes, the assignment's hidden suite and helper modules, its
reference solution, its limits and settings, and the engine's version. A
submission is graded again when any of them changed, and the batch says which.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from autograder.grading.results import cap_document

SCHEMA_VERSION = 2

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
    suite       TEXT NOT NULL DEFAULT '',      -- Inputs: what else the grade depends on
    reference   TEXT NOT NULL DEFAULT '',
    limits      TEXT NOT NULL DEFAULT '',
    engine      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (learner, assignment)
);
CREATE INDEX IF NOT EXISTS grades_by_source ON grades (source);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Schema 1 (dlgrade before the Inputs) had the first eight columns only.
MIGRATE_FROM_1 = [
    f"ALTER TABLE grades ADD COLUMN {column} TEXT NOT NULL DEFAULT ''"
    for column in ("suite", "reference", "limits", "engine")
]


@dataclass(frozen=True)
class Inputs:
    """What one grade depends on besides the notebook's bytes (digests; '' = not known)."""

    suite: str = ""  # the hidden suite's files and the assignment's helper modules
    reference: str = ""  # the solution notebook (reference functions, points)
    limits: str = ""  # assignment.toml: limits and settings
    engine: str = ""  # the grading engine's version

    WHAT = {
        "suite": "the hidden suite changed",
        "reference": "the reference solution changed",
        "limits": "the assignment's limits or settings changed",
        "engine": "the grading engine changed",
    }

    def changes(self, before: Inputs) -> list:
        """Why a grade made with ``before`` is out of date (empty: it is not)."""
        if not any((before.suite, before.reference, before.limits, before.engine)):
            return ["graded by an earlier dlgrade that did not record what a grade depends on"]
        return [self.WHAT[f.name] for f in fields(self) if getattr(self, f.name) != getattr(before, f.name)]


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _files_digest(paths) -> str:
    files = sorted(p for p in paths if p.is_file() and "__pycache__" not in p.parts)
    return _digest(*[p.name.encode() + b"\0" + p.read_bytes() for p in files])


@cache
def engine_version() -> str:
    """dlgrade's version and a digest of the code that decides a grade (not of the reports)."""
    from autograder import __file__ as package_init
    from autograder import __version__

    package = Path(package_init).parent
    code = [
        p for folder in ("grading", "sandbox") for p in (package / folder).glob("*.py") if p.name != "reports.py"
    ] + [package / "suites" / "pytest.ini"]
    return f"{__version__}+{_files_digest(code)}"


def assignment_inputs(name: str) -> Inputs:
    """The Inputs of a grade of assignment ``name`` with the files on disk now."""
    from autograder.grading import catalogue

    if name not in catalogue.names():
        return Inputs(engine=engine_version())  # an unidentified notebook: only the engine matters
    spec = catalogue.load(name)
    toml = spec.suite_dir / "assignment.toml"
    settings = json.dumps(asdict(spec.config), sort_keys=True, default=str).encode()
    suite = [p for p in spec.suite_dir.rglob("*") if p != toml] + list(spec.release_dir.glob("*.py"))
    return Inputs(
        suite=_files_digest(suite),
        reference=_digest(spec.solution_path.read_bytes()),
        limits=_digest(settings),
        engine=engine_version(),
    )


@dataclass(frozen=True)
class Grade:
    learner: str
    assignment: str
    source: str
    sha256: str
    result: dict
    graded_at: str
    inputs: Inputs = Inputs()


class StateError(Exception):
    pass


_COLUMNS = "learner, assignment, source, sha256, result, graded_at, suite, reference, limits, engine"


class GradeState:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)  # we BEGIN/COMMIT ourselves
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, 1, SCHEMA_VERSION):
                raise StateError(
                    f"{self.path} was written by a newer dlgrade (schema {version}); "
                    "upgrade dlgrade or use another --out"
                )
            if version == 1:  # one transaction: a migration is done whole or not at all
                self.db.execute("BEGIN IMMEDIATE")
                for statement in MIGRATE_FROM_1:
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                self.db.execute("COMMIT")
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
        row = self.db.execute(f"SELECT {_COLUMNS} FROM grades WHERE source = ?", (source,)).fetchone()
        return self._grade(row) if row else None

    def find_key(self, learner: str, assignment: str) -> Grade | None:
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM grades WHERE learner = ? AND assignment = ?", (learner, assignment)
        ).fetchone()
        return self._grade(row) if row else None

    def record(
        self, learner: str, assignment: str, source: str, sha256: str, result, inputs: Inputs = Inputs()
    ) -> list:
        """Store one grade and commit. Returns the (learner, assignment) keys this replaced
        under another assignment (the same file now declares a different assignment)."""
        graded_at = datetime.now(UTC).isoformat(timespec="seconds")
        # Every string capped (results.cap_document): a row is never refused as too big.
        document = cap_document(result.to_dict() if hasattr(result, "to_dict") else result)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            stale = self.db.execute(
                "SELECT learner, assignment FROM grades WHERE source = ? AND NOT (learner = ? AND assignment = ?)",
                (source, learner, assignment),
            ).fetchall()
            self.db.execute(
                "DELETE FROM grades WHERE source = ? AND NOT (learner = ? AND assignment = ?)",
                (source, learner, assignment),
            )
            self.db.execute(
                f"INSERT OR REPLACE INTO grades ({_COLUMNS.replace('result', 'score, max_score, result')})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    learner,
                    assignment,
                    source,
                    sha256,
                    float(document.get("score") or 0.0),
                    float(document.get("max_score") or 0.0),
                    json.dumps(document),
                    graded_at,
                    inputs.suite,
                    inputs.reference,
                    inputs.limits,
                    inputs.engine,
                ),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return [tuple(row) for row in stale]

    def execution_times(self, assignment: str, limit: int = 200) -> list:
        """The grading seconds (results.json's execution_time) of up to ``limit`` recent grades of
        ``assignment``: what the batch expects a job of it to cost (plan.expected_seconds)."""
        rows = self.db.execute(
            "SELECT json_extract(result, '$.execution_time') FROM grades WHERE assignment = ? "
            "ORDER BY graded_at DESC LIMIT ?",
            (assignment, limit),
        )
        return [float(value) for (value,) in rows if isinstance(value, (int, float)) and value > 0]

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def grades(self) -> list:
        """Every grade, sorted by assignment then learner."""
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM grades ORDER BY assignment, learner")
        return [self._grade(row) for row in rows]

    @staticmethod
    def _grade(row) -> Grade:
        learner, assignment, source, sha256, result, graded_at, *inputs = row
        return Grade(learner, assignment, source, sha256, json.loads(result), graded_at, Inputs(*inputs))
