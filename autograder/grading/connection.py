"""Framing over a learner child's pipes, and the one thread that drains every child's output.

:class:`Connection` sends a framed request to a started child
(:mod:`autograder.sandbox.spawn`) and reads its reply within a timeout; it
knows nothing of submissions, cells or budgets. The output drainer reads each
child's stdout/stderr to EOF into its submission's :class:`ProcessEvents` (the
record of what happened to a submission's children, for the report).
"""

from __future__ import annotations

import os
import select
import threading
import time
from dataclasses import dataclass, field

from autograder.grading.callbacks import Callbacks, is_callback
from autograder.sandbox import codec, spawn

OUTPUT_KEEP_BYTES = 64 * 1024


@dataclass
class ProcessEvents:
    """What happened to the child, for the report.

    The output drainer writes ``output_bytes`` and ``output_head`` under the
    LearnerProcess's ``lock``; the rest is the LearnerProcess's main thread's.
    """

    crashes: list = field(default_factory=list)  # (what, exit code)
    timeouts: list = field(default_factory=list)  # function names
    cell_errors: dict = field(default_factory=dict)  # cell id -> message
    output_bytes: int = 0
    output_head: str = ""
    memory_exceeded: bool = False
    strategy: str = ""


class _OutputDrainer:
    """One thread per grading process reads every learner's stdout/stderr to EOF.

    Only the first OUTPUT_KEEP_BYTES of a submission are kept (floods cost
    nothing). One shared thread rather than two per learner child: a child
    per graded function would otherwise start two threads each time, which
    costs milliseconds when other threads hold the GIL. The drainer owns the
    pipes it is given and closes each at EOF.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """A fresh state (also in a forked child, where the thread does not exist)."""
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pending: list = []
        self.wake_w = -1

    def add(self, pipes: tuple, events: ProcessEvents, lock: threading.Lock) -> threading.Event:
        """Drain ``pipes`` into ``events``; the returned event is set once all of them reached EOF."""
        done = threading.Event()
        state = {"open": len(pipes), "done": done, "events": events, "lock": lock}
        with self.lock:
            if self.thread is None:
                wake_r, self.wake_w = os.pipe()
                os.set_blocking(wake_r, False)
                os.set_blocking(self.wake_w, False)  # a full wake pipe already means "look"
                self.thread = thread = threading.Thread(
                    target=self._run, args=(wake_r,), daemon=True, name="dlgrade-output-drain"
                )
                thread.start()
            self.pending += [(pipe, state) for pipe in pipes]
            try:
                os.write(self.wake_w, b"x")
            except BlockingIOError:
                pass
        return done

    def _run(self, wake_r: int) -> None:
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(wake_r, selectors.EVENT_READ, None)
        while True:
            for key, _ in selector.select():
                if key.data is None:
                    try:
                        os.read(wake_r, 1 << 12)
                    except BlockingIOError:
                        pass
                    with self.lock:
                        pending, self.pending = self.pending, []
                    for pipe, state in pending:
                        selector.register(pipe.fileno(), selectors.EVENT_READ, (pipe, state))
                    continue
                pipe, state = key.data
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except OSError:
                    chunk = b""
                if chunk:
                    with state["lock"]:
                        events = state["events"]
                        events.output_bytes += len(chunk)
                        room = OUTPUT_KEEP_BYTES - len(events.output_head)
                        if room > 0:
                            events.output_head += chunk[:room].decode("utf-8", "replace")
                    continue
                selector.unregister(key.fd)
                try:
                    pipe.close()
                except OSError:
                    pass
                state["open"] -= 1
                if state["open"] == 0:
                    state["done"].set()


_DRAINER = _OutputDrainer()
os.register_at_fork(after_in_child=_DRAINER.reset)


class Connection:
    """Framing over one child's two protocol pipes: a request out, a reply back, within a timeout.

    Knows nothing of submissions, cells or budgets. Raises TimeoutError,
    EOFError/OSError (the child is gone) or codec.DecodeError. While it waits
    for a reply, the child's callback frames are answered by ``callbacks``
    (grading/callbacks.py; by default every one is refused).
    """

    def __init__(
        self, child: spawn.Child, events: ProcessEvents, lock: threading.Lock, callbacks: Callbacks | None = None
    ):
        self.child = child
        self.callbacks = callbacks or Callbacks()
        os.set_blocking(child.req_w, False)  # a child that stops reading must not block us
        self.drained = _DRAINER.add((child.stdout, child.stderr), events, lock)

    def request(self, data: bytes, timeout: float, max_elements: int | None) -> tuple[dict, int]:
        """Send a framed request; return the reply and how many elements it (and the callback frames
        answered before it, within the same timeout) decoded to."""
        _write_all(self.child.req_w, data, timeout)
        end = time.monotonic() + timeout
        self.callbacks.begin()
        elements = 0
        try:
            while True:
                header = self._read(4, end)
                body = self._read(codec.frame_length(header), end)
                if not is_callback(body):
                    break
                answer, counted = self.callbacks.answer(body)
                elements += counted
                _write_all(self.child.req_w, answer, end - time.monotonic())
        finally:
            self.callbacks.end()
        elements += codec.count_elements(body, max_elements)
        return codec.loads_frame_body(body), elements

    def _read(self, n: int, end: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.child.resp_r], [], [], left)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.child.resp_r, min(n - got, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def exit_code(self):
        """The child's exit code, waiting a moment for it (it may lag the closed pipe)."""
        for _ in range(20):
            code = self.child.exit_code()
            if code is not None:
                return code
            time.sleep(0.05)
        return None

    def close(self) -> bool:
        """Kill the child and everything it started; True if it ran out of memory."""
        for fd in (self.child.req_w, self.child.resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.child.kill()
        # Its output up to its end is in the report; the drainer closes the pipes at EOF.
        self.drained.wait(timeout=2)
        return self.child.memory_exceeded()


def _write_all(fd: int, data: bytes, timeout: float) -> None:
    end = time.monotonic() + timeout
    view = memoryview(data)
    while view:
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError
        _, ready, _ = select.select([], [fd], [], left)
        if ready:
            try:
                view = view[os.write(fd, view[: 1 << 16]) :]
            except BlockingIOError:
                continue
