"""Test set-up: a real PostgreSQL + PostGIS cluster started for the session, never a mock.

Databases are cloned from templates (`CREATE DATABASE ... TEMPLATE`), so each test module gets a fresh copy of
the small demo city in well under a second.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from gis.db.embedded import EmbeddedCluster
from tests import mutation_hits

ROOT = Path(__file__).resolve().parent.parent
SMALL_SEED = 1


REUSED_CLUSTER = os.environ.get("GRIDGOV_TEST_CLUSTER_DIR")
"""A cluster directory kept between test sessions, with its templates built once (scripts/mutation.sh sets it,
so each mutant's run clones the templates instead of building a city; the templates are built from the code
as it was before any mutant, so a mutant that only the city's generation would reveal counts as survived)."""


@pytest.fixture(scope="session")
def pg_cluster():
    """A PostGIS cluster of the test session's own, in a temporary directory, removed at the end."""
    if REUSED_CLUSTER:
        cluster = EmbeddedCluster(data_dir=Path(REUSED_CLUSTER), db_name="postgres")
        cluster.start()
        yield cluster
        _drop_own_clones(cluster)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="gridgov-test-"))
    cluster = EmbeddedCluster(data_dir=data_dir, db_name="postgres")
    cluster.start()
    yield cluster
    cluster.destroy()


def _template_ready(cluster: EmbeddedCluster, name: str) -> bool:
    """Whether a kept cluster already holds the finished template `name` (marked by its comment)."""
    if not REUSED_CLUSTER:
        return False
    import psycopg

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (name,)).fetchone()
    return bool(row and row[0] == "gridgov template ready")


def _mark_ready(cluster: EmbeddedCluster, name: str) -> None:
    if REUSED_CLUSTER:
        import psycopg

        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(f"COMMENT ON DATABASE \"{name}\" IS 'gridgov template ready'")


def _migrated(cluster: EmbeddedCluster, name: str) -> str:
    from gis.db.migrate import upgrade
    from gis.layers.catalogue import seed_categories

    cluster.ensure_database(name)
    url = cluster.url(name)
    upgrade(url)
    seed_categories(url)
    return url


@pytest.fixture(scope="session")
def empty_template(pg_cluster) -> str:
    """Name of a template database with the schema and the category catalogue, but no city."""
    if not _template_ready(pg_cluster, "tpl_empty"):
        _migrated(pg_cluster, "tpl_empty")
        _mark_ready(pg_cluster, "tpl_empty")
    return "tpl_empty"


@pytest.fixture(scope="session")
def small_template(pg_cluster) -> str:
    """Name of a template database holding the `small` demo city (seed 1)."""
    from fixtures.loader import load_city

    if not _template_ready(pg_cluster, "tpl_small"):
        url = _migrated(pg_cluster, "tpl_small")
        load_city(url, "small", seed=SMALL_SEED, progress=False)
        _mark_ready(pg_cluster, "tpl_small")
    return "tpl_small"


def _drop_own_clones(cluster: EmbeddedCluster) -> None:
    """Drops the databases this process cloned in a kept cluster (other sessions may be using theirs)."""
    import psycopg

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                                                (f"t_{os.getpid()}_",))]
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _clone(cluster: EmbeddedCluster, template: str) -> str:
    name = f"t_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    cluster.ensure_database(name, template=template)
    return cluster.url(name)


@pytest.fixture
def empty_db(pg_cluster, empty_template) -> str:
    """URL of a fresh database with the schema only."""
    return _clone(pg_cluster, empty_template)


@pytest.fixture(scope="module")
def city_db(pg_cluster, small_template) -> str:
    """URL of a database with the small city, shared by the tests of one module."""
    return _clone(pg_cluster, small_template)


@pytest.fixture
def fresh_city_db(pg_cluster, small_template) -> str:
    """URL of a database with the small city, for one test alone."""
    return _clone(pg_cluster, small_template)


MUTATION_HITS_DIR = Path(tempfile.gettempdir()) / f"gridgov-mutation-hits-{os.getpid()}"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item):
    """Under mutmut's stats pass: credit this test with what the app servers it drove called."""
    if mutation_hits.stats_pass() and MUTATION_HITS_DIR.is_dir():
        mutation_hits.collect_into_tests(MUTATION_HITS_DIR)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


START_TIMEOUT_S = 180.0


class LiveServer:
    """The real app under uvicorn in a child process, bound to loopback."""

    def __init__(self, database_url: str, extra_env: dict | None = None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "GRIDGOV_DATABASE_URL": database_url, **(extra_env or {})}
        from api.security import (
            uvicorn_proxy_args,  # forwarded headers only from GRIDGOV_TRUSTED_PROXIES
        )

        launcher = ["-m", "uvicorn"]
        if mutation_hits.stats_pass():
            MUTATION_HITS_DIR.mkdir(exist_ok=True)
            env[mutation_hits.HITS_DIR_ENV] = str(MUTATION_HITS_DIR)
            launcher = ["-c", "import sys, uvicorn; sys.path.insert(0, '.'); "
                              "from tests.mutation_hits import install_in_server; install_in_server(); uvicorn.main()"]
        self.process = subprocess.Popen(
            [sys.executable, *launcher, "api.main:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", "--timeout-graceful-shutdown", "2",
             *uvicorn_proxy_args(env.get("GRIDGOV_TRUSTED_PROXIES", ""))],
            cwd=ROOT, env=env,
        )
        # a bound on start-up, not a speed check: a loaded machine can take most of a minute to import the app
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the app exited during start-up")
            try:
                httpx.get(f"{self.url}/health", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the app did not answer within {START_TIMEOUT_S:.0f} s")

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="module")
def live_app(city_db):
    """The app serving the module's small-city database over real HTTP."""
    server = LiveServer(city_db)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(live_app) -> httpx.Client:
    with live_app.client() as client:
        yield client
