# Hand in this folder's notebook to the course's dlgrade server: `from dlgrade_submit import submit; submit()`.
# Written by `dlgrade release` from autograder/service/client.py: edit that file, not this copy.
"""Hand in a notebook to the course's dlgrade server, and read its grade.

From the notebook's last cell (this file is ``dlgrade_submit.py`` in every assignment folder)::

    from dlgrade_submit import submit; submit()

or from a terminal, in the assignment's folder::

    python dlgrade_submit.py initialization.ipynb      # without dlgrade installed
    dlgrade submit initialization.ipynb                # with it

``submit()`` uploads the notebook file as it is on disk (save it first: Ctrl-S, Cmd-S on a Mac),
waits for the grade, and prints the score and, once staff release it, the feedback. The server's
address and your token come from ``submit(server=..., token=...)``, else the environment
(``DLGRADE_SERVER``, ``DLGRADE_TOKEN``), else the files ``~/.dlgrade/server`` and
``~/.dlgrade/token`` (first line): the course's invitation page gives both, and says how to
save them. Your token is your identity: never share it or paste it into the notebook you submit.
docs/SUBMIT.md has the learner's instructions.

The HTTP API (``dlgrade serve``): ``POST {server}/api/v1/submissions`` (multipart field
``notebook``, optional field ``assignment``, header ``Authorization: Bearer <token>``) answers 201
with the submission, ``GET {server}/api/v1/submissions/<id>`` its status; an error is JSON
``{"error": "..."}`` with 401, 403, 413, 422, 429 (``Retry-After``) or 503.

Standard library only: it runs in a learner's kernel that has no dlgrade installed.
``dlgrade release`` copies it into every assignment folder (edit autograder/service/client.py only;
tests/test_release.py fails on a stale copy).
"""

from __future__ import annotations

import argparse
import http.client
import json
import mimetypes
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

MAX_BYTES = 16 * 1024 * 1024  # what the server accepts; a larger file is refused before uploading
STALE_SAVE_S = 60.0  # warn when the notebook file was saved longer ago than this
REQUEST_TIMEOUT_S = 60.0  # one HTTP request (the upload, one status poll)
MAX_POLL_S = 5.0  # polling starts at `poll` seconds and slows down to this
CONFIG_DIR = "~/.dlgrade"  # holds `server` and `token` (first line of each)
API = "/api/v1/submissions"
NOTEBOOK_TYPE = "application/x-ipynb+json"
OK, REFUSED, USAGE = 0, 1, 2  # exit statuses of `dlgrade submit`


class SubmitError(Exception):
    """The submission failed: ``message`` says why, for the learner.

    ``status`` is the server's HTTP status (None when no server answered), ``retry_after`` the
    seconds a 429 or 503 asks to wait (None when it did not say).
    """

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


class SubmitUsageError(SubmitError):
    """Nothing was sent: no server or token, no notebook, a file that is not one or too large."""


class Status(dict):
    """The server's JSON about a submission; a notebook cell shows it as one line."""

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython's display of a cell's last value
        late = ", late" if self.get("late") else ""
        printer.text(f"<submission {self.get('id')} of {self.get('assignment')}: {self.get('status')}{late}>")


# ------------------------------------------------------------------ where to, who, what


def _config_line(name: str) -> str | None:
    path = os.path.join(os.path.expanduser(CONFIG_DIR), name)
    try:
        with open(path, encoding="utf-8") as handle:
            line = handle.readline().strip()
    except OSError:
        return None
    return line or None


def resolve_server(server: str | None = None) -> str:
    """The server's base URL: ``server``, else $DLGRADE_SERVER, else ~/.dlgrade/server."""
    value = (server or os.environ.get("DLGRADE_SERVER", "").strip() or _config_line("server") or "").strip()
    if not value:
        raise SubmitUsageError(
            "no server to submit to: pass server='https://...', set DLGRADE_SERVER, or write the address "
            f"from the course's invitation page into {CONFIG_DIR}/server"
        )
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SubmitUsageError(f"the server must be a web address like https://grader.example.org, not {value!r}")
    return value.rstrip("/")


