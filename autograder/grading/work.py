"""Learner work: what one piece of it may spend and did, the child it runs in, and one exchange.

A :class:`Work` is built by the thread doing the work (a LearnerProcess's
main thread, or its prestart thread) and folded into the submission's record
by the main thread. :func:`exchange` sends one request to a
:class:`StartedChild` and reads the reply within a timeout and what the work
may still spend, charges the time to the work, and turns a timeout, a child's
end or an undecodable reply into a :class:`LearnerError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from autograder.grading.connection import Connection
from autograder.grading.learner_errors import ErrorKind, LearnerError
from autograder.sandbox import codec, spawn


class StartedChild:
    """A started learner child: its connection and the cells it has run (owned by one thread at a time)."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.loaded: set = set()  # ids of the cells it has run ("<imports>" for the imports cell)
        self.closed = False

    def end(self) -> bool:
        """Kill it (once); True if it ran out of memory."""
        if self.closed:
            return False
        self.closed = True
        return self.connection.close()


@dataclass
class Work:
    """Learner work charged to one function, and all it did: built by the thread doing the work,
    folded into the submission's record by the main thread (``LearnerProcess._install``, grading/learner.py)."""

    function: str | None  # whose share the time is charged to (None: outside any function)
    left: float  # learner seconds this work may use
    owner: str  # whose budget that is, for messages: "f's" or "the submission's"
    budget: float  # that budget's size
    elements_left: int  # reply elements the submission has left
    spent: float = 0.0  # learner seconds used
    elements: int = 0  # reply elements used
    start_seconds: float = 0.0  # spent starting sandboxes (not learner time)
    child: StartedChild | None = None  # the child a start made, its cells run
    spawned: spawn.Child | None = None  # the last child started (how it is isolated)
    restarts: int = 0
    bad_cells: set = field(default_factory=set)
    cell_errors: dict = field(default_factory=dict)
    crashes: list = field(default_factory=list)
    memory_exceeded: bool = False


def exchange(
    work: Work, child: StartedChild, message: dict | bytes, timeout: float, what: str, max_reply_elements: int
) -> dict:
    """Send a request (a dict, or one already framed by :func:`frame`) and read the reply (of at most
    ``max_reply_elements`` elements), within ``timeout`` and what ``work`` may still spend; the time
    it takes is charged to ``work``."""
    remaining = work.left - work.spent
    if remaining <= 0:
        raise used_up(work)
    cut_by_budget = remaining < timeout
    timeout = min(timeout, remaining)
    data = message if isinstance(message, bytes) else frame(message)
    if isinstance(message, dict) and message.get("op") == "forwarders":  # the names it may call back for
        child.connection.callbacks.allow(message.get("names", ()))
    started = time.monotonic()
    try:
        try:
            reply, elements = child.connection.request(
                data, timeout, min(max_reply_elements, work.elements_left - work.elements)
            )
        finally:
            # Until the reply, or the limit that cut it (the grader's wake-up after it, and ending
            # the child below, are not the learner's time).
            work.spent += min(time.monotonic() - started, timeout)
    except TimeoutError:
        work.memory_exceeded |= child.end()
        if cut_by_budget:  # the limit stated is the one that applied
            raise LearnerError(
                f"{what} did not finish within the {seconds(remaining)} s left of {work.owner} "
                f"{seconds(work.budget)} s time budget",
                ErrorKind.BUDGET,
            )
        raise LearnerError(
            f"{what} did not finish within {seconds(timeout)} s (infinite loop or too slow?)", ErrorKind.TIMEOUT
        )
    except (EOFError, BrokenPipeError, OSError) as exc:
        code = child.connection.exit_code()
        memory = child.end()
        work.memory_exceeded |= memory
        reason = f"exit code {code}" if code is not None else str(exc)
        if memory or (code is not None and code in (-9, 137)):
            reason += "; it may have run out of memory"
        work.crashes.append((what, code))
        raise LearnerError(f"the process running {what} ended unexpectedly ({reason})", ErrorKind.CRASH)
    except codec.DecodeError as exc:
        work.memory_exceeded |= child.end()
        raise LearnerError(
            f"{what} sent back something that is not plain data or too much of it ({exc})", ErrorKind.UNSUPPORTED
        )
    work.elements += elements
    return reply


def frame(message: dict) -> bytes:
    """A request framed for the child (also the key of a repeatable call's reply)."""
    try:
        return codec.dumps(message)
    except (TypeError, ValueError) as exc:
        raise RuntimeError(f"grader could not encode a request: {exc}")


def used_up(work: Work) -> LearnerError:
    """The error of work whose budget is gone before it starts."""
    return LearnerError(
        f"{work.owner} {seconds(work.budget)} s time budget was used up before this check", ErrorKind.BUDGET
    )


def seconds(value: float) -> str:
    """A duration for a message: whole seconds when that is exact enough, else one decimal (1.5, 0.4)."""
    value = max(0.0, value)
    return f"{value:.0f}" if value >= 10 or abs(value - round(value)) < 0.05 else f"{value:.1f}"
