"""The placement rules (落格) on a hand-made city small enough to work each answer out by hand, on every batch
path (PostGIS points-outer and polygons-outer, the vectorised step) and the one-statement request (Open311 POST).

Four micro-grids 0.01° square side by side west to east from (117.10, 36.20), codes rising eastwards; the
easternmost redrawn 0.005° east from 2025-06-08. The rules (gis/intake/placement.py's docstring, README
"Intake"), written out: a point in (or on the boundary of) a micro-grid version valid on the day is `inside`, on a
shared edge the lowest code; a point outside every micro-grid within 200 m goes to the nearest (ties: lowest code)
and is `snapped` with its distance on the sphere; the rest go to `review` with the reason; the building is the one
holding a point placed inside; the responsible parties (grid workers full-time first, the first party
organisation of each kind, the compound's company and owners' committee) are copied with the complaint.

`test_placement_oracle.py` holds every path to an independent oracle over the small demo city; this file is the
fast one that a mutation run of `placement.py` starts from.
"""

from __future__ import annotations

import asyncio
import csv
import math
import uuid
from datetime import date

import psycopg
import pytest
from conftest import _clone
from test_tickets_support import COMMUNITIES, COMPOUNDS, GRIDS, build_city

import gis.intake.importer as importer
from gis.intake.placement import degrees_for

SNAP_TOLERANCE_M = 200.0
"""The documented default snap tolerance (GRIDGOV_CITY_SNAP_TOLERANCE_M unset)."""
SPHERE_RADIUS_M = 6_371_008.8
"""Snap distances are on the sphere of the mean Earth radius (PostGIS geography without the spheroid)."""
REDRAW_DAY = date(2025, 6, 8)
BEFORE, AFTER = date(2025, 6, 5), date(2025, 6, 10)
MICRO = [grid + "001" for grid in GRIDS]
COMPOUND = next(code for code, grid in COMPOUNDS.items() if grid == GRIDS[0])
BUILDING = MICRO[0] + "001"
SOUTH_100M = 100.0 / SPHERE_RADIUS_M * 180 / math.pi  # degrees of latitude for 100 m
EAST_EDGE_OF_THIRD = 117.13


def _metres_south(degrees: float) -> float:
    return round(math.radians(degrees) * SPHERE_RADIUS_M, 1)


def _metres_east(degrees: float, lat: float) -> float:
    """Along a parallel is not the great circle; for 0.002° the two differ by far less than 0.1 m."""
    return round(math.radians(degrees) * SPHERE_RADIUS_M * math.cos(math.radians(lat)), 1)


# point id: (lon, lat, day, expected (placement, micro-grid, building, snap metres))
POINTS = {
    "inside": (117.105, 36.205, BEFORE, ("inside", MICRO[0], BUILDING, None)),
    "edge-0-1": (117.11, 36.207, BEFORE, ("inside", MICRO[0], None, None)),
    "edge-1-2": (117.12, 36.203, AFTER, ("inside", MICRO[1], None, None)),
    "south-100m": (117.125, round(36.20 - SOUTH_100M, 7), BEFORE, ("snapped", MICRO[2], None, 100.0)),
    "corner-tie": (117.11, round(36.20 - SOUTH_100M, 7), BEFORE, ("snapped", MICRO[0], None, 100.0)),
    "south-1km": (117.105, 36.191, BEFORE, ("review", None, None, None)),
    "redrawn-before": (117.132, 36.205, BEFORE, ("inside", MICRO[3], None, None)),
    "redrawn-after": (117.132, 36.205, AFTER, ("snapped", MICRO[2], None, _metres_east(0.002, 36.205))),
}
REVIEW_REASON = "outside every micro-grid, beyond the snap tolerance of 200 m"


