"""Layer import and export through real files (pyogrio) and the real PostGIS of the test session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import geopandas
import numpy as np
import psycopg
import pyogrio
import pyproj
import pytest
import shapely
from shapely import Point, Polygon, box

from gis.errors import InvalidInput, NotFound
from gis.layers.crs import from_storage, to_storage, transform_geometries
from gis.layers.import_export import export_layer, import_layer

GRIDGOV = str(Path(sys.executable).parent / "gridgov")


def write(path: Path, records: list[dict], crs: str | None = "EPSG:4326", driver: str | None = None) -> Path:
    geometry = [record.pop("geometry") for record in records]
    frame = geopandas.GeoDataFrame(records, geometry=geopandas.GeoSeries(geometry, crs=crs))
    pyogrio.write_dataframe(frame, path, driver=driver)
    return path


def rows(url: str, sql: str, *args) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def streets_file(path: Path, **overrides) -> Path:
    records = [
        {"code": "370902001", "name": "财源街道", "district_code": "370902",
         "geometry": box(117.10, 36.18, 117.13, 36.21)},
        {"code": "370902002", "name": "泰前街道", "district_code": "370902",
         "geometry": box(117.13, 36.18, 117.16, 36.21)},
    ]
    for record in records:
        record.update(overrides.get(record["code"], {}))
    return write(path, records)


def test_gcj02_must_be_declared_and_is_converted(empty_db, tmp_path):
    wgs = [box(117.10, 36.18, 117.13, 36.21), box(117.13, 36.18, 117.16, 36.21)]
    gcj = transform_geometries(np.array(wgs, dtype=object), "GCJ-02", inverse=True)
    # The file says EPSG:4326, as every GeoJSON does; the declared GCJ-02 must win.
    path = write(tmp_path / "streets_amap.geojson", [
        {"code": "370902001", "name": "财源街道", "district_code": "370902", "geometry": gcj[0]},
        {"code": "370902002", "name": "泰前街道", "district_code": "370902", "geometry": gcj[1]},
    ])
    report = import_layer(empty_db, "street", path, crs="amap", valid_from=date(2024, 1, 1))
    assert report.source_crs == "GCJ-02"
    assert report.counts["imported"] == 2 and report.counts["inserted"] == 2
    stored = dict(rows(empty_db, "SELECT code, ST_AsBinary(geom) FROM street"))
    for code, original in zip(("370902001", "370902002"), wgs):
        got = shapely.get_coordinates(shapely.from_wkb(stored[code]))
        expected = shapely.get_coordinates(shapely.orient_polygons(original))
        _, _, error = pyproj.Geod(ellps="WGS84").inv(got[:, 0], got[:, 1], expected[:, 0], expected[:, 1])
        assert np.max(error) < 0.001, "converted vertices should land within a millimetre of the WGS-84 ones"
    assert rows(empty_db, "SELECT DISTINCT GeometryType(geom), ST_SRID(geom) FROM street") == [("MULTIPOLYGON", 4326)]


def test_undeclared_gcj02_would_land_hundreds_of_metres_off(empty_db, tmp_path):
    wgs = box(117.10, 36.18, 117.13, 36.21)
    gcj = transform_geometries(np.array([wgs], dtype=object), "GCJ-02", inverse=True)[0]
    path = write(tmp_path / "street.geojson", [{"code": "370902001", "name": "财源街道", "district_code": "370902",
                                                "geometry": gcj}])
    import_layer(empty_db, "street", path)
    (distance,) = rows(empty_db, "SELECT ST_HausdorffDistance(geom::geography::geometry, %s::geometry) FROM street",
                       shapely.to_wkt(wgs))[0]
    assert distance * 111_000 > 100


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_every_feature_gets_a_verdict(empty_db, tmp_path):
    def square(i):
        return box(117.0 + i * 0.01, 36.1, 117.008 + i * 0.01, 36.108)

    x, y = 117.2, 36.2  # a unit-ish square with a tiny crossed lobe at its north-west corner: repairable
    lobe = Polygon([(x, y), (x + 0.01, y), (x + 0.01, y + 0.01), (x, y + 0.01), (x + 0.0001, y + 0.0101)])
    bowtie = Polygon([(117.3, 36.1), (117.31, 36.11), (117.31, 36.1), (117.3, 36.11)])
    records = [
        {"code": "370902001001", "name": "三里社区", "street_code": "370902001", "geometry": square(0)},
        {"code": "370902001002", "name": "东关社区", "street_code": "370902001", "geometry": lobe},
        {"code": "370902001003", "name": "岱庙社区", "street_code": "370902001", "geometry": bowtie},
        {"code": None, "name": "无码社区", "street_code": "370902001", "geometry": square(3)},
        {"code": "370902001005", "name": None, "street_code": "370902001", "geometry": square(4)},
        {"code": "370902001006", "name": "红门社区", "street_code": None, "geometry": square(5)},
        {"code": "370902001007", "name": "点社区", "street_code": "370902001", "geometry": Point(117.1, 36.1)},
        {"code": "370902001008", "name": "空社区", "street_code": "370902001", "geometry": None},
        {"code": "370902001001", "name": "重复社区", "street_code": "370902001", "geometry": square(8)},
        {"code": "37090200109", "name": "短码社区", "street_code": "370902001", "geometry": square(9)},
        {"code": "370902001011", "name": "远社区", "street_code": "370902001",
         "geometry": box(3.0e7, 4.0e6, 3.0e7 + 10, 4.0e6 + 10)},
    ]
    path = write(tmp_path / "communities.geojson", records, crs=None)
    report = import_layer(empty_db, "community", path, crs="EPSG:4326", valid_from=date(2024, 1, 1))
    verdicts = [(f.index, f.code, f.status) for f in report.features]
    assert verdicts == [
        (0, "370902001001", "imported"), (1, "370902001002", "repaired"), (2, "370902001003", "rejected"),
        (3, None, "rejected"), (4, "370902001005", "rejected"), (5, "370902001006", "rejected"),
        (6, "370902001007", "rejected"), (7, "370902001008", "rejected"), (8, "370902001001", "rejected"),
        (9, "37090200109", "rejected"), (10, "370902001011", "rejected"),
    ]
    reasons = {f.index: f.reason for f in report.features}
    assert "自相交" in reasons[1]
    assert "几何无效" in reasons[2] and "面积" in reasons[2]
    assert reasons[3] == "缺少 code"
    assert reasons[4] == "缺少 name"
    assert reasons[5] == "缺少 street_code"
    assert "Point" in reasons[6] and "不是面" in reasons[6]
    assert reasons[7] == "没有几何（为空）"
    assert "第 0 个要素重复" in reasons[8]
    assert "12 位" in reasons[9]
    assert "经度 [-180, 180]" in reasons[10]
    assert report.counts["rejected"] == 9
    stored = rows(empty_db, "SELECT code, ST_IsValid(geom), GeometryType(geom) FROM community ORDER BY code")
    assert stored == [("370902001001", True, "MULTIPOLYGON"), ("370902001002", True, "MULTIPOLYGON")]
    collection = report.to_geojson()
    assert len(collection["features"]) == len(records)
    assert collection["features"][2]["geometry"]["type"] == "Polygon"  # the rejected bow-tie, to show on a map
    assert collection["features"][10]["geometry"] is None


def test_reimport_keeps_history(empty_db, tmp_path):
    first = import_layer(empty_db, "street", streets_file(tmp_path / "a.geojson"), valid_from=date(2024, 1, 1))
    assert first.counts["inserted"] == 2

    again = import_layer(empty_db, "street", streets_file(tmp_path / "a.geojson"), valid_from=date(2024, 6, 1))
    assert again.counts["unchanged"] == 2 and again.counts["inserted"] == 0
    assert rows(empty_db, "SELECT count(*) FROM street")[0][0] == 2

    renamed = streets_file(tmp_path / "b.geojson", **{"370902001": {"name": "财源街道办事处"}})
    report = import_layer(empty_db, "street", renamed, valid_from=date(2024, 6, 1))
    assert [f.action for f in report.features] == ["updated", "unchanged"]
    assert rows(empty_db, "SELECT name, valid_from FROM street WHERE code = '370902001'") == [
        ("财源街道办事处", date(2024, 1, 1))]

    moved = streets_file(tmp_path / "c.geojson", **{"370902002": {"geometry": box(117.13, 36.18, 117.17, 36.21)}})
    same_day = import_layer(empty_db, "street", moved, valid_from=date(2024, 1, 1))
    assert same_day.features[0].action == "updated"  # the name goes back, whatever the date
    assert same_day.features[1].status == "rejected" and "必须晚于" in same_day.features[1].reason
    report = import_layer(empty_db, "street", moved, valid_from=date(2025, 1, 1))
    assert [f.action for f in report.features] == ["unchanged", "new_version"]
    history = rows(empty_db, "SELECT valid_from, valid_to, ST_XMax(geom) FROM street "
                             "WHERE code = '370902002' ORDER BY valid_from")
    assert history == [(date(2024, 1, 1), date(2025, 1, 1), pytest.approx(117.16)),
                       (date(2025, 1, 1), None, pytest.approx(117.17))]


def test_new_version_inherits_columns_the_file_lacks(empty_db, tmp_path):
    community = {"code": "370902001001", "name": "三里社区", "street_code": "370902001",
                 "office_phone": "0538-6201234", "geometry": box(117.1, 36.18, 117.11, 36.19)}
    import_layer(empty_db, "community", write(tmp_path / "a.geojson", [dict(community)]), valid_from=date(2024, 1, 1))
    smaller = {k: v for k, v in community.items() if k != "office_phone"} | {"geometry": box(117.1, 36.18, 117.11,
                                                                                            36.188)}
    report = import_layer(empty_db, "community", write(tmp_path / "b.geojson", [smaller]),
                          valid_from=date(2024, 9, 1))
    assert report.features[0].action == "new_version"
    assert rows(empty_db, "SELECT office_phone FROM community WHERE valid_to IS NULL") == [("0538-6201234",)]


COMPOUNDS = [
    {"code": "370902001001C0001", "name": "泰山花园", "community_code": "370902001001", "grid_code": "370902001001001",
     "aliases": "泰山花园小区;花园小区", "build_year": 1998, "is_old_estate": True, "floor_area_m2": 52000.5,
     "households": 640, "management_mode": "community_led", "property_fee_yuan_m2": 0.45,
     "geometry": box(117.10, 36.18, 117.104, 36.184)},
    {"code": "370902001001C0002", "name": "御碑楼小区", "community_code": "370902001001",
     "grid_code": "370902001001002", "aliases": None, "build_year": 2012, "is_old_estate": False,
     "floor_area_m2": 88000.0, "households": 1020, "management_mode": "professional",
     "property_fee_yuan_m2": 1.8,
     "geometry": shapely.MultiPolygon([box(117.105, 36.18, 117.108, 36.183), box(117.109, 36.18, 117.11, 36.181)])},
]


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp"])
def test_export_then_import_changes_nothing(empty_db, tmp_path, fmt):
    report = import_layer(empty_db, "compound", write(tmp_path / "in.geojson", [dict(c) for c in COMPOUNDS]),
                          valid_from=date(2024, 1, 1))
    assert report.counts["inserted"] == 2, report.rejected
    out = tmp_path / f"out.{fmt}"
    assert export_layer(empty_db, "compound", out) == 2

    frame = pyogrio.read_dataframe(out)
    assert frame.crs.to_epsg() == 4326
    assert list(frame["name"]) == ["泰山花园", "御碑楼小区"]
    # A Shapefile does not tell one part from many: its reader gives polygons where there is one.
    assert set(frame.geometry.geom_type) <= ({"MultiPolygon", "Polygon"} if fmt == "shp" else {"MultiPolygon"})
    fee_column = "property_f" if fmt == "shp" else "property_fee_yuan_m2"
    assert list(frame[fee_column]) == pytest.approx([0.45, 1.8])

    again = import_layer(empty_db, "compound", out, valid_from=date(2025, 1, 1))
    assert [f.action for f in again.features] == ["unchanged", "unchanged"], [f.reason for f in again.features]
    assert rows(empty_db, "SELECT aliases FROM compound ORDER BY code") == [(["泰山花园小区", "花园小区"],), ([],)]


def test_new_compound_needs_its_required_attributes(empty_db, tmp_path):
    record = {k: v for k, v in COMPOUNDS[0].items() if k != "build_year"}
    report = import_layer(empty_db, "compound", write(tmp_path / "c.geojson", [record]))
    assert report.features[0].status == "rejected" and report.features[0].reason == "缺少 build_year"
    bad = dict(COMPOUNDS[1]) | {"households": "many"}
    report = import_layer(empty_db, "compound", write(tmp_path / "d.geojson", [bad]))
    assert "households 应为整数" in report.features[0].reason


def test_projected_pyramid_is_detected_and_stays_sliver_free(empty_db, tmp_path):
    """A street and its two communities drawn in CGCS2000 Gauss–Krüger (CM 117E): the communities' shared vertex
    lies on the street's 4 km edges. Converted vertex by vertex, that vertex would leave the bowed edge."""
    west, south = from_storage(117.05, 36.15, "EPSG:4548")
    street = box(west, south, west + 4000, south + 4000)
    # The split runs slanted, so its ends sit mid-edge on the street's long straight edges.
    left = Polygon([(west, south), (west + 1500, south), (west + 2500, south + 4000), (west, south + 4000)])
    right = Polygon([(west + 1500, south), (west + 4000, south), (west + 4000, south + 4000),
                     (west + 2500, south + 4000)])
    write(tmp_path / "street.gpkg", [{"code": "370902001", "name": "财源街道", "district_code": "370902",
                                      "geometry": street}], crs="EPSG:4548")
    write(tmp_path / "communities.gpkg", [
        {"code": "370902001001", "name": "甲社区", "street_code": "370902001", "geometry": left},
        {"code": "370902001002", "name": "乙社区", "street_code": "370902001", "geometry": right},
    ], crs="EPSG:4548")
    report = import_layer(empty_db, "street", tmp_path / "street.gpkg")
    assert report.source_crs == "EPSG:4548"
    import_layer(empty_db, "community", tmp_path / "communities.gpkg")
    (outside,) = rows(empty_db, """
        SELECT sum(ST_Area(ST_Transform(ST_Difference(c.geom, s.geom), 4548)))
        FROM community c JOIN street s ON s.code = c.street_code""")[0]
    assert outside < 0.01

    # Vertex by vertex (no densifying), the same input leaves m² of sliver outside the street: the test can fail.
    def naive(geometry):
        return shapely.transform(geometry, lambda xy: np.column_stack(to_storage(xy[:, 0], xy[:, 1], "EPSG:4548")))

    sliver = shapely.difference(naive(left), naive(street)).union(shapely.difference(naive(right), naive(street)))
    metric = transform_geometries(np.array([sliver], dtype=object), "EPSG:4548", inverse=True)[0]
    assert metric.area > 1.0


