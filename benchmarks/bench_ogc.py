"""OGC API - Features pages of 1,000 features per second, gridgov against tipg on the same table, and
GeoJSON of one street's grid polygons per second on one worker."""

from __future__ import annotations

import psycopg

from benchmarks.peer import (
    percentile,
    row,
    start_gridgov,
    start_tipg,
    throughput,
    timed_requests,
)
from gis.db.engine import libpq_url

PAGE = 1000
PAGES = 20
COLLECTIONS = ("building", "complaint")
GEOJSON_REQUESTS = 400


def _busiest_street(city_url: str) -> tuple[str, int]:
    with psycopg.connect(libpq_url(city_url)) as conn:
        return conn.execute("SELECT left(community_code, 9), count(*) FROM grid WHERE valid_to IS NULL "
                            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1").fetchone()


def run(city_url: str) -> list[dict]:
    """Rows for OGC API item pages per second against tipg on the same tables, GeoJSON of one street's grids with four
    clients, and the server's peak memory."""
    rows = []
    offsets = [index * PAGE for index in range(PAGES)]
    tipg = start_tipg(city_url, list(COLLECTIONS))
    try:
        theirs = {}
        for collection in COLLECTIONS:
            paths = [f"/collections/public.{collection}/items?limit={PAGE}&offset={offset}" for offset in offsets]
            timed_requests(tipg.url, paths[:3])
            theirs[collection] = timed_requests(tipg.url, paths)
    finally:
        tipg.stop()
    gridgov = start_gridgov(city_url)
    try:
        for collection in COLLECTIONS:
            paths = [f"/ogc/collections/{collection}/items?limit={PAGE}&offset={offset}" for offset in offsets]
            timed_requests(gridgov.url, paths[:3])
            ours = timed_requests(gridgov.url, paths)
            rate, peer_rate = 1000 * len(ours) / sum(ours), 1000 * len(theirs[collection]) / sum(theirs[collection])
            rows.append(row("ogc", f"{collection} items pages of {PAGE}/s", rate, "pages/s",
                            f"tipg {peer_rate:.1f}/s, ratio {rate / peer_rate:.2f}; "
                            f"p95 {percentile(ours, 0.95):.0f} ms vs {percentile(theirs[collection], 0.95):.0f} ms"))
        street, grids = _busiest_street(city_url)
        path = f"/layers/grid.geojson?parent={street}"
        timed_requests(gridgov.url, [path] * 5)
        single = timed_requests(gridgov.url, [path] * 50)
        rate = throughput(gridgov.url, [path] * GEOJSON_REQUESTS)
        rows.append(row("ogc", f"GeoJSON of a street's {grids} grids, 4 clients", rate, "req/s",
                        f"one client {1000 * len(single) / sum(single):.0f} req/s, "
                        f"p50 {percentile(single, 0.5):.1f} ms"))
        rows.append(row("ogc", "server peak memory", gridgov.peak_memory_mb(), "MB", ""))
    finally:
        gridgov.stop()
    return rows
