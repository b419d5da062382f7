"""The fast paths of batch intake give exactly the answers of the simple ones: placement by the vectorised
shapely step, joined polygons-outer or points-outer, snapping polygons-outer or point by point, duplicates by a
hash join on cell keys or by one index probe per complaint. Each file is imported into copies of the same city,
once per path."""

from __future__ import annotations

import csv

import numpy as np
import psycopg
import pytest

import gis.intake.importer as importer

OUTCOME_SQL = """
    SELECT c.external_id, c.placement, c.micro_grid_code, c.grid_code, c.community_code, c.street_code,
           c.compound_code, c.building_code, round(ci.snap_distance_m::numeric, 3), ci.review_reason,
           p.grid_worker_ids, p.property_company_id, p.compound_party_id
    FROM complaint c JOIN complaint_intake ci ON ci.complaint_id = c.id
    LEFT JOIN complaint_party p ON p.complaint_id = c.id
    WHERE c.external_id LIKE 'Q-%' ORDER BY c.external_id"""
LINKS_SQL = """
    SELECT a.external_id, b.external_id, round(d.distance_m::numeric, 3), round(d.hours_apart::numeric, 3)
    FROM complaint_duplicate d JOIN complaint a ON a.id = d.complaint_id JOIN complaint b ON b.id = d.duplicate_of_id
    WHERE a.external_id LIKE 'Q-%' ORDER BY 1, 2"""


def _messy_points(url: str, tmp_path, count: int = 3_000):
    """Points clustered near existing complaints (so duplicates occur) and spread beyond the city's edge (so
    many points snap or go to review), a few categories, a two-week span; some rows repeat a ticket number."""
    with psycopg.connect(url) as conn:
        (minx, miny, maxx, maxy), = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom)::geometry AS e "
            "FROM micro_grid) x").fetchall()
    rng = np.random.default_rng(5)
    margin = 0.004  # about 400 m beyond the extent: inside, near (snapped) and far (review)
    hubs = np.column_stack([rng.uniform(minx - margin, maxx + margin, 60),
                            rng.uniform(miny - margin, maxy + margin, 60)])
    pick = rng.integers(0, len(hubs), count)
    xs = hubs[pick, 0] + rng.normal(0, 0.0002, count)
    ys = hubs[pick, 1] + rng.normal(0, 0.0002, count)
    categories = ["电梯故障", "噪声扰民", "下水道堵塞"]
    path = tmp_path / "paths.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["工单编号", "受理时间", "诉求类别", "诉求内容", "经度", "纬度"])
        for i in range(count):
            ticket = f"Q-{i if i % 50 else i - 1:05d}" if i else "Q-00000"  # every 50th repeats the previous
            writer.writerow([ticket, f"2025-06-{1 + i % 14:02d} {i % 24:02d}:{i % 60:02d}:00",
                             categories[i % 3], "问题", f"{xs[i]:.7f}", f"{ys[i]:.7f}"])
    return path


def _redraw_some_micro_grids(url: str) -> None:
    """Every seventh micro-grid gets a new version from 8 June 2025, moved about 50 m east: complaints of the
    first week fall in the old shapes, later ones in the new, with overlaps and gaps between neighbours."""
    with psycopg.connect(url) as conn:
        conn.execute("""
            WITH old AS (
                UPDATE micro_grid SET valid_to = DATE '2025-06-08'
                WHERE valid_to IS NULL AND id % 7 = 0 AND valid_from < DATE '2025-06-08'
                RETURNING code, name, grid_code, compound_code, households, geom)
            INSERT INTO micro_grid (code, name, grid_code, compound_code, households, valid_from, geom)
            SELECT code, name, grid_code, compound_code, households, DATE '2025-06-08', ST_Translate(geom, 0.0006, 0)
            FROM old""")


def _outcome(url: str, monkeypatch, path, *, fast: bool, vectorised: bool = False):
    with monkeypatch.context() as patch:
        patch.setattr(importer, "VECTORISED_FROM", 1 if vectorised else 10**9)
        patch.setattr(importer, "POLYGONS_OUTER_FROM", 1 if fast else 10**9)
        patch.setattr(importer, "BUILDINGS_OUTER_FROM", 1 if fast else 10**9)
        patch.setattr(importer, "DUPLICATE_PROBE_COST_ROWS", 10**9 if fast else 0)
        report = importer.import_file(url, path)
    with psycopg.connect(url) as conn:
        return report, conn.execute(OUTCOME_SQL).fetchall(), conn.execute(LINKS_SQL).fetchall()


