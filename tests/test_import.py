"""Batch import of hotline exports: every row accounted for, idempotent, restartable; over the CLI core and HTTP."""

from __future__ import annotations

import asyncio
import csv

import psycopg
import pytest

from fixtures.messy_export import write_messy_export
from gis.db.engine import libpq_url
from gis.errors import InvalidInput
from gis.intake.importer import import_file

HEADER = ["工单编号", "受理时间", "诉求类别", "诉求内容", "事发地址", "经度", "纬度"]


def _count(url: str, where: str = "TRUE") -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM complaint WHERE {where}").fetchone()[0]


def test_messy_export_every_row_accounted_for_and_idempotent(fresh_city_db, tmp_path):
    export = write_messy_export(fresh_city_db, tmp_path / "messy.csv", rows=10_000, seed=3)
    before = _count(fresh_city_db)
    rejected_path = tmp_path / "rejected.csv"
    first = import_file(fresh_city_db, export.path, rejected_path=rejected_path)
    assert first.rows_read == 10_000
    assert first.imported + first.duplicates + first.rejected == first.rows_read
    assert first.rejected == export.expected["rejected"]
    assert first.duplicates == export.expected["duplicate"]
    assert first.placements.get("snapped", 0) >= export.expected["snapped_at_least"]
    assert first.placements.get("review", 0) >= export.expected["review_at_least"]
    assert sum(first.placements.values()) == first.imported
    assert _count(fresh_city_db) - before == first.imported

    # The rejected rows come back out with a reason each, and the batch keeps the same counts.
    with rejected_path.open(encoding="utf-8-sig") as handle:
        rejected_rows = list(csv.DictReader(handle))
    assert len(rejected_rows) == first.rejected and all(row["rejected_reason"] for row in rejected_rows)
    with psycopg.connect(fresh_city_db) as conn:
        batch = conn.execute("SELECT state, rows_read, imported, duplicates, rejected FROM intake_batch "
                             "WHERE id = %s", (first.batch_id,)).fetchone()
        stored_rejections = conn.execute("SELECT count(*) FROM intake_rejected_row WHERE batch_id = %s",
                                         (first.batch_id,)).fetchone()[0]
        orphans = conn.execute("SELECT count(*) FROM complaint c WHERE c.source = 'hotline' AND NOT EXISTS "
                               "(SELECT 1 FROM complaint_intake i WHERE i.complaint_id = c.id) "
                               "AND c.external_id LIKE '12345-%'").fetchone()[0]
    assert batch == ("done", 10_000, first.imported, first.duplicates, first.rejected)
    assert stored_rejections == first.rejected and orphans == 0

    second = import_file(fresh_city_db, export.path)
    assert (second.imported, second.rejected, second.duplicates) == (0, first.rejected,
                                                                     first.imported + first.duplicates)
    assert _count(fresh_city_db) - before == first.imported

    # Fix the rows rejected for a missing time and import the rejected file again: only they come in.
    fixed = tmp_path / "fixed.csv"
    with fixed.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rejected_rows[0]))
        writer.writeheader()
        repaired = 0
        for row in rejected_rows:
            if row["rejected_reason"] == "no reported time":
                row["受理时间"] = "2025-08-01 10:00:00"
                repaired += 1
            writer.writerow(row)
    third = import_file(fresh_city_db, fixed)
    # A ticket rejected twice (exported twice) comes in once; its second copy is a duplicate.
    assert repaired > 0 and third.imported + third.duplicates == repaired and third.imported > 0
    assert third.rejected == first.rejected - repaired


