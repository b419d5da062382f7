"""Vector tiles: p50/p95 latency and tiles per second for buildings and complaints at zooms 12-16, gridgov
against tipg serving the same tables of the same database, over one fixed list of tile addresses."""

from __future__ import annotations

import math

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

ZOOMS = range(12, 17)
LAYERS = ("building", "complaint")
TILES_PER_ZOOM = 25
P95_TARGET_MS = 50.0


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The Web Mercator tile (x, y) holding a WGS-84 point at zoom `z`."""
    n = 1 << z
    return (int((lon + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))


def tile_addresses(city_url: str) -> dict[int, list[tuple[int, int, int]]]:
    """A fixed square of tiles around the centre of the buildings, per zoom (the busiest part of the city)."""
    with psycopg.connect(libpq_url(city_url)) as conn:
        lon, lat = conn.execute("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)::geometry) "
                                "FROM building WHERE valid_to IS NULL) s(c)").fetchone()
    side = int(math.sqrt(TILES_PER_ZOOM))
    addresses = {}
    for z in ZOOMS:
        cx, cy = tile_of(lon, lat, z)
        addresses[z] = [(z, cx + dx, cy + dy) for dy in range(-(side // 2), side - side // 2)
                        for dx in range(-(side // 2), side - side // 2)]
    return addresses


def run(city_url: str) -> list[dict]:
    """Rows for tile latency (p50, p95) and tiles per second per layer and zoom against tipg, cached buildings with four
    clients, and both servers' peak memory."""
    addresses = tile_addresses(city_url)
    rows = []
    tipg = start_tipg(city_url, list(LAYERS))
    try:
        tipg_latency = {}
        for layer in LAYERS:
            for z, tiles in addresses.items():
                paths = [f"/collections/public.{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in tiles]
                timed_requests(tipg.url, paths)  # warms PostgreSQL's buffers for both servers alike
                tipg_latency[layer, z] = timed_requests(tipg.url, paths)
        tipg_memory = tipg.peak_memory_mb()
    finally:
        tipg.stop()
    gridgov = start_gridgov(city_url)
    try:
        # warm the app (connection pool, prepared statements per zoom) on tiles outside the measured list
        timed_requests(gridgov.url, [f"/tiles/{layer}/{z}/{x + 100}/{y}.mvt" for layer in LAYERS
                                     for z, x, y in (tiles[0] for tiles in addresses.values())])
        for layer in LAYERS:
            for z, tiles in addresses.items():
                paths = [f"/tiles/{layer}/{z}/{x}/{y}.mvt" for z, x, y in tiles]
                # first sight of every tile: rendered by PostGIS, nothing cached in the app
                ours, theirs = timed_requests(gridgov.url, paths), tipg_latency[layer, z]
                p50, p95 = percentile(ours, 0.5), percentile(ours, 0.95)
                peer50, peer95 = percentile(theirs, 0.5), percentile(theirs, 0.95)
                per_second, peer_per_second = 1000 * len(ours) / sum(ours), 1000 * len(theirs) / sum(theirs)
                rows += [
                    row("tiles", f"{layer} z{z} p50", p50, "ms", f"tipg {peer50:.1f} ms, ratio {p50 / peer50:.2f}"),
                    row("tiles", f"{layer} z{z} p95", p95, "ms",
                        f"tipg {peer95:.1f} ms, ratio {p95 / peer95:.2f}; target < {P95_TARGET_MS:.0f} ms"),
                    row("tiles", f"{layer} z{z} tiles/s", per_second, "tiles/s",
                        f"tipg {peer_per_second:.0f}/s, ratio {per_second / peer_per_second:.2f}"),
                ]
        # boundaries that rarely change come from the app's tile cache once rendered
        warm_paths = [f"/tiles/building/{z}/{x}/{y}.mvt" for tiles in addresses.values() for z, x, y in tiles]
        warm = throughput(gridgov.url, warm_paths * 8)
        cold_rate = 1000 * len(warm_paths) / sum(sum(tipg_latency["building", z]) for z in ZOOMS)
        rows.append(row("tiles", "building z12-16 cached, 4 clients", warm, "tiles/s",
                        f"tipg (uncached) {cold_rate:.0f}/s, ratio {warm / cold_rate:.1f}"))
        rows.append(row("tiles", "server peak memory", gridgov.peak_memory_mb(), "MB",
                        f"tipg {tipg_memory:.0f} MB"))
    finally:
        gridgov.stop()
    return rows
