"""The service's tables (SQLAlchemy 2), and the engine that reaches them: SQLite in WAL mode or PostgreSQL.

One state model with the batch: a graded submission is a batch ``state.Grade`` (learner, assignment,
source, sha256, result, graded_at, Inputs); :meth:`Submission.grade` turns a row into one, so the
ledger, gradebooks, late policy and course page of batch/ work on the service's rows unchanged.

The schema is created and upgraded by Alembic (migrations/); :func:`upgrade` runs it at start.
Times are UTC, written by the server, never by a learner.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

# A submission's life: queued -> grading -> graded (a grading row whose grader died goes back to queued).
QUEUED, GRADING, GRADED = "queued", "grading", "graded"
PRACTICE, GRADED_MODE = "practice", "graded"  # feedback at once, or when staff release it


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every database (SQLite keeps no zone: it is put back on reading)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime: the service stores aware UTC times only")
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class Staff(Base):
    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(256), unique=True)
    password_hash: Mapped[str] = mapped_column(String(512))  # argon2id (auth.py)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Learner(Base):
    """A roster row (batch/roster.Person's fields) and the digest of their sign-in token."""

    __tablename__ = "learners"
    learner: Mapped[str] = mapped_column(String(128), primary_key=True)  # names.py's rule (roster.py checks)
    name: Mapped[str] = mapped_column(String(256), default="")
    email: Mapped[str] = mapped_column(String(256), default="")
    sis_user_id: Mapped[str] = mapped_column(String(256), default="")
    canvas_user_id: Mapped[str] = mapped_column(String(256), default="")
    sis_login_id: Mapped[str] = mapped_column(String(256), default="")
    section: Mapped[str] = mapped_column(String(256), default="")
    token_digest: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)  # sha256 hex
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False: removed from the roster, rows kept
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Assignment(Base):
    """An assignment of the course (a catalogue name): open or closed, its deadline and late policy
    (batch/late.Policy's fields), and when learners see feedback."""

    __tablename__ = "assignments"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    is_open: Mapped[bool] = mapped_column(Boolean, default=False)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    grace_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    penalty_per_day: Mapped[float] = mapped_column(Float, default=0.0)
    zero_after_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    late: Mapped[str] = mapped_column(String(16), default="penalty")  # penalty | zero
    accept_late: Mapped[bool] = mapped_column(Boolean, default=True)  # after the deadline: recorded, marked late
    feedback: Mapped[str] = mapped_column(String(16), default=PRACTICE)  # practice | graded
    released: Mapped[bool] = mapped_column(Boolean, default=False)  # graded mode: feedback visible


class Extension(Base):
    """One learner's extension (batch/late.Extension): extra days, or a new deadline."""

    __tablename__ = "extensions"
    __table_args__ = (UniqueConstraint("learner", "assignment"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner: Mapped[str] = mapped_column(ForeignKey("learners.learner"))
    assignment: Mapped[str] = mapped_column(ForeignKey("assignments.name"))
    days: Mapped[float] = mapped_column(Float, default=0.0)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Submission(Base):
    """One upload, stored as a content-addressed blob (blobs.py), never under its learner-given name.

    The result columns are state.Grade's; ``attempts`` counts how often a grader took it (a grader
    that died leaves it ``grading`` until its lease runs out, then it is queued again).
    """

    __tablename__ = "submissions"
    __table_args__ = (
        Index("submissions_by_key", "learner", "assignment", "submitted_at"),
        Index("submissions_by_status", "status", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner: Mapped[str] = mapped_column(ForeignKey("learners.learner"))
    assignment: Mapped[str] = mapped_column(String(128))  # what the learner submitted it as
    filename: Mapped[str] = mapped_column(String(256))  # shown only, cleaned (names.py); never a path
    sha256: Mapped[str] = mapped_column(String(64))  # the blob
    size: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # the server's clock
    via: Mapped[str] = mapped_column(String(16), default="browser")  # browser | api
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_by: Mapped[str] = mapped_column(String(128), default="")
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # raw: the late policy applies on reading
    max_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # results.json (cap_document)
    graded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    suite: Mapped[str] = mapped_column(String(64), default="")  # state.Inputs of the grade
    reference: Mapped[str] = mapped_column(String(64), default="")
    limits: Mapped[str] = mapped_column(String(64), default="")
    engine: Mapped[str] = mapped_column(String(128), default="")
    regrade_reason: Mapped[str] = mapped_column(Text, default="")  # why it was queued again

    def grade(self):
        """This row as the batch's state.Grade (its raw result; late policy not applied)."""
        from autograder.batch.state import Grade, Inputs

        return Grade(
            learner=self.learner,
            assignment=self.assignment,
            source=f"submission {self.id}",
            sha256=self.sha256,
            result=self.result or {},
            graded_at=self.graded_at.isoformat(timespec="seconds") if self.graded_at else "",
            inputs=Inputs(self.suite, self.reference, self.limits, self.engine),
        )


class Refusal(Base):
    """An upload that was refused (damaged, another assignment's, closed, too late, too large...): kept
    with its reason, so every upload ends in exactly one row, a Submission or a Refusal. Its bytes are
    not kept. Rate-limit refusals are not recorded (they would let a flood write rows)."""

    __tablename__ = "refusals"
    __table_args__ = (Index("refusals_by_learner", "learner", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner: Mapped[str] = mapped_column(ForeignKey("learners.learner"))
    assignment: Mapped[str] = mapped_column(String(128), default="")  # what the learner asked for ("" none)
    filename: Mapped[str] = mapped_column(String(256), default="")  # cleaned (uploads.safe_filename)
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # the server's clock
    via: Mapped[str] = mapped_column(String(16), default="browser")
    status: Mapped[int] = mapped_column(Integer)  # the HTTP status the learner got
    reason: Mapped[str] = mapped_column(Text)  # what the learner was told


def make_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite files get WAL, synchronous=FULL, foreign keys and a busy timeout
    (as the batch state); PostgreSQL goes through psycopg 3 and checks a connection before using it."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def sessions(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest Alembic revision (migrations/)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
