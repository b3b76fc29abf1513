"""Reading a submitted file: regular files only, never through a link, its size checked before a byte is read.

Every entry point reads a submission's bytes here and only here (``dlgrade grade`` and ``check``
through :func:`autograder.grading.notebook.read_notebook`; ``dlgrade batch``'s plan, to hash it, and
its pool, as the job goes to a local or Dask worker, which grades those bytes only if their hash is
the plan's: ``autograder.batch.pool.Job.read``). Each read opens the file once, without following a
symbolic link (``O_NOFOLLOW``) and without waiting for a fifo's writer (``O_NONBLOCK``); ``fstat`` on
that descriptor says whether it is a regular file and how big it is, and the bytes are read from the
same descriptor: nothing can be swapped in between. With ``below``, every folder between ``below``
and the file is opened the same way, so a learner folder that is a link leads nowhere either.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_FOLDER_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC


class NotebookError(Exception):
    """The file cannot be graded at all; ``str()`` explains why to the learner."""


def size_text(size: int) -> str:
    """``12.3 MB``, ``4.9 KB`` or ``12 bytes``."""
    if size >= 2**20:
        return f"{size / 2**20:.1f} MB"
    if size >= 2**10:
        return f"{size / 2**10:.1f} KB"
    return f"{size} bytes"


def kind_of(mode: int) -> str:
    """What a file that is not a regular file is, in a learner's words."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a fifo (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _refusal(shown: str, mode: int) -> NotebookError:
    if stat.S_ISLNK(mode):
        return NotebookError(
            f"{shown} is a symbolic link, which the grader does not follow: submit the notebook file itself"
        )
    return NotebookError(f"{shown} is not a regular file ({kind_of(mode)}): submit the .ipynb notebook file")


def _open(path: Path, shown: str, below: Path | None) -> int:
    """A descriptor for ``path`` opened without following links (in every folder below ``below``)."""
    if below is None:
        folder_fd, parts = None, [str(path)]
    else:
        folder_fd, parts = os.open(below, _FOLDER_FLAGS & ~os.O_NOFOLLOW), list(path.relative_to(below).parts)
    try:
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            try:
                fd = os.open(part, _FLAGS if last else _FOLDER_FLAGS, dir_fd=folder_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    try:  # what is there instead: a link, a file where a folder should be...
                        mode = os.stat(part, dir_fd=folder_fd, follow_symlinks=False).st_mode
                    except OSError:
                        mode = None
                    if mode is not None and last:
                        raise _refusal(shown, mode) from None
                    if mode is not None and stat.S_ISLNK(mode):
                        raise NotebookError(
                            f"{shown}: the folder {'/'.join(parts[: depth + 1])} is a symbolic link, "
                            "which the grader does not follow"
                        ) from None
                raise NotebookError(f"cannot read {shown}: {exc.strerror}") from None
            if folder_fd is not None:
                os.close(folder_fd)
            folder_fd = fd
        assert folder_fd is not None
        opened, folder_fd = folder_fd, None
        return opened
    finally:
        if folder_fd is not None:
            os.close(folder_fd)


def read_submission_bytes(path, max_bytes: int, *, shown: str | None = None, below=None) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes`` of them.

    Raises NotebookError with a learner-readable reason for a symbolic link, a fifo, a device, a
    socket or a folder, for a file over ``max_bytes`` (refused on its size, before it is read) and
    for a file that cannot be opened. ``shown``: the name in the reason (default: the file's name);
    ``below``: a trusted folder holding ``path``, below which no link is followed.
    """
    path = Path(path)
    shown = shown or path.name
    fd = _open(path, shown, Path(below) if below is not None else None)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refusal(shown, info.st_mode)
        if info.st_size > max_bytes:
            raise _too_big(shown, info.st_size, max_bytes)
        chunks, total = [], 0
        while True:  # to the end, or just past the limit if the file grew since fstat
            try:
                chunk = os.read(fd, min(max_bytes + 1 - total, 1 << 20) or 1)
            except OSError as exc:
                raise NotebookError(f"cannot read {shown}: {exc.strerror}") from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise _too_big(shown, total, max_bytes, grew=True)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_big(shown: str, size: int, max_bytes: int, grew: bool = False) -> NotebookError:
    return NotebookError(
        f"{shown} is {'more than ' if grew else ''}{size_text(size)}; the limit is {size_text(max_bytes)} "
        "(clear large outputs: in Jupyter, Edit > Clear Outputs of All Cells, then save)"
    )