@pytest.mark.filterwarnings("ignore:'crs' was not provided", "ignore:Normalized/laundered field name")
def test_file_without_crs_needs_a_declaration(empty_db, tmp_path):
    path = write(tmp_path / "nocrs.shp", [{"code": "370902001", "name": "财源街道", "district_code": "370902",
                                           "geometry": box(117.1, 36.1, 117.2, 36.2)}], crs=None)
    with pytest.raises(InvalidInput, match="声明"):
        import_layer(empty_db, "street", path)
    assert import_layer(empty_db, "street", path, crs="cgcs2000").counts["inserted"] == 1


def test_bad_requests(empty_db, tmp_path):
    with pytest.raises(NotFound):
        import_layer(empty_db, "river", tmp_path / "x.geojson")
    with pytest.raises(InvalidInput, match="文件不存在"):
        import_layer(empty_db, "street", tmp_path / "missing.geojson")
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("this is not json")
    with pytest.raises(InvalidInput):
        import_layer(empty_db, "street", garbage)
    with pytest.raises(InvalidInput, match="unknown coordinate system"):
        import_layer(empty_db, "street", streets_file(tmp_path / "s.geojson"), crs="mercator-ish")
    with pytest.raises(InvalidInput, match="格式"):
        export_layer(empty_db, "street", tmp_path / "out.kml")


