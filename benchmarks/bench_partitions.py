"""Complaints partitioned by month against the single table, on one copy of a database measured before and after
`gridgov db partitions convert` (gis/db/partitions.py).

Per phase: complaint tile p95 at z12, z14 and z16 over HTTP (bench_tiles' square of tiles), with planning and
execution time of the centre tile's statement from `EXPLAIN (ANALYZE, SUMMARY)` (median of 5); a street office's
open tickets p95; the rates of every street (one query, per street) with its planning and execution split; Gi*
per micro-grid end to end; an import's rows per second (bench_growth's). The ratio is partitioned ÷ single table
(rows per second: single ÷ partitioned, so that above 1 is slower in every row).

`python -m benchmarks.bench_partitions URL` (a copy of the database at URL is made and dropped), or from
`benchmarks/run_all.py` on the city fixture.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import sys
import time
import uuid
from datetime import timedelta

import psycopg
from psycopg import sql as pgsql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks.bench_growth import ADMIN, _hotspots, _import_rate, _last_year, _tickets_and_rates
from benchmarks.bench_tiles import tile_addresses
from benchmarks.peer import percentile, start_gridgov, timed_requests
from gis.db import partitions
from gis.db.engine import libpq_url, sync_engine

AREA = "partitions"
ZOOMS = (12, 14, 16)
EXPLAINS = 5


def _explained(conn, query: str, params: dict) -> tuple[float, float]:
    """Median planning and execution time (ms) of `query`."""
    plans, runs = [], []
    for _ in range(EXPLAINS):
        out = "\n".join(row[0] for row in conn.execute(text("EXPLAIN (ANALYZE, SUMMARY) " + query), params))
        plans.append(float(re.search(r"Planning Time: ([\d.]+)", out).group(1)))
        runs.append(float(re.search(r"Execution Time: ([\d.]+)", out).group(1)))
    return statistics.median(plans), statistics.median(runs)


def _splits(url: str, addresses: dict) -> dict[str, float]:
    from gis.serve.tiles import TILE_LAYERS, tile_sql
    from gis.tickets.rates import rates_query

    out = {}
    engine = sync_engine(url)
    with engine.connect() as conn:
        for z in ZOOMS:
            _, x, y = addresses[z][len(addresses[z]) // 2]
            plan, run = _explained(conn, *tile_sql(TILE_LAYERS["complaint"], z, x, y, ADMIN))
            out[f"tile complaint z{z} planning (ms)"], out[f"tile complaint z{z} execution (ms)"] = plan, run
        newest = conn.execute(text("SELECT max(reported_at) FROM ticket")).scalar()
        query, params = rates_query(ADMIN, "street", newest - timedelta(days=365), newest + timedelta(seconds=1))
        out["rates of every street planning (ms)"], out["rates of every street execution (ms)"] = _explained(
            conn, query, params)
    engine.dispose()
    return out


def measure(url: str) -> dict[str, float]:
    """Every figure of one phase, by metric name."""
    addresses = tile_addresses(url)
    out: dict[str, float] = {}
    server = start_gridgov(url)
    try:
        for z in ZOOMS:
            paths = [f"/tiles/complaint/{z}/{x}/{y}.mvt" for _, x, y in addresses[z]]
            timed_requests(server.url, paths)  # warm
            out[f"tile complaint z{z} p95 (ms)"] = percentile(timed_requests(server.url, paths), 0.95)
    finally:
        server.stop()
    out.update(_splits(url, addresses))
    with psycopg.connect(libpq_url(url)) as conn:
        period = _last_year(conn)
    figures = asyncio.run(_tickets_and_rates(url, period))
    out["a street's open tickets p95 (ms)"] = figures["a street's open tickets p95 (ms)"]
    out["rates of every street, one query p50 (ms)"] = figures["rates of every street, one query p50 (ms)"]
    out["rates of every street, per street (ms)"] = figures["rates of every street, per street (ms)"]
    out["Gi* micro_grid end to end (s)"] = _hotspots(url, period)["Gi* micro_grid end to end, last year (s)"]
    out.update(_import_rate(url, period[1]))
    out["load average (1 min)"] = os.getloadavg()[0]
    return out


def _copy(url: str) -> str:
    """A copy of the database at `url` (CREATE DATABASE … TEMPLATE), on the same server; its URL."""
    source = make_url(url)
    name = f"bench_partitions_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(str(source.set(database="postgres"))), autocommit=True) as conn:
        conn.execute(pgsql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
            pgsql.Identifier(name), pgsql.Identifier(source.database)))
    return source.set(database=name).render_as_string(hide_password=False)


def _drop(url: str) -> None:
    target = make_url(url)
    with psycopg.connect(libpq_url(str(target.set(database="postgres"))), autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(target.database)))


def run(url: str) -> list[dict]:
    """Rows: each figure on the single table and partitioned, with the ratio partitioned ÷ single table."""
    copy = _copy(url)
    try:
        single = measure(copy)
        started = time.perf_counter()
        done = partitions.convert(copy)
        converted_s = time.perf_counter() - started
        parted = measure(copy)
    finally:
        _drop(copy)
    rows = []
    for metric, before in single.items():
        after = parted[metric]
        if metric.startswith("load average"):
            rows.append({"area": AREA, "metric": metric, "value": round(after, 2), "unit": "",
                         "note": f"single table phase {before:.2f}"})
            continue
        ratio = before / after if "rows/s" in metric else after / before
        unit = re.search(r"\(([^)]+)\)$", metric).group(1)
        rows.append({"area": AREA, "metric": re.sub(r" \([^)]+\)$", "", metric), "value": round(after, 2),
                     "unit": unit, "note": f"single table {before:.2f}, ratio {ratio:.2f}"})
    rows.append({"area": AREA, "metric": "convert", "value": round(converted_s, 1), "unit": "s",
                 "note": f"{done['rows']:,} complaints into {done['partitions']} partitions"})
    return rows


if __name__ == "__main__":
    for row in run(sys.argv[1]):
        print(f"| {row['metric']} | {row['value']} | {row['unit']} | {row['note']} |")
