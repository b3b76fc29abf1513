"""Uploaded bytes, stored by their sha256 (content-addressed): never under a name a learner chose.

``BLOBS/ab/abcdef...`` holds the bytes whose digest is ``abcdef...``; a file is written to a temporary
name beside it, synced, and renamed, so a blob is either whole or absent. The same bytes uploaded twice
are stored once. Reading goes through the engine's submission reader (no link followed, size capped).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_DIGEST = re.compile(r"[0-9a-f]{64}")


class BlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, sha256: str) -> Path:
        if not _DIGEST.fullmatch(sha256):
            raise ValueError("not a sha256 digest")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its sha256 (hex)."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.is_file() and target.stat().st_size == len(data):
            return digest
        target.parent.mkdir(exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str, limit: int) -> bytes:
        from autograder.grading.submission_file import read_submission_bytes

        return read_submission_bytes(self.path(sha256), limit, shown=f"blob {sha256[:12]}", below=self.root)
