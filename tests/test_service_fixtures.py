"""The service tests' fixtures (tests/service_fixtures.py) work for real: a PostgreSQL cluster reached
through SQLAlchemy and psycopg, that can be stopped and started; separate fresh databases; an ASGI app
served by uvicorn in a thread over real HTTP; a headless Chromium driven by Playwright."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from service_fixtures import PostgresCluster

# The fixtures, registered once for the session. Helpers (serve_in_thread) are imported inside the
# tests: a module-level `from service_fixtures import ...` here would import the module before pytest
# registers it as a plugin (PytestAssertRewriteWarning).
pytest_plugins = ["service_fixtures"]


# ------------------------------------------------------------------------------------------ PostgreSQL


@pytest.mark.postgres
def test_postgres_url_takes_a_table_through_sqlalchemy_and_psycopg(postgres_url):
    url = sa.engine.make_url(postgres_url)
    assert url.drivername == "postgresql+psycopg" and url.database == "dlgrade"
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS fixture_check"))
            conn.execute(sa.text("CREATE TABLE fixture_check (id serial PRIMARY KEY, name text NOT NULL)"))
            conn.execute(sa.text("INSERT INTO fixture_check (name) VALUES (:a), (:b)"), [{"a": "ada", "b": "alan"}])
        with engine.connect() as conn:
            names = conn.execute(sa.text("SELECT name FROM fixture_check ORDER BY id")).scalars().all()
            version = conn.execute(sa.text("SHOW server_version_num")).scalar_one()
            fsync = conn.execute(sa.text("SHOW fsync")).scalar_one()
        assert names == ["ada", "alan"]
        assert int(version) >= 130000  # DROP DATABASE ... WITH (FORCE)
        assert fsync == "off"
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE fixture_check"))
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_cluster_listens_on_its_own_unix_socket_only(postgres_cluster: PostgresCluster, postgres_url):
    with postgres_cluster.connect("dlgrade") as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == (str(postgres_cluster.socket_dir),)
    assert str(postgres_cluster.socket_dir) in postgres_url
    if postgres_cluster.run_as is not None:  # as root: the server runs as an unprivileged user
        assert postgres_cluster.data.stat().st_uid == postgres_cluster.run_as.pw_uid != 0


@pytest.mark.postgres
def test_a_stopped_cluster_refuses_connections_and_serves_again_once_started(fresh_postgres_url, postgres_control):
    engine = sa.create_engine(fresh_postgres_url, poolclass=NullPool)  # a new connection each time
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE kept (n int)"))
            conn.execute(sa.text("INSERT INTO kept VALUES (42)"))
        postgres_control.stop()
        assert not postgres_control.running()
        with pytest.raises(OperationalError), engine.connect():
            pass
        postgres_control.start()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT n FROM kept")).scalar_one() == 42
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_pooled_connection_recovers_after_an_immediate_stop(fresh_postgres_url, postgres_control):
    """What the service meets when the database restarts under it: the pool's old connection is dead,
    pool_pre_ping replaces it."""
    engine = sa.create_engine(fresh_postgres_url, pool_pre_ping=True, pool_size=1)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        postgres_control.stop("immediate")
        postgres_control.start()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 2")).scalar_one() == 2
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_fresh_databases_are_empty_and_separate(postgres_database, fresh_postgres_url, postgres_url):
    other_url = postgres_database()
    assert len({fresh_postgres_url, other_url, postgres_url}) == 3
    first, other = sa.create_engine(fresh_postgres_url), sa.create_engine(other_url)
    try:
        assert sa.inspect(first).get_table_names() == [] and sa.inspect(other).get_table_names() == []
        with first.begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_here (n int)"))
            conn.execute(sa.text("INSERT INTO only_here VALUES (1)"))
        sa.inspect(first).clear_cache()
        assert sa.inspect(first).get_table_names() == ["only_here"]
        assert sa.inspect(other).get_table_names() == []
        with other.begin() as conn:  # the same name, other rows
            conn.execute(sa.text("CREATE TABLE only_here (n int)"))
        with other.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM only_here")).scalar_one() == 0
    finally:
        first.dispose()
        other.dispose()


@pytest.mark.postgres
def test_databases_made_for_earlier_tests_are_gone(postgres_cluster: PostgresCluster, fresh_postgres_url):
    mine = sa.engine.make_url(fresh_postgres_url).database
    leftovers = [name for name in postgres_cluster.databases() if name.startswith("test_") and name != mine]
    assert leftovers == []


# ------------------------------------------------------------------------------------------ live server


async def form_page(request):
    return HTMLResponse(
        "<!doctype html><title>hello</title>"
        '<form method="post" action="/hello"><input name="name" id="name">'
        '<button type="submit">Say hello</button></form>'
    )


async def hello(request):
    form = await request.form()
    return HTMLResponse(f'<!doctype html><p id="greeting">Hello, {form["name"]}!</p>')


async def ping(request):
    return PlainTextResponse("pong")


APP = Starlette(routes=[Route("/", form_page), Route("/hello", hello, methods=["POST"]), Route("/ping", ping)])


def test_serve_in_thread_answers_over_real_http_and_stops():
    from service_fixtures import serve_in_thread

    base_url, stop = serve_in_thread(APP)
    try:
        assert base_url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=base_url, timeout=5) as client:
            assert client.get("/ping").text == "pong"
            reply = client.post("/hello", data={"name": "Ada"})
            assert reply.status_code == 200 and "Hello, Ada!" in reply.text
    finally:
        stop()
    stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(base_url + "/ping", timeout=2)


def test_serve_in_thread_reports_a_failed_startup():
    from service_fixtures import serve_in_thread

    async def broken(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no database"})

    with pytest.raises(RuntimeError, match="did not start"):
        serve_in_thread(broken, lifespan="on", timeout=5)


def test_live_server_fixture_serves_two_apps(live_server):
    first, second = live_server(APP), live_server(APP)
    assert first != second
    assert httpx.get(first + "/ping").text == httpx.get(second + "/ping").text == "pong"


# ------------------------------------------------------------------------------------------ browser


@pytest.mark.browser
def test_browser_page_fills_and_submits_a_form(live_server, browser_page):
    base_url = live_server(APP)
    assert browser_page.viewport_size == {"width": 1280, "height": 900}
    browser_page.goto(base_url + "/")
    assert browser_page.title() == "hello"
    browser_page.fill("#name", "Grace")
    with browser_page.expect_navigation():
        browser_page.click("button[type=submit]")
    assert browser_page.url == base_url + "/hello"
    assert browser_page.inner_text("#greeting") == "Hello, Grace!"