@pytest.fixture(scope="module")
def template(pg_cluster, empty_template) -> str:
    """The tiny city with the redraw, a building, parties of every kind and a second of some."""
    name = f"tpl_placement_rules_{uuid.uuid4().hex[:8]}"
    pg_cluster.ensure_database(name, template=empty_template)
    url = pg_cluster.url(name)
    build_city(url)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE micro_grid SET valid_to = %s WHERE code = %s", [REDRAW_DAY, MICRO[3]])
        conn.execute("INSERT INTO micro_grid (code, name, grid_code, compound_code, valid_from, geom) "
                     "SELECT code, name, grid_code, compound_code, %s, ST_Translate(geom, 0.005, 0) "
                     "FROM micro_grid WHERE code = %s", [REDRAW_DAY, MICRO[3]])
        conn.execute("UPDATE micro_grid SET compound_code = %s WHERE code = %s", [COMPOUND, MICRO[0]])
        conn.execute("INSERT INTO building (code, name, micro_grid_code, compound_code, number, floors, units, "
                     "households, geom) VALUES (%s, '1号楼', %s, %s, 1, 6, 2, 24, ST_Multi(ST_MakeEnvelope("
                     "117.104, 36.204, 117.106, 36.206, 4326)))", [BUILDING, MICRO[0], COMPOUND])
        # grid 1's first worker is part-time: the full-time one, added later, comes first
        conn.execute("UPDATE grid_worker SET is_part_time = true WHERE grid_code = %s", [GRIDS[0]])
        conn.execute("INSERT INTO grid_worker (name, phone, grid_code, is_party_member) "
                     "VALUES ('专职网格员', '13800000099', %s, true)", [GRIDS[0]])
        for kind, unit in (("community_committee", COMMUNITIES[0]), ("compound_branch", COMPOUND),
                           ("building_group", BUILDING), ("grid_branch", GRIDS[0])):
            for n in (1, 2):
                conn.execute("INSERT INTO party_organisation (code, kind, name, unit_code, secretary_name, "
                             "member_count) VALUES (%s, %s, %s, %s, '书记', 3)",
                             [f"X{kind}{n}", kind, f"{kind}{n}", unit])
        conn.execute("INSERT INTO owners_committee (compound_code, formed_on, member_count, party_member_count, "
                     "chair_name, chair_is_party_member) VALUES (%s, DATE '2020-01-01', 5, 2, '主任', true)",
                     [COMPOUND])
    return name


def _expected_parties(url: str) -> dict:
    """The parties of a complaint in grid 1's micro-grid and compound, found here from the tables."""
    with psycopg.connect(url) as conn:
        def first(kind: str, unit: str) -> int:
            return conn.execute("SELECT min(id) FROM party_organisation WHERE kind = %s AND unit_code = %s",
                                [kind, unit]).fetchone()[0]
        workers = [row[0] for row in conn.execute(
            "SELECT id FROM grid_worker WHERE grid_code = %s ORDER BY id DESC", [GRIDS[0]])]
        company, mode = conn.execute("SELECT property_company_id, management_mode FROM compound WHERE code = %s",
                                     [COMPOUND]).fetchone()
        committee = conn.execute("SELECT id FROM owners_committee WHERE compound_code = %s", [COMPOUND]).fetchone()[0]
        return {"grid_worker_ids": workers, "community_party_id": first("community_committee", COMMUNITIES[0]),
                "grid_party_id": first("grid_branch", GRIDS[0]),
                "compound_party_id": first("compound_branch", COMPOUND),
                "building_party_id": first("building_group", BUILDING), "property_company_id": company,
                "owners_committee_id": committee, "management_mode": mode}


