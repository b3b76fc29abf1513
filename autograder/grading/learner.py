"""The trusted side of a learner call: a sandboxed child and a proxy to it.

:class:`LearnerProcess` owns one submission's child process. It sends the
trusted imports cell and the graded cells, one request each, so a cell that
kills the process (``os._exit``, a segfault, a memory bomb) is identified and
left out when the child is restarted. Calls have a per-call timeout and the
submission has an overall time budget; a function that timed out once fails
fast afterwards. Replies are decoded with :mod:`autograder.sandbox.codec`, so only
plain data ever reaches the hidden suite.

:class:`Learner` is what a hidden test sees as the ``learner`` fixture.
"""
from __future__ import annotations

import os
import select
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox import codec

from autograder.sandbox import isolation

from autograder.sandbox import spawn

OUTPUT_KEEP_BYTES = 64 * 1024
MAX_RESTARTS = 6


class LearnerError(Exception):
    """A learner call did not produce a value; ``str()`` is learner-safe feedback."""

    def __init__(self, message: str, kind: str = "error", traceback: str = ""):
        super().__init__(message)
        self.kind = kind          # error | missing | timeout | crash | unsupported | budget
        self.traceback = traceback


@dataclass
class Cell:
    """One graded cell of the submission, as sent to the child."""

    cell_id: str
    source: str
    functions: list


@dataclass
class ProcessEvents:
    """What happened to the child, for the report."""

    crashes: list = field(default_factory=list)        # (what, exit code)
    timeouts: list = field(default_factory=list)        # function names
    cell_errors: dict = field(default_factory=dict)     # cell id -> message
    skipped_lines: dict = field(default_factory=dict)   # cell id -> [line numbers]
    output_bytes: int = 0
    output_head: str = ""
    memory_exceeded: bool = False
    strategy: str = ""


class _OutputDrain(threading.Thread):
    """Read a pipe to EOF, keeping only the first bytes (floods cost nothing)."""

    def __init__(self, pipe, events: ProcessEvents, lock: threading.Lock):
        super().__init__(daemon=True)
        self.pipe, self.events, self.lock = pipe, events, lock

    def run(self) -> None:
        while True:
            chunk = self.pipe.read1(1 << 16) if hasattr(self.pipe, "read1") else self.pipe.read(1 << 16)
            if not chunk:
                return
            with self.lock:
                self.events.output_bytes += len(chunk)
                room = OUTPUT_KEEP_BYTES - len(self.events.output_head)
                if room > 0:
                    self.events.output_head += chunk[:room].decode("utf-8", "replace")


