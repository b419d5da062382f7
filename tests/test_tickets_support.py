"""A tiny hand-made city for the ticket tests (two streets, four grids, two property companies), users per
role, and helpers to add complaints; plus checks of the schema the ticket migration installs."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from gis.access import auth
from gis.db.engine import with_driver

PASSWORD = "correct horse battery"
DISTRICT = "370902"
STREETS = ("370902001", "370902002")
COMMUNITIES = ("370902001001", "370902002001")
GRIDS = ("370902001001001", "370902001001002", "370902002001001", "370902002001002")
COMPOUNDS = {"370902001001C0001": GRIDS[0], "370902001001C0002": GRIDS[1], "370902002001C0001": GRIDS[2]}
LOCAL = timezone(timedelta(hours=8))


def square(lon: float, lat: float, size: float) -> str:
    return (f"SRID=4326;MULTIPOLYGON((({lon} {lat},{lon + size} {lat},{lon + size} {lat + size},"
            f"{lon} {lat + size},{lon} {lat})))")


def grid_origin(index: int) -> tuple[float, float]:
    """Grids sit side by side west to east, 0.01° apart, from lon 117.10 lat 36.20."""
    return 117.10 + 0.01 * index, 36.20


def build_city(url: str) -> dict:
    """Insert the tiny city; returns the ids of its property companies and grid workers."""
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO district (code, name, geom) VALUES (%s, '泰山区', %s)",
                     [DISTRICT, square(117.10, 36.20, 0.04)])
        for i, street in enumerate(STREETS):
            conn.execute("INSERT INTO street (code, name, district_code, geom) VALUES (%s, %s, %s, %s)",
                         [street, f"街道{i + 1}", DISTRICT, square(117.10 + 0.02 * i, 36.20, 0.02)])
            conn.execute("INSERT INTO community (code, name, street_code, geom) VALUES (%s, %s, %s, %s)",
                         [COMMUNITIES[i], f"社区{i + 1}", street, square(117.10 + 0.02 * i, 36.20, 0.02)])
        companies = [conn.execute(
            "INSERT INTO property_company (credit_code, name, has_party_org) VALUES (%s, %s, true) RETURNING id",
            [f"91370900MA00000{n}XX", f"物业公司{n}"]).fetchone()[0] for n in (1, 2)]
        workers = {}
        for i, grid in enumerate(GRIDS):
            lon, lat = grid_origin(i)
            conn.execute("INSERT INTO grid (code, name, community_code, geom) VALUES (%s, %s, %s, %s)",
                         [grid, f"网格{i + 1}", grid[:12], square(lon, lat, 0.01)])
            compound = next((c for c, g in COMPOUNDS.items() if g == grid), None)
            conn.execute("INSERT INTO micro_grid (code, name, grid_code, compound_code, geom) "
                         "VALUES (%s, %s, %s, %s, %s)", [grid + "001", f"微网格{i + 1}", grid, compound,
                                                         square(lon, lat, 0.01)])
            workers[grid] = conn.execute(
                "INSERT INTO grid_worker (name, phone, grid_code, is_party_member) VALUES (%s, %s, %s, true) "
                "RETURNING id", [f"网格员{i + 1}", f"1380000000{i}", grid]).fetchone()[0]
            conn.execute("INSERT INTO party_organisation (code, kind, name, unit_code, secretary_name, member_count) "
                         "VALUES (%s, 'grid_branch', %s, %s, '书记', 5)", [f"P{grid}", f"网格{i + 1}党支部", grid])
        # Compound 1 (grid 1) and compound 3 (grid 3) are managed; compound 2 (grid 2) is an old estate without one.
        for n, (code, grid) in enumerate(COMPOUNDS.items()):
            lon, lat = grid_origin(GRIDS.index(grid))
            company = {0: companies[0], 2: companies[1]}.get(n)
            conn.execute(
                "INSERT INTO compound (code, name, community_code, grid_code, build_year, is_old_estate, "
                "floor_area_m2, households, management_mode, property_company_id, geom) "
                "VALUES (%s, %s, %s, %s, 2005, %s, 50000, 400, %s, %s, %s)",
                [code, f"小区{n + 1}", code[:12], grid, company is None,
                 "professional" if company else "none", company, square(lon, lat, 0.01)])
    return {"companies": companies, "workers": workers}


def add_complaints(url: str, rows: list[dict]) -> list[int]:
    """Insert complaints in one statement (so the trigger sees them as one set); returns their tickets' ids."""
    now = datetime.now(LOCAL)
    values = []
    for row in rows:
        grid = row.get("grid")
        index = GRIDS.index(grid) if grid else 0
        lon, lat = grid_origin(index)
        compound = row.get("compound", next((c for c, g in COMPOUNDS.items() if g == grid), None))
        values.append((
            row.get("category", "E0601"), row.get("description", "楼上漏水"),
            row.get("reported_at", now - timedelta(hours=1)),
            f"SRID=4326;POINT({lon + 0.005} {lat + 0.005})" if grid else None,
            "coordinates" if grid else "none", "inside" if grid else "review",
            grid[:9] if grid else None, grid[:12] if grid else None, grid, compound,
            row.get("reporter_name", "张先生"), row.get("reporter_phone", "13912345678"),
        ))
    with psycopg.connect(url) as conn:
        placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'app')"] * len(values))
        ids = [r[0] for r in conn.execute(
            "INSERT INTO complaint (category_code, description, reported_at, geom, match_level, placement, "
            "street_code, community_code, grid_code, compound_code, reporter_name, reporter_phone, source) "
            f"VALUES {placeholders} RETURNING id", [v for value in values for v in value]).fetchall()]
        tickets = dict(conn.execute("SELECT complaint_id, id FROM ticket WHERE complaint_id = ANY(%s)",
                                    [ids]).fetchall())
    return [tickets[i] for i in ids]


