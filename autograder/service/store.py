"""The course's records: roster, assignments, submissions and their grades, on the service's database.

Every operation is one transaction: a request that fails half-way (the database went away) writes
nothing. The batch's modules decide what the records mean: roster.py reads a roster, late.py applies
the late policy, ledger.py turns grades into exactly one row per learner and assignment, state.py's
Inputs say why a grade is out of date. This module only moves rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from autograder.batch import late
from autograder.batch import ledger as ledger_module
from autograder.batch.roster import Person, Roster
from autograder.grading import catalogue
from autograder.service.db import GRADED, GRADING, QUEUED, Assignment, Extension, Learner, Refusal, Submission, utcnow

TOKEN_BYTES = 24


def token_digest(token: str) -> str:
    """The stored form of a learner's token (a random 192-bit secret: a plain digest is enough)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


@dataclass(frozen=True)
class Claimed:
    """A submission a grader took: what it needs to grade it."""

    id: int
    learner: str
    assignment: str
    sha256: str
    filename: str
    attempt: int = 0  # its ``attempts`` after this claim: record() keeps the grade of this claim only


class Store:
    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions

    # ------------------------------------------------------------------ roster

    def import_roster(self, roster: Roster) -> dict:
        """Add or update the roster's people; returns {learner: token} for everyone who had no token
        (a new learner): the only time a token is known to the service, so staff hand them out now."""
        issued = {}
        with self.sessions.begin() as s:
            existing = {row.learner: row for row in s.scalars(select(Learner))}
            for person in roster.people:
                row = existing.get(person.learner) or Learner(learner=person.learner)
                for field in ("name", "email", "sis_user_id", "canvas_user_id", "sis_login_id", "section"):
                    setattr(row, field, getattr(person, field))
                row.active = True
                if row.token_digest is None:
                    token = new_token()
                    row.token_digest = token_digest(token)
                    issued[person.learner] = token
                s.add(row)
        return issued

    def reissue_token(self, learner: str) -> str:
        """A new token for ``learner`` (the old one stops working)."""
        token = new_token()
        with self.sessions.begin() as s:
            row = s.get(Learner, learner)
            if row is None:
                raise KeyError(learner)
            row.token_digest = token_digest(token)
        return token

    def learner_by_token(self, token: str) -> Learner | None:
        if not token or len(token) > 256:
            return None
        with self.sessions() as s:
            row = s.scalars(select(Learner).where(Learner.token_digest == token_digest(token))).first()
            return row if row is not None and row.active else None

    def learner(self, learner: str) -> Learner | None:
        with self.sessions() as s:
            return s.get(Learner, learner)

    def learners(self) -> list:
        with self.sessions() as s:
            return list(s.scalars(select(Learner).order_by(Learner.learner)))

    def roster(self) -> Roster:
        """The service's learners as the batch's Roster (for the ledger and the Canvas CSV)."""
        people = tuple(
            Person(
                learner=row.learner,
                name=row.name,
                email=row.email,
                sis_user_id=row.sis_user_id,
                canvas_user_id=row.canvas_user_id,
                sis_login_id=row.sis_login_id,
                section=row.section,
            )
            for row in self.learners()
            if row.active
        )
        return Roster(people=people, layout="dlgrade", path="the service's roster")

    # ------------------------------------------------------------------ assignments

    def ensure_assignments(self, *, open_all: bool = False) -> None:
        """A row for every assignment of the catalogue (new ones closed, unless ``open_all``)."""
        with self.sessions.begin() as s:
            have = set(s.scalars(select(Assignment.name)))
            for name in catalogue.names():
                if name not in have:
                    s.add(Assignment(name=name, is_open=open_all))

    def assignments(self) -> list:
        with self.sessions() as s:
            return list(s.scalars(select(Assignment).order_by(Assignment.name)))

    def assignment(self, name: str) -> Assignment | None:
        with self.sessions() as s:
            return s.get(Assignment, name)

    def update_assignment(self, name: str, **values) -> None:
        allowed = {c.name for c in Assignment.__table__.columns} - {"name"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown assignment field(s): {', '.join(sorted(unknown))}")
        with self.sessions.begin() as s:
            row = s.get(Assignment, name)
            if row is None:
                raise KeyError(name)
            for key, value in values.items():
                setattr(row, key, value)

    def set_extension(self, learner: str, assignment: str, *, days: float = 0.0, deadline=None) -> None:
        with self.sessions.begin() as s:
            if s.get(Learner, learner) is None or s.get(Assignment, assignment) is None:
                raise KeyError(f"{learner} / {assignment}")
            row = s.scalars(
                select(Extension).where(Extension.learner == learner, Extension.assignment == assignment)
            ).first() or Extension(learner=learner, assignment=assignment)
            row.days, row.deadline = float(days), deadline
            s.add(row)

    def remove_extension(self, learner: str, assignment: str) -> None:
        with self.sessions.begin() as s:
            for row in s.scalars(
                select(Extension).where(Extension.learner == learner, Extension.assignment == assignment)
            ):
                s.delete(row)

    def extensions(self) -> list:
        with self.sessions() as s:
            return list(s.scalars(select(Extension).order_by(Extension.learner, Extension.assignment)))

    def course_policy(self) -> late.CoursePolicy:
        """The assignments' deadlines and late rules and the extensions, as the batch's CoursePolicy."""
        per_assignment = {}
        for a in self.assignments():
            table: dict = {"grace_minutes": a.grace_minutes, "penalty_per_day": a.penalty_per_day, "late": a.late}
            if a.deadline is not None:
                table["deadline"] = a.deadline
            if a.zero_after_days is not None:
                table["zero_after_days"] = a.zero_after_days
            per_assignment[a.name] = table
        extensions = [
            late.Extension(e.learner, e.assignment, deadline=e.deadline, days=e.days) for e in self.extensions()
        ]
        return late.CoursePolicy(per_assignment=per_assignment, default={}, extensions=extensions)

    # ------------------------------------------------------------------ submissions

    def add_submission(
        self, *, learner: str, assignment: str, filename: str, sha256: str, size: int, via: str
    ) -> tuple:
        """Record an upload (its blob already stored). Returns (Submission, duplicate): identical bytes
        to the learner's latest submission of the assignment are not recorded again (nor regraded)."""
        with self.sessions.begin() as s:
            latest = s.scalars(
                select(Submission)
                .where(Submission.learner == learner, Submission.assignment == assignment)
                .order_by(Submission.id.desc())
                .limit(1)
            ).first()
            if latest is not None and latest.sha256 == sha256:
                return latest, True
            row = Submission(
                learner=learner,
                assignment=assignment,
                filename=filename,
                sha256=sha256,
                size=size,
                via=via,
                status=QUEUED,
                submitted_at=utcnow(),
            )
            s.add(row)
            s.flush()
            return row, False

    def recent_count(self, learner: str, since: datetime) -> int:
        """The learner's uploads since ``since``: accepted and refused ones (the rate limit counts both)."""
        with self.sessions() as s:
            accepted = s.scalar(
                select(func.count(Submission.id)).where(Submission.learner == learner, Submission.submitted_at >= since)
            )
            refused = s.scalar(select(func.count(Refusal.id)).where(Refusal.learner == learner, Refusal.at >= since))
            return int(accepted or 0) + int(refused or 0)

    def add_refusal(
        self,
        *,
        learner: str,
        assignment: str,
        filename: str,
        size: int,
        sha256: str,
        via: str,
        status: int,
        reason: str,
    ) -> None:
        with self.sessions.begin() as s:
            s.add(
                Refusal(
                    learner=learner,
                    assignment=assignment[:128],
                    filename=filename[:256],
                    size=size,
                    sha256=sha256,
                    via=via,
                    status=status,
                    reason=reason[:2000],
                    at=utcnow(),
                )
            )

    def refusals(self, *, learner: str | None = None, limit: int = 1000) -> list:
        query = select(Refusal).order_by(Refusal.id.desc()).limit(limit)
        if learner is not None:
            query = query.where(Refusal.learner == learner)
        with self.sessions() as s:
            return list(s.scalars(query))

    def submission(self, id: int) -> Submission | None:
        with self.sessions() as s:
            return s.get(Submission, id)

    def submissions(self, *, learner: str | None = None, assignment: str | None = None) -> list:
        query = select(Submission).order_by(Submission.id.desc())
        if learner is not None:
            query = query.where(Submission.learner == learner)
        if assignment is not None:
            query = query.where(Submission.assignment == assignment)
        with self.sessions() as s:
            return list(s.scalars(query))

    def queue_counts(self) -> dict:
        with self.sessions() as s:
            return dict(
                s.execute(select(Submission.status, func.count(Submission.id)).group_by(Submission.status)).all()
            )

    # ------------------------------------------------------------------ the graders' side

    def claim(self, limit: int, grader: str) -> list:
        """Take up to ``limit`` queued submissions, oldest first, for ``grader``: one transaction, and on
        PostgreSQL ``FOR UPDATE SKIP LOCKED``, so two graders never take the same one."""
        if limit <= 0:
            return []
        with self.sessions.begin() as s:
            query = select(Submission).where(Submission.status == QUEUED).order_by(Submission.id).limit(limit)
            if s.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(s.scalars(query))
            now = utcnow()
            taken = []
            for row in rows:
                attempt = row.attempts + 1  # read before the UPDATE (which may refresh ``row``)
                # SQLite: the UPDATE's WHERE is the lock (one writer at a time; a row another grader
                # took in between is not updated and not returned).
                done = s.execute(
                    update(Submission)
                    .where(Submission.id == row.id, Submission.status == QUEUED)
                    .values(status=GRADING, claimed_at=now, claimed_by=grader, attempts=Submission.attempts + 1)
                )
                if done.rowcount == 1:
                    taken.append(Claimed(row.id, row.learner, row.assignment, row.sha256, row.filename, attempt))
            return taken

    def record(self, id: int, result: dict, inputs, *, attempt: int | None = None) -> bool:
        """Store a grade (raw; the late policy applies on reading). False when the submission was queued
        again meanwhile (a regrade asked while it was grading): that grade is stale and not kept.
        ``attempt`` (Claimed.attempt): also False when it was claimed again since (queued again and taken,
        by this grader or another): only the newest claim's grade is kept."""
        from autograder.grading.results import cap_document

        document = cap_document(result)
        query = update(Submission).where(Submission.id == id, Submission.status == GRADING)
        if attempt is not None:
            query = query.where(Submission.attempts == attempt)
        with self.sessions.begin() as s:
            done = s.execute(
                query.values(
                    status=GRADED,
                    result=document,
                    score=float(document.get("score") or 0.0),
                    max_score=float(document.get("max_score") or 0.0),
                    graded_at=utcnow(),
                    suite=inputs.suite,
                    reference=inputs.reference,
                    limits=inputs.limits,
                    engine=inputs.engine,
                    claimed_by="",
                )
            )
            return done.rowcount == 1

    def requeue_stale(self, lease: timedelta, *, dead=lambda grader: False) -> int:
        """Queue again what a grader took and never finished: claimed longer than ``lease`` ago, or by a
        grader ``dead(grader)`` says is gone (a process of this host that no longer runs)."""
        cutoff = utcnow() - lease
        with self.sessions.begin() as s:
            rows = list(s.scalars(select(Submission).where(Submission.status == GRADING)))
            again = [r.id for r in rows if (r.claimed_at is not None and r.claimed_at < cutoff) or dead(r.claimed_by)]
            if again:
                s.execute(
                    update(Submission)
                    .where(Submission.id.in_(again), Submission.status == GRADING)
                    .values(status=QUEUED, claimed_by="", regrade_reason="its grader stopped before finishing")
                )
            return len(again)

    def regrade(self, *, ids=None, assignment: str | None = None, reason: str = "staff asked") -> int:
        """Queue submissions again (their current grade stays visible until the new one is recorded)."""
        query = update(Submission).where(Submission.status != QUEUED)
        if ids is not None:
            query = query.where(Submission.id.in_(list(ids)))
        if assignment is not None:
            query = query.where(Submission.assignment == assignment)
        with self.sessions.begin() as s:
            return s.execute(query.values(status=QUEUED, claimed_by="", regrade_reason=reason[:500])).rowcount

    def outdated(self) -> dict:
        """{submission id: [why]} for graded latest submissions whose grade depends on changed files
        (state.Inputs.changes: the hidden suite, the reference, the limits, the engine)."""
        from autograder.batch.state import Inputs, assignment_inputs

        now = {name: assignment_inputs(name) for name in catalogue.names()}
        # The Inputs columns only: decoding every result (latest() loads them) doubled the matrix's time.
        newest = (
            select(func.max(Submission.id).label("id"))
            .where(Submission.result.is_not(None))
            .group_by(Submission.learner, Submission.assignment)
            .subquery()
        )
        columns = (Submission.id, Submission.assignment, Submission.suite, Submission.reference)
        query = select(*columns, Submission.limits, Submission.engine).join(newest, Submission.id == newest.c.id)
        with self.sessions() as s:
            rows = s.execute(query.order_by(Submission.id)).all()
        found = {}
        for id, assignment, suite, reference, limits, engine in rows:
            current = now.get(assignment)
            if current is not None:
                why = current.changes(Inputs(suite, reference, limits, engine))
                if why:
                    found[id] = why
        return found

    # ------------------------------------------------------------------ reading grades

    def latest(self, *, graded_only: bool = False, learner: str | None = None) -> list:
        """Each (learner, assignment)'s latest submission (with ``graded_only``: its latest graded one,
        which stands while a newer one waits in the queue)."""
        newest = select(func.max(Submission.id).label("id")).group_by(Submission.learner, Submission.assignment)
        if graded_only:
            newest = newest.where(Submission.result.is_not(None))
        if learner is not None:
            newest = newest.where(Submission.learner == learner)
        with self.sessions() as s:
            ids = newest.subquery()
            return list(s.scalars(select(Submission).join(ids, Submission.id == ids.c.id).order_by(Submission.id)))

    def judged(self, row: Submission, policy: late.CoursePolicy | None = None):
        """``row``'s result with the late policy applied at the server's submission time (a Result)."""
        from autograder.grading.results import as_result

        policy = policy or self.course_policy()
        result = as_result(row.result or {})
        return policy.for_assignment(row.assignment, row.learner).apply(result, row.submitted_at, late.SERVER)

    def grades(self, *, learner: str | None = None) -> list:
        """The course's grades as the batch's state.Grade, late policy applied: what the ledger,
        gradebooks and course page of batch/ read."""
        policy = self.course_policy()
        grades = []
        for row in self.latest(graded_only=True, learner=learner):
            grade = row.grade()
            grades.append(dataclasses.replace(grade, result=self.judged(row, policy).to_dict()))
        return grades

    def ledger(self, grades: list | None = None) -> ledger_module.Ledger:
        """Exactly one row per learner and assignment (ledger.build), with the deadlines and extensions
        (``grades``: :meth:`grades` already read by the caller, so an export reads them once)."""
        policy = self.course_policy()
        shown = [a.name for a in self.assignments() if a.is_open or a.deadline is not None]

        def deadlines(learner: str, assignment: str) -> tuple:
            p = policy.for_assignment(assignment, learner)
            return p.deadline, p.extension

        return ledger_module.build(
            self.grades() if grades is None else grades, roster=self.roster(), assignments=shown, deadlines=deadlines
        )
