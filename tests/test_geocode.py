"""Address geocoding with the gazetteer, and point-to-micro-grid placement rules in PostGIS."""

from __future__ import annotations

import csv

import psycopg
import pytest

from gis.intake.gazetteer import Gazetteer
from gis.intake.importer import import_file

HEADER = ["工单编号", "受理时间", "诉求类别", "诉求内容", "事发地址", "经度", "纬度", "坐标系"]


def small_gazetteer(three_li_compounds) -> Gazetteer:
    streets = [("370902002", "财源街道", "370902"), ("370902001", "岱庙街道", "370902")]
    communities = [("370902002001", "三里社区", "370902002"), ("370902001001", "东湖社区", "370902001")]
    compounds = [*three_li_compounds,
                 ("370902001001C0001", "明珠佳苑", "370902001001", ["明珠小区"], [1, 2, 3]),
                 ("370902001001C0002", "化肥厂家属院", "370902001001", ["化肥厂宿舍"], [1, 2])]
    return Gazetteer.from_rows(streets, communities, compounds)


def test_headline_example_resolves_to_the_building():
    gazetteer = small_gazetteer([("370902002001C0001", "三里小区", "370902002001", ["三里片区"], [1, 2, 3, 4]),
                                 ("370902002001C0002", "阳光花园", "370902002001", ["阳光小区"], [1, 2])])
    match = gazetteer.match("泰山区财源街道三里社区3号楼2单元厨房漏水")
    # Only one compound of 三里社区 has a building 3.
    assert (match.level, match.compound_code, match.building_number) == ("building", "370902002001C0001", 3)
    assert match.street_code == "370902002" and match.community_code == "370902002001"


def test_ambiguous_building_stays_at_community_level():
    gazetteer = small_gazetteer([("370902002001C0001", "五岳家园", "370902002001", ["五岳小区"], [1, 2, 3]),
                                 ("370902002001C0002", "阳光花园", "370902002001", ["阳光小区"], [1, 2, 3])])
    match = gazetteer.match("泰山区财源街道三里社区3号楼2单元")
    assert (match.level, match.compound_code, match.community_code) == ("community", None, "370902002001")


def test_aliases_typos_scores_and_levels():
    gazetteer = small_gazetteer([("370902002001C0001", "阳光花园", "370902002001", ["阳光小区"], [1, 2, 3])])
    exact = gazetteer.match("财源街道三里社区阳光花园2号楼")
    alias = gazetteer.match("阳光小区2号楼")
    typo = gazetteer.match("三里社区阳光花苑2号楼")
    assert exact.level == alias.level == typo.level == "building"
    assert exact.score == 1.0 and alias.score == 0.95 and 0.5 < typo.score < alias.score
    missing = gazetteer.match("阳光花园9号楼")  # no building 9 there: the text does not agree, a person decides
    assert not missing.auto and missing.compound_code is None and missing.score < 1.0
    assert missing.candidates[0]["compound_code"] == "370902002001C0001" and "没有 9 号楼" in missing.review_reason
    # The same compound name in another community is not taken when the community is named.
    assert gazetteer.match("东湖社区化肥厂宿舍2号楼").compound_code == "370902001001C0002"
    assert gazetteer.match("岱庙街道").level == "street"
    assert gazetteer.match("火星基地").level == "none"
    assert gazetteer.match(None).level == "none"


def test_loader_addresses_resolve_to_their_buildings(city_db):
    """Every complaint address the demo city carries resolves to the complaint's own building."""
    with psycopg.connect(city_db) as conn:
        gazetteer = Gazetteer.load(conn)
        rows = conn.execute("""
            SELECT c.address, c.compound_code, b.number FROM complaint c
            JOIN building b ON b.code = c.building_code WHERE c.address LIKE '%号楼%'
            ORDER BY c.id LIMIT 500""").fetchall()
    assert len(rows) > 100
    matches = [gazetteer.match(address) for address, _, _ in rows]
    right = sum(m.level == "building" and m.compound_code == compound and m.building_number == number
                for m, (_, compound, number) in zip(matches, rows))
    assert right / len(rows) >= 0.99


# -- placement ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def places(city_db) -> dict:
    with psycopg.connect(city_db) as conn:
        shared = conn.execute("""
            SELECT a.code, b.code, ST_X(p), ST_Y(p) FROM micro_grid a
            JOIN micro_grid b ON a.code < b.code AND a.geom && b.geom AND ST_Touches(a.geom, b.geom)
            CROSS JOIN LATERAL ST_LineInterpolatePoint(
                ST_GeometryN(ST_LineMerge(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 2)), 1), 0.5) p
            WHERE a.valid_to IS NULL AND b.valid_to IS NULL
              AND ST_Dimension(ST_Intersection(a.geom, b.geom)) = 1
              AND ST_Intersects(a.geom, p) AND ST_Intersects(b.geom, p)
            ORDER BY a.code LIMIT 1""").fetchone()
        outside = conn.execute("""
            WITH city AS (SELECT ST_Union(geom) AS g FROM micro_grid WHERE valid_to IS NULL),
            edge AS (SELECT ST_XMax(g) AS x,
                            ST_Y(ST_ClosestPoint(g, ST_SetSRID(ST_MakePoint(ST_XMax(g) + 1, ST_Y(ST_Centroid(g))),
                                                               4326))) AS y,
                            g FROM city)
            SELECT x, y FROM edge""").fetchone()
        building = conn.execute("""
            SELECT b.code, b.micro_grid_code, ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom)),
                   b.compound_code
            FROM building b WHERE valid_to IS NULL ORDER BY code LIMIT 1""").fetchone()
    return {"shared": shared, "east_edge": outside, "building": building}