def make_users(url: str, companies: list[int]) -> dict[str, dict]:
    """One user per role and place: admin, street1/2, community1/2, grid1..4 workers, company1/2, planner."""
    specs = [("admin", "admin", [], None), ("planner", "planner", [], None)]
    specs += [(f"street{i + 1}", "street", [code], None) for i, code in enumerate(STREETS)]
    specs += [(f"community{i + 1}", "community", [code], None) for i, code in enumerate(COMMUNITIES)]
    specs += [(f"grid{i + 1}", "grid_worker", [code], None) for i, code in enumerate(GRIDS)]
    specs += [(f"company{i + 1}", "property_company", [], company) for i, company in enumerate(companies)]

    async def create() -> dict:
        engine = create_async_engine(with_driver(url, "asyncpg"))
        users = {}
        async with engine.begin() as conn:
            for username, role, scope, company in specs:
                users[username] = await auth.create_user(conn, username, PASSWORD, role, scope, company)
        await engine.dispose()
        return users

    return asyncio.run(create())


def sql(url: str, statement: str, params=None):
    with psycopg.connect(url) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else None


@pytest.fixture
def tiny_city(empty_db) -> tuple[str, dict]:
    return empty_db, build_city(empty_db)


def test_fresh_database_has_the_ticket_schema(empty_db):
    rows = sql(empty_db, "SELECT deadline_class, amount, unit, basis FROM deadline_policy ORDER BY 1")
    assert ("urgent", 2, "hours", "calendar") in rows and ("general", 7, "days", "working") in rows
    assert sql(empty_db, "SELECT count(*) FROM routing_rule WHERE active")[0][0] >= 10
    triggers = {r[0] for r in sql(empty_db, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
    assert {"complaint_ticket_intake", "complaint_ticket_follow", "ticket_event_append_only"} <= triggers


def test_every_complaint_gets_exactly_one_ticket_with_its_codes(tiny_city):
    url, _ = tiny_city
    tickets = add_complaints(url, [{"grid": g} for g in GRIDS] + [{"grid": None}])
    assert len(set(tickets)) == 5
    rows = sql(url, "SELECT t.grid_code, t.street_code, t.compound_code, c.grid_code, c.street_code, "
                    "c.compound_code FROM ticket t JOIN complaint c ON c.id = t.complaint_id")
    assert len(rows) == 5 and all(r[:3] == r[3:] for r in rows)
    # A manual re-placement of the complaint (intake review) moves its ticket with it.
    sql(url, "UPDATE complaint SET grid_code = %s, community_code = %s, street_code = %s, compound_code = NULL "
             "WHERE id = (SELECT complaint_id FROM ticket WHERE id = %s)",
        [GRIDS[3], GRIDS[3][:12], GRIDS[3][:9], tickets[0]])
    assert sql(url, "SELECT grid_code, compound_code, version FROM ticket WHERE id = %s", [tickets[0]]) == [
        (GRIDS[3], None, 2)]


def test_copy_of_complaints_creates_tickets_in_the_same_transaction(tiny_city):
    url, _ = tiny_city
    with psycopg.connect(url) as conn:
        with conn.cursor().copy("COPY complaint (category_code, description, reported_at, match_level, placement, "
                                "street_code, community_code, grid_code, compound_code, source) FROM STDIN") as copy:
            for i in range(500):
                grid = GRIDS[i % 4]
                copy.write_row(("E0604", "垃圾", datetime.now(LOCAL), "compound", "inside", grid[:9], grid[:12],
                                grid, next((c for c, g in COMPOUNDS.items() if g == grid), None), "hotline"))
        conn.rollback()
    assert sql(url, "SELECT count(*) FROM ticket")[0][0] == 0
    with psycopg.connect(url) as conn:
        with conn.cursor().copy("COPY complaint (category_code, description, reported_at, match_level, placement, "
                                "source) FROM STDIN") as copy:
            for i in range(300):
                copy.write_row(("E0501", "噪音", datetime.now(LOCAL), "none", "review", "hotline"))
    assert sql(url, "SELECT count(*), count(DISTINCT complaint_id) FROM ticket") == [(300, 300)]
    assert sql(url, "SELECT count(*) FROM ticket_event") == [(300,)]


def test_history_is_append_only(tiny_city):
    url, _ = tiny_city
    ticket = add_complaints(url, [{"grid": GRIDS[0]}])[0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        sql(url, "UPDATE ticket_event SET note = 'rewritten' WHERE ticket_id = %s", [ticket])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        sql(url, "DELETE FROM ticket_event WHERE ticket_id = %s", [ticket])
    # Deleting the complaint itself (e.g. personal-data erasure) takes its ticket and history with it.
    sql(url, "DELETE FROM complaint WHERE id = (SELECT complaint_id FROM ticket WHERE id = %s)", [ticket])
    assert sql(url, "SELECT count(*) FROM ticket_event WHERE ticket_id = %s", [ticket]) == [(0,)]