def test_cli_import_report_and_export(empty_db, tmp_path):
    env = {**os.environ, "GRIDGOV_DATABASE_URL": empty_db, "COLUMNS": "200"}
    source = write(tmp_path / "streets.geojson", [
        {"code": "370902001", "name": "财源街道", "district_code": "370902", "geometry": box(117.1, 36.1, 117.2, 36.2)},
        {"code": "370902002", "name": None, "district_code": "370902", "geometry": box(117.2, 36.1, 117.3, 36.2)},
    ])
    report_path = tmp_path / "report.geojson"
    result = subprocess.run([GRIDGOV, "layers", "import", "street", str(source), "--valid-from", "2024-01-01",
                             "--report", str(report_path)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr  # one feature was rejected
    assert "缺少 name" in result.stdout
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert [f["properties"]["status"] for f in report["features"]] == ["imported", "rejected"]

    out = tmp_path / "streets.gpkg"
    result = subprocess.run([GRIDGOV, "layers", "export", "street", str(out)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert list(pyogrio.read_dataframe(out)["code"]) == ["370902001"]


def test_geopackage_holding_several_layers(empty_db, tmp_path):
    import_layer(empty_db, "street", streets_file(tmp_path / "s.geojson"), valid_from=date(2024, 1, 1))
    import_layer(empty_db, "community", write(tmp_path / "c.geojson", [
        {"code": "370902001001", "name": "三里社区", "street_code": "370902001",
         "geometry": box(117.10, 36.18, 117.12, 36.20)}]), valid_from=date(2024, 1, 1))
    pyramid = tmp_path / "pyramid.gpkg"
    assert export_layer(empty_db, "community", pyramid) == 1
    assert export_layer(empty_db, "street", pyramid) == 2
    assert sorted(name for name, _ in pyogrio.list_layers(pyramid)) == ["community", "street"]
    assert import_layer(empty_db, "street", pyramid).counts["unchanged"] == 2  # picked by its name
    with pytest.raises(InvalidInput, match="多个图层"):
        import_layer(empty_db, "grid", pyramid)
    report = import_layer(empty_db, "grid", pyramid, file_layer="community")
    assert {f.reason for f in report.features} == {"缺少 community_code"}
