"""Stopping a batch run cleanly: :class:`StopSignals` (SIGTERM, SIGINT, SIGHUP) and :class:`Interrupted`,
the exception a stop signal becomes in the main thread."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autograder.batch.run import BatchSummary

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A stop signal (or Ctrl-C) arrived: ``signum``; ``summary`` says what was kept (None: it came
    before grading began) and ``remaining`` how many submissions were not graded yet."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.summary: BatchSummary | None = None
        self.remaining = 0


class StopSignals:
    """How a batch run stops on SIGTERM (CI cancel, ``timeout``, ``docker stop``), SIGINT and SIGHUP.

    ``with StopSignals() as stop:`` installs the handlers; leaving the block puts the previous
    ones back. The first signal becomes :class:`Interrupted` in the main thread, and the pool kills
    its workers (and with them their sandboxes) on the way out; a second one, during that, exits
    at once with 128+N (the state is committed; the workers die with us: PR_SET_PDEATHSIG).

    A signal that arrives inside ``with stop.deferred():`` (a finished grade being recorded) is
    held, and raised as :class:`Interrupted` when the block ends.

    Each run has its own: nothing of one run's signals reaches another run in the same process.
    ``StopSignals(install=False)`` installs nothing (a library call, a test): ``deferred()`` then
    has no signal to hold, and a Ctrl-C is Python's own KeyboardInterrupt.
    """

    def __init__(self, *, install: bool = True):
        self.install = install
        self.held: int | None = None  # a signal that arrived during deferred(), raised when it ends
        self._depth = 0  # how many deferred() blocks we are in
        self._previous: dict = {}  # signal -> its handler before ours, while ours are installed

    def __enter__(self) -> StopSignals:
        self.held = None
        if self.install:
            self._previous = {number: signal.signal(number, self._first) for number in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        previous, self._previous = self._previous, {}
        for number, handler in previous.items():
            signal.signal(number, handler)

    @contextlib.contextmanager
    def deferred(self):
        """Hold a stop signal until the block ends, then raise it as :class:`Interrupted`."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self.held is not None and self._depth == 0:
            signum, self.held = self.held, None
            raise Interrupted(signum)

    def _first(self, signum, frame) -> None:
        for number in STOP_SIGNALS:
            signal.signal(number, self._again)
        if self._depth:
            self.held = signum  # raised when the grade being recorded is recorded
            return
        raise Interrupted(signum)

    @staticmethod
    def _again(signum, frame) -> None:
        os._exit(128 + signum)  # workers die with us (PR_SET_PDEATHSIG); the state is committed
