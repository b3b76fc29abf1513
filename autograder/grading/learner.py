"""The trusted side of a learner call: a sandboxed child and a proxy to it.

:class:`LearnerProcess` owns one submission's child process. It sends the
trusted imports cell and the graded cells, one request each, so a cell that
kills the process (``os._exit``, a segfault, a memory bomb) is identified and
left out when the child is restarted. Calls have a per-call timeout, and each
graded function a fixed share of the submission's time budget
(:mod:`autograder.grading.time_policy`); a function that timed out once fails
fast afterwards. Replies are decoded with :mod:`autograder.sandbox.codec`, so only
plain data ever reaches the hidden suite, and an error reply is classified by
its ``code``, never by its text (:mod:`autograder.grading.learner_errors`).
The pipes to the child are :mod:`autograder.grading.connection`'s, one piece of
learner work and its exchanges :mod:`autograder.grading.work`'s, and which cells
a function's child runs :mod:`autograder.grading.cells`'s.

:class:`Learner` is what a hidden test sees as the ``learner`` fixture.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from autograder.grading.callbacks import Callbacks
from autograder.grading.cells import Cell, cell_names, cells_needed, definers
from autograder.grading.connection import Connection, ProcessEvents
from autograder.grading.learner_errors import ErrorKind, LearnerError, decode_reply, error_text
from autograder.grading.stand_ins import plan
from autograder.grading.time_policy import TimePolicy
from autograder.grading.work import StartedChild, Work, exchange, frame, used_up
from autograder.sandbox import codec, isolation, spawn

MAX_RESTARTS = 6


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
    bad cells and a :class:`Work` saying what it may spend; it reads only
    the attributes ``__init__`` set and never rewrites (cells, policy,
    spawner, ...), and it writes only that ``Work`` and the child objects it
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
        stand_ins: dict | None = None,
        reference=None,
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
        # Graded function -> its reference source, given to the child of a function that calls it
        # (grading/stand_ins.py; empty: none); with ``reference`` (-> the reference's namespace) the child
        # gets forwarders instead, and the reference runs here (grading/callbacks.py).
        self.stand_ins, self.reference = dict(stand_ins or {}), reference
        self.defines, self.uses = cell_names(cells, preamble)
        self.definers = definers(cells, self.defines)  # name -> defining cells, once per submission
        self.graded = frozenset(function for cell in cells for function in cell.functions)
        self.lock = threading.Lock()  # the output drainer's, around events.output_*
        self.events = ProcessEvents()  # never rebound; its fields are the main thread's (output_*: the drainer's)
        # The main thread's (see "Threads" above).
        self.function: str | None = None  # the graded function whose checks run now (None: all cells)
        self.child: StartedChild | None = None
        self.spent: dict = {}  # learner seconds charged, per function (None: outside any)
        self.start_seconds = 0.0  # seconds spent starting sandboxes (not learner time)
        self.elements_left = max_submission_elements
        self.replies: dict = {}
        self.bad_cells: set = set()
        self.timed_out: set = set()
        self.separation = ""
        self.limits_enforced: Callable[[], tuple] = tuple  # the last child's (spawn.Child.limits_enforced)
        self.restarts = 0
        self._prestart: tuple[threading.Thread, Work] | None = None

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
        """The cells a child for function ``name`` runs: all without one, else its closure, with the
        reference in place of the graded functions it calls (grading/stand_ins.py)."""
        if name is None:
            return self.cells
        cells, call_back = self.cells, self.reference is not None
        return plan(cells, self.defines, self.uses, self.definers, name, self.stand_ins, self.preamble, call_back)

    def close_process(self) -> None:
        self.wait_prestart()
        if self.child is not None:
            child, self.child = self.child, None
            self.events.memory_exceeded |= child.end()

    def close(self) -> None:
        self.close_process()
        if self.own_spawner:
            self.spawner.close()

    def start_in_background(self, *, close: StartedChild | None = None, start: bool = True) -> bool:
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
                f"rlimit address space {limits.address_space_mb} MB"
                if isolation.address_space_limit(limits) is not None
                else "rlimit address space: none (GPUs on: CUDA reserves more address space than it uses)",
                f"rlimit cpu {limits.cpu_seconds} s",
                f"rlimit file size {limits.file_size_mb} MB",
                f"rlimit processes {limits.processes}",
                *self.limits_enforced(),
            ],
            "per_function_children": self.function is not None,
        }

    # ------------------------------------------------------------ the main thread's bookkeeping
    def _work(self) -> Work:
        """A record for learner work charged to the current function: what it may spend.

        A function's share left, never more than the submission's total left;
        outside any function, the submission's total left."""
        policy, function = self.time_policy, self.function
        total_left = policy.submission - sum(self.spent.values())
        left, owner, budget = total_left, "the submission's", policy.submission
        if function is not None:
            share_left = policy.function - self.spent.get(function, 0.0)
            if share_left <= total_left + 1e-6:  # (rounding: shares sum to the total)
                left, owner, budget = share_left, f"{function}'s", policy.share
        return Work(function=function, left=left, owner=owner, budget=budget, elements_left=self.elements_left)

    def _install(self, work: Work) -> None:
        """Fold what ``work`` did into the submission's record (main thread, once per work)."""
        self.spent[work.function] = self.spent.get(work.function, 0.0) + work.spent
        self.start_seconds += work.start_seconds
        self.elements_left -= work.elements
        self.restarts += work.restarts
        self.bad_cells |= work.bad_cells
        self.events.cell_errors.update(work.cell_errors)
        self.events.crashes += work.crashes
        self.events.memory_exceeded |= work.memory_exceeded
        if work.spawned is not None:
            self.events.strategy = work.spawned.strategy
            spawned = work.spawned
            self.separation, self.limits_enforced = spawned.separation, lambda: spawned.limits_enforced
        if work.child is not None:
            self.child = work.child

    # ------------------------------------------------------------ work (any thread: see "Threads")
    def _start(self, work: Work, cells: list, bad_cells: frozenset, restarts_left: int) -> None:
        """Start a child and run ``cells`` (less the bad ones) in it; the child goes to ``work.child``.

        A cell that ends or hangs the child is marked bad and the child is
        started again without it. Nothing is started once the budget is gone."""
        while True:
            if work.left - work.spent <= 0:
                raise used_up(work)
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

    def _spawn(self, work: Work) -> StartedChild:
        started = time.monotonic()
        try:
            spawned = self.spawner.spawn()
        except spawn.SpawnError as exc:
            raise LearnerError(f"the grader could not start a sandbox: {exc}", ErrorKind.CRASH)
        finally:
            work.start_seconds += time.monotonic() - started  # starting a sandbox is not the learner's time
        work.spawned = spawned
        return StartedChild(Connection(spawned, self.events, self.lock, Callbacks(self.reference)))

    def _load(self, work: Work, child: StartedChild, cells: list, bad_cells: frozenset) -> None:
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
                    "the assignment's imports failed in the sandbox: " + error_text(reply), ErrorKind.CRASH
                )
            child.loaded.add("<imports>")
        for cell in cells:
            if cell.cell_id in bad_cells or cell.cell_id in work.bad_cells or cell.cell_id in child.loaded:
                continue
            defined = cell.functions or sorted(cell.defines or ())[:3]
            what = f"the cell defining {', '.join(defined)}" if defined else "a cell the graded functions use"
            try:
                message = cell.trusted or {"op": "exec", "cell": cell.cell_id, "source": cell.source}
                reply = self._exchange(work, child, message, self.time_policy.call, what)
            except LearnerError as exc:
                if exc.kind is ErrorKind.BUDGET:
                    raise
                # The cell killed or hung the process: the next start goes without it.
                work.bad_cells.add(cell.cell_id)
                work.cell_errors[cell.cell_id] = str(exc)
                return
            child.loaded.add(cell.cell_id)
            if not reply.get("ok") and cell.trusted is None:
                work.cell_errors[cell.cell_id] = error_text(reply)

    def _exchange(self, work: Work, child: StartedChild, message: dict | bytes, timeout: float, what: str) -> dict:
        """One request and its reply, charged to ``work`` (:func:`autograder.grading.work.exchange`)."""
        return exchange(work, child, message, timeout, what, self.max_reply_elements)

    # ------------------------------------------------------------ requests (main thread)
    def _started(self) -> StartedChild:
        """The current child, which ensure_started() made."""
        if self.child is None:
            raise LearnerError("the learner process is not running", ErrorKind.CRASH)
        return self.child

    def _request(self, message: dict | bytes, timeout: float, what: str) -> dict:
        """One request to the current child (started), charged to the current function."""
        work = self._work()
        try:
            return self._exchange(work, self._started(), message, timeout, what)
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
        # A deterministic function (``repeatable_calls``) asked the same question again by another
        # check: reuse the child's reply, decoded afresh so no check sees another's arrays.
        key = frame(message)  # the framed request is both the key and what is sent
        if key not in self.replies:
            self.replies[key] = self._reply(key, timeout or self.time_policy.call, name)
        return self._decode(self.replies[key], name, called=name)

    def probe(self, source: str, inputs: dict, timeout: float | None = None, what: str | None = None):
        """``what`` names the probe in errors; by default the graded function whose checks run now."""
        what = what or self.function or "a check"
        message = self._probe_message(source, inputs)
        # A probe named after a graded function (probes.call_with_stand_ins) needs that function's cells.
        return self._decode(self._reply(message, timeout or self.time_policy.call, what, needs=what), what)

    def probe_last_child(self, source: str, inputs: dict, timeout: float, what: str):
        """A trusted probe in the child that ran the last checks, after them (e.g. which device its
        TensorFlow used); None when that child has ended (no new one is started for it). Raises
        LearnerError as :meth:`probe` does; the time is the last function's."""
        self.wait_prestart()
        if self.child is None or self.child.closed:
            return None
        return self._decode(self._request(self._probe_message(source, inputs), timeout, what), what)

    @staticmethod
    def _probe_message(source: str, inputs: dict) -> dict:
        return {"op": "probe", "source": source, "inputs": codec.to_plain(dict(inputs))}

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
                    self._started(),
                    cells_needed(self.cells, self.defines, self.uses, {needed}, self.definers),
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
        """The value of a reply, or the LearnerError it reports (:func:`learner_errors.decode_reply`).

        ``called``: the function a call asked for (the child's "not defined"
        for it is believed); None for a probe.
        """
        return decode_reply(reply, name, called, self.graded, self.cells, self.events.cell_errors)


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
