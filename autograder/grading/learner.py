"""The trusted side of a learner call: a sandboxed child and a proxy to it.

:class:`LearnerProcess` owns one submission's child process. It sends the
trusted imports cell and the graded cells, one request each, so a cell that
kills the process (``os._exit``, a segfault, a memory bomb) is identified and
left out when the child is restarted. Calls have a per-call timeout, and each
graded function a fixed share of the submission's time budget
(:mod:`autograder.grading.time_policy`); a function that timed out once fails
fast afterwards. Replies are decoded with :mod:`autograder.sandbox.codec`, so only
plain data ever reaches the hidden suite, and an error reply is classified by
its ``code`` (:class:`ReplyCode`), never by its text.

:class:`Learner` is what a hidden test sees as the ``learner`` fixture.
"""

from __future__ import annotations

import enum
import os
import select
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grading.time_policy import TimePolicy
from autograder.sandbox import codec, isolation, spawn
from autograder.sandbox.statements import kept_names_used, strip_magics

OUTPUT_KEEP_BYTES = 64 * 1024
MAX_RESTARTS = 6
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


@dataclass
class Cell:
    """One graded cell of the submission, as sent to the child."""

    cell_id: str
    source: str  # what runs: the statement rule already applied (grading/notebook.py)
    functions: list
    # Top-level names the cell defines and the names it uses from other cells, from the
    # extraction's parse (None: worked out from ``source`` when the process starts).
    defines: set | None = None
    uses: set | None = None


@dataclass
class ProcessEvents:
    """What happened to the child, for the report.

    The output drainer writes ``output_bytes`` and ``output_head`` under the
    LearnerProcess's ``lock``; the rest is the LearnerProcess's main thread's.
    """

    crashes: list = field(default_factory=list)  # (what, exit code)
    timeouts: list = field(default_factory=list)  # function names
    cell_errors: dict = field(default_factory=dict)  # cell id -> message
    skipped_lines: dict = field(default_factory=dict)  # cell id -> [line numbers]
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
                os.set_blocking(self.wake_w, False)  # a full wake pipe already means "look"
                self.thread = threading.Thread(
                    target=self._run, args=(wake_r,), daemon=True, name="dlgrade-output-drain"
                )
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


class _Child:
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
class _Work:
    """Learner work charged to one function, and all it did: built by the thread doing the work,
    folded into the submission's record by the main thread (:meth:`LearnerProcess._install`)."""

    function: str | None  # whose share the time is charged to (None: outside any function)
    left: float  # learner seconds this work may use
    owner: str  # whose budget that is, for messages: "f's" or "the submission's"
    budget: float  # that budget's size
    elements_left: int  # reply elements the submission has left
    spent: float = 0.0  # learner seconds used
    elements: int = 0  # reply elements used
    start_seconds: float = 0.0  # spent starting sandboxes (not learner time)
    child: _Child | None = None  # the child a start made, its cells run
    spawned: spawn.Child | None = None  # the last child started (how it is isolated)
    restarts: int = 0
    bad_cells: set = field(default_factory=set)
    cell_errors: dict = field(default_factory=dict)
    skipped_lines: dict = field(default_factory=dict)
    crashes: list = field(default_factory=list)
    memory_exceeded: bool = False


