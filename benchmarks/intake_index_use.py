"""Which indexes on `complaint` (and `ticket`) the other areas use, and what each costs the storing stage.

In one copy of the city: the statistics are reset, gridgov is started on the copy, and each area's read paths are
requested over HTTP by the roles that use them (tiles, OGC features, map GeoJSON, Open311 GET, ticket lists and
supervision, rates, hotspots and the other analytics, the review queue, the responsibility panel), then an import
(its duplicate search and conflict checks) runs in process; after each area the server's idle connections flush
their counts and `pg_stat_user_indexes.idx_scan` is read again, so every scan is put down to the area that made
it. Then, for each index of `complaint`, the stored rows of a sample are inserted again (rolled back) with the
index and without it: the difference is what that index costs the storing stage.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg

from benchmarks.bench_intake_peers import clone, drop, write_export
from benchmarks.bench_tiles import tile_addresses
from benchmarks.peer import start_gridgov
from gis.db.engine import libpq_url

TABLES = ("complaint", "ticket")
ROLES = ("public", "admin", "street", "community", "grid_worker", "property_company", "planner")
"""Every role that reads complaints: each scopes them by its own column (street, community, grid, compound)."""
FLUSH_WAIT_S = 11.0
"""A backend's pending statistics reach the shared counters within 10 s of going idle (PostgreSQL 15)."""

COMPLAINT_COLUMNS = ("source, external_id, category_code, description, address, reported_at, geom, original_x, "
                     "original_y, original_crs, match_level, placement, micro_grid_id, micro_grid_code, grid_code, "
                     "community_code, street_code, compound_code, building_code, reporter_name, reporter_phone")


def index_scans(url: str) -> dict[tuple[str, str], int]:
    """idx_scan of every index of the measured tables, read afresh."""
    with psycopg.connect(libpq_url(url)) as conn:
        return {(table, name): scans for table, name, scans in conn.execute(
            "SELECT relname, indexrelname, idx_scan FROM pg_stat_user_indexes WHERE relname = ANY(%s)",
            (list(TABLES),)).fetchall()}


def _places(url: str) -> dict:
    with psycopg.connect(libpq_url(url)) as conn:
        street = conn.execute("SELECT street_code, count(*) FROM complaint WHERE street_code IS NOT NULL "
                              "GROUP BY 1 ORDER BY 2 DESC LIMIT 1").fetchone()[0]
        community = conn.execute("SELECT code FROM community WHERE valid_to IS NULL AND street_code = %s "
                                 "ORDER BY code LIMIT 1", (street,)).fetchone()[0]
        grid = conn.execute("SELECT code FROM grid WHERE valid_to IS NULL AND community_code = %s ORDER BY code "
                            "LIMIT 1", (community,)).fetchone()[0]
        company = conn.execute("SELECT property_company_id, count(*) FROM compound WHERE valid_to IS NULL "
                               "AND property_company_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1").fetchone()[0]
        lon, lat = conn.execute("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM building "
                                "WHERE valid_to IS NULL AND micro_grid_code LIKE %s ORDER BY code LIMIT 1",
                                (grid + "%",)).fetchone()
        first, last = conn.execute("SELECT min(reported_at), max(reported_at) FROM complaint").fetchone()
        complaint_id = conn.execute("SELECT min(id) FROM complaint WHERE street_code = %s", (street,)).fetchone()[0]
        ticket_id = conn.execute("SELECT min(id) FROM ticket WHERE street_code = %s", (street,)).fetchone()[0]
        categories = [code for (code,) in conn.execute("SELECT code FROM category ORDER BY code LIMIT 3")]
    return {"street": street, "community": community, "grid": grid, "company": company, "lon": lon, "lat": lat,
            "first": first, "last": last, "complaint_id": complaint_id, "ticket_id": ticket_id,
            "categories": categories}