def test_fast_and_simple_paths_agree(pg_cluster, small_template, monkeypatch, tmp_path):
    from tests.conftest import _clone

    fast_db, simple_db, vectorised_db = (_clone(pg_cluster, small_template) for _ in range(3))
    for url in (fast_db, simple_db, vectorised_db):
        _redraw_some_micro_grids(url)
    path = _messy_points(fast_db, tmp_path)
    fast_report, fast_rows, fast_links = _outcome(fast_db, monkeypatch, path, fast=True)
    simple_report, simple_rows, simple_links = _outcome(simple_db, monkeypatch, path, fast=False)
    # The file exercises every branch: inside, snapped, review, repeated tickets and duplicate links.
    assert {"inside", "snapped", "review"} <= set(fast_report.placements)
    assert fast_report.duplicates > 0 and len(fast_links) > 10
    assert fast_report.rows_read == fast_report.imported + fast_report.duplicates + fast_report.rejected
    assert fast_report.as_dict() | {"batch_id": 0} == simple_report.as_dict() | {"batch_id": 0}
    assert fast_rows == simple_rows
    assert fast_links == simple_links
    vectorised_report, vectorised_rows, vectorised_links = _outcome(vectorised_db, monkeypatch, path, fast=True,
                                                                    vectorised=True)
    assert vectorised_report.as_dict() | {"batch_id": 0} == simple_report.as_dict() | {"batch_id": 0}
    assert vectorised_rows == simple_rows
    assert vectorised_links == simple_links
    assert {"loading polygons", "placing", "storing"} <= set(vectorised_report.seconds)


def test_a_second_chunk_links_to_the_first(fresh_city_db, monkeypatch, tmp_path):
    """Chunks are separate transactions: a complaint of a later chunk still finds its duplicate in an earlier one,
    and the hash-join path sees complaints stored before the import as well."""
    path = _messy_points(fresh_city_db, tmp_path, count=1_200)
    with monkeypatch.context() as patch:
        patch.setattr(importer, "DUPLICATE_PROBE_COST_ROWS", 10**9)
        report = importer.import_file(fresh_city_db, path, chunk_rows=400)
    with psycopg.connect(fresh_city_db) as conn:
        across = conn.execute("""
            SELECT count(*) FROM complaint_duplicate d
            JOIN complaint_intake a ON a.complaint_id = d.complaint_id
            JOIN complaint_intake b ON b.complaint_id = d.duplicate_of_id
            WHERE a.batch_id = %s AND b.batch_id = %s AND (a.row_number - 1) / 400 > (b.row_number - 1) / 400""",
            (report.batch_id, report.batch_id)).fetchone()[0]
    assert across > 0


@pytest.mark.parametrize("fast", [True, False])
def test_repeated_tickets_in_one_chunk_count_as_duplicates(fresh_city_db, monkeypatch, tmp_path, fast):
    path = tmp_path / "repeats.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["工单编号", "受理时间", "诉求类别", "诉求内容", "经度", "纬度"])
        for _ in range(3):
            writer.writerow(["R-1", "2025-06-01 08:00:00", "电梯故障", "电梯坏了", "117.1", "36.2"])
        writer.writerow(["R-2", "2025-06-01 09:00:00", "电梯故障", "电梯坏了", "117.1", "36.2"])
    with monkeypatch.context() as patch:
        patch.setattr(importer, "POLYGONS_OUTER_FROM", 1 if fast else 10**9)
        report = importer.import_file(fresh_city_db, path)
    assert (report.rows_read, report.imported, report.duplicates) == (4, 2, 2)
    with psycopg.connect(fresh_city_db) as conn:
        assert conn.execute("SELECT count(*) FROM complaint WHERE external_id LIKE 'R-%'").fetchone()[0] == 2


def test_a_large_import_leaves_its_pages_vacuumed(fresh_city_db, monkeypatch, tmp_path):
    """After a large import the new pages are all-visible, so complaint tiles read only their index there."""
    path = _messy_points(fresh_city_db, tmp_path, count=300)
    with monkeypatch.context() as patch:
        patch.setattr(importer, "VACUUM_FROM", 100)
        report = importer.import_file(fresh_city_db, path)
    assert report.imported >= 100 and "vacuuming" in report.seconds
    with psycopg.connect(fresh_city_db) as conn:
        vacuumed = conn.execute("SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables "
                                "WHERE relname = 'complaint'").fetchone()[0]
        all_visible, pages = conn.execute("SELECT relallvisible, relpages FROM pg_class "
                                          "WHERE oid = 'complaint'::regclass").fetchone()
    assert vacuumed and all_visible == pages


def _analyses_and_vacuums(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT analyze_count, vacuum_count FROM pg_stat_user_tables "
                            "WHERE relname = 'complaint'").fetchone()


