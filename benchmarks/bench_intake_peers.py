"""Intake against the pipeline an analyst would write: gridgov's import end to end beside two peers, in one run,
on the same rows and the same indexed `complaint` table.

Each contender gets its own copy of the city database (CREATE DATABASE ... TEMPLATE, so every one starts from the
same table, its indexes, triggers and a city's worth of complaints already in it) and imports the same generated
12345 export (a CSV with ticket number, time, category name, text, address, WGS-84 coordinates, caller, phone):

- gridgov: `import_file` as `gridgov complaints import` runs it (chunks of 50,000): normalising (times, categories,
  coordinate systems, addresses), placing on the micro-grid version valid on each complaint's day (lowest code on
  shared edges), its building, snapping points just outside, storing with intake facts and responsible parties,
  linking possible duplicates, the rejected-row report, vacuuming.
- peer (a), PostGIS alone: COPY of the CSV into a staging table of text columns, then one INSERT ... SELECT that
  casts the columns, maps the category name, joins the micro-grid version valid on the day with ST_Contains (and
  grid and community for the codes above it), ON CONFLICT DO NOTHING. It does not convert GCJ-02/BD-09, geocode
  addresses, find buildings, snap, decide shared edges (a point on an edge is in no micro-grid), record intake
  facts or parties, link duplicates, or report rejected rows (one bad row fails the whole statement).
- peer (b), geopandas: read_csv, points_from_xy, sjoin (within) with the micro-grids read by read_postgis, the
  version valid on the day kept (lowest code first), then to_postgis into `complaint`. It does the same as peer
  (a) and no more.

The ticket trigger on `complaint` stays as the table has it (on, by default) for all three alike, so every
contender's rows open tickets; `--no-tickets` switches it off in every copy to compare the intake work alone.

    python -m benchmarks.bench_intake_peers URL [--rows N] [--million] [--no-tickets] [--shuffled]
        [--only gridgov,postgis]
        [--index-use [--no-cost] [--skip-compare]]

`--index-use` measures, in one more copy, how often each index on `complaint` and `ticket` is used by the other
areas' reads (tiles, OGC features, map GeoJSON, Open311 GET, ticket lists, rates, hotspots, the review queue)
and by the import itself, and what each costs the storing stage.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy.engine import make_url

from gis.db.engine import libpq_url

AREA = "intake peers"
ROWS = int(os.environ.get("GRIDGOV_BENCH_INTAKE_PEER_ROWS", "100000"))
HEADER = ["工单编号", "受理时间", "诉求类别", "诉求内容", "事发地址", "经度", "纬度", "来电人", "联系电话"]
SURNAMES = "王李张刘陈杨赵黄周吴"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀英华"


# -- copies of the city ------------------------------------------------------------------------------------------


def clone(city_url: str, label: str) -> str:
    """A fresh copy of the city database (file copy of the template: seconds, where WAL logging takes minutes)."""
    url = make_url(libpq_url(city_url))
    name = f"bench_peer_{label}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(libpq_url(city_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}" STRATEGY FILE_COPY')
    return url.set(database=name).render_as_string(hide_password=False)


def drop(city_url: str, copy_url: str) -> None:
    """Drop a copy made by `clone`."""
    with psycopg.connect(libpq_url(city_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(copy_url).database}" WITH (FORCE)')


def set_ticket_trigger(url: str, enabled: bool) -> None:
    """Switch the complaint table's ticket trigger on or off (it exists once the tickets migration ran)."""
    with psycopg.connect(libpq_url(url)) as conn:
        if conn.execute("SELECT 1 FROM pg_trigger WHERE tgname = 'complaint_ticket_intake'").fetchone():
            conn.execute(f"ALTER TABLE complaint {'ENABLE' if enabled else 'DISABLE'} TRIGGER complaint_ticket_intake")