class LearnerProcess:
    """One submission's sandboxed learner: the rules of a submission over :class:`Connection`.

    Per graded function (``begin_function``, called as the hidden suite moves
    from one function's checks to the next) a fresh child is forked and given
    only the cells that function needs (its own and those defining the names
    it uses, see :func:`cells_needed`): one function's definition-time or
    call-time side effects cannot change another's grade. Cells that kill or
    hang the child are left out and the child is started again (a loop, at
    most MAX_RESTARTS times).

    Time (:mod:`autograder.grading.time_policy`): learner time is the time
    from sending a request to the child until its reply (or the limit that
    cut it); starting and killing sandboxes and the grader's own work are not
    learner time. Each graded function has a fixed share, ``time_policy.function``,
    charged across all its checks (coming back to a function goes on from what
    it has left), and no work is ever given more than the submission has left
    of ``time_policy.submission``: a submission's learner time is at most
    ``submission``, and one function's hog costs only that function.

    Threads: the thread that calls the public methods (pytest's, the "main"
    thread) owns every mutable attribute below; no other thread reads or
    writes them. With a spawner that ``starts_in_background``, the next
    function's child is started by a helper thread while the grader works
    (:meth:`start_in_background`). That thread is given, as arguments, what
    it needs: the previous child to end, the cells to run, a snapshot of the
    bad cells and a :class:`_Work` saying what it may spend; it reads only
    the attributes ``__init__`` set and never rewrites (cells, policy,
    spawner, ...), and it writes only that ``_Work`` and the child objects it
    was handed or made. The main thread joins it before it touches the state
    again (every public method starts with :meth:`wait_prestart`) and then
    installs the outcome: the new child and the time, cells and crashes the
    work recorded. So no attribute is shared between two running threads and
    no lock is needed for them; the one other thread, the output drainer,
    writes only ``events.output_bytes``/``events.output_head``, under ``lock``.
    """

    def __init__(
        self,
        *,
        preamble: str,
        cells: list[Cell],
        limits: isolation.Limits,
        time_policy: TimePolicy,
        helper_dir: Path | None = None,
        strategy: str | None = None,
        spawner: spawn.Spawner | None = None,
        repeatable: tuple = (),
        max_reply_elements: int = codec.MAX_REPLY_ELEMENTS,
        max_submission_elements: int = codec.MAX_SUBMISSION_ELEMENTS,
    ):
        # Set here and never rewritten: any thread may read these.
        self.preamble = preamble
        self.cells = cells
        self.limits = limits
        self.time_policy = time_policy
        self.spawner = spawner or spawn.DirectSpawner(helper_dir, limits, strategy)
        self.own_spawner = spawner is None
        # Functions whose identical calls are answered from the first reply (see call()).
        self.repeatable = frozenset(repeatable)
        self.max_reply_elements = max_reply_elements
        self.defines, self.uses = _cell_names(cells, preamble)
        self.graded = frozenset(function for cell in cells for function in cell.functions)
        self.lock = threading.Lock()  # the output drainer's, around events.output_*
        self.events = ProcessEvents()  # never rebound; its fields are the main thread's (output_*: the drainer's)
        # The main thread's (see "Threads" above).
        self.function: str | None = None  # the graded function whose checks run now (None: all cells)
        self.child: _Child | None = None
        self.spent: dict = {}  # learner seconds charged, per function (None: outside any)
        self.start_seconds = 0.0  # seconds spent starting sandboxes (not learner time)
        self.elements_left = max_submission_elements
        self.replies: dict = {}
        self.bad_cells: set = set()
        self.timed_out: set = set()
        self.separation = ""
        self.limits_enforced: tuple = ()
        self.restarts = 0
        self._prestart: tuple[threading.Thread, _Work] | None = None

    # ------------------------------------------------------------ lifecycle
    def begin_function(self, name: str) -> None:
        """The next checks grade ``name``: a fresh child unless the current child is already its.

        With a zygote, the old child's end and the new one's start and cells run in the
        background while the test sets up and computes its reference answers; the first
        call waits for them (nothing of the learner's runs beside another function's child:
        the old one is gone before the new one is forked). Neither is ``name``'s time."""
        self.wait_prestart()
        if name == self.function:
            return
        self.function = name
        self.replies.clear()
        previous, self.child = self.child, None
        if not self.start_in_background(close=previous, start=self.wants_child(name)) and previous is not None:
            self.events.memory_exceeded |= previous.end()

    def wants_child(self, name: str) -> bool:
        """Whether ``name``'s checks will call the child (False: they fail without it, e.g. it is missing)."""
        return True

    @property
    def learner_seconds(self) -> float:
        """The learner time charged so far, all functions together."""
        return sum(self.spent.values())

    def ensure_started(self) -> None:
        """A live child for the current function, its cells run (main thread)."""
        self.wait_prestart()
        if self.child is not None and not self.child.closed:
            return
        self.child = None
        work = self._work()
        try:
            self._start(work, self.cells_for(self.function), frozenset(self.bad_cells), MAX_RESTARTS - self.restarts)
        finally:
            self._install(work)

    def cells_for(self, name: str | None) -> list:
        """The cells a child for function ``name`` runs: all without one, else its closure."""
        if name is None:
            return self.cells
        return cells_needed(self.cells, self.defines, self.uses, {name})

    def close_process(self) -> None:
        self.wait_prestart()
        if self.child is not None:
            child, self.child = self.child, None
            self.events.memory_exceeded |= child.end()

    def close(self) -> None:
        self.close_process()
        if self.own_spawner:
            self.spawner.close()

    def start_in_background(self, *, close: _Child | None = None, start: bool = True) -> bool:
        """End ``close`` and start the current function's child (running its cells) in a helper
        thread while the caller goes on (pytest starts, a test sets up); False if not done here.

        The two overlap on separate cores; the first call waits for this. A
        failure here is not raised: the first call starts again and reports it.
        Only with a spawner that ``starts_in_background`` (a zygote: the forked
        child belongs to the zygote, and zygotes are started from one
        long-lived thread, so nothing dies with the helper thread; a sandbox
        spawned directly from it would, PR_SET_PDEATHSIG). A cold zygote
        (TensorFlow: seconds) thus starts while the grader imports what the
        reference solution needs. See "Threads" in the class docstring.
        """
        if not self.spawner.starts_in_background or self._prestart is not None:
            return False
        work = self._work()
        cells, bad_cells = self.cells_for(self.function), frozenset(self.bad_cells)
        restarts_left = MAX_RESTARTS - self.restarts

        def prestart():  # touches only its arguments, `work` and what __init__ set
            if close is not None:
                work.memory_exceeded |= close.end()
            if start:
                try:
                    self._start(work, cells, bad_cells, restarts_left)
                except LearnerError:
                    pass

        thread = threading.Thread(target=prestart, daemon=True, name="dlgrade-prestart")
        self._prestart = (thread, work)
        thread.start()
        return True

    def wait_prestart(self) -> None:
        """Join the helper thread, if one runs, and install what it did (main thread)."""
        if self._prestart is not None:
            thread, work = self._prestart
            self._prestart = None
            thread.join()
            self._install(work)

    def isolation_report(self) -> dict:
        """How this submission was isolated and which limits were enforced (for results.json)."""
        self.wait_prestart()
        limits = self.limits
        return {
            "strategy": self.events.strategy or isolation.available_strategy(),
            "separation": self.separation,  # namespace | uid | sandbox | none (see sandbox/zygote.py)
            "limits": [
                f"rlimit address space {limits.address_space_mb} MB",
                f"rlimit cpu {limits.cpu_seconds} s",
                f"rlimit file size {limits.file_size_mb} MB",
                f"rlimit processes {limits.processes}",
                *self.limits_enforced,
            ],
            "per_function_children": self.function is not None,
        }

    # ------------------------------------------------------------ the main thread's bookkeeping
    def _work(self) -> _Work:
        """A record for learner work charged to the current function: what it may spend.

        A function's share left, never more than the submission's total left;
        outside any function, the submission's total left."""
        policy, function = self.time_policy, self.function
        total_left = policy.submission - sum(self.spent.values())
        left, owner, budget = total_left, "the submission's", policy.submission
        if function is not None:
            share_left = policy.function - self.spent.get(function, 0.0)
            if share_left <= total_left + 1e-6:  # (rounding: shares sum to the total)
                left, owner, budget = share_left, f"{function}'s", policy.function
        return _Work(function=function, left=left, owner=owner, budget=budget, elements_left=self.elements_left)

    def _install(self, work: _Work) -> None:
        """Fold what ``work`` did into the submission's record (main thread, once per work)."""
        self.spent[work.function] = self.spent.get(work.function, 0.0) + work.spent
        self.start_seconds += work.start_seconds
        self.elements_left -= work.elements
        self.restarts += work.restarts
        self.bad_cells |= work.bad_cells
        self.events.cell_errors.update(work.cell_errors)
        self.events.skipped_lines.update(work.skipped_lines)
        self.events.crashes += work.crashes
        self.events.memory_exceeded |= work.memory_exceeded
        if work.spawned is not None:
            self.events.strategy = work.spawned.strategy
            self.separation, self.limits_enforced = work.spawned.separation, work.spawned.limits_enforced
        if work.child is not None:
            self.child = work.child

    # ------------------------------------------------------------ work (any thread: see "Threads")
    def _start(self, work: _Work, cells: list, bad_cells: frozenset, restarts_left: int) -> None:
        """Start a child and run ``cells`` (less the bad ones) in it; the child goes to ``work.child``.

        A cell that ends or hangs the child is marked bad and the child is
        started again without it. Nothing is started once the budget is gone."""
        while True:
            if work.left - work.spent <= 0:
                raise _used_up(work)
            child = self._spawn(work)
            try:
                self._load(work, child, cells, bad_cells)
            except BaseException:
                work.memory_exceeded |= child.end()  # a child never installed must not outlive this
                raise
            if not child.closed:
                work.child = child
                return
            work.restarts += 1
            if work.restarts > restarts_left:
                raise LearnerError("the notebook's code crashed the grader's process too many times", ErrorKind.CRASH)

    def _spawn(self, work: _Work) -> _Child:
        started = time.monotonic()
        try:
            spawned = self.spawner.spawn()
        except spawn.SpawnError as exc:
            raise LearnerError(f"the grader could not start a sandbox: {exc}", ErrorKind.CRASH)
        finally:
            work.start_seconds += time.monotonic() - started  # starting a sandbox is not the learner's time
        work.spawned = spawned
        return _Child(Connection(spawned, self.events, self.lock))

    def _load(self, work: _Work, child: _Child, cells: list, bad_cells: frozenset) -> None:
        """Run the imports cell (once per child) and ``cells``; a cell that ends the child is marked bad.

        A cell cut off by the time budget is not marked bad (the budget ran
        out, the cell may be fine): the budget's error is raised."""
        if child.closed:
            return
        if "<imports>" not in child.loaded:
            reply = self._exchange(
                work, child, {"op": "preamble", "source": self.preamble}, self.time_policy.imports, "the imports cell"
            )
            if not reply.get("ok"):
                work.memory_exceeded |= child.end()
                raise LearnerError(
                    "the assignment's imports failed in the sandbox: " + _error_text(reply), ErrorKind.CRASH
                )
            child.loaded.add("<imports>")
        for cell in cells:
            if cell.cell_id in bad_cells or cell.cell_id in work.bad_cells or cell.cell_id in child.loaded:
                continue
            what = f"cell {cell.cell_id} (defining {', '.join(cell.functions) or 'nothing graded'})"
            try:
                reply = self._exchange(
                    work,
                    child,
                    {"op": "exec", "cell": cell.cell_id, "source": cell.source},
                    self.time_policy.call,
                    what,
                )
            except LearnerError as exc:
                if exc.kind is ErrorKind.BUDGET:
                    raise
                # The cell killed or hung the process: the next start goes without it.
                work.bad_cells.add(cell.cell_id)
                work.cell_errors[cell.cell_id] = str(exc)
                return
            child.loaded.add(cell.cell_id)
            if reply.get("ok"):
                if reply.get("skipped_lines"):
                    work.skipped_lines[cell.cell_id] = reply["skipped_lines"]
            else:
                work.cell_errors[cell.cell_id] = _error_text(reply)

    def _exchange(self, work: _Work, child: _Child, message: dict | bytes, timeout: float, what: str) -> dict:
        """Send a request (a dict, or one already framed by :meth:`_frame`) and read the reply,
        within ``timeout`` and what ``work`` may still spend; the time it takes is charged to ``work``."""
        remaining = work.left - work.spent
        if remaining <= 0:
            raise _used_up(work)
        cut_by_budget = remaining < timeout
        timeout = min(timeout, remaining)
        data = message if isinstance(message, bytes) else self._frame(message)
        started = time.monotonic()
        try:
            try:
                reply, elements = child.connection.request(
                    data, timeout, min(self.max_reply_elements, work.elements_left - work.elements)
                )
            finally:
                # Until the reply, or the limit that cut it (the grader's wake-up after it, and ending
                # the child below, are not the learner's time).
                work.spent += min(time.monotonic() - started, timeout)
        except TimeoutError:
            work.memory_exceeded |= child.end()
            if cut_by_budget:  # the limit stated is the one that applied
                raise LearnerError(
                    f"{what} did not finish within the {_seconds(remaining)} s left of {work.owner} "
                    f"{_seconds(work.budget)} s time budget",
                    ErrorKind.BUDGET,
                )
            raise LearnerError(
                f"{what} did not finish within {_seconds(timeout)} s (infinite loop or too slow?)", ErrorKind.TIMEOUT
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

    @staticmethod
    def _frame(message: dict) -> bytes:
        try:
            return codec.dumps(message)
        except (TypeError, ValueError) as exc:
            raise RuntimeError(f"grader could not encode a request: {exc}")

    # ------------------------------------------------------------ requests (main thread)
    def _request(self, message: dict | bytes, timeout: float, what: str) -> dict:
        """One request to the current child (started), charged to the current function."""
        work = self._work()
        try:
            return self._exchange(work, self.child, message, timeout, what)
        finally:
            self._install(work)

    def call(self, name: str, args: tuple, kwargs: dict, timeout: float | None = None):
        if name in self.timed_out:
            raise LearnerError(f"{name} timed out in an earlier check, so it was not run again", ErrorKind.TIMEOUT)
        message = {
            "op": "call",
            "name": name,
            "args": codec.to_plain(list(args)),
            "kwargs": codec.to_plain(dict(kwargs)),
        }
        if name not in self.repeatable:
            return self._decode(self._reply(message, timeout or self.time_policy.call, name), name, called=name)
        # A deterministic function (``repeatable_calls`` in assignment.toml)
        # asked the same question again by another check: reuse the child's
        # reply, decoded afresh so no check sees another's arrays.
        key = self._frame(message)  # the framed request is both the key and what is sent
        if key not in self.replies:
            self.replies[key] = self._reply(key, timeout or self.time_policy.call, name)
        return self._decode(self.replies[key], name, called=name)

    def probe(self, source: str, inputs: dict, timeout: float | None = None, what: str | None = None):
        """``what`` names the probe in errors; by default the graded function whose checks run now."""
        what = what or self.function or "a check"
        message = {"op": "probe", "source": source, "inputs": codec.to_plain(dict(inputs))}
        # A probe named after a graded function (checks.call_with_stand_ins) needs that function's cells.
        return self._decode(self._reply(message, timeout or self.time_policy.call, what, needs=what), what)

    def seed(self, seed: int) -> None:
        self.ensure_started()
        self._request({"op": "seed", "seed": int(seed)}, self.time_policy.call, "seeding")

    def _reply(self, message: dict | bytes, timeout: float, name: str, needs: str | None = "") -> dict:
        """``needs``: the learner function the request uses ("" means ``name``; None: none)."""
        self.ensure_started()
        needed = name if needs == "" else needs
        if self.function is not None and needed is not None and needed != self.function:
            # A check of one function may call another learner function: run the cells that one needs too.
            work = self._work()
            try:
                self._load(
                    work,
                    self.child,
                    cells_needed(self.cells, self.defines, self.uses, {needed}),
                    frozenset(self.bad_cells),
                )
            finally:
                self._install(work)
            self.ensure_started()
        try:
            return self._request(message, timeout, name)
        except LearnerError as exc:
            if exc.kind is ErrorKind.TIMEOUT:
                self.timed_out.add(name)
                self.events.timeouts.append(name)
            raise

    def _decode(self, reply: dict, name: str, called: str | None = None):
        """The value of a reply, or the LearnerError it reports.

        ``called``: the function a call asked for (the child's "not defined"
        for it is believed); None for a probe. The error reply is untrusted:
        its code and name are checked (:class:`ReplyCode`), its texts capped.
        """
        if reply.get("ok"):
            try:
                return codec.from_plain(reply.get("value"))
            except codec.DecodeError as exc:
                raise LearnerError(f"{name} returned something that is not plain data ({exc})", ErrorKind.UNSUPPORTED)
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        etype = str(error.get("type", "Error"))[:80]
        message = str(error.get("message", ""))
        code = _reply_code(error.get("code"))
        missing = error.get("name")
        if (
            code is ReplyCode.NOT_DEFINED
            and isinstance(missing, str)
            and len(missing) <= MAX_NAME_CHARS
            and (missing == called or missing in self.graded)
        ):
            failed = [
                self.events.cell_errors[c.cell_id]
                for c in self.cells
                if missing in c.functions and c.cell_id in self.events.cell_errors
            ]
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
            f"{name} raised {etype}: {message[:500]}", ErrorKind.ERROR, str(error.get("traceback", ""))[-3000:]
        )


def _used_up(work: _Work) -> LearnerError:
    return LearnerError(
        f"{work.owner} {_seconds(work.budget)} s time budget was used up before this check", ErrorKind.BUDGET
    )


def _reply_code(value) -> ReplyCode:
    """A reply's error code; anything not a known code is RAISED."""
    try:
        return ReplyCode(value) if isinstance(value, str) else ReplyCode.RAISED
    except ValueError:
        return ReplyCode.RAISED


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
        provided = frozenset(
            (a.asname or a.name).split(".")[0]
            for node in ast.parse(strip_magics(preamble)).body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for a in node.names
        )
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
                view = view[os.write(fd, view[: 1 << 16]) :]
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

    @property
    def time_policy(self) -> TimePolicy:
        """The time limits in force, e.g. ``learner.call(..., timeout=learner.time_policy.long_call)``
        for a call the suite knows is long (a training run)."""
        return self._process.time_policy