def _write(path, rows):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def test_placement_rules(city_db, places, tmp_path):
    low, high, sx, sy = places["shared"]
    ex, ey = places["east_edge"]
    code, micro, bx, by, compound = places["building"]
    metres = 1 / 90_000  # about a metre in longitude at 36°N
    rows = [
        ["P-shared", "2025-05-01 09:00:00", "噪声扰民", "边界上的点", "", sx, sy, ""],
        ["P-near", "2025-05-01 09:00:00", "噪声扰民", "城外不远", "", ex + 80 * metres, ey, ""],
        ["P-far", "2025-05-01 09:00:00", "噪声扰民", "城外很远", "", ex + 9000 * metres, ey, ""],
        ["P-building", "2025-05-01 09:00:00", "房屋漏水", "楼里漏水", "", bx, by, ""],
        ["P-none", "2025-05-01 09:00:00", "房屋漏水", "没有地址也没有坐标", "", "", "", ""],
    ]
    report = import_file(city_db, _write(tmp_path / "placement.csv", rows))
    assert (report.imported, report.rejected) == (5, 0)
    with psycopg.connect(city_db) as conn:
        got = {row[0]: row[1:] for row in conn.execute("""
            SELECT c.external_id, c.placement, c.micro_grid_code, c.building_code, ci.snap_distance_m,
                   ci.review_reason, p.complaint_id IS NOT NULL
            FROM complaint c JOIN complaint_intake ci ON ci.complaint_id = c.id
            LEFT JOIN complaint_party p ON p.complaint_id = c.id
            WHERE c.external_id LIKE 'P-%'""")}
    assert got["P-shared"][:2] == ("inside", low)  # on a shared boundary the lowest code wins
    assert got["P-near"][0] == "snapped" and 60 < got["P-near"][3] < 100 and got["P-near"][5]
    assert got["P-far"][0] == "review" and "snap tolerance" in got["P-far"][4] and got["P-far"][1] is None
    assert got["P-building"][:3] == ("inside", micro, code)
    assert got["P-none"][0] == "review" and got["P-none"][4] == "no coordinates and no address"


def test_nearby_open_complaints_are_linked_as_possible_duplicates(city_db, places, tmp_path):
    _, _, bx, by, _ = places["building"]
    step = 20 / 111_000  # about 20 m north
    rows = [
        ["D-1", "2025-06-01 08:00:00", "电梯故障", "电梯坏了", "", bx, by, ""],
        ["D-2", "2025-06-02 08:00:00", "电梯故障", "电梯又坏了", "", bx, by + step, ""],
        ["D-3", "2025-06-03 08:00:00", "噪声扰民", "别的事", "", bx, by, ""],  # another category
        ["D-4", "2025-06-20 08:00:00", "电梯故障", "两周以后", "", bx, by, ""],  # outside the window
    ]
    import_file(city_db, _write(tmp_path / "dups.csv", rows))
    with psycopg.connect(city_db) as conn:
        links = conn.execute("""
            SELECT a.external_id, b.external_id, d.distance_m, d.hours_apart, d.state FROM complaint_duplicate d
            JOIN complaint a ON a.id = d.complaint_id JOIN complaint b ON b.id = d.duplicate_of_id
            WHERE a.external_id LIKE 'D-%'""").fetchall()
        kept = conn.execute("SELECT count(*) FROM complaint WHERE external_id LIKE 'D-%'").fetchone()[0]
    assert [(a, b, s) for a, b, _, _, s in links] == [("D-2", "D-1", "possible")]
    assert 15 < links[0][2] < 25 and links[0][3] == pytest.approx(24)
    assert kept == 4  # nothing is deleted


def test_coordinates_in_every_system_land_on_the_same_building(city_db, places, tmp_path):
    from gis.layers.crs import from_storage

    code, micro, bx, by, _ = places["building"]
    rows = []
    for system in ("wgs84", "cgcs2000", "gcj02", "bd09"):
        x, y = from_storage(bx, by, {"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490", "gcj02": "GCJ-02",
                                     "bd09": "BD-09"}[system])
        rows.append([f"C-{system}", "2025-07-01 08:00:00", "房屋漏水", "漏水", "", f"{x:.8f}", f"{y:.8f}", system])
    x, y = from_storage(bx, by, "EPSG:4548")
    rows.append(["C-gk", "2025-07-01 08:00:00", "房屋漏水", "漏水", "", f"{x:.3f}", f"{y:.3f}", "EPSG:4548"])
    import_file(city_db, _write(tmp_path / "systems.csv", rows))
    with psycopg.connect(city_db) as conn:
        got = conn.execute("""
            SELECT external_id, building_code, original_crs,
                   ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)
            FROM complaint WHERE external_id LIKE 'C-%%' ORDER BY external_id""", (bx, by)).fetchall()
    assert len(got) == 5
    for external_id, building_code, system, error_m in got:
        assert building_code == code, external_id
        assert error_m < 0.05, (external_id, error_m)  # well under a metre
    assert {row[2] for row in got} == {"EPSG:4326", "EPSG:4490", "GCJ-02", "BD-09", "EPSG:4548"}