def settle(url: str) -> None:
    """A checkpoint before each contender, so none pays for the writes of the one before it."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CHECKPOINT")


# -- the export ----------------------------------------------------------------------------------------------------


def write_export(url: str, path: Path, rows: int, seed: int = 20, shuffled: bool = False) -> dict:
    """A 12345 export of `rows` rows: 94% at a building of the city (a few metres off its centre), 5% anywhere in
    the city's box (some fall outside every micro-grid), 1% just beyond its edge; times over the fixture's year in
    Beijing time, categories by their Chinese names. Rows are in the order of their acceptance time, as a hotline
    system exports them (its ticket numbers follow that order); `shuffled` leaves the times in random order.
    Returns what the rows hold."""
    rng = np.random.default_rng(seed)
    with psycopg.connect(libpq_url(url)) as conn:
        buildings = conn.execute("""
            SELECT ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom)), b.number, c.name
            FROM building b JOIN compound c ON c.code = b.compound_code AND c.valid_to IS NULL
            WHERE b.valid_to IS NULL ORDER BY b.code""").fetchall()
        categories = conn.execute("""
            SELECT name_zh, coalesce(keywords[1], name_zh) FROM category
            WHERE active AND name_zh IN (SELECT name_zh FROM category GROUP BY name_zh HAVING count(*) = 1)
            ORDER BY code""").fetchall()
        minx, miny, maxx, maxy = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom)::geometry AS e FROM micro_grid WHERE valid_to IS NULL) x").fetchone()
    if not buildings:
        raise ValueError("the database holds no city: load one first")
    kind = rng.random(rows)
    pick = rng.integers(len(buildings), size=rows)
    jitter = rng.normal(0, 0.00003, size=(rows, 2))
    anywhere = np.column_stack([rng.uniform(minx, maxx, rows), rng.uniform(miny, maxy, rows)])
    beyond = np.column_stack([np.where(rng.random(rows) < 0.5, minx - rng.uniform(0, 0.003, rows),
                                       maxx + rng.uniform(0, 0.003, rows)), rng.uniform(miny, maxy, rows)])
    cats = rng.integers(len(categories), size=rows)
    start = datetime(2025, 1, 1)
    minutes = rng.integers(0, 364 * 24 * 60, size=rows)
    if not shuffled:
        minutes.sort()
    names = rng.integers(len(SURNAMES), size=rows), rng.integers(len(GIVEN), size=rows)
    phones = rng.integers(13_000_000_000, 19_999_999_999, size=rows)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            lon, lat, number, compound = buildings[pick[i]]
            if kind[i] < 0.94:
                x, y = lon + jitter[i, 0], lat + jitter[i, 1]
            elif kind[i] < 0.99:
                x, y = anywhere[i]
            else:
                x, y = beyond[i]
            name, keyword = categories[cats[i]]
            when = start + timedelta(minutes=int(minutes[i]))
            writer.writerow([f"12345-P{seed}-{i:07d}", when.strftime("%Y-%m-%d %H:%M:%S"), name,
                             f"{compound}{number}号楼{keyword}问题，请尽快处理", f"{compound}{number}号楼",
                             f"{x:.7f}", f"{y:.7f}", SURNAMES[names[0][i]] + GIVEN[names[1][i]], str(phones[i])])
    return {"rows": rows, "buildings": len(buildings), "categories": len(categories)}


# -- the contenders ------------------------------------------------------------------------------------------------


def run_gridgov(url: str, path: Path) -> dict:
    """gridgov's import, as the command runs it; its stages as the importer timed them."""
    from gis.intake.importer import DEFAULT_CHUNK_ROWS, import_file

    started = time.perf_counter()
    report = import_file(url, path, chunk_rows=DEFAULT_CHUNK_ROWS)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "stored": report.imported, "stages": dict(report.seconds),
            "placements": dict(report.placements), "rejected": report.rejected,
            "linked": report.duplicates_linked}


PEER_STAGE_DDL = """
CREATE UNLOGGED TABLE peer_stage (ticket text, reported text, category text, description text, address text,
                                  x text, y text, reporter text, phone text)"""

