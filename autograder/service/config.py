"""What a running service is told: where its course lives, its database, graders and limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    course: Path  # the service's folder: blobs/, service.sqlite (the default database), secret.key
    database: str | None = None  # a SQLAlchemy URL; None: SQLite in WAL mode in ``course``
    workers: int = 1  # local warm grading processes (0: grade nowhere here, another grader does)
    dask: str | None = None  # a Dask scheduler address instead of local workers
    max_upload_bytes: int = 16 * MB  # refused before the body is read past it (413)
    rate_count: int = 10  # at most this many uploads per learner ...
    rate_seconds: int = 300  # ... within this many seconds (429, with Retry-After)
    secure_cookies: bool = False  # mark the session cookie Secure (behind HTTPS)
    title: str = "dlgrade course"

    @property
    def database_url(self) -> str:
        from autograder.service.db import sqlite_url

        return self.database or sqlite_url(self.course / "service.sqlite")

    @property
    def blobs(self) -> Path:
        return self.course / "blobs"

    @property
    def secret_path(self) -> Path:
        return self.course / "secret.key"
