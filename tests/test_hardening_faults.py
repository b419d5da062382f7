"""Database faults, over real HTTP against a cluster of the test's own: the database restarted under load (the app
answers 503 meanwhile, reports the outage on /health and recovers without a restart of its own), and a statement
timeout that cuts a slow query with a clear 504 instead of holding a connection for ever."""

from __future__ import annotations

import concurrent.futures
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest
from conftest import LiveServer

from gis.db.embedded import EmbeddedCluster

STATEMENT_TIMEOUT_MS = 1500
POOL_SIZE = 4


@pytest.fixture(scope="module")
def own_cluster():
    from gis.db.migrate import upgrade
    from gis.layers.catalogue import seed_categories

    cluster = EmbeddedCluster(data_dir=Path(tempfile.mkdtemp(prefix="gridgov-fault-")), db_name="faults")
    url = cluster.start()
    upgrade(url)
    seed_categories(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO district (code, name, valid_from, geom) VALUES ('370902', '泰山区', '2020-01-01', "
            "ST_Multi(ST_MakeEnvelope(117.0, 36.1, 117.2, 36.3, 4326)))")
    yield cluster, url
    cluster.destroy()


@pytest.fixture(scope="module")
def server(own_cluster):
    _, url = own_cluster
    app = LiveServer(url, {"GRIDGOV_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS),
                           "GRIDGOV_POOL_MAX": str(POOL_SIZE)})
    yield app
    app.stop()


class Load:
    """Clients hitting the API in the background, recording every status (or the transport error)."""

    PATHS = ("/health", "/layers/district.geojson", "/map/categories.json", "/layers")

    def __init__(self, base_url: str, workers: int = 3):
        self.base_url = base_url
        self.statuses: Counter = Counter()
        self.slowest = 0.0
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(workers)]

    def _run(self, index: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=20) as client:
            turn = index
            while not self.stop_event.is_set():
                path = self.PATHS[turn % len(self.PATHS)]
                turn += 1
                started = time.monotonic()
                try:
                    response = client.get(path)
                    outcome = response.status_code
                    if outcome not in (200, 503):
                        outcome = f"{outcome} {path} {response.text[:120]}"
                except httpx.HTTPError as error:
                    outcome = f"transport {type(error).__name__} {path}"
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.statuses[outcome] += 1
                time.sleep(0.01)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(30)


def restart_on_the_same_port(cluster: EmbeddedCluster) -> None:
    """Start the stopped cluster again on its port, as a restarted database server comes back."""
    cluster._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(cluster.pgdata), "-l", str(cluster.log_file),
                 "-o", f"-p {cluster.port}")


def wait_for(client: httpx.Client, status: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if client.get("/health").status_code == status:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"/health did not answer {status} within {timeout} s")


def test_the_database_restarted_under_load(own_cluster, server):
    cluster, _ = own_cluster
    with server.client() as client, Load(server.url) as load:
        wait_for(client, 200, 10)
        time.sleep(1.0)
        cluster.stop()
        outage_seen_after = wait_for(client, 503, 10)
        outage = client.get("/health")
        assert outage.json()["database"] == "unreachable"
        during = client.get("/layers/district.geojson")
        assert during.status_code == 503, during.text
        assert during.headers["content-type"].startswith("application/json")
        assert "unavailable" in during.json()["detail"] and during.headers["retry-after"]
        time.sleep(1.5)
        restart_on_the_same_port(cluster)
        recovered_after = wait_for(client, 200, 20)
        time.sleep(1.0)
        geojson = client.get("/layers/district.geojson")
        assert geojson.status_code == 200 and len(geojson.json()["features"]) == 1
    assert outage_seen_after < 5 and recovered_after < 15
    unexpected = {outcome: count for outcome, count in load.statuses.items() if outcome not in (200, 503)}
    assert unexpected == {}, unexpected
    assert load.statuses[200] > 20 and load.statuses[503] > 0
    assert load.slowest < 15


def test_a_slow_query_is_cut_by_the_statement_timeout(own_cluster, server):
    _, url = own_cluster
    with psycopg.connect(url) as blocker, server.client() as client:
        # An exclusive lock makes every read of `district` wait: a query that would otherwise hang for ever.
        blocker.execute("LOCK TABLE district IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        response = client.get("/layers/district.geojson")
        waited = time.monotonic() - started
        assert response.status_code == 504, response.text
        assert "statement timeout" in response.json()["detail"]
        assert STATEMENT_TIMEOUT_MS / 1000 * 0.9 <= waited < STATEMENT_TIMEOUT_MS / 1000 + 5

        # More slow requests than the pool has connections: each is cut, none waits for a connection for ever.
        with concurrent.futures.ThreadPoolExecutor(POOL_SIZE * 2) as pool:
            statuses = list(pool.map(lambda _: client.get("/layers/district.geojson").status_code,
                                     range(POOL_SIZE * 2)))
        assert set(statuses) <= {503, 504} and statuses.count(504) >= POOL_SIZE, statuses
        blocker.rollback()
    with server.client() as client:
        # the cut connections went back to the pool in working order
        statuses = [client.get("/layers/district.geojson").status_code for _ in range(POOL_SIZE * 3)]
        assert statuses == [200] * (POOL_SIZE * 3)
        assert client.get("/health").json()["status"] == "ok"


def test_the_embedded_cluster_comes_back_on_its_port_after_a_stop_under_load(own_cluster, server):
    """`gridgov db down` then `db up` while clients were connected: the app's URL names the old port, so the
    cluster must come back on it (the server side of closed connections sits in TIME_WAIT for a minute)."""
    cluster, _ = own_cluster
    with Load(server.url, workers=2):
        time.sleep(1.0)
        port = cluster.port
        cluster.stop()
        cluster.start()
    assert cluster.port == port, "the cluster came back on another port; the running app cannot reconnect"