PEER_INSERT_SQL = """
INSERT INTO complaint (source, external_id, category_code, description, address, reported_at, geom, original_x,
    original_y, original_crs, match_level, placement, micro_grid_id, micro_grid_code, grid_code, community_code,
    street_code, compound_code, reporter_name, reporter_phone)
SELECT 'hotline', s.ticket, cat.code, s.description, s.address, s.reported_at, s.geom, s.x, s.y, 'EPSG:4326',
       'coordinates', CASE WHEN m.id IS NULL THEN 'review' ELSE 'inside' END, m.id, m.code, m.grid_code,
       g.community_code, cm.street_code, m.compound_code, s.reporter, s.phone
FROM (SELECT ticket, category, description, address, reporter, phone, x::float8 AS x, y::float8 AS y,
             (reported || '+08')::timestamptz AS reported_at,
             (reported::timestamp)::date AS local_day,
             ST_SetSRID(ST_MakePoint(x::float8, y::float8), 4326) AS geom
      FROM peer_stage) s
JOIN category cat ON cat.name_zh = s.category
LEFT JOIN micro_grid m ON ST_Contains(m.geom, s.geom) AND daterange(m.valid_from, m.valid_to) @> s.local_day
LEFT JOIN grid g ON g.code = m.grid_code AND g.valid_to IS NULL
LEFT JOIN community cm ON cm.code = g.community_code AND cm.valid_to IS NULL
ON CONFLICT (source, external_id) WHERE external_id IS NOT NULL DO NOTHING"""
"""Peer (a)'s one statement: what an analyst writes in SQL, with the version valid on the day in the join."""


