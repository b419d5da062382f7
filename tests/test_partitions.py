"""Complaints partitioned by month (gis/db/partitions.py) on the small city: the conversion gives the same answers
as the single table, keeps the keys and the foreign keys, creates months ahead, keeps a complaint of a month
without a partition, detaches a month from every read and attaches it back exactly, and imports, Open311 and
`gridgov db upgrade` still work after it."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from benchmarks.bench_tiles import tile_addresses
from gis.access.auth import Principal
from gis.db import partitions
from gis.db.engine import sync_engine, with_driver
from gis.errors import Conflict
from gis.intake.open311 import new_api_key
from tests.conftest import ROOT, LiveServer, _clone

ADMIN = Principal(role="admin", username="test", user_id=0)
BEIJING = ZoneInfo("Asia/Shanghai")
RATE_KEYS = ("unit", "tickets", "response_rate", "resolution_rate", "satisfaction_rate")
EXPORT = "SELECT md5(string_agg(r::text, '|' ORDER BY r::text)) FROM {table} r"


@pytest.fixture(scope="module")
def pair(pg_cluster, small_template):
    """(single table, converted): two copies of the small city, the second converted."""
    single, converted = _clone(pg_cluster, small_template), _clone(pg_cluster, small_template)
    partitions.convert(converted, ahead=3)
    return single, converted


def _period(url: str) -> tuple[datetime, datetime]:
    with psycopg.connect(url) as conn:
        newest = conn.execute("SELECT max(reported_at) FROM ticket").fetchone()[0]
    return newest - timedelta(days=365), newest + timedelta(seconds=1)


def _tiles(url: str) -> dict[int, list]:
    from gis.serve.tiles import TILE_LAYERS, tile_sql

    out = {}
    engine = sync_engine(url)
    with engine.connect() as conn:
        for z in (14, 16):
            decoded = []
            for tz, x, y in tile_addresses(url)[z]:
                query, params = tile_sql(TILE_LAYERS["complaint"], tz, x, y, ADMIN)
                body = conn.execute(text(query), params).scalar() or b""
                layer = mapbox_vector_tile.decode(bytes(body)).get("complaint", {"features": []})
                decoded.extend(sorted((f["id"], str(f["geometry"]), sorted(f["properties"].items()))
                                      for f in layer["features"]))
            out[z] = decoded
    engine.dispose()
    return out


def _rates_and_hotspots(url: str) -> tuple[list, list]:
    from gis.analytics import hotspots
    from gis.analytics.periods import parse_period
    from gis.tickets.rates import rates_sync

    start, end = _period(url)
    window = parse_period(f"{start.astimezone(BEIJING).date()}..{end.astimezone(BEIJING).date()}")
    engine = sync_engine(url)
    with engine.connect() as conn:
        rates = [tuple(row[key] for key in RATE_KEYS) for row in rates_sync(conn, ADMIN, "street", start, end)]
        spots = hotspots.hotspots(conn, "micro_grid", window).rows
    engine.dispose()
    return rates, spots


def _ticket_list(url: str) -> list:
    from gis.tickets import queries
    from gis.tickets.filters import TicketFilter

    async def work():
        engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool)
        async with engine.connect() as conn:
            street = (await conn.execute(text("SELECT min(code) FROM street WHERE valid_to IS NULL"))).scalar()
            principal = Principal(role="street", username="test", user_id=0, scope=(street,))
            found = await queries.list_tickets(conn, principal, TicketFilter(street=street), "due", 100, 0)
        await engine.dispose()
        return found

    return asyncio.run(work())


def _answers(url: str) -> dict:
    rates, spots = _rates_and_hotspots(url)
    return {"tiles": _tiles(url), "rates": rates, "hotspots": spots, "tickets": _ticket_list(url)}


@pytest.fixture(scope="module")
def before(pair) -> dict:
    return _answers(pair[0])


def test_converted_is_partitioned_with_every_row(pair):
    single, converted = pair
    with psycopg.connect(single) as a, psycopg.connect(converted) as b:
        assert not partitions.is_partitioned(a) and partitions.is_partitioned(b)
        for table in ("complaint", "ticket", "ticket_event", "complaint_intake"):
            assert (a.execute(EXPORT.format(table=table)).fetchone() == b.execute(EXPORT.format(table=table))
                    .fetchone()), table
        months = b.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'complaint'::regclass").fetchone()[0]
        assert months > 12
        assert b.execute("SELECT count(*) FROM complaint_default").fetchone()[0] == 0
    with pytest.raises(Conflict):
        partitions.convert(converted)


def test_every_answer_is_the_same(pair, before):
    after = _answers(pair[1])
    assert before["tiles"][16] and before["tiles"][14] and before["rates"] and before["tickets"]
    for key in ("tiles", "rates", "hotspots", "tickets"):
        assert after[key] == before[key], key


def test_dedup_key_holds_across_months(pair):
    _, converted = pair
    with psycopg.connect(converted) as conn:
        source, external, at = conn.execute(
            "SELECT source, external_id, reported_at FROM complaint WHERE external_id IS NOT NULL "
            "ORDER BY reported_at LIMIT 1").fetchone()
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO complaint (source, external_id, category_code, description, reported_at, "
                         "match_level, placement) VALUES (%s, %s, 'E0601', '重复', %s, 'none', 'review')",
                         (source, external, at + timedelta(days=62)))


def test_foreign_keys_hold(pair):
    _, converted = pair
    with psycopg.connect(converted) as conn:
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("UPDATE ticket SET complaint_id = -1 WHERE id = (SELECT min(id) FROM ticket)")
    with psycopg.connect(converted) as conn:
        complaint = conn.execute("SELECT complaint_id FROM ticket ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute("DELETE FROM complaint WHERE id = %s", (complaint,))
        assert conn.execute("SELECT count(*) FROM ticket WHERE complaint_id = %s", (complaint,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM complaint_key WHERE id = %s", (complaint,)).fetchone()[0] == 0
        conn.rollback()


def test_months_ahead_and_a_month_without_partition(pair):
    _, converted = pair
    far = datetime.now(BEIJING).date().replace(day=1) + timedelta(days=31 * 8)
    month = far.replace(day=1)
    assert partitions.partition_name(month) not in {p["name"] for p in partitions.status(converted)["partitions"]}
    with psycopg.connect(converted) as conn:
        # an odd date (the plausible window is not checked here): no partition yet, so DEFAULT takes it
        row = conn.execute(
            "INSERT INTO complaint (source, external_id, category_code, description, reported_at, match_level, "
            "placement) VALUES ('test', 'far-month', 'E0601', '远期', %s, 'none', 'review') "
            "RETURNING id, tableoid::regclass::text", (datetime(month.year, month.month, 3, 9, tzinfo=BEIJING),)
        ).fetchone()
        assert row[1] == "complaint_default"
        assert conn.execute("SELECT count(*) FROM ticket WHERE complaint_id = %s", (row[0],)).fetchone()[0] == 1
    done = partitions.ensure(converted, ahead=4)
    assert partitions.partition_name(month) in done["created"] and done["moved"] == 1
    names = {p["name"] for p in partitions.status(converted)["partitions"]}
    assert partitions.partition_name(partitions.add_months(partitions.current_month(), 4)) in names
    with psycopg.connect(converted) as conn:
        assert conn.execute("SELECT tableoid::regclass::text FROM complaint WHERE id = %s", (row[0],)).fetchone()[0] \
            == partitions.partition_name(month)
        conn.execute("DELETE FROM complaint WHERE id = %s", (row[0],))


def _month_rows(url: str, month) -> dict:
    low, high = partitions.month_bounds(month)
    with psycopg.connect(url) as conn:
        where = "c.reported_at >= %s AND c.reported_at < %s"
        return {
            "complaints": conn.execute(f"SELECT count(*), md5(string_agg(c::text, '|' ORDER BY c.id)) FROM complaint c "
                                       f"WHERE {where}", (low, high)).fetchone(),
            "tickets": conn.execute("SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t.id)) FROM ticket t "
                                    "WHERE t.reported_at >= %s AND t.reported_at < %s", (low, high)).fetchone(),
            "events": conn.execute(
                "SELECT count(*), md5(string_agg(e::text, '|' ORDER BY e.id)) FROM ticket_event e "
                "JOIN ticket t ON t.id = e.ticket_id WHERE t.reported_at >= %s AND t.reported_at < %s",
                (low, high)).fetchone(),
        }


def test_detach_removes_a_month_and_attach_restores_it(pair, before):
    _, converted = pair
    with psycopg.connect(converted) as conn:
        months = [row[0] for row in conn.execute(
            "SELECT DISTINCT date_trunc('month', reported_at AT TIME ZONE 'Asia/Shanghai')::date FROM complaint "
            "ORDER BY 1")]
    detached, refused = None, 0
    for month in months:  # a month whose tickets others were merged into cannot leave alone (refused, unchanged)
        kept = _month_rows(converted, month)
        try:
            counts = partitions.detach(converted, month.strftime("%Y-%m"))
        except Conflict:
            refused += 1
            assert _month_rows(converted, month) == kept
            continue
        detached = month
        break
    assert detached is not None, f"every month refused ({refused})"
    assert counts["complaint"] == kept["complaints"][0] > 0 and counts["ticket"] == kept["tickets"][0]
    gone = _month_rows(converted, detached)
    assert gone["complaints"][0] == gone["tickets"][0] == gone["events"][0] == 0
    assert "-".join(partitions.partition_name(detached).split("_")[1:]) in partitions.status(converted)["archived"]
    partitions.attach(converted, detached.strftime("%Y-%m"))
    assert _month_rows(converted, detached) == kept
    assert _answers(converted) == before


def test_import_and_open311_after_conversion(pair, tmp_path):
    from gis.intake.importer import import_file

    _, converted = pair
    with psycopg.connect(converted) as conn:
        lon, lat = conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM micro_grid "
                                "WHERE valid_to IS NULL ORDER BY code LIMIT 1) s").fetchone()
        held = conn.execute("SELECT external_id FROM complaint WHERE source = 'hotline' AND external_id IS NOT NULL "
                            "ORDER BY reported_at LIMIT 1").fetchone()
    path = tmp_path / "rows.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["工单编号", "受理时间", "诉求类别", "诉求内容", "经度", "纬度"])
        at = datetime.now(BEIJING) - timedelta(days=3)
        for i in range(5):
            writer.writerow([f"part-{i}", f"{at - timedelta(days=40 * i):%Y-%m-%d %H:%M:%S}", "E0601", "厨房漏水",
                             f"{lon:.7f}", f"{lat:.7f}"])
        if held:
            writer.writerow([held[0], f"{at:%Y-%m-%d %H:%M:%S}", "E0601", "已有的", f"{lon:.7f}", f"{lat:.7f}"])
    report = import_file(converted, path)
    assert report.imported == 5
    with psycopg.connect(converted) as conn:
        assert conn.execute("SELECT count(*) FROM complaint c JOIN ticket t ON t.complaint_id = c.id "
                            "WHERE c.external_id LIKE 'part-%'").fetchone()[0] == 5
    key = new_api_key(converted, "partitions")
    server = LiveServer(converted)
    try:
        with server.client() as http:
            made = http.post("/open311/v2/requests.json", data={
                "api_key": key, "service_code": "E0601", "lat": lat, "long": lon, "description": "分区后上报"})
            assert made.status_code == 200, made.text
            request_id = made.json()[0]["service_request_id"]
            got = http.get(f"/open311/v2/requests/{request_id}.json")
            assert got.status_code == 200 and got.json()[0]["service_request_id"] == request_id
    finally:
        server.stop()


def test_open311_get_is_the_same(pair):
    listed = []
    for url in pair:
        server = LiveServer(url)
        try:
            with server.client() as http:
                response = http.get("/open311/v2/requests.json", params={"status": "closed"})
                assert response.status_code == 200
                listed.append(response.json())
        finally:
            server.stop()
    assert listed[0] and listed[0] == listed[1]


def test_upgrade_runs_after_conversion(pair):
    env = {**os.environ, "GRIDGOV_DATABASE_URL": pair[1], "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "cli", "db", "upgrade"], cwd=Path(ROOT), env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(pair[1]) as conn:
        assert partitions.is_partitioned(conn)
