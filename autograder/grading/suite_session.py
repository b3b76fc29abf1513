"""One pytest session per hidden suite in each grading process.

``pytest.main`` per submission configures pytest, registers its plugins, parses the fixture
definitions and collects the suite again every time (about 20 ms of a warm numpy grade). A
warm worker instead keeps one ``SuiteSession`` per assignment: pytest is configured and the suite
collected once, and each submission runs the collected items again, the way pytest itself
re-runs an item (``runtestprotocol`` re-initializes its fixture request):

1. ``open()``: configure (the arguments of ``SUITE_ARGS``, our plugins), start the session,
   collect, refuse a suite with collection errors; copy each suite module's state
   (grading/suite_state.py);
2. ``run(process)``, once per submission: put the modules' state back as collected, point the
   plugins at this submission's sandboxed process, run every item with the last one's
   ``nextitem=None`` so that every fixture, the session-scoped ``learner`` included, is torn
   down at the end of the submission; return its records;
3. ``close()``: finish the session and unconfigure pytest.

Only trusted objects live here; the learner's code runs in the sandboxed child behind
``process``. A session that breaks (an exception out of pytest's protocol, fixtures left set
up) is closed and the next submission opens a new one; a changed suite file (a fix deployed
while ``dlgrade serve`` runs) opens a new one too, its modules imported again.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from _pytest.config import _prepareconfig  # pytest's own staging of pytest.main (pinned in constraints.txt)
from _pytest.main import Session

from autograder.grading import catalogue
from autograder.grading import plugin as fixture_definitions  # the module's learner/reference fixtures
from autograder.grading.learner import Learner, LearnerProcess
from autograder.grading.plugin import CheapFailureReports, GradingPlugin
from autograder.grading.suite_state import ModuleState, UnresettableState

# Plugins a hidden suite never needs; unraisableexception alone costs a forced gc.collect() of
# ~0.2 s per run.
_UNUSED_PLUGINS = (
    # pytest's capture would stay set up for the session's life, and each item's end would put back
    # the sys.stdout/stderr and fds of the session's start (a caller's long-gone redirection): the
    # session captures nothing; run() swallows what a suite prints (_quiet).
    "capture",
    "unraisableexception",
    "threadexception",
    "doctest",
    "pastebin",
    "junitxml",
    "stepwise",
    "lfplugin",
    "nose",
    "legacypath",
    "tmpdir",
    "logging",
    "faulthandler",
)


def suite_args(assignment: catalogue.Assignment) -> list:
    args = [
        str(assignment.suite_dir),
        "-c",
        str(catalogue.SUITES_DIR / "pytest.ini"),
        "--rootdir",
        str(catalogue.SUITES_DIR),
        "-p",
        "no:terminal",
        "-p",
        "no:warnings",
        # Installed pytest11 plugins (anyio, platformdirs) are not for hidden suites, and finding
        # them scans every installed distribution's metadata; the suites raise CheckFailed rather
        # than bare asserts, so assertion rewriting has nothing to add either.
        "--disable-plugin-autoload",
        "--assert=plain",
    ]
    for unused in _UNUSED_PLUGINS:
        args += ["-p", f"no:{unused}"]
    return args


class FunctionBoundary:
    """Tells the learner process which graded function the next test checks (a fresh child per function)."""

    def __init__(self, process: LearnerProcess | None = None):
        self.process = process

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        marker = item.get_closest_marker("graded")
        if marker is not None and self.process is not None:
            self.process.begin_function(marker.args[0] if marker.args else marker.kwargs["function"])


@dataclass
class SuiteRun:
    """What one submission's run of the suite recorded (plugin.TestRecord, in test order)."""

    records: list


class SuiteFailed(RuntimeError):
    """The hidden suite itself could not run (collection errors, no tests, a broken session)."""