def resolve_token(token: str | None = None) -> str:
    """The learner's token: ``token``, else $DLGRADE_TOKEN, else the first line of ~/.dlgrade/token."""
    value = (token or os.environ.get("DLGRADE_TOKEN", "").strip() or _config_line("token") or "").strip()
    if not value:
        raise SubmitUsageError(
            "no token: get yours from the course's invitation page, then pass token='...', set DLGRADE_TOKEN, "
            f"or write it into {CONFIG_DIR}/token"
        )
    if any(c.isspace() or not c.isprintable() for c in value):
        raise SubmitUsageError("the token has spaces or control characters in it: copy it again from the invitation")
    return value


def _assignment_of(path: str) -> str | None:
    """The assignment a released notebook names in its metadata (``dlgrade.assignment``)."""
    try:
        with open(path, encoding="utf-8") as handle:
            metadata = json.load(handle).get("metadata", {})
        name = metadata.get("dlgrade", {}).get("assignment")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def find_notebook(folder: str = ".") -> str:
    """The one assignment notebook in ``folder``: ``<name>.ipynb``, where the notebook says it is ``name``."""
    found = []
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if entry.endswith(".ipynb") and os.path.isfile(path) and _assignment_of(path) == entry[: -len(".ipynb")]:
            found.append(path)
    where = os.path.abspath(folder)
    if not found:
        raise SubmitUsageError(
            f"no assignment notebook (<assignment>.ipynb) in {where}: pass notebook='path/to/<assignment>.ipynb'"
        )
    if len(found) > 1:
        names = ", ".join(os.path.basename(p) for p in found)
        raise SubmitUsageError(f"several assignment notebooks in {where} ({names}): pass notebook='<which>.ipynb'")
    return found[0]


def _size_text(size: float) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _age_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 86400:.0f} days"


