"""Who is asking: staff (email and an argon2id password), learners (their token: an invitation link,
a sign-in form, or ``Authorization: Bearer`` from the notebook and the terminal).

Sessions are signed cookies (Starlette's SessionMiddleware, itsdangerous): they hold who signed in and
the session's CSRF token, nothing else. Every form that changes something carries that token and is
refused without it (:func:`check_csrf`); the API takes no cookie, so a page elsewhere cannot use it.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select

from autograder.service.db import Staff

_hasher = PasswordHasher()
MIN_PASSWORD = 12
# Verified when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class AuthError(Exception):
    pass


def secret_key(path: Path) -> str:
    """The course's session-signing key, created once (0600) beside its database."""
    path = Path(path)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    key = path.read_text().strip()
    if len(key) < 32:
        raise AuthError(f"{path}: the session key is too short; delete the file to make a new one")
    return key


def add_staff(sessions, email: str, password: str) -> None:
    email = email.strip().lower()
    if "@" not in email or len(email) > 256:
        raise AuthError("give the staff member's email address")
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"a staff password needs at least {MIN_PASSWORD} characters")
    with sessions.begin() as s:
        row = s.scalars(select(Staff).where(Staff.email == email)).first() or Staff(email=email)
        row.password_hash = _hasher.hash(password)
        s.add(row)


def staff_count(sessions) -> int:
    with sessions() as s:
        return len(list(s.scalars(select(Staff.id))))


def check_staff(sessions, email: str, password: str) -> int | None:
    """The staff id when ``email`` and ``password`` match, else None (constant work either way)."""
    email = (email or "").strip().lower()[:256]
    with sessions() as s:
        row = s.scalars(select(Staff).where(Staff.email == email)).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return row.id if row else None


def csrf_token(session: dict) -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf(session: dict, given) -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str) or not expected or not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