def test_killed_import_run_again_leaves_each_ticket_once(fresh_city_db, tmp_path):
    with psycopg.connect(fresh_city_db) as conn:
        lon, lat = conn.execute("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                                "FROM micro_grid ORDER BY code LIMIT 1").fetchone()
    rows = [[f"K-{i:04d}", f"2025-04-{1 + i % 28:02d} 10:00:00", "房屋漏水", f"漏水{i}", "", lon, lat]
            for i in range(300)]
    path = tmp_path / "whole.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([HEADER, *rows])

    calls = {"n": 0}

    def killer(_done: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the operator's Ctrl-C after two chunks

    with pytest.raises(KeyboardInterrupt):
        import_file(fresh_city_db, path, chunk_rows=100, progress=killer)
    assert _count(fresh_city_db, "external_id LIKE 'K-%'") == 200
    with psycopg.connect(fresh_city_db) as conn:
        assert conn.execute("SELECT state FROM intake_batch ORDER BY id DESC LIMIT 1").fetchone()[0] == "failed"
    again = import_file(fresh_city_db, path, chunk_rows=100)
    assert (again.imported, again.duplicates) == (100, 200)
    with psycopg.connect(fresh_city_db) as conn:
        assert conn.execute("SELECT count(DISTINCT external_id), count(*) FROM complaint "
                            "WHERE external_id LIKE 'K-%'").fetchone() == (300, 300)
        tickets = conn.execute("SELECT count(*) FROM ticket t JOIN complaint c ON c.id = t.complaint_id "
                               "WHERE c.external_id LIKE 'K-%'").fetchone()[0]
    assert tickets == 300


def test_xlsx_with_mapping_and_declared_crs(city_db, tmp_path):
    from openpyxl import Workbook

    from gis.layers.crs import from_storage

    with psycopg.connect(city_db) as conn:
        code, lon, lat = conn.execute("SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                                      "FROM building ORDER BY code LIMIT 1 OFFSET 3").fetchone()
    bx, by = from_storage(lon, lat, "BD-09")
    book = Workbook()
    sheet = book.active
    sheet.append(["单号", "日期", "类型", "说明", "X", "Y", "备注"])
    sheet.append(["X-1", "2025-03-05 08:30:00", "E0601", "卫生间漏水", bx, by, "回访两次"])
    path = tmp_path / "export.xlsx"
    book.save(path)
    report = import_file(city_db, path, crs="baidu",
                         mapping="external_id=单号,reported_at=日期,category=类型,description=说明,x=X,y=Y")
    assert (report.imported, report.rejected) == (1, 0)
    with psycopg.connect(city_db) as conn:
        building, system, extra = conn.execute(
            "SELECT c.building_code, c.original_crs, i.extra FROM complaint c JOIN complaint_intake i "
            "ON i.complaint_id = c.id WHERE c.external_id = 'X-1'").fetchone()
    assert (building, system) == (code, "BD-09")
    assert extra == {"备注": "回访两次"}  # unmapped columns are kept, not lost


def test_bad_mapping_and_files_are_refused(city_db, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="description"):
        import_file(city_db, path)
    with pytest.raises(InvalidInput, match="not in the file"):
        import_file(city_db, path, mapping="description=content,reported_at=b")
    with pytest.raises(InvalidInput, match="unknown mapping fields"):
        import_file(city_db, path, mapping="colour=a")
    other = tmp_path / "a.pdf"
    other.write_bytes(b"%PDF")
    with pytest.raises(InvalidInput, match=".csv or .xlsx"):
        import_file(city_db, other)


# -- over HTTP ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokens(city_db, live_app) -> dict[str, str]:
    from gis.access import auth
    from gis.db.engine import async_engine

    async def make() -> None:
        engine = async_engine(city_db)
        async with engine.begin() as conn:
            street = (await conn.execute(auth.text("SELECT code FROM street ORDER BY code LIMIT 1"))).scalar()
            await auth.create_user(conn, "intake-admin", "correct horse battery", "admin")
            await auth.create_user(conn, "intake-street", "correct horse battery", "street", [street])
            await auth.create_user(conn, "intake-planner", "correct horse battery", "planner")
        await engine.dispose()

    asyncio.run(make())
    with live_app.client() as client:
        return {name: client.post("/auth/login", json={"username": f"intake-{name}",
                                                       "password": "correct horse battery"}).json()["access_token"]
                for name in ("admin", "street", "planner")}


def test_import_over_http_and_place_from_the_review_queue(http, tokens, city_db, tmp_path):
    rows = [HEADER,
            ["H-1", "2025-09-01 10:00:00", "房屋漏水", "漏水", "", "117.10", "36.20"],
            ["H-2", "2025-09-01 11:00:00", "房屋漏水", "城外很远", "", "118.50", "37.50"],
            ["H-3", "not a date", "房屋漏水", "漏水", "", "117.10", "36.20"]]
    path = tmp_path / "upload.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    upload = {"file": ("export.csv", path.read_bytes(), "text/csv")}

    assert http.post("/complaints/imports", files=upload).status_code == 403  # the public
    planner = {"Authorization": f"Bearer {tokens['planner']}"}
    assert http.post("/complaints/imports", files=upload, headers=planner).status_code == 403
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    report = http.post("/complaints/imports", files=upload, headers=admin).json()
    assert (report["rows_read"], report["imported"], report["rejected"]) == (3, 2, 1)
    again = http.post("/complaints/imports", files=upload, headers=admin).json()
    assert (again["imported"], again["duplicates"]) == (0, 2)

    rejected = http.get(f"/complaints/imports/{report['batch_id']}/rejected.csv", headers=admin)
    assert rejected.status_code == 200 and "not a date" in rejected.text and "cannot be read" in rejected.text

    queue = http.get("/complaints/review", headers=admin).json()
    far = next(item for item in queue if item["external_id"] == "H-2")
    assert "snap tolerance" in far["review_reason"]
    assert http.get("/complaints/review").status_code == 403

    with psycopg.connect(city_db) as conn:
        # the micro-grid where H-1 landed on intake: placed there by hand, H-2 must be routed as H-1 was
        micro, near_id = conn.execute("SELECT micro_grid_code, id FROM complaint WHERE external_id = 'H-1'").fetchone()
        before = conn.execute("SELECT state FROM ticket WHERE complaint_id = %s", (far["id"],)).fetchone()[0]
    assert before == "reported"  # nowhere to route an unplaced complaint to
    bad = http.post(f"/complaints/{far['id']}/placement", json={"lon": 118.5, "lat": 37.5}, headers=admin)
    assert bad.status_code == 400 and "no micro-grid" in bad.json()["detail"]
    placed = http.post(f"/complaints/{far['id']}/placement", json={"micro_grid_code": micro}, headers=admin)
    assert placed.status_code == 200, placed.text
    body = placed.json()
    assert (body["placement"], body["micro_grid_code"], body["placed_by"]) == ("manual", micro, "intake-admin")
    assert body["parties"]["grid_worker_ids"] is not None
    assert far["id"] not in {item["id"] for item in http.get("/complaints/review", headers=admin).json()}
    with psycopg.connect(city_db) as conn:
        ticket_grid = conn.execute("SELECT grid_code FROM ticket WHERE complaint_id = %s", (far["id"],)).fetchone()
    assert ticket_grid[0] == micro[:15]  # the ticket follows the placement
    routing = ("SELECT state, rule_id, assignee_kind, assignee_code, department, informed FROM ticket "
               "WHERE complaint_id = %s")
    with psycopg.connect(city_db) as conn:
        rerouted, intake_routed = (conn.execute(routing, (far["id"],)).fetchone(),
                                   conn.execute(routing, (near_id,)).fetchone())
        events = conn.execute("SELECT e.action, e.data->>'reason' FROM ticket_event e "
                              "JOIN ticket t ON t.id = e.ticket_id WHERE t.complaint_id = %s ORDER BY e.id",
                              (far["id"],)).fetchall()
    assert rerouted == intake_routed and rerouted[1] is not None
    if rerouted[0] == "dispatched":
        assert events[-1] == ("auto_dispatch", "placed by hand")


def test_only_abandoned_batches_are_settled_as_failed(empty_db):
    from gis.intake.importer import BATCH_LOCK_CLASS, SETTLE_ABANDONED_SQL

    with psycopg.connect(libpq_url(empty_db), autocommit=True) as running, \
            psycopg.connect(libpq_url(empty_db), autocommit=True) as reader:
        ids = [running.execute("INSERT INTO intake_batch (source, file_name, file_sha256, crs) "
                               "VALUES ('hotline', 'x.csv', 'x', 'EPSG:4326') RETURNING id").fetchone()[0]
               for _ in range(2)]
        running.execute("SELECT pg_advisory_lock(%s, %s)", (BATCH_LOCK_CLASS, ids[0]))
        reader.execute(SETTLE_ABANDONED_SQL)
        states = dict(reader.execute("SELECT id, state FROM intake_batch WHERE id = ANY(%s)", (ids,)).fetchall())
        assert states == {ids[0]: "running", ids[1]: "failed"}
        running.execute("SELECT pg_advisory_unlock(%s, %s)", (BATCH_LOCK_CLASS, ids[0]))
        reader.execute(SETTLE_ABANDONED_SQL)
        assert reader.execute("SELECT state FROM intake_batch WHERE id = %s", (ids[0],)).fetchone()[0] == "failed"
