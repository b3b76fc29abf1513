"""Run a command where the setpriv sandbox can work: the interpreter readable by any uid.

The setpriv strategy (the one the Docker image uses) runs the learner as a
uid that is not root, so that uid must reach the Python installation. On a
machine whose Python lives under a closed home (pyenv in /root, 0700) it
cannot. As root, ``command_prefix()`` then gives a private mount namespace in
which the one closed directory on the way is covered by a 0755 tmpfs with
only the interpreter's folders bound back into it: nothing changes outside
that namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

COVER_SCRIPT = r"""
set -e
closed=$1; shift
keep=$(mktemp -d)
for child in $CHILDREN; do
    mkdir "$keep/$child"
    mount --bind "$closed/$child" "$keep/$child"
done
mount -t tmpfs -o mode=0755 dlgrade-test "$closed"
for child in $CHILDREN; do
    mkdir "$closed/$child"
    mount --bind "$keep/$child" "$closed/$child"
done
exec "$@"
"""


def _python_dirs() -> list[Path]:
    dirs = {Path(os.path.realpath(p)) for p in (sys.base_prefix, sys.prefix)}
    dirs.add(Path(os.path.realpath(sys.executable)).parent)
    return sorted(dirs)


def _closed_ancestor(path: Path) -> Path | None:
    """The highest directory on the way to ``path`` that other users cannot traverse."""
    for folder in reversed(path.parents):
        if not folder.stat().st_mode & 0o001:
            return folder
    return None


def command_prefix() -> list[str] | None:
    """[] if any uid reaches the interpreter, a namespace prefix if one can be made, else None."""
    closed = {_closed_ancestor(d) for d in _python_dirs()} - {None}
    if not closed:
        return []
    if len(closed) > 1 or os.geteuid() != 0 or not shutil.which("unshare"):
        return None
    (folder,) = closed
    children = sorted({d.relative_to(folder).parts[0] for d in _python_dirs() if folder in d.parents})
    prefix = [
        "env",
        f"CHILDREN={' '.join(children)}",
        "unshare",
        "--mount",
        "sh",
        "-c",
        COVER_SCRIPT,
        "dlgrade-cover",
        str(folder),
    ]
    probe = subprocess.run(
        prefix + ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", "import numpy"],
        capture_output=True,
        timeout=60,
    )
    return prefix if probe.returncode == 0 else None


def unusable_reason() -> str | None:
    """Why the setpriv sandbox cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the setpriv sandbox needs root (it runs the learner as another uid)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    if command_prefix() is None:
        return (
            "the interpreter is not reachable by other uids and its closed folder cannot be covered "
            "(see tests/setpriv_env.py)"
        )
    return None
