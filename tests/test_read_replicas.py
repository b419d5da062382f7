"""Read replicas on PostgreSQL's own streaming replication: two clusters on loopback, a primary holding the small
city and a hot standby made by `gridgov db replica add`, the app given the standby in GRIDGOV_DATABASE_READ_URLS.

A replica's replay is paused (`pg_wal_replay_pause()`) where a test must tell the two servers apart: a read that
shows the old value came from the replica, one that shows the new value at once came from the primary. Every wait
is a bounded poll on a condition, never a sleep of a guessed length.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from fixtures.loader import load_city
from gis.db import replicas
from gis.db.embedded import EmbeddedCluster
from gis.db.engine import async_engine, libpq_url
from gis.db.migrate import upgrade
from gis.layers.catalogue import seed_categories
from tests.conftest import ROOT, SMALL_SEED, LiveServer

PASSWORD = "Replica-pass-2024"
MAX_LAG_BYTES = 4 * 1024 * 1024
WAIT_S = 120.0
"""A bound on every wait (conditions are polled; a loaded machine may need most of it)."""


def wait_for(condition, what: str, timeout: float = WAIT_S):
    """Poll `condition` until it returns something true, within `timeout` seconds; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.1)


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "GRIDGOV_DATABASE_URL"}
    env.update(GRIDGOV_DATA_DIR=str(data_dir), GRIDGOV_DB_NAME="gridgov")
    return subprocess.run([sys.executable, "-c", "from cli.main import app; app()", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def topology():
    """A primary with the small city, its replica r1 (made by the CLI) and the app reading from the replica."""
    primary = EmbeddedCluster(data_dir=Path(tempfile.mkdtemp(prefix="gridgov-replicas-")), db_name="gridgov")
    server = None
    try:
        primary.start()
        upgrade(primary.url())
        seed_categories(primary.url())
        load_city(primary.url(), "small", seed=SMALL_SEED, progress=False)
        added = cli(primary.data_dir, "db", "replica", "add")
        assert added.returncode == 0, added.stderr
        standby = replicas.replica(primary, "r1")
        assert f"GRIDGOV_DATABASE_READ_URLS={standby.url()}" in added.stdout
        users = asyncio.run(_add_users(primary.url()))
        server = LiveServer(primary.url(), extra_env={
            "GRIDGOV_DATABASE_READ_URLS": standby.url(), "GRIDGOV_REPLICA_POLL_S": "0.2",
            "GRIDGOV_REPLICA_MAX_LAG_BYTES": str(MAX_LAG_BYTES), "GRIDGOV_REPLICA_MAX_LAG_S": "600"})
        tokens = {}
        with server.client() as http:
            for name in users["names"]:
                answer = http.post("/auth/login", json={"username": name, "password": PASSWORD})
                answer.raise_for_status()
                tokens[name] = answer.json()["access_token"]
        yield {"primary": primary, "standby": standby, "server": server, "tokens": tokens, **users}
    finally:
        if server is not None:
            server.stop()
        for standby in replicas.list_replicas(primary):
            standby.stop(mode="immediate")
        primary.destroy()


async def _add_users(url: str) -> dict:
    from gis.access.auth import create_user

    engine = async_engine(url)
    try:
        async with engine.begin() as conn:
            from sqlalchemy import text

            grid, lon, lat = (await conn.execute(text(
                "SELECT m.grid_code, ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom)) "
                "FROM building b JOIN micro_grid m ON m.code = b.micro_grid_code AND m.valid_to IS NULL "
                "WHERE b.valid_to IS NULL AND ST_Area(b.geom::geography) > 300 ORDER BY b.code LIMIT 1"))).one()
            category = (await conn.execute(text("SELECT code FROM category WHERE active ORDER BY code LIMIT 1"))
                        ).scalar_one()
            await create_user(conn, "replica-field", PASSWORD, "grid_worker", [grid])
            await create_user(conn, "replica-admin", PASSWORD, "admin")
    finally:
        await engine.dispose()
    return {"names": ("replica-field", "replica-admin"), "grid": grid, "point": (lon, lat), "category": category}


def health(topology) -> dict:
    with topology["server"].client() as http:
        return http.get("/health").json()


def replica_health(topology) -> dict:
    answer = health(topology)
    assert len(answer["replicas"]) == 1, answer
    return answer["replicas"][0]


def caught_up(topology) -> None:
    """Wait until the replica is in rotation and the app has seen it replay the primary's present position."""
    target = lsn(sql(topology["primary"].url(), "SELECT pg_current_wal_lsn()::text")[0][0])

    def ready():
        replica = replica_health(topology)
        return replica["in_rotation"] and replica["replay_lsn"] and lsn(replica["replay_lsn"]) >= target

    wait_for(ready, "the replica in rotation and caught up with the primary")


class Paused:
    """Replay paused on the replica for the block: it keeps receiving WAL but shows the old data."""

    def __init__(self, topology):
        self.url = topology["standby"].url()

    def __enter__(self):
        sql(self.url, "SELECT pg_wal_replay_pause()")
        return self

    def __exit__(self, *exc):
        sql(self.url, "SELECT pg_wal_replay_resume()")


def street_names(topology, headers=None) -> dict:
    with topology["server"].client(headers=headers or {}) as http:
        answer = http.get("/layers/street.geojson")
    assert answer.status_code == 200, answer.text
    return {feature["properties"]["code"]: feature["properties"]["name"] for feature in answer.json()["features"]}


def bearer(topology, name: str) -> dict:
    return {"Authorization": f"Bearer {topology['tokens'][name]}"}


def test_a_write_on_the_primary_is_read_back_through_the_replica_once_replayed(topology):
    caught_up(topology)
    code, name = sql(topology["primary"].url(),
                     "SELECT code, name FROM street WHERE valid_to IS NULL ORDER BY code LIMIT 1")[0]
    renamed = name + "（副本测试）"
    with Paused(topology):
        sql(topology["primary"].url(), "UPDATE street SET name = %s WHERE code = %s AND valid_to IS NULL",
            (renamed, code))
        # the primary has the new name; the paused replica serves the read, so the old one comes back
        assert street_names(topology)[code] == name
    wait_for(lambda: street_names(topology)[code] == renamed, "the replayed name read through the replica")
    assert replica_health(topology)["in_rotation"]


def test_a_users_own_write_is_visible_at_once_while_others_read_the_replica(topology):
    caught_up(topology)
    lon, lat = topology["point"]
    field, admin = bearer(topology, "replica-field"), bearer(topology, "replica-admin")
    server = topology["server"]
    with Paused(topology):
        with server.client(headers=field) as http:
            report = http.post("/field/reports", json={
                "client_id": str(uuid.uuid4()), "category_code": topology["category"], "lon": lon, "lat": lat,
                "description": "楼道灯不亮"})
            assert report.status_code == 201, report.text
            complaint = report.json()["complaint_id"]
            own = http.get(f"/ogc/collections/complaint/items/{complaint}")
        assert own.status_code == 200, own.text  # the writer's read went to the primary
        with server.client(headers=admin) as http:
            other = http.get(f"/ogc/collections/complaint/items/{complaint}")
        assert other.status_code == 404, other.text  # another caller reads the paused replica
    with server.client(headers=admin) as http:
        wait_for(lambda: http.get(f"/ogc/collections/complaint/items/{complaint}").status_code == 200,
                 "the complaint replayed on the replica")


def _reads_near(topology, headers: dict) -> tuple[int, int, int]:
    """Complaints near the test point as another caller reads them: the OGC items page's features and its
    numberMatched (a count the service caches), and the map's complaint GeoJSON."""
    lon, lat = topology["point"]
    box = f"{lon - 0.002},{lat - 0.002},{lon + 0.002},{lat + 0.002}"
    with topology["server"].client(headers=headers) as http:
        page = http.get("/ogc/collections/complaint/items", params={"bbox": box, "limit": 1000})
        points = http.get("/map/complaints.geojson", params={"bbox": box})
    assert page.status_code == 200 and points.status_code == 200, (page.text, points.text)
    return len(page.json()["features"]), page.json()["numberMatched"], len(points.json()["features"])


def test_ogc_item_pages_and_the_map_geojson_are_read_through_the_replica(topology):
    caught_up(topology)
    lon, lat = topology["point"]
    field, admin = bearer(topology, "replica-field"), bearer(topology, "replica-admin")
    before = _reads_near(topology, admin)
    with Paused(topology):
        with topology["server"].client(headers=field) as http:
            report = http.post("/field/reports", json={
                "client_id": str(uuid.uuid4()), "category_code": topology["category"], "lon": lon, "lat": lat,
                "description": "消防通道被占"})
        assert report.status_code == 201, report.text
        # the paused replica answers another caller's page and map: the new complaint is not there yet
        assert _reads_near(topology, admin) == before
    wait_for(lambda: _reads_near(topology, admin) == tuple(count + 1 for count in before),
             "the new complaint in the replica's item page and map")


def test_lag_is_reported_and_a_lagging_replica_leaves_the_rotation_until_it_catches_up(topology):
    caught_up(topology)
    primary = topology["primary"]
    try:
        with Paused(topology):
            # about 10 MB of WAL the paused replica receives but does not replay
            sql(primary.url(), "CREATE TABLE replica_filler AS "
                               "SELECT g, repeat('x', 200) AS padding FROM generate_series(1, 40000) g")
            lagging = wait_for(lambda: (lambda r: r if not r["in_rotation"] else None)(replica_health(topology)),
                               "the lagging replica out of rotation")
            assert lagging["lag_bytes"] > MAX_LAG_BYTES, lagging
            assert "延迟" in lagging["reason"], lagging
            assert health(topology)["status"] == "degraded"
            status = replicas.replica_status(primary)
            assert [(s["name"], s["state"]) for s in status] == [("r1", "streaming")], status
            assert status[0]["lag_bytes"] > MAX_LAG_BYTES, status
            printed = cli(primary.data_dir, "db", "replica", "status")
            assert printed.returncode == 0, printed.stderr
            row = next(line.split() for line in printed.stdout.splitlines() if line.startswith("r1"))
            assert row[1] == str(topology["standby"].port) and row[2] == "streaming", printed.stdout
            assert int(row[3]) > MAX_LAG_BYTES, printed.stdout
        rejoined = wait_for(lambda: (lambda r: r if r["in_rotation"] else None)(replica_health(topology)),
                            "the replica back in rotation once it caught up")
        assert rejoined["lag_bytes"] < MAX_LAG_BYTES and rejoined["reason"] is None, rejoined
        assert health(topology)["status"] == "ok"
    finally:
        sql(primary.url(), "DROP TABLE IF EXISTS replica_filler")


def _tile_path(lon: float, lat: float, z: int = 15) -> str:
    x = int((lon + 180) / 360 * 2 ** z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z)
    return f"/tiles/complaint/{z}/{x}/{y}.mvt"


def test_stopping_the_replica_under_load_gives_no_errors_and_health_shows_it_out(topology):
    caught_up(topology)
    lon, lat = topology["point"]
    field = bearer(topology, "replica-field")
    reads = [("/layers/street.geojson", {}), (_tile_path(lon, lat), field),
             (f"/responsibility?lon={lon}&lat={lat}", {}), ("/layers/grid.geojson", field)]
    total, threads = 200, 4
    statuses: list[int] = []
    lock = threading.Lock()
    stop_after = threading.Event()

    def worker(index: int) -> None:
        with topology["server"].client() as http:
            for number in range(index, total, threads):
                path, headers = reads[number % len(reads)]
                answer = http.get(path, headers=headers)
                with lock:
                    statuses.append(answer.status_code)
                    if len(statuses) >= total // 4:
                        stop_after.set()

    pool = [threading.Thread(target=worker, args=(index,)) for index in range(threads)]
    for thread in pool:
        thread.start()
    assert stop_after.wait(WAIT_S), "the load did not get going"
    topology["standby"].stop(mode="immediate")
    for thread in pool:
        thread.join(WAIT_S)
    assert len(statuses) == total
    assert [status for status in statuses if status not in (200, 204)] == []
    out = wait_for(lambda: (lambda r: r if not r["in_rotation"] else None)(replica_health(topology)),
                   "the stopped replica out of rotation")
    assert out["reason"] and out["lag_bytes"] is None, out
    assert health(topology)["status"] == "degraded"
    # the stopped replica restarts on its own port and rejoins
    topology["standby"].start()
    replicas.wait_streaming(topology["primary"], topology["standby"])
    caught_up(topology)
    assert street_names(topology)
