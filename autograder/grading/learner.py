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
import re
import select
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox import codec, isolation, spawn
from autograder.sandbox.statements import kept_names_used, strip_magics

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
    source: str                  # what runs: the statement rule already applied (grading/notebook.py)
    functions: list
    # Top-level names the cell defines and the names it uses from other cells, from the
    # extraction's parse (None: worked out from ``source`` when the process starts).
    defines: set | None = None
    uses: set | None = None


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
        self.thread = None
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
                os.set_blocking(self.wake_w, False)   # a full wake pipe already means "look"
                self.thread = threading.Thread(target=self._run, args=(wake_r,), daemon=True,
                                               name="dlgrade-output-drain")
                self.thread.start()
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
    EOFError/OSError (the child is gone) or codec.DecodeError.
    """

    def __init__(self, child: spawn.Child, events: ProcessEvents, lock: threading.Lock):
        self.child = child
        os.set_blocking(child.req_w, False)  # a child that stops reading must not block us
        self.drained = _DRAINER.add((child.stdout, child.stderr), events, lock)

    def request(self, data: bytes, timeout: float, max_elements: int | None) -> tuple[dict, int]:
        """Send a framed request; return the reply and how many elements it decoded to."""
        _write_all(self.child.req_w, data, timeout)
        end = time.monotonic() + timeout
        header = self._read(4, end)
        body = self._read(codec.frame_length(header), end)
        elements = codec.count_elements(body, max_elements)
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


class LearnerProcess:
    """One submission's sandboxed learner: the rules of a submission over :class:`Connection`.

    Per graded function (``begin_function``, called as the hidden suite moves
    from one function's checks to the next) a fresh child is forked and given
    only the cells that function needs (its own and those defining the names
    it uses, see :func:`cells_needed`): one function's definition-time or
    call-time side effects cannot change another's grade, and each function
    has its own time budget. Cells that kill or hang the child are left out
    and the child is started again (a loop, at most MAX_RESTARTS times).
    """

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
        function_timeout: float | None = None,
        max_reply_elements: int = codec.MAX_REPLY_ELEMENTS,
        max_submission_elements: int = codec.MAX_SUBMISSION_ELEMENTS,
    ):
        self.preamble = preamble
        self.cells = cells
        self.limits = limits
        self.call_timeout = call_timeout
        # Each graded function has a budget of its own (``function_timeout``); the whole
        # submission, without begin_function, has ``submission_timeout``.
        self.submission_timeout = submission_timeout
        self.function_timeout = function_timeout or submission_timeout
        self.deadline = time.monotonic() + submission_timeout
        self.spawner = spawner or spawn.DirectSpawner(helper_dir, limits, strategy)
        self.own_spawner = spawner is None
        # Functions whose identical calls are answered from the first reply (see call()).
        self.repeatable = frozenset(repeatable)
        self.max_reply_elements = max_reply_elements
        self.elements_left = max_submission_elements
        self.replies: dict = {}
        self.events = ProcessEvents()
        self.bad_cells: set = set()
        self.timed_out: set = set()
        self.connection: Connection | None = None
        self.loaded: set = set()         # ids of the cells the current child has run
        self.function: str | None = None  # the graded function whose checks run now (None: all cells)
        self.separation = ""
        self.limits_enforced: tuple = ()
        self.restarts = 0
        self.lock = threading.Lock()
        self.prestart: threading.Thread | None = None
        self.defines, self.uses = _cell_names(cells, preamble)

    # ------------------------------------------------------------ lifecycle
    def begin_function(self, name: str) -> None:
        """The next checks grade ``name``: a fresh child and budget unless the current child is already its.

        With a zygote, the old child's end and the new one's start and cells run in the
        background while the test sets up and computes its reference answers; the first
        call waits for them (nothing of the learner's runs beside another function's child:
        the old one is gone before the new one is forked)."""
        self.wait_prestart()
        if name == self.function:
            return
        self.function = name
        self.replies.clear()

        def switch():
            self.close_process()
            # The budget starts once the previous child is gone: its end (seconds, for a fork
            # bomb being torn down) is not this function's time.
            self.deadline = time.monotonic() + self.function_timeout

        if not self.start_in_background(first=switch, start=self.wants_child(name)):
            switch()

    def wants_child(self, name: str) -> bool:
        """Whether ``name``'s checks will call the child (False: they fail without it, e.g. it is missing)."""
        return True

    def ensure_started(self) -> None:
        self.wait_prestart()
        while self.connection is None:
            self.spawn()
            self.load(self.cells_for(self.function))
            if self.connection is None:   # a cell ended the child: start again without it
                self.restarts += 1
                if self.restarts > MAX_RESTARTS:
                    raise LearnerError("the notebook's code crashed the grader's process too many times", "crash")

    def spawn(self) -> None:
        started = time.monotonic()
        try:
            child = self.spawner.spawn()
        except spawn.SpawnError as exc:
            raise LearnerError(f"the grader could not start a sandbox: {exc}", "crash")
        self.deadline += time.monotonic() - started   # starting a sandbox is not the learner's time
        self.connection = Connection(child, self.events, self.lock)
        self.loaded = set()
        self.events.strategy = child.strategy
        self.separation, self.limits_enforced = child.separation, child.limits_enforced

    def load(self, cells: list) -> None:
        """Run the imports cell (once per child) and ``cells``; a cell that ends the child is marked bad."""
        if self.connection is None:
            return
        if "<imports>" not in self.loaded:
            reply = self._request({"op": "preamble", "source": self.preamble}, self.call_timeout * 3, "the imports cell")
            if not reply.get("ok"):
                raise LearnerError("the assignment's imports failed in the sandbox: " + _error_text(reply), "crash")
            self.loaded.add("<imports>")
        for cell in cells:
            if cell.cell_id in self.bad_cells or cell.cell_id in self.loaded:
                continue
            what = f"cell {cell.cell_id} (defining {', '.join(cell.functions) or 'nothing graded'})"
            try:
                reply = self._request({"op": "exec", "cell": cell.cell_id, "source": cell.source}, self.call_timeout, what)
            except LearnerError as exc:
                # The cell killed or hung the process: the next start goes without it.
                self.bad_cells.add(cell.cell_id)
                self.events.cell_errors[cell.cell_id] = str(exc)
                return
            self.loaded.add(cell.cell_id)
            if reply.get("ok"):
                if reply.get("skipped_lines"):
                    self.events.skipped_lines[cell.cell_id] = reply["skipped_lines"]
            else:
                self.events.cell_errors[cell.cell_id] = _error_text(reply)

    def cells_for(self, name: str | None) -> list:
        """The cells a child for function ``name`` runs: all without one, else its closure."""
        if name is None:
            return self.cells
        return cells_needed(self.cells, self.defines, self.uses, {name})

    def close_process(self) -> None:
        if self.connection is not None:
            connection, self.connection = self.connection, None
            self.events.memory_exceeded |= connection.close()

    def close(self) -> None:
        self.wait_prestart()
        self.close_process()
        if self.own_spawner:
            self.spawner.close()

    def start_in_background(self, first=None, start: bool = True) -> bool:
        """Fork the child and run the cells while the caller starts pytest; False if not done here.

        The two overlap on separate cores; the first call waits for this. A
        failure here is not raised: the first call starts again and reports it.
        Only with a zygote: the forked child belongs to the zygote, and zygotes
        are started from one long-lived thread (``ZygoteSpawner.warm``), so
        nothing dies with the helper thread; a sandbox spawned directly from
        it would (PR_SET_PDEATHSIG). A cold zygote (TensorFlow: seconds) thus
        starts while the grader imports what the reference solution needs.
        """
        if not hasattr(self.spawner, "warm") or self.prestart is not None:
            return False

        def prestart():
            if first is not None:
                first()
            if start:
                try:
                    self.ensure_started()
                except LearnerError:
                    pass

        self.prestart = threading.Thread(target=prestart, daemon=True)
        self.prestart.start()
        return True

    def wait_prestart(self) -> None:
        if self.prestart is not None and self.prestart is not threading.current_thread():
            prestart, self.prestart = self.prestart, None
            prestart.join()

    def isolation_report(self) -> dict:
        """How this submission was isolated and which limits were enforced (for results.json)."""
        limits = self.limits
        return {
            "strategy": self.events.strategy or isolation.available_strategy(),
            "separation": self.separation,   # namespace | uid | sandbox | none (see sandbox/zygote.py)
            "limits": [f"rlimit address space {limits.address_space_mb} MB", f"rlimit cpu {limits.cpu_seconds} s",
                       f"rlimit file size {limits.file_size_mb} MB", f"rlimit processes {limits.processes}",
                       *self.limits_enforced],
            "per_function_children": self.function is not None,
        }

    # ------------------------------------------------------------ requests
    def _request(self, message: dict | bytes, timeout: float, what: str) -> dict:
        """Send a request (a dict, or one already framed by :meth:`_frame`) and read the reply."""
        remaining = self.deadline - time.monotonic()
        scope = f"{self.function}'s" if self.function else "the submission's total"
        if remaining <= 0:
            raise LearnerError(f"{scope} time budget was used up before this check", "budget")
        cut_by_budget = remaining < timeout
        timeout = min(timeout, remaining)
        data = message if isinstance(message, bytes) else self._frame(message)
        connection = self.connection
        try:
            reply, elements = connection.request(data, timeout, min(self.max_reply_elements, self.elements_left))
        except TimeoutError:
            self.close_process()
            if cut_by_budget:   # the limit stated is the one that applied
                owner, budget = ((f"{self.function}'s", self.function_timeout) if self.function
                                 else ("the submission's", self.submission_timeout))
                raise LearnerError(f"{what} did not finish within the {_seconds(remaining)} s left of {owner} "
                                   f"{_seconds(budget)} s time budget", "budget")
            raise LearnerError(f"{what} did not finish within {_seconds(timeout)} s (infinite loop or too slow?)", "timeout")
        except (EOFError, BrokenPipeError, OSError) as exc:
            code = connection.exit_code()
            self.close_process()
            reason = f"exit code {code}" if code is not None else str(exc)
            if self.events.memory_exceeded or (code is not None and code in (-9, 137)):
                reason += "; it may have run out of memory"
            self.events.crashes.append((what, code))
            raise LearnerError(f"the process running {what} ended unexpectedly ({reason})", "crash")
        except codec.DecodeError as exc:
            self.close_process()
            raise LearnerError(f"{what} sent back something that is not plain data or too much of it ({exc})", "unsupported")
        self.elements_left -= elements
        return reply

    @staticmethod
    def _frame(message: dict) -> bytes:
        try:
            return codec.dumps(message)
        except (TypeError, ValueError) as exc:
            raise RuntimeError(f"grader could not encode a request: {exc}")

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
        if key not in self.replies:
            self.replies[key] = self._reply(key, timeout or self.call_timeout, name)
        return self._decode(self.replies[key], name)

    def probe(self, source: str, inputs: dict, timeout: float | None = None, what: str | None = None):
        """``what`` names the probe in errors; by default the graded function whose checks run now."""
        what = what or self.function or "a check"
        message = {"op": "probe", "source": source, "inputs": codec.to_plain(dict(inputs))}
        # A probe named after a graded function (checks.call_with_stand_ins) needs that function's cells.
        return self._value(message, timeout or self.call_timeout, what, needs=what)

    def seed(self, seed: int) -> None:
        self.ensure_started()
        self._request({"op": "seed", "seed": int(seed)}, self.call_timeout, "seeding")

    def _value(self, message: dict, timeout: float, name: str, needs: str | None = ""):
        return self._decode(self._reply(message, timeout, name, needs), name)

    def _reply(self, message: dict | bytes, timeout: float, name: str, needs: str | None = "") -> dict:
        """``needs``: the learner function the request uses ("" means ``name``; None: none)."""
        self.ensure_started()
        needed = name if needs == "" else needs
        if self.function is not None and needed is not None and needed != self.function:
            # A check of one function may call another learner function: run the cells that one needs too.
            self.load(cells_needed(self.cells, self.defines, self.uses, {needed}))
            self.ensure_started()
        try:
            return self._request(message, timeout, name)
        except LearnerError as exc:
            if exc.kind == "timeout":
                self.timed_out.add(name)
                self.events.timeouts.append(name)
            raise

    def _missing_function(self, etype: str, message: str, name: str) -> str | None:
        """The learner function an error says is not defined, or None.

        The child's own "NAME is not defined" for a call; in a probe, Python's
        NameError "name 'f' is not defined" or a KeyError 'f' from ``ns['f']``,
        when f is a graded function: then the grader says f is missing, not
        that the check raised.
        """
        if etype == "NameError" and message.startswith(f"{name} is not defined"):
            return name
        found = (re.match(r"(?:name '(\w+)'|(\w+)) is not defined", message) if etype == "NameError"
                 else re.fullmatch(r"'(\w+)'", message.strip()) if etype == "KeyError" else None)
        if found is None:
            return None
        function = next(g for g in found.groups() if g)
        return function if any(function in c.functions for c in self.cells) else None

    def _decode(self, reply: dict, name: str):
        """The value of a reply, or the LearnerError it reports."""
        if reply.get("ok"):
            try:
                return codec.from_plain(reply.get("value"))
            except codec.DecodeError as exc:
                raise LearnerError(f"{name} returned something that is not plain data ({exc})", "unsupported")
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        etype = str(error.get("type", "Error"))[:80]
        missing = self._missing_function(etype, str(error.get("message", "")), name)
        if missing is not None:
            name = missing
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


def _cell_names(cells: list, preamble: str = "") -> tuple[dict, dict]:
    """(cell id -> top-level names it defines, cell id -> names it refers to).

    From the extraction's one parse of each cell where it gave them, else from
    the cell's source (every statement of which runs). A cell's ``import numpy
    as np`` does not define ``np`` for the others when the imports cell already
    does: another function's cell is not pulled in (with its definition-time
    side effects) for a module every child has.
    """
    import ast

    try:
        provided = frozenset((a.asname or a.name).split(".")[0] for node in ast.parse(strip_magics(preamble)).body
                             if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names)
    except SyntaxError:
        provided = frozenset()
    defines, uses = {}, {}
    for cell in cells:
        if cell.defines is not None and cell.uses is not None:
            defines[cell.cell_id], uses[cell.cell_id] = set(cell.defines), set(cell.uses)
            continue
        try:
            kept = ast.parse(cell.source).body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            defines[cell.cell_id], uses[cell.cell_id] = set(cell.functions), set()
            continue
        defined, used = kept_names_used(kept, provided)
        defines[cell.cell_id], uses[cell.cell_id] = defined | set(cell.functions), used - set(cell.functions)
    return defines, uses


def cells_needed(cells: list, defines: dict, uses: dict, names: set) -> list:
    """The cells defining ``names`` and, transitively, the names those cells use (in notebook order).

    A name no cell defines (a builtin, an imports-cell module) needs nothing;
    a function no cell defines leaves the child without it ("not defined").
    """
    wanted, needed, changed = set(names), set(), True
    while changed:
        changed = False
        for cell in cells:
            if cell.cell_id not in needed and defines[cell.cell_id] & wanted:
                needed.add(cell.cell_id)
                wanted |= uses[cell.cell_id]
                changed = True
    return [cell for cell in cells if cell.cell_id in needed]


def _seconds(value: float) -> str:
    """A duration for a message: whole seconds when that is exact enough, else one decimal (1.5, 0.4)."""
    value = max(0.0, value)
    return f"{value:.0f}" if value >= 10 or abs(value - round(value)) < 0.05 else f"{value:.1f}"


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

    def probe(self, source: str, timeout: float | None = None, what: str | None = None, **inputs):
        """Run a trusted ``def probe(ns, **inputs)`` in the child; ``what`` names it in errors
        (by default the graded function whose checks run, or "a check")."""
        return self._process.probe(source, inputs, timeout=timeout, what=what)

    def seed(self, seed: int) -> None:
        self._process.seed(seed)
