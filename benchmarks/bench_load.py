"""Loading the `city` fixture: wall time and the loader's peak memory, against PostgreSQL's own COPY ingest
of the same number of complaint rows measured in the same run."""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import psycopg

from fixtures.city import GENERATOR_VERSION, SIZES
from gis.db.engine import libpq_url

SEED = 1


def _loaded(url: str) -> bool:
    try:
        with psycopg.connect(libpq_url(url)) as conn:
            row = conn.execute("SELECT size, seed, generator_version FROM fixture_info").fetchone()
    except psycopg.Error:
        return False
    return row == ("city", SEED, GENERATOR_VERSION)


def _raw_copy_seconds(url: str, rows: int) -> float:
    """COPY of `rows` complaint-shaped rows into an unlogged scratch table: the database's ingest ceiling."""
    line = ("hotline\t12345202511010000001\tE0601\t明珠佳苑3号楼2单元厨房漏水\t"
            "泰山区财源街道三里社区明珠佳苑3号楼2单元\t"
            "2025-11-01 08:00:00+08\t0101000020E61000009A99999999495D409A99999999194240\n")
    payload = line * 100_000
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("CREATE TEMP TABLE scratch (source text, external_id text, category_code text, "
                     "description text, address text, reported_at timestamptz, geom geometry(Point, 4326))")
        started = time.perf_counter()
        for _ in range(rows // 100_000):
            with conn.cursor().copy("COPY scratch FROM STDIN") as copy:
                copy.write(payload)
        return time.perf_counter() - started


def run(city_url: str) -> list[dict]:
    """Rows for loading the city fixture (wall time, the loader's peak memory) against a bare COPY of as many
    complaints; a city already loaded is kept and reported as such."""
    from gis.db.migrate import upgrade

    upgrade(city_url)
    rows = []
    if _loaded(city_url):
        rows.append({"area": "load", "metric": "city fixture", "value": "kept", "unit": "",
                     "note": "already loaded: delete fixture_info to measure the load again"})
    else:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c",
             "import sys; from fixtures.loader import load_city; load_city(sys.argv[1], 'city', seed=int(sys.argv[2]),"
             " progress=True)", city_url, str(SEED)],
            check=True,
        )
        seconds = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        raw = _raw_copy_seconds(city_url, SIZES["city"].complaints)
        rows += [
            {"area": "load", "metric": "city fixture, generate + COPY + tickets", "value": round(seconds, 1),
             "unit": "s", "note": f"{SIZES['city'].complaints:,} complaints, 200k buildings"},
            {"area": "load", "metric": "loader peak memory", "value": round(peak_mib), "unit": "MiB",
             "note": "limit 2,048 MiB"},
            {"area": "load", "metric": "raw COPY of 1M complaint rows (peer)", "value": round(raw, 1), "unit": "s",
             "note": f"whole load = {seconds / raw:.1f}× the bare ingest of the complaints"},
        ]
    return rows
