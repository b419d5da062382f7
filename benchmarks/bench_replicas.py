"""Read replicas on this machine: reads per second with the primary alone and with one hot standby taking the reads,
and what read-your-writes costs a write (the primary's WAL position read after it) and the writer's next reads.

The benchmark makes its own primary with the small city in a temporary directory and its replica with
`gis.db.replicas.add_replica` (the path of `gridgov db replica add`): a base backup of the city-scale cluster would
measure the disk, not the routing. Both servers share this machine's cores, so the ratio says what the routing
costs here, not what a replica on its own server adds. `python -m benchmarks.bench_replicas` prints the rows.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.peer import _start, percentile, row, throughput, timed_requests

READS = 400
WRITES = 40
CLIENTS = 4


def _tile(lon: float, lat: float, z: int = 15) -> str:
    x = int((lon + 180) / 360 * 2 ** z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z)
    return f"/tiles/complaint/{z}/{x}/{y}.mvt"


def _primary_with_city():
    from fixtures.loader import load_city
    from gis.db.embedded import EmbeddedCluster
    from gis.db.migrate import upgrade
    from gis.layers.catalogue import seed_categories

    primary = EmbeddedCluster(data_dir=Path(tempfile.mkdtemp(prefix="gridgov-bench-replicas-")), db_name="gridgov")
    primary.start()
    upgrade(primary.url())
    seed_categories(primary.url())
    load_city(primary.url(), "small", seed=1, progress=False)
    return primary


def _city_facts(url: str) -> dict:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        grid, lon, lat = conn.execute(
            "SELECT m.grid_code, ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom)) "
            "FROM building b JOIN micro_grid m ON m.code = b.micro_grid_code AND m.valid_to IS NULL "
            "WHERE b.valid_to IS NULL ORDER BY b.code LIMIT 1").fetchone()
        category = conn.execute("SELECT code FROM category WHERE active ORDER BY code LIMIT 1").fetchone()[0]
    return {"grid": grid, "lon": lon, "lat": lat, "category": category}


def _add_user(url: str, grid: str) -> None:
    import asyncio

    from gis.access.auth import create_user
    from gis.db.engine import async_engine

    async def add():
        engine = async_engine(url)
        try:
            async with engine.begin() as conn:
                await create_user(conn, "bench-field", "Bench-pass-2024", "grid_worker", [grid])
        finally:
            await engine.dispose()

    asyncio.run(add())


def _writes(base_url: str, facts: dict) -> tuple[list[float], list[float]]:
    """Milliseconds of each write (a field report) and of the writer's read right after it."""
    with httpx.Client(base_url=base_url, timeout=60) as http:
        token = http.post("/auth/login", json={"username": "bench-field", "password": "Bench-pass-2024"}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        writes, reads = [], []
        for _ in range(WRITES):
            body = {"client_id": str(uuid.uuid4()), "category_code": facts["category"], "lon": facts["lon"],
                    "lat": facts["lat"], "description": "楼道灯不亮"}
            started = time.perf_counter()
            http.post("/field/reports", json=body, headers=headers).raise_for_status()
            writes.append(1000 * (time.perf_counter() - started))
            started = time.perf_counter()
            http.get(_tile(facts["lon"], facts["lat"]), headers=headers).raise_for_status()
            reads.append(1000 * (time.perf_counter() - started))
    return writes, reads


def _measure(url: str, facts: dict, read_url: str | None) -> dict:
    env = {"GRIDGOV_DATABASE_URL": url}
    if read_url:
        env["GRIDGOV_DATABASE_READ_URLS"] = read_url
    server = _start("gridgov", Path(sys.executable), "api.main:app", env, "/health")
    lon, lat = facts["lon"], facts["lat"]
    paths = [_tile(lon, lat), f"/responsibility?lon={lon}&lat={lat}", "/layers/grid.geojson",
             "/layers/street.geojson"] * (READS // 4)
    try:
        timed_requests(server.url, paths[:8])
        single = timed_requests(server.url, paths[:100])
        rate = throughput(server.url, paths, clients=CLIENTS)
        writes, after = _writes(server.url, facts)
        replicas = httpx.get(server.url + "/health", timeout=30).json().get("replicas")
    finally:
        server.stop()
    return {"rate": rate, "p50": percentile(single, 0.5), "writes": writes, "after": after, "replicas": replicas}


def run(city_url: str | None = None) -> list[dict]:
    """Rows: reads/s on the primary alone and with one replica (ratio), write latency and the writer's next read
    with and without read-your-writes. `city_url` is not used: the benchmark builds its own small primary."""
    from gis.db import replicas

    primary = _primary_with_city()
    try:
        facts = _city_facts(primary.url())
        _add_user(primary.url(), facts["grid"])
        alone = _measure(primary.url(), facts, None)
        started = time.perf_counter()
        standby = replicas.add_replica(primary)
        added_s = time.perf_counter() - started
        routed = _measure(primary.url(), facts, standby.url())
    finally:
        for standby in replicas.list_replicas(primary):
            standby.stop(mode="immediate")
        primary.destroy()
    ratio = routed["rate"] / alone["rate"]
    write_alone, write_routed = percentile(alone["writes"], 0.5), percentile(routed["writes"], 0.5)
    return [
        row("replicas", f"reads/s, primary alone, {CLIENTS} clients", alone["rate"], "req/s",
            f"one client p50 {alone['p50']:.1f} ms"),
        row("replicas", f"reads/s, one replica taking the reads, {CLIENTS} clients", routed["rate"], "req/s",
            f"ratio {ratio:.2f} against the primary alone (both servers on these 2 cores); "
            f"one client p50 {routed['p50']:.1f} ms"),
        row("replicas", "write p50 with read-your-writes", write_routed, "ms",
            f"{write_alone:.1f} ms without replicas: +{write_routed - write_alone:.1f} ms for the WAL position"),
        row("replicas", "writer's next read p50 (on the primary until replayed)", percentile(routed["after"], 0.5),
            "ms", f"{percentile(alone['after'], 0.5):.1f} ms without replicas"),
        row("replicas", "replica add (base backup of the small city, streaming)", added_s, "s",
            f"lag at the end {routed['replicas'][0]['lag_bytes']} bytes" if routed["replicas"] else ""),
    ]


if __name__ == "__main__":
    for result in run():
        print(f"{result['metric']:<62} {result['value']:>9.1f} {result['unit']:<6} {result['note']}")
