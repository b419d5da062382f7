"""Real-world geometry in a layer import: rings of two or three points, unclosed rings, NaN coordinates, empty
and mixed geometries, Z and M values, buildings of micro-grids that do not exist. Every feature gets a verdict
(imported, repaired, or rejected with its index, id and a Chinese reason), the others are stored, and nothing
crashes. Files are real GeoJSON and GeoPackage (written as text, and by GDAL's ogr2ogr)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pyogrio
import pytest

from gis.layers.import_export import import_layer

GRIDGOV = str(Path(sys.executable).parent / "gridgov")


@pytest.fixture
def place(fresh_city_db):
    """A current micro-grid of the small city, a point inside it, and a compound of the city."""
    with psycopg.connect(fresh_city_db) as conn:
        micro, x, y = conn.execute("""
            SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM micro_grid
            WHERE valid_to IS NULL ORDER BY code LIMIT 1""").fetchone()
        compound = conn.execute("SELECT code FROM compound WHERE valid_to IS NULL ORDER BY code LIMIT 1").fetchone()[0]
    return {"url": fresh_city_db, "micro": micro, "x": x, "y": y, "compound": compound}


def square(x, y, size=0.0001):
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def building(code, micro, geometry, **extra):
    properties = {"code": code, "name": f"{int(code[-3:])}号楼", "micro_grid_code": micro, "number": int(code[-3:]),
                  "floors": 6, "units": 2, "households": 24, **extra}
    return {"type": "Feature", "id": int(code[-3:]) * 10, "properties": properties, "geometry": geometry}


def test_degenerate_and_odd_footprints_each_get_a_verdict(place, tmp_path):
    m, x, y = place["micro"], place["x"], place["y"]
    p, q = [x, y], [x + 0.0001, y]
    cases = [  # (geometry, extra attributes, expected status, words the reason must hold)
        ({"type": "Polygon", "coordinates": [square(x, y)]}, {}, "imported", None),
        ({"type": "Polygon", "coordinates": [[p, p]]}, {}, "rejected", "没有剩下任何面"),  # GEOS: 2 points
        ({"type": "Polygon", "coordinates": [[p, q, p]]}, {}, "rejected", "点数不足"),
        ({"type": "Polygon", "coordinates": [square(x, y)[:-1]]}, {}, "repaired", "闭合"),  # unclosed
        ({"type": "Polygon", "coordinates": [[p, [x + 0.0001, float("nan")], [x, y + 0.0001], p]]}, {},
         "rejected", "NaN"),
        ({"type": "Polygon", "coordinates": []}, {}, "rejected", "没有几何"),
        (None, {}, "rejected", "没有几何"),
        ({"type": "GeometryCollection", "geometries": [
            {"type": "Polygon", "coordinates": [square(x, y)]}, {"type": "Point", "coordinates": p}]}, {},
         "repaired", "不是面的部分"),
        ({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": p}]}, {},
         "rejected", "不是面"),
        ({"type": "Polygon", "coordinates": [[c + [31.5] for c in square(x, y)]]}, {}, "imported", None),  # Z
        ({"type": "Polygon", "coordinates": [square(x, y, 0.0003), [[x + 0.0001, y + 0.0001]] * 2]}, {},
         "repaired", "内环"),  # a hole of two points
        ({"type": "MultiPolygon", "coordinates": [[square(x, y)], [[q, q]]]}, {}, "repaired", "外环"),
        ({"type": "Polygon", "coordinates": [square(x, y)]}, {"micro_grid_code": m[:-3] + "999"},
         "rejected", "微网格"),
        ({"type": "LineString", "coordinates": [p, q]}, {}, "rejected", "LineString"),
        ({"type": "Polygon", "coordinates": [square(x, y)]}, {"compound_code": place["compound"][:-4] + "9999"},
         "rejected", "小区"),
    ]
    features = []
    for serial, (geometry, extra, _, _) in enumerate(cases, start=901):
        code = f"{m}{serial}"
        feature = building(code, m, geometry, **extra)
        if "micro_grid_code" in extra:
            feature["properties"]["code"] = extra["micro_grid_code"] + str(serial)
        features.append(feature)
    path = tmp_path / "osm_buildings.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")

    report = import_layer(place["url"], "building", path)
    got = [(f.index, f.fid, f.status) for f in report.features]
    assert got == [(i, (901 + i) * 10, status) for i, (_, _, status, _) in enumerate(cases)], \
        [(f.index, f.status, f.reason) for f in report.features]
    for feature, (_, _, _, words) in zip(report.features, cases):
        if words:
            assert words in feature.reason, (feature.index, feature.reason)
            assert any("\u4e00" <= ch <= "\u9fff" for ch in feature.reason)
    stored = {row[0]: row[1:] for row in psycopg.connect(place["url"]).execute("""
        SELECT code, ST_IsValid(geom), GeometryType(geom), ST_NDims(geom) FROM building
        WHERE code LIKE %s""", (m + "9%",)).fetchall()}
    expected = {f.code for f in report.features if f.status in ("imported", "repaired")}
    assert set(stored) == expected and len(expected) == 6
    assert set(stored.values()) == {(True, "MULTIPOLYGON", 2)}

    # The rejected features are written out as they were read, each with its index, id and reason.
    out = tmp_path / "rejected.geojson"
    assert report.write_rejected(out) == 9
    frame = pyogrio.read_dataframe(out)
    rejected = [f for f in report.features if f.status == "rejected"]
    assert list(frame["code"]) == [f.code for f in rejected]
    assert list(frame["rejected_feature"]) == [f.index for f in rejected]
    assert list(frame["rejected_fid"]) == [f.fid for f in rejected]
    assert list(frame["rejected_reason"]) == [f.reason for f in rejected]


def test_geopackage_with_m_and_zm_values(place, tmp_path):
    """Written by GDAL itself (ogr2ogr from WKT): measured polygons, one with a ring of two points."""
    m, x, y = place["micro"], place["x"], place["y"]

    def ring(points, extra):
        return ", ".join(" ".join(f"{v:.9f}" for v in point) + extra for point in points)

    rows = [
        ("901", f"POLYGON M (({ring(square(x, y), ' 7')}))"),
        ("902", f"POLYGON ZM (({ring(square(x, y), ' 40 7')}))"),
        ("903", f"MULTIPOLYGON M ((({ring(square(x, y), ' 7')})), (({ring([[x, y], [x, y]], ' 1')}))))"),
        ("904", f"POLYGON M (({ring([[x, y], [x + 0.0001, y]], ' 1')}))"),
    ]
    source = tmp_path / "measured.csv"
    source.write_text("WKT,code,name,micro_grid_code,number,floors,units,households\n" + "".join(
        f'"{wkt}",{m}{serial},{serial}号楼,{m},{int(serial)},6,2,24\n' for serial, wkt in rows), encoding="utf-8")
    target = tmp_path / "measured.gpkg"
    subprocess.run(["ogr2ogr", "-f", "GPKG", str(target), str(source), "-a_srs", "EPSG:4326", "-nln", "building"],
                   check=True, capture_output=True, timeout=60)
    report = import_layer(place["url"], "building", target)
    assert [(f.code[-3:], f.status) for f in report.features] == [
        ("901", "imported"), ("902", "imported"), ("903", "repaired"), ("904", "rejected")], \
        [f.reason for f in report.features]
    assert "外环" in report.features[2].reason and "几何无法读取" in report.features[3].reason
    dims = psycopg.connect(place["url"]).execute(
        "SELECT DISTINCT ST_NDims(geom), ST_IsValid(geom) FROM building WHERE code LIKE %s", (m + "90%",)).fetchall()
    assert dims == [(2, True)]


def test_cli_reports_and_writes_the_rejected_features(place, tmp_path):
    m, x, y = place["micro"], place["x"], place["y"]
    features = [building(f"{m}{900 + i}", m, {"type": "Polygon", "coordinates": [square(x + i * 0.0002, y)]})
                for i in range(1, 11)]
    features[3]["geometry"]["coordinates"] = [[[x, y], [x, y]]]
    features[7]["properties"]["micro_grid_code"] = m[:-3] + "998"
    source = tmp_path / "footprints.geojson"
    source.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    rejected = tmp_path / "footprints.rejected.geojson"
    env = {**os.environ, "GRIDGOV_DATABASE_URL": place["url"], "COLUMNS": "240"}
    result = subprocess.run([GRIDGOV, "layers", "import", "building", str(source), "--rejected", str(rejected)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "几何无法读取" in result.stdout and "微网格" in result.stdout
    frame = pyogrio.read_dataframe(rejected)
    assert list(frame["rejected_feature"]) == [3, 7]
    assert list(frame["code"]) == [f"{m}904", f"{m}908"]
    (stored,) = psycopg.connect(place["url"]).execute(
        "SELECT count(*) FROM building WHERE code LIKE %s", (m + "9%",)).fetchone()
    assert stored == 8
