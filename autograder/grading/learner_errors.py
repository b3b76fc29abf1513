"""Why a learner call gave no value: :class:`LearnerError`, its :class:`ErrorKind`, and the decoding of replies.

A child's error reply is classified by its ``code`` (:class:`ReplyCode`),
never by its text, and the reply is untrusted: :func:`decode_reply` checks its
code and name and caps its texts.
"""

from __future__ import annotations

import enum
import re

from autograder.sandbox import codec

MAX_NAME_CHARS = 200  # a "not defined" name the child reports, at most


class ErrorKind(enum.StrEnum):
    """Why a learner call gave no value: ``LearnerError.kind`` (and the ``kind`` of its check's record)."""

    ERROR = "error"  # the learner's code raised, or is not implemented yet
    MISSING = "missing"  # the graded function is not defined (or cannot run: grade.py's problems)
    TIMEOUT = "timeout"  # one call ran past its own limit
    BUDGET = "budget"  # the function's (or the submission's) time budget ran out
    CRASH = "crash"  # the child ended, or no sandbox could be started
    UNSUPPORTED = "unsupported"  # the reply is not plain data, or too much of it


class ReplyCode(enum.StrEnum):
    """The ``code`` of a child's error reply (sandbox/child.py: ``{"ok": False, "error": {...}}``).

    The reply is the learner's to forge: a code not listed here reads as
    RAISED, and so does NOT_DEFINED with a ``name`` that is not a string, not
    the function a call asked for and not a graded function.
    """

    NOT_DEFINED = "not-defined"  # a call of a name the namespace lacks; a probe's NameError/KeyError
    NOT_IMPLEMENTED = "not-implemented"  # NotImplementedError with an empty message (the stub)
    UNSUPPORTED_RETURN = "unsupported-return"  # the value cannot be encoded as plain data
    PROTOCOL = "protocol"  # an op the child does not know
    RAISED = "raised"  # anything else


class LearnerError(Exception):
    """A learner call did not produce a value; ``str()`` is learner-safe feedback."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.ERROR, traceback: str = ""):
        super().__init__(message)
        self.kind = ErrorKind(kind)  # a value outside the closed set is a grader bug: ValueError
        self.traceback = traceback


def decode_reply(reply: dict, name: str, called: str | None, graded: frozenset, cells: list, cell_errors: dict):
    """The value of a reply, or the LearnerError it reports.

    ``called``: the function a call asked for (the child's "not defined"
    for it is believed); None for a probe. ``graded``: the graded functions;
    ``cells`` and ``cell_errors`` (cell id -> message): to say that a missing
    function's cell stopped with an error. The error reply is untrusted:
    its code and name are checked (:class:`ReplyCode`), its texts capped.
    """
    if reply.get("ok"):
        try:
            return codec.from_plain(reply.get("value"))
        except codec.DecodeError as exc:
            raise LearnerError(f"{name} returned something that is not plain data ({exc})", ErrorKind.UNSUPPORTED)
    error: dict = reply["error"] if isinstance(reply.get("error"), dict) else {}
    etype = str(error.get("type", "Error"))[:80]
    message = str(error.get("message", ""))
    code = reply_code(error.get("code"))
    missing = error.get("name")
    if (
        code is ReplyCode.NOT_DEFINED
        and isinstance(missing, str)
        and len(missing) <= MAX_NAME_CHARS
        and (missing == called or missing in graded)
    ):
        failed = [cell_errors[c.cell_id] for c in cells if missing in c.functions and c.cell_id in cell_errors]
        if failed:  # defined in a cell that raised before the definition ran
            first = (failed[0].strip().splitlines() or ["an error"])[0][:300]
            raise LearnerError(
                f"{missing} is not defined: its cell stopped with an error before the definition ran ({first})",
                ErrorKind.MISSING,
            )
        raise LearnerError(f"{missing} is not defined by the graded cells of the notebook", ErrorKind.MISSING)
    if code is ReplyCode.UNSUPPORTED_RETURN:
        raise LearnerError(f"{name}: {message[:500]}", ErrorKind.UNSUPPORTED)
    if code is ReplyCode.NOT_IMPLEMENTED:
        raise LearnerError(f"{name} is not implemented yet (raise NotImplementedError)", ErrorKind.ERROR)
    raise LearnerError(
        f"{name} raised {etype}: {shorten_paths(message[:500])}",
        ErrorKind.ERROR,
        shorten_paths(str(error.get("traceback", ""))[-3000:]),
    )


# A path to a file of the grader's Python (its venv, site-packages, the standard library) or to the
# sandbox's copy of a helper module: learners see the module's own path (tensorflow/python/ops/...).
_GRADER_PATH = re.compile(r"""(?:[A-Za-z]:)?[/\\][^\s"'<>:]*[/\\](?:site-packages|dist-packages)[/\\]""")
_PYTHON_PATH = re.compile(r"""(?:[A-Za-z]:)?[/\\][^\s"'<>:]*[/\\]lib[/\\]python3\.\d+[/\\]""")
_HELPER_PATH = re.compile(r"""(?:[A-Za-z]:)?[/\\][^\s"'<>:]*[/\\](\w+_utils\.py)""")


def shorten_paths(text: str) -> str:
    """``text`` with the grader's own paths cut: ``.../site-packages/tensorflow/x.py`` -> ``tensorflow/x.py``."""
    return _HELPER_PATH.sub(r"\1", _PYTHON_PATH.sub("", _GRADER_PATH.sub("", text)))


def reply_code(value) -> ReplyCode:
    """A reply's error code; anything not a known code is RAISED."""
    try:
        return ReplyCode(value) if isinstance(value, str) else ReplyCode.RAISED
    except ValueError:
        return ReplyCode.RAISED


def error_text(reply: dict) -> str:
    """An error reply as capped text for the report (a cell's error, a failed imports cell)."""
    error: dict = reply["error"] if isinstance(reply.get("error"), dict) else {}
    text = f"{str(error.get('type', 'Error'))[:80]}: {str(error.get('message', ''))[:500]}"
    if error.get("traceback"):
        text += "\n" + str(error["traceback"])[-2000:]
    return shorten_paths(text)
