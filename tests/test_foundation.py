"""The foundation: embedded cluster, migrations, the generated city and the layer endpoints."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from gis.db.engine import libpq_url

ROOT = Path(__file__).resolve().parent.parent


def _gridgov(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_embedded_cluster_lifecycle_through_the_cli():
    data_dir = tempfile.mkdtemp(prefix="gridgov-cli-")
    env = {**os.environ, "GRIDGOV_DATA_DIR": data_dir}
    env.pop("GRIDGOV_DATABASE_URL", None)
    try:
        assert _gridgov("db", "status", env=env).returncode == 3  # not created yet
        up = _gridgov("db", "up", env=env)
        assert up.returncode == 0, up.stderr
        url = up.stdout.strip()
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        status = _gridgov("db", "status", env=env)
        assert "running" in status.stdout
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT postgis_lib_version()").fetchone()[0].startswith("3.")
            listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        assert listen == "127.0.0.1"
        first = _gridgov("db", "upgrade", env=env)
        second = _gridgov("db", "upgrade", env=env)
        assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
        assert "0 categories added" in second.stdout
        assert _gridgov("db", "url", env=env).stdout.strip() == url
        assert _gridgov("db", "down", env=env).returncode == 0
        assert _gridgov("db", "status", env=env).returncode == 3
    finally:
        _gridgov("db", "down", env=env)
        subprocess.run(["rm", "-rf", data_dir], check=False)


def _scalar(url: str, sql: str, params=None):
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_small_city_has_the_pyramid_in_the_sizes_asked(city_db):
    counts = {name: _scalar(city_db, f"SELECT count(*) FROM {name}") for name in
              ("district", "street", "community", "grid", "compound", "building", "complaint")}
    assert counts["street"] == 2 and counts["community"] == 8 and counts["grid"] == 40
    assert 120 <= counts["compound"] <= 190
    assert 1000 <= counts["building"] <= 2000
    assert counts["complaint"] == 2000


@pytest.mark.parametrize(("child", "parent", "column", "length"), [
    ("street", "district", "district_code", 9),
    ("community", "street", "street_code", 12),
    ("grid", "community", "community_code", 15),
    ("micro_grid", "grid", "grid_code", 18),
    ("building", "micro_grid", "micro_grid_code", 21),
])
def test_codes_extend_their_parent_code(city_db, child, parent, column, length):
    bad = _scalar(city_db, f"""
        SELECT count(*) FROM {child} c LEFT JOIN {parent} p ON p.code = c.{column}
        WHERE p.id IS NULL OR left(c.code, length(p.code)) <> p.code OR length(c.code) <> {length}
           OR c.code !~ '^[0-9]+$'""")
    assert bad == 0


def test_real_division_names_and_codes(city_db):
    assert _scalar(city_db, "SELECT name FROM street WHERE code = '370902002'") == "财源街道"
    assert _scalar(city_db, "SELECT name FROM district") == "泰山区"
    assert _scalar(city_db, "SELECT count(*) FROM community WHERE name = '三里社区' AND street_code = '370902002'") == 1


def test_city_mixes_follow_the_published_figures(city_db):
    old = _scalar(city_db, "SELECT avg(is_old_estate::int) FROM compound")
    professional = _scalar(city_db, "SELECT avg((management_mode = 'professional')::int) FROM compound")
    committees = _scalar(city_db,
                         "SELECT count(*)::float / (SELECT count(*) FROM compound) FROM owners_committee")
    old_before_2000 = _scalar(city_db, "SELECT bool_and(build_year < 2000) FROM compound WHERE is_old_estate")
    assert 0.2 <= old <= 0.4
    assert 0.74 <= professional <= 0.9
    assert 0.63 <= committees <= 0.85
    assert old_before_2000
    # Every community has its party committee; nearly every grid a party branch.
    assert _scalar(city_db, "SELECT count(*) FROM community c WHERE NOT EXISTS (SELECT 1 FROM party_organisation p "
                            "WHERE p.kind = 'community_committee' AND p.unit_code = c.code)") == 0
    assert _scalar(city_db, "SELECT count(*) FROM party_organisation WHERE kind = 'grid_branch'") >= 38


def test_every_complaint_lies_in_the_micro_grid_it_names(city_db):
    assert _scalar(city_db, """
        SELECT count(*) FROM complaint c JOIN micro_grid m ON m.id = c.micro_grid_id
        WHERE NOT ST_Intersects(m.geom, c.geom) OR m.code <> c.micro_grid_code""") == 0
    assert _scalar(city_db, "SELECT count(*) FROM complaint WHERE micro_grid_id IS NULL") == 0


def test_generator_is_deterministic():
    from fixtures.city import generate_city

    first, again, other = generate_city("small", 3), generate_city("small", 3), generate_city("small", 4)
    assert first.tables["compound"]["name"].tolist() == again.tables["compound"]["name"].tolist()
    assert first.tables["building"]["geom"].map(lambda g: g.wkb).tolist() == \
        again.tables["building"]["geom"].map(lambda g: g.wkb).tolist()
    assert first.tables["compound"]["name"].tolist() != other.tables["compound"]["name"].tolist()


def test_a_past_complaint_keeps_the_micro_grid_version_it_fell_in(fresh_city_db):
    with psycopg.connect(libpq_url(fresh_city_db)) as conn:
        micro_id, code, complaint_id = conn.execute(
            "SELECT m.id, m.code, c.id FROM complaint c JOIN micro_grid m ON m.id = c.micro_grid_id LIMIT 1"
        ).fetchone()
        conn.execute("UPDATE micro_grid SET valid_to = DATE '2026-11-01' WHERE id = %s", (micro_id,))
        conn.execute("""
            INSERT INTO micro_grid (code, name, grid_code, compound_code, households, valid_from, geom)
            SELECT code, name, grid_code, compound_code, households, DATE '2026-11-01',
                   ST_Multi(ST_Buffer(geom, -0.0002)) FROM micro_grid WHERE id = %s""", (micro_id,))
        conn.commit()
        current = conn.execute("SELECT id FROM micro_grid WHERE code = %s AND valid_to IS NULL", (code,)).fetchone()
        assert current[0] != micro_id
        kept = conn.execute("SELECT micro_grid_id FROM complaint WHERE id = %s", (complaint_id,)).fetchone()[0]
        assert kept == micro_id
        # Only one current version per code is allowed.
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO micro_grid (code, name, grid_code, valid_from, geom) "
                         "SELECT code, name, grid_code, DATE '2026-11-02', geom FROM micro_grid WHERE id = %s",
                         (current[0],))


def test_health_counts_each_layer(http, city_db):
    response = http.get("/health")
    assert response.status_code == 200
    layers = response.json()["layers"]
    for name in ("street", "community", "grid", "micro_grid", "compound", "building", "complaint"):
        assert layers[name] == _scalar(city_db, f"SELECT count(*) FROM {name}"), name


def test_layer_geojson(http, city_db):
    response = http.get("/layers/grid.geojson", params={"parent": "370902002001"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    features = response.json()["features"]
    expected = _scalar(city_db, "SELECT count(*) FROM grid WHERE community_code = '370902002001'")
    assert len(features) == expected > 0
    assert all(f["properties"]["community_code"] == "370902002001" for f in features)
    assert features[0]["geometry"]["type"] == "MultiPolygon"
    lon, lat = features[0]["geometry"]["coordinates"][0][0][0]
    assert 116.5 < lon < 117.7 and 35.8 < lat < 36.6


@pytest.mark.parametrize(("path", "status"), [
    ("/layers/nowhere.geojson", 404),
    ("/layers/grid.geojson?bbox=1,2,3", 400),
    ("/layers/grid.geojson?bbox=a,b,c,d", 400),
    ("/layers/grid.geojson?bbox=10,10,5,5", 400),
    ("/layers/grid.geojson?limit=0", 422),
])
def test_layer_geojson_rejects_bad_requests(http, path, status):
    assert http.get(path).status_code == status
