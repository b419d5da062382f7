"""Growth: how each hot path's cost grows from the small city to the demo, the city and the province (five cities,
5,000,000 complaints over five years), each size in a database of its own, measured in one run.

Per size: tile p95 per zoom (bench_tiles' fixed square of tiles around the buildings' centre, first sight of
every tile), a street office's open tickets (the ticket list's query, page of 100), the three rates (响应率、解决率、
满意率) per street as the administrator asks for them and a street office's own per grid (gis/tickets/rates.py)
over the data's last year, Gi* end to end (gis.analytics.hotspots, neighbours cached, the data's last year), OGC
item pages of 1,000, and an import's rows per second (rows inside micro-grids, removed again afterwards). The
peer of each row is the same row on the city, measured in the same run: the aim is city → province within 1.5×.

Run with `python -m benchmarks.run_all --province` (or `make bench GROWTH=1`); the province is loaded into its
own database the first time (long: see docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from benchmarks.bench_tiles import ZOOMS, tile_addresses
from benchmarks.peer import percentile, start_gridgov, timed_requests
from gis.access.auth import Principal
from gis.db.engine import libpq_url, sync_engine, with_driver

AREA = "growth"
ORDER = ("small", "demo", "city", "province")
AIM = 1.5
SEED = 1
REPEATS = 60
IMPORT_ROWS = 20_000
OGC_PAGES = 10
ADMIN = Principal(role="admin", username="bench", user_id=0)
BEIJING = ZoneInfo("Asia/Shanghai")


def loaded(url: str) -> tuple[str, int] | None:
    """(size, seed) the database holds, None when it holds no fixture of this generator version."""
    from fixtures.loader import loaded_fixture

    try:
        return loaded_fixture(url)
    except psycopg.Error:
        return None


def ensure_loaded(url: str, size: str) -> float | None:
    """Load `size` (seed SEED) into `url` unless it is there; the load's seconds, None when it was kept."""
    from gis.db.migrate import upgrade

    upgrade(url)
    if loaded(url) == (size, SEED):
        return None
    started = time.perf_counter()
    code = ("import sys; from fixtures.province_load import load_province; from fixtures.loader import load_city\n"
            "url, size, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
            "load_province(url, seed=seed) if size == 'province' else load_city(url, size, seed=seed)")
    subprocess.run([sys.executable, "-c", code, url, size, str(SEED)], check=True)
    return time.perf_counter() - started


def _last_year(conn) -> tuple:
    """The data's last year: [newest report - 365 days, newest report + 1 s)."""
    newest = conn.execute("SELECT max(reported_at) FROM ticket").fetchone()[0]
    return newest - timedelta(days=365), newest + timedelta(seconds=1)


def _tiles(server_url: str, addresses: dict) -> dict[str, float]:
    timed_requests(server_url, [f"/tiles/{layer}/{z}/{x + 100}/{y}.mvt" for layer in ("building", "complaint")
                                for z, x, y in (tiles[0] for tiles in addresses.values())])
    out = {}
    for layer in ("building", "complaint"):
        for z in ZOOMS:
            latencies = timed_requests(server_url, [f"/tiles/{layer}/{z}/{x}/{y}.mvt" for z, x, y in addresses[z]])
            out[f"tile {layer} z{z} p95 (ms)"] = percentile(latencies, 0.95)
    return out


def _ogc(server_url: str) -> dict[str, float]:
    out = {}
    for collection in ("building", "complaint"):
        paths = [f"/ogc/collections/{collection}/items?limit=1000&offset={i * 1000}" for i in range(OGC_PAGES)]
        timed_requests(server_url, paths[:2])
        latencies = timed_requests(server_url, paths)
        out[f"OGC {collection} page of 1,000 p50 (ms)"] = statistics.median(latencies)
    return out