def _users(server_url: str, url: str, places: dict) -> dict[str, dict]:
    """Sign-in headers for each role (the users are made in the copy through the CLI's own function)."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    from gis.access.auth import create_user
    from gis.db.engine import with_driver

    password = secrets.token_urlsafe(16)
    roles = {"admin": ([], None), "street": ([places["street"]], None), "community": ([places["community"]], None),
             "grid_worker": ([places["grid"]], None), "planner": ([], None),
             "property_company": ([], places["company"])}

    async def make() -> None:
        engine = create_async_engine(with_driver(url, "asyncpg"))
        async with engine.begin() as conn:
            for role, (scope, company) in roles.items():
                await create_user(conn, f"bench_{role}", password, role, scope, company)
        await engine.dispose()

    asyncio.run(make())
    headers = {"public": {}}
    for role in roles:
        response = httpx.post(f"{server_url}/auth/login", json={"username": f"bench_{role}", "password": password})
        response.raise_for_status()
        headers[role] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return headers


def _requests(url: str, places: dict) -> dict[str, list[tuple[str, str]]]:
    """(role, path) of each area's read paths."""
    tiles = tile_addresses(url)
    p = places
    lon, lat = p["lon"], p["lat"]
    box = f"{lon - 0.01:.5f},{lat - 0.01:.5f},{lon + 0.01:.5f},{lat + 0.01:.5f}"
    year = f"{p['first']:%Y-%m-%d}..{p['last']:%Y-%m-%d}"
    month_from = (p["last"] - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    late = p["last"].strftime("%Y-%m-%dT%H:%M:%SZ")
    rates_from, rates_to = (p["last"] - timedelta(days=365)).date().isoformat(), p["last"].date().isoformat()
    areas: dict[str, list[tuple[str, str]]] = {}
    areas["tiles"] = [(role, f"/tiles/complaint/{z}/{x}/{y}.mvt") for role in ROLES
                      for z in tiles for (_, x, y) in tiles[z][:9]]
    areas["OGC features"] = [
        *[(role, f"/ogc/collections/complaint/items?limit=1000&offset={offset}") for role in ROLES
          for offset in (0, 1000, 20000)],
        ("admin", f"/ogc/collections/complaint/items?limit=500&bbox={box}"),
        ("public", f"/ogc/collections/complaint/items?limit=500&bbox={box}"),
        ("admin", f"/ogc/collections/complaint/items?limit=500&datetime={month_from}/{late}"),
        *[(role, f"/ogc/collections/complaint/items?limit=500&datetime={month_from}/{late}") for role in ROLES],
        ("admin", f"/ogc/collections/complaint/items/{p['complaint_id']}"),
    ]
    areas["map GeoJSON"] = [(role, f"/layers/{layer}.geojson?parent={parent}") for role in ("admin", "street")
                            for layer, parent in (("grid", p["street"]), ("micro_grid", p["community"]),
                                                  ("compound", p["community"]))]
    areas["map page"] = [
        *[(role, f"/map/complaints.geojson?bbox={box}") for role in ROLES],
        *[(role, f"/map/complaint-counts.json?bbox={box}&level={level}") for role in ROLES
          for level in ("micro_grid", "grid")],
    ]
    areas["Open311 GET"] = [
        ("public", "/open311/v2/requests.json"), ("public", "/open311/v2/requests.json?service_code=E0601"),
        ("public", f"/open311/v2/requests.json?lat={lat}&long={lon}&radius=500"),
        ("public", f"/open311/v2/requests.json?start_date={month_from}&end_date={late}"),
        ("public", f"/open311/v2/requests/{p['ticket_id']}.json"),
    ]
    ticket_filters = ("state=open", "overdue=true", f"state=open&category={p['categories'][0]}",
                      f"state=open&grid={p['grid']}", f"bbox={box}", "state=open&min_age_hours=48")
    areas["tickets"] = [
        *[("admin", f"/tickets?street={p['street']}&{f}&limit=100") for f in ticket_filters],
        *[("street", f"/tickets?{f}&limit=100") for f in ticket_filters],
        ("grid_worker", "/tickets?state=open&limit=100"), ("property_company", "/tickets?state=open&limit=100"),
        ("admin", f"/tickets/{p['ticket_id']}"),
        *[("street", f"/tickets/tiles/{z}/{x}/{y}.mvt") for z in (13, 15) for (_, x, y) in tiles[z][:4]],
        ("street", "/supervision/overdue"), ("admin", f"/supervision/overdue?street={p['street']}"),
    ]
    areas["rates"] = [
        *[(role, f"/tickets/rates?level={level}&from={rates_from}&to={rates_to}") for role in ("admin", "street")
          for level in ("street", "community", "grid", "property_company", "department")],
        ("admin", f"/tickets/rates/tickets?rate=resolution&level=street&unit={p['street']}&from={rates_from}"
                  f"&to={rates_to}"),
    ]
    areas["hotspots and analytics"] = [
        *[("planner", f"/analytics/hotspots?level={level}&period={year}") for level in ("micro_grid", "grid")],
        ("planner", f"/analytics/complaints?level=grid&period={year}"),
        ("planner", f"/analytics/hexagons?period={year}"),
        ("planner", f"/analytics/emerging?period={year}&level=grid"),
        ("planner", "/analytics/monthly-problems"),
        ("community", f"/analytics/complaints?level=micro_grid&period={year}"),
        ("street", f"/analytics/hotspots?level=micro_grid&period={year}"),
    ]
    areas["review queue"] = [("admin", "/complaints/review"), ("community", "/complaints/review"),
                             ("admin", f"/complaints/{p['complaint_id']}/duplicates")]
    areas["responsibility"] = [(role, f"/responsibility?lon={lon}&lat={lat}") for role in ("public", "admin")]
    return areas


def measure_use(url: str, import_rows: int = 20_000) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """Scans of each index by each area (after a statistics reset), and the requests that failed, per area."""
    from gis.intake.importer import import_file

    places = _places(url)
    areas = _requests(url, places)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
    use: dict[str, dict] = {}
    failed: dict[str, list[str]] = {}
    server = start_gridgov(url)
    try:
        headers = _users(server.url, url, places)
        time.sleep(FLUSH_WAIT_S)
        before = index_scans(url)
        use["sign-in (setting up)"] = {}
        with httpx.Client(base_url=server.url, timeout=300) as client:
            for area, requests in areas.items():
                for role, path in requests:
                    response = client.get(path, headers=headers[role])
                    if response.status_code >= 400:
                        failed.setdefault(area, []).append(f"{role} {path} → {response.status_code}")
                time.sleep(FLUSH_WAIT_S)
                after = index_scans(url)
                use[area] = {key: after[key] - before.get(key, 0) for key in after}
                before = after
    finally:
        server.stop()
    time.sleep(1)
    before = index_scans(url)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "import.csv"
        write_export(url, path, import_rows, seed=31)
        import_file(url, path)
    time.sleep(1)
    after = index_scans(url)
    use["import (duplicates, conflicts)"] = {key: after[key] - before.get(key, 0) for key in after}
    return use, failed


def storing_cost(url: str, unused: list[str], sample: int = 50_000, repeats: int = 3
                 ) -> tuple[float, dict[str, float], dict[str, int]]:
    """Seconds to insert `sample` complaints again (already placed, in micro-grid order, triggers off, rolled back
    and vacuumed away after each try) with every index; the seconds saved without each secondary index, and
    without all the `unused` ones at once ("unused" in the answer); index sizes in bytes."""
    with psycopg.connect(libpq_url(url)) as conn, psycopg.connect(libpq_url(url), autocommit=True) as janitor:
        names = [name for (name,) in conn.execute(
            "SELECT indexrelname FROM pg_stat_user_indexes WHERE relname = 'complaint' AND indexrelname <> "
            "'pk_complaint' ORDER BY indexrelname")]
        sizes = dict(conn.execute("SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
                                  "WHERE relname = 'complaint'").fetchall())
        conn.execute(f"CREATE UNLOGGED TABLE bench_again AS SELECT {COMPLAINT_COLUMNS} FROM complaint "
                     f"ORDER BY id DESC LIMIT {int(sample)}")
        conn.execute("UPDATE bench_again SET external_id = 'again-' || md5(random()::text)")
        conn.commit()

        def insert(without: list[str]) -> float:
            conn.execute("ALTER TABLE complaint DISABLE TRIGGER USER")
            for name in without:
                conn.execute(f'DROP INDEX "{name}"')
            started = time.perf_counter()
            conn.execute(f"INSERT INTO complaint ({COMPLAINT_COLUMNS}) SELECT {COMPLAINT_COLUMNS} FROM bench_again "
                         "ORDER BY micro_grid_code")
            elapsed = time.perf_counter() - started
            conn.rollback()
            janitor.execute("VACUUM complaint")  # the aborted rows out of the heap and every index again
            return elapsed

        insert([])  # warms the table and its indexes
        cases = {"every index": [], **{name: [name] for name in names}, "unused": list(unused)}
        timings: dict[str, list[float]] = {case: [] for case in cases}
        for _ in range(repeats):
            for case, without in cases.items():  # in turns, so a busy moment of the machine hits every case
                timings[case].append(insert(without))
        conn.execute("DROP TABLE bench_again")
        conn.commit()
    full = statistics.median(timings["every index"])
    return full, {case: full - statistics.median(values) for case, values in timings.items()
                  if case != "every index"}, sizes


UNUSED_FROM_SCANS = 0
"""An index no area scanned in the whole mix is unused."""


def index_report(city_url: str, with_cost: bool = True) -> list[dict]:
    """Rows: for each index of complaint and ticket, its scans by area; for each complaint index, its storing
    cost (unless not `with_cost`)."""
    url = clone(city_url, "index")
    try:
        use, failed = measure_use(url)
        unused = [name for (table, name) in sorted({key for counts in use.values() for key in counts})
                  if table == "complaint" and name != "pk_complaint"
                  and sum(counts.get((table, name), 0) for counts in use.values()) <= UNUSED_FROM_SCANS]
        full, cost, sizes = storing_cost(url, unused) if with_cost else (0.0, {}, {})
    finally:
        drop(city_url, url)
    out = []
    keys = sorted({key for counts in use.values() for key in counts})
    for key in keys:
        by_area = {area: counts.get(key, 0) for area, counts in use.items() if counts.get(key, 0)}
        total = sum(by_area.values())
        table, name = key
        note = ", ".join(f"{area} {scans:,}" for area, scans in by_area.items()) or "no area scanned it"
        if table == "complaint" and with_cost:
            note += (f"; {sizes.get(name, 0) / 2**20:.0f} MiB; storing 50,000 rows costs "
                     + (f"{cost[name]:+.2f} s of {full:.2f} s" if name in cost else "(the primary key, kept)"))
        out.append({"area": "index use", "metric": f"{table}.{name} scans", "value": total, "unit": "scans",
                    "note": note})
    for area, paths in failed.items():
        out.append({"area": "index use", "metric": f"requests refused in {area}", "value": len(paths),
                    "unit": "requests", "note": "; ".join(paths[:4])})
    if not with_cost:
        return out
    out.append({"area": "index use", "metric": "storing 50,000 placed complaints, every index",
                "value": round(full, 2), "unit": "s",
                "note": f"median of 3, triggers off, rolled back; without the unused ({', '.join(unused) or 'none'}) "
                        f"{full - cost['unused']:.2f} s ({cost['unused'] / full:.0%} less); measured at "
                        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"})
    return out