def run_postgis(url: str, path: Path) -> dict:
    """Peer (a): COPY into a staging table, then one INSERT ... SELECT; one transaction."""
    started = time.perf_counter()
    stages = {}
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(PEER_STAGE_DDL)
        with conn.cursor() as cur, path.open("rb") as handle:
            with cur.copy("COPY peer_stage FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                while block := handle.read(1 << 20):
                    copy.write(block)
        conn.execute("ANALYZE peer_stage")
        stages["COPY into staging"] = time.perf_counter() - started
        mark = time.perf_counter()
        stored = conn.execute(PEER_INSERT_SQL).rowcount
        stages["INSERT ... SELECT"] = time.perf_counter() - mark
        conn.execute("DROP TABLE peer_stage")
        mark = time.perf_counter()
        conn.commit()
        stages["commit"] = time.perf_counter() - mark
    return {"seconds": time.perf_counter() - started, "stored": stored, "stages": stages}


def run_geopandas(url: str, path: Path) -> dict:
    """Peer (b): read_csv, points, sjoin with the micro-grids from read_postgis, to_postgis."""
    import geopandas as gpd
    import pandas as pd
    from sqlalchemy import create_engine

    from gis.db.engine import with_driver

    started = time.perf_counter()
    stages = {}
    engine = create_engine(with_driver(url, "psycopg"))
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    stages["read_csv"] = time.perf_counter() - started
    mark = time.perf_counter()
    with engine.connect() as conn:
        categories = dict(pd.read_sql("SELECT name_zh, code FROM category", conn).itertuples(index=False))
        grids = pd.read_sql("SELECT g.code AS grid_code, g.community_code, c.street_code FROM grid g "
                            "JOIN community c ON c.code = g.community_code AND c.valid_to IS NULL "
                            "WHERE g.valid_to IS NULL", conn)
        micro = gpd.read_postgis("SELECT id, code, grid_code, compound_code, valid_from, valid_to, geom "
                                 "FROM micro_grid", conn, geom_col="geom")
    stages["read_postgis"] = time.perf_counter() - mark
    mark = time.perf_counter()
    x, y = frame["经度"].astype(float), frame["纬度"].astype(float)
    local = pd.to_datetime(frame["受理时间"], format="%Y-%m-%d %H:%M:%S")
    points = gpd.GeoDataFrame({"row": np.arange(len(frame)), "day": local.dt.normalize()},
                              geometry=gpd.points_from_xy(x, y), crs=4326)
    joined = gpd.sjoin(points, micro, how="left", predicate="within")
    valid_from = pd.to_datetime(joined["valid_from"])
    valid_to = pd.to_datetime(joined["valid_to"])
    valid = joined["id"].notna() & (valid_from <= joined["day"]) & (valid_to.isna() | (joined["day"] < valid_to))
    hits = joined[valid].sort_values(["row", "code"]).drop_duplicates("row").set_index("row")
    hits = hits.merge(grids, on="grid_code", how="left").set_index(hits.index)
    stages["sjoin"] = time.perf_counter() - mark
    mark = time.perf_counter()
    placed = hits.reindex(np.arange(len(frame)))
    out = gpd.GeoDataFrame({
        "source": "hotline", "external_id": frame["工单编号"], "category_code": frame["诉求类别"].map(categories),
        "description": frame["诉求内容"], "address": frame["事发地址"],
        "reported_at": local.dt.tz_localize("Asia/Shanghai"),
        "original_x": x, "original_y": y, "original_crs": "EPSG:4326", "match_level": "coordinates",
        "placement": np.where(placed["id"].notna().to_numpy(), "inside", "review"),
        "micro_grid_id": placed["id"].astype("Int64"), "micro_grid_code": placed["code"],
        "grid_code": placed["grid_code"], "community_code": placed["community_code"],
        "street_code": placed["street_code"], "compound_code": placed["compound_code"],
        "reporter_name": frame["来电人"], "reporter_phone": frame["联系电话"],
    }, geometry=points.geometry.to_numpy(), crs=4326).rename_geometry("geom")
    out = out.dropna(subset=["category_code"])
    out.to_postgis("complaint", engine, if_exists="append", index=False, chunksize=10_000)
    stages["to_postgis"] = time.perf_counter() - mark
    engine.dispose()
    return {"seconds": time.perf_counter() - started, "stored": len(out), "stages": stages}


CONTENDERS = {"gridgov": run_gridgov, "postgis": run_postgis, "geopandas": run_geopandas}
PEER_NAMES = {"postgis": "peer (a) PostGIS alone (COPY + INSERT ... SELECT)",
              "geopandas": "peer (b) geopandas (read_csv, sjoin, to_postgis)"}


def placed_alike(urls: dict[str, str], prefix: str) -> dict[str, int]:
    """How many of the rows each peer put in a different micro-grid from gridgov (rows gridgov placed inside)."""
    with psycopg.connect(libpq_url(urls["gridgov"])) as conn:
        ours = dict(conn.execute("SELECT external_id, micro_grid_code FROM complaint WHERE external_id LIKE %s "
                                 "AND placement = 'inside'", (prefix + "%",)).fetchall())
    differ = {}
    for name, url in urls.items():
        if name == "gridgov":
            continue
        with psycopg.connect(libpq_url(url)) as conn:
            theirs = dict(conn.execute("SELECT external_id, micro_grid_code FROM complaint WHERE external_id LIKE %s",
                                       (prefix + "%",)).fetchall())
        differ[name] = sum(1 for key, code in ours.items() if theirs.get(key) != code)
    return differ


def compare(city_url: str, rows: int = ROWS, tickets: bool = True, keep: bool = False,
            only: tuple[str, ...] = tuple(CONTENDERS), shuffled: bool = False) -> tuple[list[dict], dict]:
    """Import one export with each contender (`only` these) in its own copy of the city; result rows, and the
    copies' URLs when `keep` (else they are dropped)."""
    results, urls = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.csv"
        facts = write_export(city_url, path, rows, shuffled=shuffled)
        try:
            for name, contender in CONTENDERS.items():
                if name not in only:
                    continue
                urls[name] = clone(city_url, name)
                set_ticket_trigger(urls[name], tickets)
                settle(urls[name])
                results[name] = contender(urls[name], path)
                print(f"{name}: {results[name]['seconds']:.1f} s", file=sys.stderr, flush=True)
            differ = placed_alike(urls, "12345-P") if "gridgov" in urls else {}
        finally:
            if not keep:
                for url in urls.values():
                    drop(city_url, url)
    trigger = "ticket trigger on (every contender's rows open tickets)" if tickets else "ticket trigger off"
    rate = {name: rows / result["seconds"] for name, result in results.items()}
    out = []
    if "gridgov" in results:
        out.append(_gridgov_row(results["gridgov"], rows, rate, trigger))
    for name in PEER_NAMES:
        if name not in results:
            continue
        result = results[name]
        versus = f"gridgov {rate['gridgov'] / rate[name]:.2f}x this; " if "gridgov" in rate else ""
        out.append({"area": AREA, "metric": PEER_NAMES[name], "value": round(rate[name]), "unit": "rows/s",
                    "note": f"{versus}{result['seconds']:.1f} s ("
                            + ", ".join(f"{stage} {value:.1f} s" for stage, value in result["stages"].items())
                            + f"); {result['stored']:,} stored; "
                            + (f"{differ[name]:,} of gridgov's inside rows in another micro-grid or none; "
                               if name in differ else "") + trigger})
    return out, {"facts": facts, "urls": urls, "results": results}


OVERLAPPED = ("reading", "normalising")
"""gridgov's stages that a worker thread runs while the others store the chunk before."""


def _gridgov_row(ours: dict, rows: int, rate: dict[str, float], trigger: str) -> dict:
    peers = [name for name in PEER_NAMES if name in rate]
    faster = max(peers, key=lambda name: rate[name]) if peers else None
    versus = f"{rate['gridgov'] / rate[faster]:.2f}x the faster peer ({faster}); " if faster else ""
    stages = ours["stages"]
    known = sum(value for stage, value in stages.items() if stage not in OVERLAPPED)
    breakdown = ", ".join(f"{stage} {value:.1f} s" for stage, value in stages.items())
    return {"area": AREA, "metric": f"gridgov import, {rows:,}-row export, end to end",
            "value": round(rate["gridgov"]), "unit": "rows/s",
            "note": f"{versus}{ours['seconds']:.1f} s: {breakdown} (reading and normalising run beside the "
                    f"rest), setting up and waiting for rows {ours['seconds'] - known:.1f} s; "
                    f"{ours['stored']:,} stored "
                    f"({', '.join(f'{k} {v:,}' for k, v in ours['placements'].items())}), "
                    f"{ours['linked']:,} duplicate links; {trigger}"}


def run(city_url: str) -> list[dict]:
    """Rows for `make bench`: the three contenders on a 100,000-row export (GRIDGOV_BENCH_INTAKE_PEER_ROWS)."""
    return compare(city_url, ROWS)[0]


def main(argv: list[str] | None = None) -> None:
    """Command line: the comparison at --rows (or --million), and with --index-use the index figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="database URL of a loaded city (the template of every copy)")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--million", action="store_true", help="1,000,000 rows")
    parser.add_argument("--no-tickets", action="store_true", help="switch the ticket trigger off in every copy")
    parser.add_argument("--index-use", action="store_true", help="also measure each index's use and cost")
    parser.add_argument("--skip-compare", action="store_true", help="only the index figures")
    parser.add_argument("--no-cost", action="store_true", help="index use only, not each index's storing cost")
    parser.add_argument("--shuffled", action="store_true", help="the export's rows not in time order")
    parser.add_argument("--only", default=",".join(CONTENDERS), help="contenders, comma-separated")
    args = parser.parse_args(argv)
    rows = 1_000_000 if args.million else args.rows
    out = []
    if not args.skip_compare:
        out += compare(args.url, rows, tickets=not args.no_tickets, only=tuple(args.only.split(",")),
                       shuffled=args.shuffled)[0]
    if args.index_use:
        from benchmarks.intake_index_use import index_report

        out += index_report(args.url, with_cost=not args.no_cost)
    for row in out:
        print(f"| {row['area']} | {row['metric']} | {row['value']:,} | {row['unit']} | {row['note']} |")


if __name__ == "__main__":
    main()