async def _tickets_and_rates(url: str, period: tuple) -> dict[str, float]:
    from gis.tickets import queries, rates
    from gis.tickets.filters import TicketFilter

    engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool,
                                 connect_args={"server_settings": {"jit": "off"}})
    out = {}
    async with engine.connect() as conn:
        streets = [r[0] for r in await conn.execute(text(
            "SELECT code FROM street WHERE valid_to IS NULL ORDER BY code LIMIT 50"))]
        timings = []
        for i in range(REPEATS):
            street = streets[i % len(streets)]
            principal = Principal(role="street", username="bench", user_id=0, scope=(street,))
            started = time.perf_counter()
            await queries.list_tickets(conn, principal, TicketFilter(street=street, states=["open"]), "due", 100, 0)
            timings.append((time.perf_counter() - started) * 1000)
        out["a street's open tickets p95 (ms)"] = percentile(timings, 0.95)
        timings = []
        for i in range(max(5, REPEATS // 6)):
            started = time.perf_counter()
            await rates.rates(conn, ADMIN, "street", *period)
            timings.append((time.perf_counter() - started) * 1000)
        out["rates of every street, one query p50 (ms)"] = statistics.median(timings)
        out["rates of every street, per street (ms)"] = statistics.median(timings) / (await conn.execute(text(
            "SELECT count(*) FROM street WHERE valid_to IS NULL"))).scalar()
        timings = []
        for i in range(max(10, REPEATS // 3)):
            street = streets[i % len(streets)]
            principal = Principal(role="street", username="bench", user_id=0, scope=(street,))
            started = time.perf_counter()
            await rates.rates(conn, principal, "grid", *period)
            timings.append((time.perf_counter() - started) * 1000)
        out["a street office's rates per grid p50 (ms)"] = statistics.median(timings)
    await engine.dispose()
    return out


def _hotspots(url: str, period: tuple) -> dict[str, float]:
    from gis.analytics import hotspots as core
    from gis.analytics.periods import parse_period

    local = [moment.astimezone(BEIJING).date() for moment in period]
    window = parse_period(f"{local[0].isoformat()}..{local[1].isoformat()}")
    engine = sync_engine(url)
    out = {}
    with engine.connect() as conn:
        for level in ("micro_grid", "grid"):
            core.hotspots(conn, level, window)  # neighbours computed once and cached, as in the running app
            timings = []
            for _ in range(3):
                started = time.perf_counter()
                core.hotspots(conn, level, window)
                timings.append(time.perf_counter() - started)
            out[f"Gi* {level} end to end, last year (s)"] = statistics.median(timings)
    engine.dispose()
    return out


def _import_rate(url: str, newest) -> dict[str, float]:
    """Rows per second of an import of IMPORT_ROWS rows inside micro-grids of the data's last year, removed again
    (their tickets and intake rows go with them by the foreign keys' cascade)."""
    from gis.intake.importer import import_file

    with psycopg.connect(libpq_url(url)) as conn:
        points = conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM micro_grid "
                              "WHERE valid_to IS NULL ORDER BY md5(code) LIMIT %s) s", (IMPORT_ROWS,)).fetchall()
    rng = np.random.default_rng(5)
    picks = rng.integers(0, len(points), IMPORT_ROWS)
    prefix = f"growth-{int(time.time())}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["工单编号", "受理时间", "诉求类别", "诉求内容", "经度", "纬度"])
            for i, pick in enumerate(picks):
                at = newest - timedelta(days=int(rng.integers(1, 300)), minutes=int(rng.integers(0, 1440)))
                x, y = points[pick]
                writer.writerow([f"{prefix}-{i}", f"{at.astimezone(BEIJING):%Y-%m-%d %H:%M:%S}", "E0601",
                                 "厨房漏水", f"{x:.7f}", f"{y:.7f}"])
        started = time.perf_counter()
        report = import_file(url, path, chunk_rows=IMPORT_ROWS)
        seconds = time.perf_counter() - started
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("DELETE FROM complaint WHERE external_id LIKE %s", (f"{prefix}-%",))
        conn.execute("VACUUM (ANALYZE) complaint, ticket")
    if report.imported != IMPORT_ROWS:
        raise RuntimeError(f"the growth import stored {report.imported} of {IMPORT_ROWS} rows")
    return {f"import of {IMPORT_ROWS:,} rows (rows/s)": IMPORT_ROWS / seconds}


def measure(url: str) -> dict[str, float]:
    """Every growth figure of one loaded size, by metric name."""
    with psycopg.connect(libpq_url(url)) as conn:
        period = _last_year(conn)
        facts = conn.execute("SELECT (SELECT count(*) FROM complaint), (SELECT count(*) FROM micro_grid "
                             "WHERE valid_to IS NULL)").fetchone()
    out: dict[str, float] = {"complaints": facts[0], "micro-grids": facts[1]}
    server = start_gridgov(url)
    try:
        out.update(_tiles(server.url, tile_addresses(url)))
        out.update(_ogc(server.url))
    finally:
        server.stop()
    out.update(asyncio.run(_tickets_and_rates(url, period)))
    out.update(_hotspots(url, period))
    out.update(_import_rate(url, period[1]))
    return out


def table(figures: dict[str, dict[str, float]]) -> list[str]:
    """The growth table in Markdown: one row per metric, one column per size, then city → province against the
    aim (rows per second: the inverse ratio, so that above 1 is slower in both)."""
    sizes = [size for size in ORDER if size in figures]
    metrics = list(dict.fromkeys(m for values in figures.values() for m in values))
    lines = ["| metric | " + " | ".join(sizes) + " | city → province | aim ≤ 1.5× |",
             "|---|" + "---|" * (len(sizes) + 2)]
    for metric in metrics:
        cells = [_shown(figures[size].get(metric)) for size in sizes]
        ratio, verdict = "", ""
        facts = ("complaints", "micro-grids", "load average (1 min)", "measured at (UTC)")
        city, province = figures.get("city", {}).get(metric), figures.get("province", {}).get(metric)
        if city is None or province is None:
            pass
        elif metric not in facts:
            growth = city / province if "rows/s" in metric else province / city
            ratio, verdict = f"{growth:.2f}×", ("met" if growth <= AIM else "not met")
        elif metric != "measured at (UTC)":
            ratio = f"{province / city:.1f}×"
        lines.append(f"| {metric} | " + " | ".join(cells) + f" | {ratio} | {verdict} |")
    return lines


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


RESULTS = Path(__file__).parent / "results"


def run(urls: dict[str, str]) -> list[dict]:
    """Rows of the growth table for every size in `urls` ({size: database URL}), loading what is missing; the
    Markdown table is printed and written to benchmarks/results/growth.md. GRIDGOV_BENCH_GROWTH_SIZES (comma
    separated) measures only those sizes and keeps the others' last figures (benchmarks/results/growth.json)."""
    wanted = [s for s in os.environ.get("GRIDGOV_BENCH_GROWTH_SIZES", ",".join(ORDER)).split(",") if s in urls]
    RESULTS.mkdir(exist_ok=True)
    kept = RESULTS / "growth.json"
    figures = json.loads(kept.read_text(encoding="utf-8")) if kept.exists() else {}
    loads = {}
    for size in ORDER:
        if size not in wanted:
            continue
        loads[size] = ensure_loaded(urls[size], size)
        started = time.perf_counter()
        figures[size] = measure(urls[size])
        figures[size]["measured at (UTC)"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
        figures[size]["load average (1 min)"] = os.getloadavg()[0]
        print(f"{size}: measured in {time.perf_counter() - started:.0f} s", flush=True)
        kept.write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")
    figures = {size: figures[size] for size in ORDER if size in figures}
    lines = table(figures)
    print("\n".join(lines))
    (RESULTS / "growth.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append({"area": AREA, "metric": cells[0], "value": cells[-3] or "", "unit": "",
                     "note": f"{' / '.join(cells[1:-2])}; {cells[-1]}"})
    for size, seconds in loads.items():
        if seconds is not None:
            rows.append({"area": AREA, "metric": f"{size} fixture loaded", "value": round(seconds, 1), "unit": "s",
                         "note": "generate + COPY + tickets"})
    return rows