def suite_files(assignment: catalogue.Assignment) -> tuple:
    """What a session was collected from: each suite file's name, size and modification time."""
    files = sorted(p for p in assignment.suite_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    files.append(catalogue.SUITES_DIR / "pytest.ini")
    seen = []
    for path in files:
        try:
            st = path.stat()
        except OSError:  # removed since the walk (a suite being deployed): a change like any other
            continue
        seen.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(seen)


class SuiteSession:
    """One assignment's hidden suite, configured and collected once, run per submission."""

    def __init__(self, assignment: catalogue.Assignment):
        self.assignment = assignment
        self.files = suite_files(assignment)
        self.plugin = GradingPlugin(assignment, None)
        self.boundary = FunctionBoundary()
        self.lock = threading.Lock()  # one submission at a time (a threaded Dask worker)
        self.config: pytest.Config | None = None
        self.session: Session | None = None
        self.items: list = []
        self.states: list = []
        self.runs = 0
        self.broken = False  # not to be run again: the next submission opens a new session

    def open(self) -> SuiteSession:
        # The suite may import the assignment's helper module (<name>_utils) at the top.
        if str(self.assignment.release_dir) not in sys.path:
            sys.path.append(str(self.assignment.release_dir))
        with _quiet():
            try:
                self._open()
            except BaseException:
                self.close()
                raise
        return self

    def _open(self) -> None:
        plugins = [self.plugin, fixture_definitions, CheapFailureReports(), self.boundary]
        self.config = config = _prepareconfig(suite_args(self.assignment), plugins)
        self.session = session = Session.from_config(config)
        config._do_configure()
        config.hook.pytest_sessionstart(session=session)
        config.hook.pytest_collection(session=session)
        self.items = list(session.items)
        if self.plugin.collection_errors or not self.items:
            # Also no items: after a suite failed to import once, pytest (importlib mode) finds the
            # half-imported module in sys.modules and collects nothing, which would score every
            # later submission 0 without an error.
            raise SuiteFailed(
                f"hidden suite of {self.assignment.name} failed to run: "
                + ("\n".join(self.plugin.collection_errors) or "no test was collected")
            )
        modules = {item.module for item in self.items if getattr(item, "module", None) is not None}
        modules |= set(_modules_under(self.assignment.suite_dir).values())
        try:
            self.states = [ModuleState.capture(m) for m in sorted(modules, key=lambda m: m.__name__)]
        except UnresettableState as exc:
            raise SuiteFailed(f"hidden suite of {self.assignment.name} cannot run per submission: {exc}") from None

    def run(self, process: LearnerProcess) -> SuiteRun:
        """Run every collected item against ``process``; the session's fixtures are all torn down after."""
        assert self.session is not None and self.config is not None, "open() first"
        session, hook = self.session, self.config.hook
        for state in self.states:
            state.restore()
        records = self.plugin.begin(Learner(process))
        self.boundary.process = process
        session.testsfailed = 0
        session.shouldfail = session.shouldstop = False
        self.runs += 1
        try:
            with _quiet():
                for i, item in enumerate(self.items):
                    nextitem = self.items[i + 1] if i + 1 < len(self.items) else None
                    hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                    if session.shouldfail or session.shouldstop:
                        raise SuiteFailed(f"pytest stopped: {session.shouldfail or session.shouldstop}")
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # pytest.exit, an error in a hook: the session is not trusted again
            self.broken = True
            raise SuiteFailed(
                f"hidden suite of {self.assignment.name} failed to run ({type(exc).__name__}: {exc})"
            ) from exc
        finally:
            self.boundary.process = None
            self.plugin.end()
            if session._setupstate.stack:  # a teardown that failed leaves fixtures set up
                self.broken = True
        return SuiteRun(records)

    def close(self) -> None:
        config, session, self.config, self.session = self.config, self.session, None, None
        if config is None:
            return
        with contextlib.suppress(Exception), _quiet():
            if session is not None:
                config.hook.pytest_sessionfinish(session=session, exitstatus=0)
        with contextlib.suppress(Exception):
            config._ensure_unconfigure()


@contextlib.contextmanager
def _quiet():
    """What the suite or pytest prints goes nowhere (pytest prints nothing with the terminal plugin
    off; a suite's prints are noise in a grader's output)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _modules_under(folder: Path) -> dict:
    """{name: module} of the imported modules whose file is in ``folder`` (a suite's)."""
    top, found = folder.resolve(), {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        try:
            if Path(path).resolve().is_relative_to(top):
                found[name] = module
        except (OSError, ValueError):
            continue
    return found


_SESSIONS: dict = {}
_SESSIONS_LOCK = threading.Lock()


def run_suite(assignment: catalogue.Assignment, process: LearnerProcess) -> SuiteRun:
    """Run the hidden suite of ``assignment`` against ``process`` in this process's session for it."""
    key = (assignment.name, str(assignment.suite_dir))
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None or session.broken or session.files != suite_files(assignment):
            if session is not None:
                _retire(session)
            session = _SESSIONS[key] = SuiteSession(assignment)
    with session.lock:
        if session.session is None:
            try:
                session.open()
            except BaseException:
                _forget(key, session)
                raise
        try:
            return session.run(process)
        finally:
            if session.broken:
                _forget(key, session)
                session.close()


def _forget(key, session: SuiteSession) -> None:
    with _SESSIONS_LOCK:
        if _SESSIONS.get(key) is session:
            del _SESSIONS[key]


def _retire(session: SuiteSession) -> None:
    """A suite that changed on disk: its modules are imported again by the next session."""
    with session.lock:
        session.close()
    for name in _modules_under(session.assignment.suite_dir):
        del sys.modules[name]


def close_all() -> None:
    """Finish every session of this process (tests; a worker's exit needs nothing)."""
    with _SESSIONS_LOCK:
        sessions = list(_SESSIONS.values())
        _SESSIONS.clear()
    for session in sessions:
        with session.lock:
            session.close()