class LearnerProcess:
    """One submission's sandboxed child, restarted as needed."""

    def __init__(
        self,
        preamble: str,
        cells: list[Cell],
        helper_dir: Path | None,
        limits: isolation.Limits,
        call_timeout: float,
        submission_timeout: float,
        strategy: str | None = None,
        spawner=None,
        repeatable: tuple = (),
    ):
        self.preamble = preamble
        self.cells = cells
        self.helper_dir = helper_dir
        self.limits = limits
        self.call_timeout = call_timeout
        self.submission_timeout = submission_timeout
        self.deadline = time.monotonic() + submission_timeout
        self.strategy = strategy
        self.spawner = spawner            # spawn.DirectSpawner (default) or spawn.ZygoteSpawner
        # Functions whose identical calls are answered from the first reply (see call()).
        self.repeatable = frozenset(repeatable)
        self._replies: dict = {}
        self.events = ProcessEvents()
        self.bad_cells: set = set()
        self.timed_out: set = set()
        self.child = None
        self._own_spawner = None
        self.restarts = 0
        self._lock = threading.Lock()
        self._drains = []

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.restarts > MAX_RESTARTS:
            raise LearnerError("the notebook's code crashed the grader's process too many times", "crash")
        self.restarts += 1
        if self.spawner is None:
            self.spawner = self._own_spawner = spawn.DirectSpawner(self.helper_dir, self.limits, self.strategy)
        try:
            self.child = self.spawner.spawn()
        except spawn.SpawnError as exc:
            raise LearnerError(f"the grader could not start a sandbox: {exc}", "crash")
        os.set_blocking(self.child.req_w, False)  # a child that stops reading must not block us
        self.req_w, self.resp_r = self.child.req_w, self.child.resp_r
        self.events.strategy = self.child.strategy
        self._drains = [_OutputDrain(p, self.events, self._lock) for p in (self.child.stdout, self.child.stderr)]
        for drain in self._drains:
            drain.start()
        self._load()

    def _load(self) -> None:
        reply = self._request({"op": "preamble", "source": self.preamble}, self.call_timeout * 3, "the imports cell")
        if not reply.get("ok"):
            raise LearnerError("the assignment's imports failed in the sandbox: " + _error_text(reply), "crash")
        for cell in self.cells:
            if cell.cell_id in self.bad_cells:
                continue
            what = f"cell {cell.cell_id} (defining {', '.join(cell.functions) or 'nothing graded'})"
            try:
                reply = self._request({"op": "exec", "cell": cell.cell_id, "source": cell.source}, self.call_timeout, what)
            except LearnerError as exc:
                # The cell killed or hung the process: restart without it.
                self.bad_cells.add(cell.cell_id)
                self.events.cell_errors[cell.cell_id] = str(exc)
                self.close_process()
                self.start()
                return
            if reply.get("ok"):
                if reply.get("skipped_lines"):
                    self.events.skipped_lines[cell.cell_id] = reply["skipped_lines"]
            else:
                self.events.cell_errors[cell.cell_id] = _error_text(reply)

    def close_process(self) -> None:
        if self.child is not None:
            child, self.child = self.child, None
            for fd in (self.req_w, self.resp_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            child.kill()
            self.events.memory_exceeded |= child.memory_exceeded()
            for drain in self._drains:
                drain.join(timeout=2)
            for pipe in (child.stdout, child.stderr):
                try:
                    pipe.close()
                except OSError:
                    pass

    def close(self) -> None:
        prestart, self._prestart = getattr(self, "_prestart", None), None
        if prestart is not None:
            prestart.join()
        self.close_process()
        if self._own_spawner is not None:
            self._own_spawner.close()
            self._own_spawner = None

    # ------------------------------------------------------------ requests
    def _request(self, message: dict | bytes, timeout: float, what: str) -> dict:
        """Send a request (a dict, or one already framed by :meth:`_frame`) and read the reply."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise LearnerError("the submission's total time budget was used up before this check", "budget")
        # The limit stated in a timeout message is the one that applied.
        limit = (f"within {timeout:.0f} s" if timeout <= remaining else
                 f"within the {remaining:.0f} s left of the submission's {self.submission_timeout:.0f} s")
        timeout = min(timeout, remaining)
        data = message if isinstance(message, bytes) else self._frame(message)
        try:
            _write_all(self.req_w, data, timeout)
            header = self._read(4, timeout)
            body = self._read(codec.frame_length(header), timeout)
            return codec.loads_frame_body(body)
        except TimeoutError:
            self.close_process()
            raise LearnerError(f"{what} did not finish {limit} (infinite loop or too slow?)", "timeout")
        except (EOFError, BrokenPipeError, OSError) as exc:
            code = None
            for _ in range(20):  # the exit status may lag the closed pipe by a moment
                code = self.child.exit_code() if self.child else None
                if code is not None or self.child is None:
                    break
                time.sleep(0.05)
            self.close_process()
            reason = f"exit code {code}" if code is not None else str(exc)
            if self.events.memory_exceeded or (code is not None and code in (-9, 137)):
                reason += "; it may have run out of memory"
            self.events.crashes.append((what, code))
            raise LearnerError(f"the process running {what} ended unexpectedly ({reason})", "crash")
        except codec.DecodeError as exc:
            self.close_process()
            raise LearnerError(f"{what} sent back something that is not plain data ({exc})", "unsupported")

    @staticmethod
    def _frame(message: dict) -> bytes:
        try:
            return codec.dumps(message)
        except (TypeError, ValueError) as exc:
            raise RuntimeError(f"grader could not encode a request: {exc}")

    def _read(self, n: int, timeout: float) -> bytes:
        end = time.monotonic() + timeout
        chunks, got = [], 0
        while got < n:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.resp_r], [], [], left)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.resp_r, min(n - got, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def start_in_background(self) -> None:
        """Fork the child and run the cells while the caller starts pytest.

        The two overlap on separate cores; the first call waits for this. A
        failure here is not raised: the first call starts again and reports it.
        Only with a zygote: the forked child belongs to the zygote, and zygotes
        are started from one long-lived thread (``ZygoteSpawner.warm``), so
        nothing dies with the helper thread; a sandbox spawned directly from
        it would (PR_SET_PDEATHSIG). A cold zygote (TensorFlow: seconds) thus
        starts while the grader imports what the reference solution needs.
        """
        if not hasattr(self.spawner, "warm"):
            return

        def prestart():
            try:
                self.start()
            except LearnerError:
                pass

        self._prestart = threading.Thread(target=prestart, daemon=True)
        self._prestart.start()

    def ensure_started(self) -> None:
        prestart, self._prestart = getattr(self, "_prestart", None), None
        if prestart is not None:
            prestart.join()
        if self.child is None:
            self.start()

    def call(self, name: str, args: tuple, kwargs: dict, timeout: float | None = None):
        if name in self.timed_out:
            raise LearnerError(f"{name} timed out in an earlier check, so it was not run again", "timeout")
        message = {"op": "call", "name": name, "args": codec.to_plain(list(args)), "kwargs": codec.to_plain(dict(kwargs))}
        if name not in self.repeatable:
            return self._value(message, timeout or self.call_timeout, name)
        # A deterministic function (``repeatable_calls`` in assignment.toml)
        # asked the same question again by another check: reuse the child's
        # reply, decoded afresh so no check sees another's arrays.
        key = self._frame(message)   # the framed request is both the key and what is sent
        if key not in self._replies:
            self._replies[key] = self._reply(key, timeout or self.call_timeout, name)
        return self._decode(self._replies[key], name)

    def probe(self, source: str, inputs: dict, timeout: float | None = None, what: str = "a check"):
        message = {"op": "probe", "source": source, "inputs": codec.to_plain(dict(inputs))}
        return self._value(message, timeout or self.call_timeout, what)

    def seed(self, seed: int) -> None:
        self.ensure_started()
        self._request({"op": "seed", "seed": int(seed)}, self.call_timeout, "seeding")

    def _value(self, message: dict, timeout: float, name: str):
        return self._decode(self._reply(message, timeout, name), name)

    def _reply(self, message: dict | bytes, timeout: float, name: str) -> dict:
        self.ensure_started()
        try:
            return self._request(message, timeout, name)
        except LearnerError as exc:
            if exc.kind == "timeout":
                self.timed_out.add(name)
                self.events.timeouts.append(name)
            raise

    def _decode(self, reply: dict, name: str):
        """The value of a reply, or the LearnerError it reports."""
        if reply.get("ok"):
            try:
                return codec.from_plain(reply.get("value"))
            except codec.DecodeError as exc:
                raise LearnerError(f"{name} returned something that is not plain data ({exc})", "unsupported")
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        etype = str(error.get("type", "Error"))[:80]
        if etype == "NameError" and str(error.get("message", "")).startswith(f"{name} is not defined"):
            failed = [self.events.cell_errors[c.cell_id] for c in self.cells
                      if name in c.functions and c.cell_id in self.events.cell_errors]
            if failed:   # defined in a cell that raised before the definition ran
                first = (failed[0].strip().splitlines() or ["an error"])[0][:300]
                raise LearnerError(f"{name} is not defined: its cell stopped with an error before the definition "
                                   f"ran ({first})", "missing")
            raise LearnerError(f"{name} is not defined by the graded cells of the notebook", "missing")
        if etype == "UnsupportedReturn":
            raise LearnerError(f"{name}: {str(error.get('message'))[:500]}", "unsupported")
        if etype == "NotImplementedError" and not str(error.get("message", "")).strip():
            raise LearnerError(f"{name} is not implemented yet (raise NotImplementedError)", "error")
        raise LearnerError(f"{name} raised {etype}: {str(error.get('message', ''))[:500]}", "error", str(error.get("traceback", ""))[-3000:])


def _error_text(reply: dict) -> str:
    error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
    text = f"{str(error.get('type', 'Error'))[:80]}: {str(error.get('message', ''))[:500]}"
    if error.get("traceback"):
        text += "\n" + str(error["traceback"])[-2000:]
    return text


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
                view = view[os.write(fd, view[: 1 << 16]):]
            except BlockingIOError:
                continue


class Learner:
    """The ``learner`` fixture: attribute access calls the learner's function."""

    def __init__(self, process: LearnerProcess):
        self._process = process

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            return self._process.call(name, args, kwargs)

        call.__name__ = name
        return call

    def call(self, name: str, *args, timeout: float | None = None, **kwargs):
        return self._process.call(name, args, kwargs, timeout=timeout)

    def probe(self, source: str, timeout: float | None = None, what: str = "a check", **inputs):
        """Run a trusted ``def probe(ns, **inputs)`` in the child; ``what`` names it in errors."""
        return self._process.probe(source, inputs, timeout=timeout, what=what)

    def seed(self, seed: int) -> None:
        self._process.seed(seed)
