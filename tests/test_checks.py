"""Integrity checks: every fault of the deliberately broken pyramid is found, and nothing else; the generated
city has none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import shapely

from fixtures.broken import build_broken
from gis.layers.checks import run_checks

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    ("street", "370902002", "gap"),
    ("micro_grid", "370902001001001002", "outside_parent"),
    ("compound", "370902002001C0001", "outside_parent"),
    ("micro_grid", "370902009009009001", "orphan_code"),
    ("building", "370902001002001001005", "orphan_code"),
    ("building", "370902001001001001003", "overlap"),
    ("building", "370902001001001001002", "invalid_geometry"),
    ("building", "370902001001001001006", "duplicate_code"),
    ("building", "370902001001001001007", "duplicate_code"),
}


@pytest.fixture
def broken_db(empty_db) -> str:
    build_broken(empty_db)
    return empty_db


def test_each_fault_of_the_broken_fixture_and_nothing_else(broken_db):
    faults = run_checks(broken_db)
    assert {(fault.layer, fault.code, fault.kind) for fault in faults} == EXPECTED
    assert len(faults) == len(EXPECTED)
    by_key = {(fault.layer, fault.code, fault.kind): fault for fault in faults}

    gap = by_key[("street", "370902002", "gap")]
    # The strip 117.10–117.20 E × 36.29–36.30 N: about 9 km × 1.1 km.
    assert 9.0e6 < float(gap.message.split(" m²")[0].replace(",", "")) < 1.1e7
    assert shapely.equals_exact(shapely.normalize(gap.geometry.geoms[0]),
                                shapely.normalize(shapely.box(117.10, 36.29, 117.20, 36.30)), tolerance=1e-9)
    outside = by_key[("micro_grid", "370902001001001002", "outside_parent")].geometry
    assert outside.bounds == pytest.approx((117.05, 36.095, 117.10, 36.10))
    overlap = by_key[("building", "370902001001001001003", "overlap")]
    assert "370902001001001001004" in overlap.message
    assert overlap.geometry.bounds == pytest.approx((117.0305, 36.1305, 117.031, 36.131))
    orphan = by_key[("micro_grid", "370902009009009001", "orphan_code")]
    assert "no current grid" in orphan.message
    assert "does not start with" in by_key[("building", "370902001002001001005", "orphan_code")].message
    assert "overlap in time" in by_key[("building", "370902001001001001006", "duplicate_code")].message
    assert "two current versions" in by_key[("building", "370902001001001001007", "duplicate_code")].message
    invalid = by_key[("building", "370902001001001001002", "invalid_geometry")]
    assert "Self-intersection" in invalid.message and invalid.geometry.geom_type == "Point"


def test_slivers_below_the_tolerance_are_no_fault(broken_db):
    # Move a building a few centimetres out of its micro-grid: well under 1 m² outside.
    with psycopg.connect(broken_db) as conn:
        conn.execute(
            "UPDATE building SET geom = ST_Multi(ST_MakeEnvelope(116.9999999, 36.1200, 117.0010, 36.1210, 4326)) "
            "WHERE code = '370902001001001001001'"
        )
    assert {(f.layer, f.code, f.kind) for f in run_checks(broken_db)} == EXPECTED
    assert ("building", "370902001001001001001", "outside_parent") in {
        (f.layer, f.code, f.kind) for f in run_checks(broken_db, tolerance_m2=0.5)}


def test_cli_prints_the_faults_writes_geojson_and_exits_1(broken_db, tmp_path):
    out = tmp_path / "faults.geojson"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "gridgov"), "check", "--geojson", str(out)], cwd=ROOT, capture_output=True,
        text=True, env={**os.environ, "GRIDGOV_DATABASE_URL": broken_db, "COLUMNS": "200"}, timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "370902009009009001" in result.stdout and "orphan_code" in result.stdout
    collection = json.loads(out.read_text(encoding="utf-8"))
    assert {(f["properties"]["layer"], f["properties"]["code"], f["properties"]["kind"])
            for f in collection["features"]} == EXPECTED
    assert all(f["geometry"] for f in collection["features"])


def test_the_generated_small_city_has_no_fault(city_db):
    faults = run_checks(city_db)
    assert faults == [], "\n".join(f"{f.layer} {f.code} {f.kind}: {f.message}" for f in faults[:20])