def check_notebook(path: str, out: Callable[[str], Any] = print) -> bytes:
    """The notebook's bytes, after the checks that need no server; warns (via ``out``) of a stale save."""
    name = os.path.basename(path)
    if not os.path.exists(path):
        raise SubmitUsageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise SubmitUsageError(f"{path} is a folder: give the .ipynb file in it")
    if not name.endswith(".ipynb"):
        raise SubmitUsageError(f"{name} is not a notebook: submit the .ipynb file (in Jupyter: File > Save)")
    size = os.path.getsize(path)
    if size > MAX_BYTES:
        raise SubmitUsageError(
            f"{name} is {_size_text(size)}, over the {_size_text(MAX_BYTES)} limit: clear the outputs "
            "(Edit > Clear Outputs of All Cells), save, and submit again"
        )
    age = time.time() - os.path.getmtime(path)
    if age > STALE_SAVE_S:
        out(
            f"Warning: {name} was last saved {_age_text(age)} ago. What is submitted is the file on disk, "
            "not what you see in Jupyter: press Ctrl-S (Cmd-S on a Mac) to save, then submit again if you "
            "changed anything since."
        )
    with open(path, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:  # it grew since
        raise SubmitUsageError(f"{name} is over the {_size_text(MAX_BYTES)} limit")
    return data


# ------------------------------------------------------------------ HTTP


def _quote(value: str) -> str:
    """A form-data parameter value as browsers send it (quotes and line breaks escaped)."""
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type; ``files`` maps a field to (filename, bytes)."""
    boundary = f"dlgrade-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for field, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(field)}"\r\n\r\n'
        parts.append(head.encode("utf-8") + value.encode("utf-8") + b"\r\n")
    for field, (filename, data) in files.items():
        kind = mimetypes.guess_type(filename)[0] or NOTEBOOK_TYPE
        if filename.endswith(".ipynb"):
            kind = NOTEBOOK_TYPE
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{_quote(field)}"; filename="{_quote(filename)}"\r\n'
            f"Content-Type: {kind}\r\n\r\n"
        )
        parts.append(head.encode("utf-8") + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would carry the token elsewhere, and turn the upload into a GET."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _retry_after(headers) -> float | None:
    value = (headers.get("Retry-After") if headers is not None else None) or ""
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None  # an HTTP date, or nothing: the message says "later"


def _when(retry_after: float | None) -> str:
    if retry_after is None:
        return "try again in a few minutes"
    if retry_after < 90:
        return f"try again in {retry_after:.0f} seconds"
    return f"try again in {retry_after / 60:.0f} minutes"


def _refusal(status: int, reason: str, body: bytes, headers) -> SubmitError:
    """The SubmitError of an HTTP error answer: the server's ``error`` text, and when to retry."""
    message = None
    try:
        payload = json.loads(body.decode("utf-8"))
        if isinstance(payload, dict) and isinstance(payload.get("error"), str):
            message = payload["error"].strip()
    except ValueError:
        pass
    if not message:  # not dlgrade's answer (a proxy's page): say what it was
        message = f"the server answered HTTP {status} {reason}".strip()
    retry_after = None
    if status in (429, 503):
        retry_after = _retry_after(headers)
        message = f"{message} ({_when(retry_after)})"
    elif status == 401:
        message = f"{message} (check your token: token=, DLGRADE_TOKEN or {CONFIG_DIR}/token)"
    elif 300 <= status < 400:
        target = headers.get("Location") if headers is not None else None
        message = f"the server redirects to {target or 'another address'}: use that address as the server"
    return SubmitError(message, status, retry_after)


def request(method: str, url: str, token: str, body: bytes | None = None, content_type: str | None = None) -> dict:
    """One API call: its JSON answer, or a SubmitError (never a urllib traceback, never the token)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": "dlgrade-submit/1"}
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with _OPENER.open(req, timeout=REQUEST_TIMEOUT_S) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        try:
            error_body = exc.read()
        except (OSError, http.client.HTTPException):
            error_body = b""
        raise _refusal(exc.code, str(exc.reason or ""), error_body, exc.headers) from None
    except urllib.error.URLError as exc:
        raise SubmitError(f"could not reach {_origin(url)}: {exc.reason} (check the address; {_when(None)})") from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, broken answers
        reason = str(exc) or type(exc).__name__
        raise SubmitError(f"no answer from {_origin(url)}: {reason} ({_when(None)})") from None
    try:
        payload = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise SubmitError(f"{_origin(url)} did not answer like a dlgrade server (no JSON)") from None
    if not isinstance(payload, dict):
        raise SubmitError(f"{_origin(url)} did not answer like a dlgrade server")
    return payload


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _absolute(server: str, path: str) -> str:
    """A path the server gave (``/submissions/7``) under the server's address (which may have a prefix)."""
    if urllib.parse.urlsplit(path).scheme:
        return path
    return server + "/" + path.lstrip("/")


# ------------------------------------------------------------------ submit


def _score_line(status: dict) -> str:
    late = " (late)" if status.get("late") else ""
    score, maximum = status.get("score"), status.get("max_score")
    if score is None:
        return f"Graded{late}: the score will be visible when staff release it."
    number = f"{score:g}" if isinstance(score, (int, float)) else str(score)
    if isinstance(maximum, (int, float)):
        return f"Score: {number} / {maximum:g}{late}"
    return f"Score: {number}{late}"


def report(status: dict, out: Callable[[str], Any] = print) -> None:
    """Print a graded submission: its score, then its feedback or when it will come."""
    out(_score_line(status))
    feedback = status.get("feedback")
    if status.get("feedback_released") and feedback:
        out("")
        out(str(feedback).rstrip())
    else:
        out("Your feedback will be visible when staff release it.")


def submit(
    notebook: str | os.PathLike | None = None,
    *,
    server: str | None = None,
    token: str | None = None,
    assignment: str | None = None,
    wait: bool = True,
    timeout: float = 120.0,
    poll: float = 1.0,
    out: Callable[[str], Any] = print,
) -> dict:
    """Upload ``notebook`` (default: this folder's one assignment notebook) and, with ``wait``, its grade.

    Returns the server's last answer: the new submission (``wait=False``), or its status once graded,
    or when ``timeout`` seconds have passed (then its ``status`` is still "queued" or "grading").
    Raises :class:`SubmitError` with the server's message when it refuses the submission, and
    :class:`SubmitUsageError` when nothing could be sent (no server, no token, no notebook, too large).
    """
    base = resolve_server(server)
    secret = resolve_token(token)
    path = os.fspath(notebook) if notebook is not None else find_notebook(".")
    data = check_notebook(path, out)
    name = os.path.basename(path)
    fields = {"assignment": assignment} if assignment else {}
    body, content_type = multipart(fields, {"notebook": (name, data)})
    out(f"Submitting {name} to {base} ...")
    created = Status(request("POST", base + API, secret, body, content_type))
    if "id" not in created:
        raise SubmitError(f"{_origin(base)} did not answer like a dlgrade server (no submission id)")
    page = _absolute(base, str(created.get("url") or f"/submissions/{created['id']}"))
    late = " It is late." if created.get("late") else ""
    out(f"Submitted {created.get('assignment', name)}: submission {created['id']}.{late} Its page: {page}")
    if not wait:
        return created
    status_url = _absolute(base, str(created.get("status_url") or f"{API}/{created['id']}"))
    status = created
    deadline = time.monotonic() + max(0.0, timeout)
    interval = max(0.0, poll)
    out("Waiting for the grade ...")
    try:
        while status.get("status") != "graded":
            if time.monotonic() + interval > deadline:
                out(
                    f"Not graded yet after {timeout:g} seconds (status: {status.get('status')}); "
                    f"the submission stands: see {page}"
                )
                return status
            time.sleep(interval)
            interval = min(interval * 1.5, max(MAX_POLL_S, poll))
            try:
                status = Status(request("GET", status_url, secret))
            except SubmitError as exc:
                if exc.status is not None and exc.status not in (429, 502, 503, 504):
                    raise
                if exc.retry_after:  # busy, or not reachable for a moment: keep waiting
                    interval = max(interval, min(exc.retry_after, MAX_POLL_S * 6))
    except KeyboardInterrupt:
        out(f"Stopped waiting; the submission stands: see {page}")
        raise
    report(status, out)
    return status


# ------------------------------------------------------------------ command line


def add_submit_parser(sub) -> argparse.ArgumentParser:
    """Add ``submit`` to an argparse sub-command set (``dlgrade submit``); its func is :func:`cmd_submit`."""
    p = sub.add_parser(
        "submit",
        help="hand in a notebook to the course's dlgrade server and wait for its grade",
        description="Upload NOTEBOOK to the course's dlgrade server (dlgrade serve) and print its grade. "
        "Server and token default to $DLGRADE_SERVER and $DLGRADE_TOKEN, else ~/.dlgrade/server and "
        "~/.dlgrade/token. Exit status: 0 submitted (and graded, when waiting), 1 refused by the server, "
        "not reachable, or not graded within --timeout, 2 nothing sent (no token, no notebook, too large).",
    )
    _add_arguments(p)
    p.set_defaults(func=cmd_submit)
    return p


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("notebook", nargs="?", help="the .ipynb file (default: the assignment notebook in this folder)")
    p.add_argument("--server", help="the server's address (default: $DLGRADE_SERVER, else ~/.dlgrade/server)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--token", help="your token (default: $DLGRADE_TOKEN, else ~/.dlgrade/token)")
    who.add_argument("--token-file", metavar="FILE", help="read the token from the first line of FILE")
    p.add_argument("--assignment", help="the assignment (default: the server reads it from the notebook)")
    p.add_argument("--no-wait", action="store_true", help="do not wait for the grade")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S", help="wait at most S seconds (default 120)")


def cmd_submit(args) -> int:
    """``dlgrade submit``: 0 submitted (and graded when waiting), 1 refused or not graded in time, 2 usage."""

    def err(message: str) -> None:
        print(f"dlgrade submit: {message}", file=sys.stderr)

    token = args.token
    if getattr(args, "token_file", None):
        try:
            with open(args.token_file, encoding="utf-8") as handle:
                token = handle.readline().strip()
        except OSError as exc:
            err(f"cannot read the token file {args.token_file}: {exc.strerror or exc}")
            return USAGE
        if not token:
            err(f"the token file {args.token_file} is empty")
            return USAGE
    try:
        status = submit(
            args.notebook,
            server=args.server,
            token=token,
            assignment=args.assignment,
            wait=not args.no_wait,
            timeout=args.timeout,
        )
    except SubmitUsageError as exc:
        err(exc.message)
        return USAGE
    except SubmitError as exc:
        err(exc.message)
        return REFUSED
    if not args.no_wait and status.get("status") != "graded":
        return REFUSED
    return OK


def main(argv: list[str] | None = None) -> int:
    """``python dlgrade_submit.py [NOTEBOOK] ...``: ``dlgrade submit`` without dlgrade installed."""
    parser = argparse.ArgumentParser(prog="dlgrade_submit.py", description=__doc__.split("\n\n")[0])
    _add_arguments(parser)
    return cmd_submit(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