@pytest.mark.parametrize("rows, analysed", [(120, False), (600, True)])
def test_an_import_analyses_only_a_table_it_grew_by_a_tenth(fresh_city_db, monkeypatch, tmp_path, rows, analysed):
    """Every large import vacuums, but a table of 2,000 complaints is analysed again only when the import adds
    a tenth of that (as autovacuum would): sampling a city's table again for a small file costs seconds."""
    with psycopg.connect(fresh_city_db, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) complaint")
        held = conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'complaint'::regclass").fetchone()[0]
    assert held == 2_000
    before = _analyses_and_vacuums(fresh_city_db)
    path = _messy_points(fresh_city_db, tmp_path, count=rows)
    with monkeypatch.context() as patch:
        patch.setattr(importer, "VACUUM_FROM", 50)
        report = importer.import_file(fresh_city_db, path)
    assert (report.imported >= importer.ANALYZE_SHARE * held) is analysed and report.imported >= 50
    analyses, vacuums = _analyses_and_vacuums(fresh_city_db)
    assert vacuums == before[1] + 1
    assert analyses == before[0] + (1 if analysed else 0)


def test_vectorised_placement_takes_empty_inputs(empty_db):
    from gis.intake.locate import Locator

    with psycopg.connect(empty_db) as conn:
        locator = Locator(conn)  # an empty city: no polygons at all
        found = locator.place([None, 117.1], [None, 36.2], ["2025-06-01", "2025-06-01"], [None, None], 200.0)
    assert len(found.inside_rows) == 0 and found.building_codes == {} and len(found.snap_candidates) == 0


DUPLICATE_ORACLE_SQL = """
    WITH batch AS (
        SELECT c.id, c.category_code, c.reported_at, c.geom, (ci.row_number - 1) / %(chunk)s AS chunk
        FROM complaint c JOIN complaint_intake ci ON ci.complaint_id = c.id
        WHERE ci.batch_id = %(batch)s AND c.geom IS NOT NULL)
    SELECT a.external_id, b.external_id FROM (
        SELECT n.id AS new_id, (
            SELECT c.id FROM complaint c
            LEFT JOIN complaint_intake ci ON ci.complaint_id = c.id AND ci.batch_id = %(batch)s
            WHERE c.category_code = n.category_code AND c.id <> n.id AND c.geom IS NOT NULL
              AND c.reported_at >= n.reported_at - make_interval(days => %(days)s) AND c.reported_at <= n.reported_at
              AND (c.reported_at < n.reported_at OR c.id < n.id)
              AND ST_Distance(c.geom::geography, n.geom::geography, false) <= %(metres)s
              AND (ci.row_number IS NULL OR (ci.row_number - 1) / %(chunk)s <= n.chunk)
              AND NOT EXISTS (SELECT 1 FROM ticket t WHERE t.complaint_id = c.id AND t.state IN {final})
            ORDER BY c.reported_at, c.id LIMIT 1) AS old_id
        FROM batch n) o
    JOIN complaint a ON a.id = o.new_id JOIN complaint b ON b.id = o.old_id
    ORDER BY 1, 2"""
"""The duplicate rule written plainly: each complaint of the batch to the earliest open complaint of its category
within the radius (on the sphere) and the window before it, among those stored before its chunk or in it."""


@pytest.mark.parametrize("fast", [True, False])
def test_duplicate_links_match_the_plain_rule(fresh_city_db, monkeypatch, tmp_path, fast):
    """Both duplicate paths, over chunks that each cover only part of the city's time and area, give exactly
    the links of the rule written as one plain query per complaint."""
    from gis.settings import city_settings
    from gis.tickets.models import FINAL_SQL

    settings = city_settings()
    path = _messy_points(fresh_city_db, tmp_path, count=1_500)
    with path.open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    # in time order, west to east within a day: each chunk holds a few days, and a part of the city on its edges
    rows.sort(key=lambda row: (row[1][:10], float(row[4])))
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    with psycopg.connect(fresh_city_db) as conn:
        # some earlier complaints closed, so openness decides a few links
        conn.execute("UPDATE ticket SET state = 'closed' WHERE id % 3 = 0")
    with monkeypatch.context() as patch:
        patch.setattr(importer, "DUPLICATE_PROBE_COST_ROWS", 10**9 if fast else 0)
        report = importer.import_file(fresh_city_db, path, chunk_rows=400)
    with psycopg.connect(fresh_city_db) as conn:
        links = conn.execute("""
            SELECT a.external_id, b.external_id FROM complaint_duplicate d
            JOIN complaint a ON a.id = d.complaint_id JOIN complaint b ON b.id = d.duplicate_of_id
            JOIN complaint_intake ci ON ci.complaint_id = a.id WHERE ci.batch_id = %s ORDER BY 1, 2""",
                             (report.batch_id,)).fetchall()
        oracle = conn.execute(DUPLICATE_ORACLE_SQL.format(final=FINAL_SQL), {
            "batch": report.batch_id, "chunk": 400, "days": settings.duplicate_window_days,
            "metres": settings.duplicate_radius_m}).fetchall()
    assert len(oracle) > 50
    assert links == oracle