def _stored(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("""
            SELECT c.external_id, c.placement, c.micro_grid_code, c.building_code,
                   round(ci.snap_distance_m::numeric, 1)::float8, c.grid_code, c.community_code, c.street_code,
                   c.compound_code, ci.review_reason
            FROM complaint c JOIN complaint_intake ci ON ci.complaint_id = c.id""").fetchall()
    return {row[0]: row[1:] for row in rows}


def _parties(url: str, external_id: str) -> dict | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("""
            SELECT grid_worker_ids, community_party_id, grid_party_id, compound_party_id, building_party_id,
                   property_company_id, owners_committee_id, management_mode
            FROM complaint_party p JOIN complaint c ON c.id = p.complaint_id WHERE c.external_id = %s""",
                           [external_id]).fetchone()
    names = ("grid_worker_ids", "community_party_id", "grid_party_id", "compound_party_id", "building_party_id",
             "property_company_id", "owners_committee_id", "management_mode")
    return None if row is None else dict(zip(names, row))


def _check(url: str, got: dict[str, tuple], ids) -> None:
    assert set(got) == set(ids)
    for pid in ids:
        placement, micro, building, metres = POINTS[pid][3]
        row = got[pid]
        assert row[:3] == (placement, micro, building), (pid, row)
        if metres is None:
            assert row[3] is None, (pid, row)
        else:
            assert abs(row[3] - metres) <= 0.15, (pid, row, metres)
        if micro is None:
            assert row[4:8] == (None, None, None, None) and row[8] == REVIEW_REASON, (pid, row)
        else:
            grid = micro[:15]
            assert row[4:7] == (grid, grid[:12], grid[:9]), (pid, row)
            assert row[8] is None, (pid, row)
    assert got["inside"][7] == COMPOUND


BATCH_PATHS = {
    # name: (VECTORISED_FROM, POLYGONS_OUTER_FROM and BUILDINGS_OUTER_FROM)
    "points_outer": (10**9, 10**9),
    "polygons_outer": (10**9, 1),
    "vectorised": (1, 10**9),
}


@pytest.mark.parametrize("path_name", sorted(BATCH_PATHS))
def test_a_batch_places_by_the_rules_on_every_path(pg_cluster, template, monkeypatch, tmp_path, path_name):
    url = _clone(pg_cluster, template)
    path = tmp_path / "points.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["工单编号", "受理时间", "诉求类别", "诉求内容", "经度", "纬度"])
        for pid, (lon, lat, day, _) in POINTS.items():
            writer.writerow([pid, f"{day} 10:00:00", "电梯故障", "电梯坏了", repr(lon), repr(lat)])
    vectorised, outer = BATCH_PATHS[path_name]
    monkeypatch.setattr(importer, "VECTORISED_FROM", vectorised)
    monkeypatch.setattr(importer, "POLYGONS_OUTER_FROM", outer)
    monkeypatch.setattr(importer, "BUILDINGS_OUTER_FROM", outer)
    report = importer.import_file(url, path)
    assert report.imported == len(POINTS)
    assert ("loading polygons" in report.seconds) is (path_name == "vectorised")  # the path really ran
    _check(url, _stored(url), POINTS)
    expected = _expected_parties(url)
    assert _parties(url, "inside") == expected
    # a point on grid 1's edge, outside the building: the building's party is the building's alone
    assert _parties(url, "edge-0-1") == {**expected, "building_party_id": None}
    assert _parties(url, "south-1km") is None  # in review: no community, no parties yet


def test_one_request_places_by_the_rules(pg_cluster, template):
    from gis.db.engine import async_engine
    from gis.intake.open311 import create_request, new_api_key

    url = _clone(pg_cluster, template)
    key = new_api_key(url, "rules-client")

    async def post_all() -> dict[str, dict]:
        engine = async_engine(url)
        answers = {}
        try:
            for pid, (lon, lat, day, _) in POINTS.items():
                async with engine.connect() as conn:
                    answers[pid] = await create_request(conn, {
                        "api_key": key, "service_code": "E0603", "lat": repr(lat), "long": repr(lon),
                        "description": "电梯坏了", "requested_datetime": f"{day}T10:00:00+08:00"}, {})
        finally:
            await engine.dispose()
        return answers

    answers = asyncio.run(post_all())
    with psycopg.connect(url) as conn:  # name each stored request by its point, as the batch does
        for pid, answer in answers.items():
            conn.execute("UPDATE complaint SET external_id = %s WHERE id = %s",
                         [pid, int(answer["service_request_id"])])
    notices = {answer["service_notice"] for answer in answers.values()}
    _check(url, _stored(url), POINTS)
    expected = _expected_parties(url)
    assert _parties(url, "inside") == expected
    assert _parties(url, "edge-0-1") == {**expected, "building_party_id": None}
    assert _parties(url, "south-1km") is None
    assert sorted(notices) == ["受理成功 (received)", "受理成功，位置已就近归入网格 (received, placed on "
                                             "the nearest grid)", "受理成功，待人工定位 (received, awaiting placement "
                                             "by hand)"]


def test_the_search_box_covers_the_distance_anywhere_in_china():
    """A box `degrees_for(m)` wide holds every point within m metres up to 54°N, east-west and north-south."""
    for metres in (1.0, 200.0, 5000.0):
        box = degrees_for(metres)
        assert box * 111_320.0 * math.cos(math.radians(54.0)) >= metres
        assert box * 110_574.0 >= metres
        # and not needlessly wide: under twice the width needed at 54°N
        assert box * 111_320.0 * math.cos(math.radians(54.0)) < 2 * metres
