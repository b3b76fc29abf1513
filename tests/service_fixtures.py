"""Fixtures for the tests of `dlgrade serve`: a throwaway PostgreSQL cluster, a live ASGI server and
a headless browser, all real (no mock database, no TestClient-only HTTP).

Use the fixtures in a test module with ``pytest_plugins = ["service_fixtures"]`` (ruff-clean), or by
importing them by name (``from service_fixtures import postgres_url, fresh_postgres_url  # noqa: F401``;
import a fixture's dependencies too: ``fresh_postgres_url`` and ``postgres_control`` need
``postgres_cluster``). Either way the session holds one cluster: the fixtures share it.

- ``postgres_cluster`` (session): the cluster itself (:class:`PostgresCluster`): ``stop()``,
  ``start()``, ``create_database()``, ``drop_database()``, ``url(dbname)``. One per test session,
  ``initdb`` into a fresh folder of the temporary folder, listening on a Unix socket only, fsync off,
  stopped (``-m immediate``) and removed at the end. As root, PostgreSQL runs as the ``postgres``
  user (or ``nobody``); otherwise as the current user. Skips, naming the Debian package, when the
  PostgreSQL binaries are missing (``/usr/lib/postgresql/*/bin`` or ``PATH``).
- ``postgres_url`` (session): the URL of database ``dlgrade`` in that cluster, for SQLAlchemy with
  psycopg 3: ``postgresql+psycopg://dlgrade@/dlgrade?host=/tmp/dlgrade-pg-XXXX/socket&port=5432``.
- ``fresh_postgres_url`` (function): a new empty database for this test, dropped after it.
- ``postgres_database`` (function): a factory, ``postgres_database()`` -> URL of another new empty
  database (as many as the test wants), all dropped after the test.
- ``postgres_control`` (function): the cluster, to ``stop()`` and ``start()`` it within a test ("the
  database is briefly unavailable"); it is running again after the test, whatever the test did.
- ``chromium_path`` (session): Debian's ``/usr/bin/chromium`` (or ``chromium`` on ``PATH``).
- ``browser_page`` (function): a Playwright (sync API) page in that headless Chromium, 1280x900.
  Playwright never downloads a browser here: it drives the system's Chromium (``executable_path``).
- :func:`serve_in_thread` (a function, not a fixture): ``base_url, stop = serve_in_thread(app)`` runs
  an ASGI app with uvicorn in a background thread on a free port of 127.0.0.1; ``stop()`` ends it.
  ``live_server`` (function) is the same as a fixture: ``base_url = live_server(app)``, stopped after
  the test.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

DEBIAN_POSTGRES = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install -y postgresql (make setup does it as root)"
)
DEBIAN_CHROMIUM = "Chromium not found: apt-get install -y chromium (make setup does it as root)"
# Settings for a cluster that only lives as long as a test session: no durability, a Unix socket only.
POSTGRES_SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "200",
    "log_min_messages": "warning",
}


# ------------------------------------------------------------------------------------------ PostgreSQL


def postgres_bindir() -> Path | None:
    """The folder with initdb and pg_ctl: the highest /usr/lib/postgresql/<version>/bin (Debian), else
    the one on PATH; None when there is none."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()]
    if candidates:
        return max(candidates, key=version)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and (Path(pg_ctl).parent / "initdb").is_file():
        return Path(pg_ctl).parent
    return None


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL when the tests run as root (it refuses to run as root)."""
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    return None


class PostgresCluster:
    """A PostgreSQL cluster of this test session, in a folder of its own (``root``)::

    root/          0700, owned by the user that runs PostgreSQL
      data/        the cluster (initdb)
      socket/      the Unix socket (.s.PGSQL.<port>); no TCP at all
      postgres.log the server's log (pg_ctl -l)
    """

    superuser = "dlgrade"
    port = 5432  # only names the socket file: listen_addresses is empty

    def __init__(self, bindir: Path, root: Path, run_as: pwd.struct_passwd | None):
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.log = root / "postgres.log"
        self.run_as = run_as

    # -- processes
    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        kwargs: dict = {}
        if self.run_as is not None:
            # cwd: initdb and pg_ctl fail when they cannot read the current folder (root's /root, say).
            kwargs = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
            env["HOME"] = str(self.root)
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )

    def _fail(self, what: str, result: subprocess.CompletedProcess) -> None:
        log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        raise RuntimeError(
            f"PostgreSQL test cluster: {what} failed (exit {result.returncode}) in {self.root}\n"
            f"{result.stdout}{result.stderr}\n{log}"
        )

    def init(self) -> None:
        result = self._run(
            "initdb", "-D", str(self.data), "-U", self.superuser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"
        )
        if result.returncode != 0:
            self._fail("initdb", result)
        self.socket_dir.mkdir(mode=0o700)
        if self.run_as is not None:
            os.chown(self.socket_dir, self.run_as.pw_uid, self.run_as.pw_gid)
        settings = {**POSTGRES_SETTINGS, "unix_socket_directories": str(self.socket_dir), "port": str(self.port)}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# dlgrade test cluster (tests/service_fixtures.py)\n")
            for key, value in settings.items():
                conf.write("{} = '{}'\n".format(key, value.replace("'", "''")))

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status").returncode == 0

    def start(self) -> None:
        """Start the server (no-op when it runs) and wait until it accepts connections."""
        if self.running():
            return
        result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start", timeout=90)
        if result.returncode != 0:
            self._fail("pg_ctl start", result)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (no-op when it is stopped): ``fast`` ends the sessions and checkpoints,
        ``immediate`` kills it (as a crash would; the next start recovers)."""
        if not self.running():
            return
        result = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", timeout=90)
        if result.returncode != 0:
            self._fail("pg_ctl stop", result)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases
    def url(self, dbname: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of database ``dbname``."""
        return f"postgresql+psycopg://{self.superuser}@/{dbname}?host={self.socket_dir}&port={self.port}"

    def connect(self, dbname: str = "postgres"):
        """A psycopg connection (autocommit) to ``dbname``, bypassing SQLAlchemy."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=self.superuser, dbname=dbname, autocommit=True
        )

    def create_database(self, dbname: str | None = None) -> str:
        """Create an empty database (a fresh name unless given) and return its name."""
        from psycopg import sql

        dbname = dbname or f"test_{uuid.uuid4().hex[:12]}"
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(dbname)))
        return dbname

    def drop_database(self, dbname: str) -> None:
        """Drop ``dbname``, ending the sessions still connected to it (a test's forgotten engine)."""
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))

    def databases(self) -> list[str]:
        with self.connect() as conn:
            return [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")]


def start_postgres_cluster() -> PostgresCluster:
    """initdb and start a new cluster in a fresh folder of the temporary folder (skips the test when
    PostgreSQL is not installed). The caller destroys it."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(DEBIAN_POSTGRES)
    run_as = None
    if os.geteuid() == 0:
        run_as = _unprivileged_user()
        if run_as is None:
            pytest.skip("PostgreSQL refuses to run as root, and there is no 'postgres' or 'nobody' user to run it as")
    # Short path (a Unix socket path has ~107 bytes at most); mkdtemp makes it 0700. Under /tmp every
    # parent is searchable by anyone; a TMPDIR that the unprivileged user cannot reach is not used.
    base = Path(tempfile.gettempdir())
    if run_as is not None and not _reachable(base, run_as):
        base = Path("/tmp")
    root = Path(tempfile.mkdtemp(prefix="dlgrade-pg-", dir=base))
    if run_as is not None:
        os.chown(root, run_as.pw_uid, run_as.pw_gid)
    cluster = PostgresCluster(bindir, root, run_as)
    try:
        cluster.init()
        cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    return cluster


def _reachable(folder: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` can enter ``folder`` (others' or group's x bit on it and every parent)."""
    for path in [folder.resolve(), *folder.resolve().parents]:
        st = path.stat()
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & 0o100
        elif st.st_gid == user.pw_gid:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


class _SharedCluster:
    """One cluster per test session, however many test modules import the fixtures (each import
    makes a fixture definition of its own, with its own session-scoped value)."""

    cluster: PostgresCluster | None = None
    users = 0
    lock = threading.Lock()

    @classmethod
    def acquire(cls) -> PostgresCluster:
        with cls.lock:
            if cls.cluster is None:
                cls.cluster = start_postgres_cluster()
                atexit.register(cls._atexit)
            cls.users += 1
            return cls.cluster

    @classmethod
    def release(cls) -> None:
        with cls.lock:
            cls.users -= 1
            if cls.users == 0 and cls.cluster is not None:
                cls.cluster.destroy()
                cls.cluster = None

    @classmethod
    def _atexit(cls) -> None:  # an interrupted session
        if cls.cluster is not None:
            cls.cluster.destroy()
            cls.cluster = None


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """The test session's PostgreSQL cluster (see the module docstring)."""
    cluster = _SharedCluster.acquire()
    try:
        yield cluster
    finally:
        _SharedCluster.release()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """SQLAlchemy URL of database ``dlgrade``, shared by the whole session."""
    postgres_cluster.start()
    if "dlgrade" not in postgres_cluster.databases():
        postgres_cluster.create_database("dlgrade")
    return postgres_cluster.url("dlgrade")


@pytest.fixture
def postgres_database(postgres_cluster: PostgresCluster) -> Iterator[Callable[[], str]]:
    """``postgres_database()`` -> SQLAlchemy URL of a new empty database; all dropped after the test."""
    made: list[str] = []

    def new_database() -> str:
        postgres_cluster.start()
        made.append(postgres_cluster.create_database())
        return postgres_cluster.url(made[-1])

    yield new_database
    if made:
        postgres_cluster.start()  # the test may have left it stopped
        for dbname in made:
            postgres_cluster.drop_database(dbname)


@pytest.fixture
def fresh_postgres_url(postgres_database: Callable[[], str]) -> str:
    """SQLAlchemy URL of a new empty database of this test only (dropped after it)."""
    return postgres_database()


@pytest.fixture
def postgres_control(postgres_cluster: PostgresCluster) -> Iterator[PostgresCluster]:
    """The cluster, for ``stop()``/``start()`` within a test; running again after the test."""
    postgres_cluster.start()
    yield postgres_cluster
    postgres_cluster.start()


# ------------------------------------------------------------------------------------------ live server


def serve_in_thread(app, *, host: str = "127.0.0.1", timeout: float = 15.0, **config) -> tuple[str, Callable[[], None]]:
    """Run ASGI ``app`` with uvicorn in a background thread on a free port of ``host``.

    Returns ``(base_url, stop)`` once the server accepts connections (``base_url`` without a trailing
    slash); ``stop()`` asks uvicorn to exit and joins its thread (idempotent). ``config``: more
    ``uvicorn.Config`` arguments (``lifespan="on"``, ``log_level="info"``...). Raises RuntimeError when
    the server does not start (its startup failed: lifespan error, say)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))  # the port is ours from here on: no race for a "free" port
    port = sock.getsockname()[1]
    options = {"log_level": "warning", "timeout_graceful_shutdown": 3, "lifespan": "auto", **config}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:  # SystemExit from a failed startup included
            failure.append(error)

    thread = threading.Thread(target=run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            sock.close()
            raise RuntimeError(f"uvicorn did not start on {host}:{port}: {failure[0] if failure else 'timed out'}")
        time.sleep(0.01)
    with socket.create_connection((host, port), timeout=5):
        pass
    netloc = f"[{host}]" if ":" in host else host

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(10)
        sock.close()

    return f"http://{netloc}:{port}", stop


@pytest.fixture
def live_server() -> Iterator[Callable[..., str]]:
    """``live_server(app, **config)`` -> base URL of ``app`` served by :func:`serve_in_thread`; every
    server started this way is stopped after the test."""
    stops: list[Callable[[], None]] = []

    def start(app, **config) -> str:
        base_url, stop = serve_in_thread(app, **config)
        stops.append(stop)
        return base_url

    yield start
    for stop in reversed(stops):
        stop()


# ------------------------------------------------------------------------------------------ browser


def find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system's Chromium (Debian's /usr/bin/chromium); skips the test when there is none."""
    path = find_chromium()
    if path is None:
        pytest.skip(DEBIAN_CHROMIUM)
    return path


@pytest.fixture
def browser_page(chromium_path: str):
    """A Playwright page (sync API) in a fresh headless Chromium, viewport 1280x900; everything is
    closed after the test. Skips when Playwright is missing or cannot launch Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -c constraints.txt -e '.[dev]')")
    playwright = sync_playwright().start()
    browser = None
    try:
        try:
            browser = playwright.chromium.launch(
                executable_path=chromium_path,
                headless=True,
                args=["--no-sandbox", "--disable-dev-shm-usage"],
                timeout=60_000,
            )
        except Exception as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            pytest.skip(f"Playwright cannot launch {chromium_path}: {first_line}")
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
    finally:
        if browser is not None:
            with contextlib.suppress(Exception):
                browser.close()
        playwright.stop()
