"""Vector tiles: decoded with a vector-tile decoder and compared with the database (counts, attributes and
coordinates), plus TileJSON, caching headers, role rules, feature caps and simplification."""

from __future__ import annotations

import asyncio
import dataclasses
import math

import mapbox_vector_tile
import psycopg
import pytest
from conftest import LiveServer
from test_ogc import seeded_db  # noqa: F401  (the seeded city fixture is shared)

from gis.access.auth import PUBLIC, Principal
from gis.db.engine import async_engine, libpq_url
from gis.serve import tiles

CENTRE = (117.1, 36.2)
POLICY_PUBLIC_GRID_DEG = 0.0005
"""The public's place lattice as the README's privacy table states it: written here, not read from the code."""
MERCATOR_HALF = 20037508.342789244


@pytest.fixture(scope="module")
def client(seeded_db):
    live = LiveServer(seeded_db)
    with live.client() as http_client:
        yield http_client
    live.stop()


def rows(url: str, sql: str, params=None) -> list[tuple]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql, params).fetchall()


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def to_tile_units(lon: float, lat: float, z: int, x: int, y: int) -> tuple[float, float]:
    """Where a lon/lat point falls in tile z/x/y, in tile units with y pointing down (MVT's own axes)."""
    mx = math.radians(lon) * 6378137.0
    my = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * 6378137.0
    size = 2 * MERCATOR_HALF / (1 << z)
    left, top = -MERCATOR_HALF + x * size, MERCATOR_HALF - y * size
    return (mx - left) / size * tiles.EXTENT, (top - my) / size * tiles.EXTENT


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})


def in_tile_sql(table: str, z: int, x: int, y: int, current: bool = True) -> str:
    margin = tiles.BUFFER / tiles.EXTENT
    where = "valid_to IS NULL AND " if current else ""
    return (f"SELECT id FROM {table} WHERE {where}ST_Intersects(geom, "
            f"ST_Transform(ST_TileEnvelope({z}, {x}, {y}, margin => {margin}), 4326))")


def run(url: str, factory):
    async def main():
        engine = async_engine(url)
        try:
            return await factory(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


# -- TileJSON ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", list(tiles.TILE_LAYERS))
def test_tilejson_of_every_layer(client, seeded_db, layer):
    document = client.get(f"/tiles/{layer}.json").json()
    assert document["tilejson"] == "3.0.0"
    assert document["tiles"][0].endswith(f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt")
    assert document["vector_layers"][0]["id"] == layer
    # complaints are bounded by the streets, not by their own outermost points (which would be exact places)
    table = layer if layer != "complaint" else "street"
    expected = rows(seeded_db, f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                               f"FROM (SELECT ST_Extent(geom) FROM {table} WHERE valid_to IS NULL) s(e)")[0]
    assert document["bounds"] == pytest.approx(list(expected), abs=1e-9)
    assert client.get(f"/tiles/{layer}/tilejson.json").json() == document


# -- tiles against the database ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", [name for name in tiles.TILE_LAYERS if name != "complaint"])
def test_boundary_tile_features_and_attributes_match_the_database(client, seeded_db, layer):
    spec = tiles.TILE_LAYERS[layer]
    for z in sorted({max(spec.minzoom, 12), max(spec.detail_zoom, 14)}):
        x, y = tile_of(*CENTRE, z)
        response = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        decoded = decode(response.content)[layer]
        assert decoded["extent"] == tiles.EXTENT
        expected_ids = {row[0] for row in rows(seeded_db, in_tile_sql(layer, z, x, y))}
        assert {feature["id"] for feature in decoded["features"]} == expected_ids
        keys = set(spec.columns(z))
        assert all(set(feature["properties"]) <= keys and "code" in feature["properties"]
                   for feature in decoded["features"])
        if z >= spec.detail_zoom:
            codes = {feature["properties"]["code"]: feature["properties"] for feature in decoded["features"]}
            names = dict(rows(seeded_db, f"SELECT code, name FROM {layer} WHERE valid_to IS NULL AND code = ANY(%s)",
                              (list(codes),)))
            assert {code: props["name"] for code, props in codes.items()} == names


def test_building_coordinates_match_the_database(client, seeded_db):
    z = 16
    x, y = tile_of(*CENTRE, z)
    decoded = decode(client.get(f"/tiles/building/{z}/{x}/{y}.mvt").content)["building"]
    corners = dict(rows(seeded_db, "SELECT id, ARRAY[ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)] "
                                   "FROM building"))
    checked = 0
    for feature in decoded["features"]:
        west, south, east, north = corners[feature["id"]]
        ring = feature["geometry"]["coordinates"][0]
        if feature["geometry"]["type"] == "MultiPolygon":
            ring = ring[0]
        xs, ys = [point[0] for point in ring], [point[1] for point in ring]
        left, bottom = to_tile_units(west, south, z, x, y)
        right, top = to_tile_units(east, north, z, x, y)
        inside = -tiles.BUFFER <= left and right <= tiles.EXTENT + tiles.BUFFER and -tiles.BUFFER <= top \
            and bottom <= tiles.EXTENT + tiles.BUFFER
        if inside:  # unclipped: the ring's corners are the building's, to a tile unit
            assert min(xs) == pytest.approx(left, abs=1) and max(xs) == pytest.approx(right, abs=1)
            assert min(ys) == pytest.approx(top, abs=1) and max(ys) == pytest.approx(bottom, abs=1)
            checked += 1
    assert checked > 0


def test_public_complaint_tile_is_anonymised_with_coarse_points(client, seeded_db):
    z = 16
    x, y = tile_of(*CENTRE, z)
    response = client.get(f"/tiles/complaint/{z}/{x}/{y}.mvt")
    assert response.status_code == 200
    decoded = decode(response.content)["complaint"]
    grid = POLICY_PUBLIC_GRID_DEG
    snapped = rows(seeded_db, f"""
        SELECT id, round(ST_X(geom) / {grid}) * {grid}, round(ST_Y(geom) / {grid}) * {grid} FROM complaint
        WHERE ST_Intersects(ST_SnapToGrid(geom, {grid}),
                            ST_Transform(ST_TileEnvelope({z}, {x}, {y}, margin => {tiles.BUFFER / tiles.EXTENT}), 4326))
    """)
    assert {feature["id"] for feature in decoded["features"]} == {row[0] for row in snapped} != set()
    where = {row[0]: row[1:] for row in snapped}
    for feature in decoded["features"]:
        assert set(feature["properties"]) == set(tiles.COMPLAINT_PUBLIC_COLUMNS) - {"compound_code"}
        expected = to_tile_units(float(where[feature["id"]][0]), float(where[feature["id"]][1]), z, x, y)
        assert feature["geometry"]["coordinates"] == pytest.approx(list(expected), abs=1)
    assert "private" not in response.headers["cache-control"]
    assert f"max-age={tiles.tile_settings().complaint_max_age}" in response.headers["cache-control"]


def test_staff_complaint_tiles_keep_to_scope_with_exact_points(seeded_db):
    community = "370902002001"
    staff = Principal(role="community", username="c2", scope=(community,))
    z = 13
    x, y = tile_of(117.12, 36.2, z)
    service = tiles.TileService()

    async def render(engine):
        return (await service.tile(engine, "complaint", z, x, y, staff),
                await service.tile(engine, "complaint", z, x, y, PUBLIC))

    staff_tile, public_tile = run(seeded_db, render)
    assert staff_tile.private and not public_tile.private
    features = decode(staff_tile.body)["complaint"]["features"]
    expected = rows(seeded_db, f"SELECT id, ST_X(geom), ST_Y(geom) FROM complaint WHERE community_code = %s "
                               f"AND id IN ({in_tile_sql('complaint', z, x, y, current=False)})", (community,))
    assert {feature["id"] for feature in features} == {row[0] for row in expected} != set()
    exact = {row[0]: row[1:] for row in expected}
    for feature in features:
        assert feature["geometry"]["coordinates"] == pytest.approx(
            list(to_tile_units(*exact[feature["id"]], z, x, y)), abs=1)
    # below the detail zoom only the summary attributes, even for staff
    assert all(set(feature["properties"]) == set(tiles.TILE_LAYERS["complaint"].summary) for feature in features)
    public_ids = {feature["id"] for feature in decode(public_tile.body)["complaint"]["features"]}
    assert len(public_ids) > len(features)

    async def detail(engine):
        return await service.tile(engine, "complaint", 16, *tile_of(117.12, 36.2, 16), staff)

    detailed = decode(run(seeded_db, detail).body)
    for feature in detailed.get("complaint", {}).get("features", []):
        assert feature["properties"]["community_code"] == community
        assert feature["properties"]["reporter_phone"].startswith("139")


@pytest.mark.parametrize("principal", [Principal(role="admin", username="a"), PUBLIC], ids=["admin", "public"])
def test_capped_complaint_tile_keeps_the_newest_in_view(seeded_db, principal):
    z = 12
    x, y = tile_of(*CENTRE, z)
    capped = dataclasses.replace(tiles.TILE_LAYERS["complaint"], feature_cap=4 * 25)  # 25 at zoom 12
    grid = POLICY_PUBLIC_GRID_DEG

    async def render(engine):
        async with engine.connect() as conn:
            return await tiles.TileService().render(conn, capped, z, x, y, principal)

    features = decode(run(seeded_db, render))["complaint"]["features"]
    envelope = f"ST_Transform(ST_TileEnvelope({z}, {x}, {y}, margin => {tiles.BUFFER / tiles.EXTENT}), 4326)"
    if principal.role == "public":
        envelope = f"ST_Expand({envelope}, {grid})"
    in_view = rows(seeded_db, f"SELECT count(*) FROM complaint WHERE geom && {envelope}")[0][0]
    newest = rows(seeded_db, f"SELECT id FROM complaint WHERE geom && {envelope} "
                             "ORDER BY reported_at DESC, id DESC LIMIT 25")
    assert in_view > 25 and len(features) == 25
    assert {feature["id"] for feature in features} == {row[0] for row in newest}


# -- caps, simplification and the cache ---------------------------------------------------------------------------


def test_feature_cap_keeps_the_largest_features(empty_db):
    # 300 buildings of varied size, inserted so that ids and sizes do not agree
    with psycopg.connect(libpq_url(empty_db)) as conn:
        conn.execute("""
            INSERT INTO building (code, name, micro_grid_code, number, floors, units, households, geom)
            SELECT '370902001001001001' || lpad(i::text, 3, '0'), i || '号楼', '370902001001001001', i, 6, 2, 24,
                   ST_Multi(ST_Expand(ST_SetSRID(ST_Point(117.05 + (i % 20) * 0.004, 36.17 + (i / 20) * 0.004),
                                                 4326), 0.0002 + ((i * 37) % 300) * 0.000004))
            FROM generate_series(1, 300) i
        """)
    capped = dataclasses.replace(tiles.TILE_LAYERS["building"], feature_cap=50)
    z = 12
    x, y = tile_of(*CENTRE, z)

    async def render(engine):
        async with engine.connect() as conn:
            return await tiles.TileService().render(conn, capped, z, x, y, PUBLIC)

    features = decode(run(empty_db, render))["building"]["features"]
    assert len(features) == 50
    largest = rows(empty_db, f"SELECT id FROM building WHERE id IN ({in_tile_sql('building', z, x, y)}) "
                             f"ORDER BY ST_Area(geom) DESC, id LIMIT 50")
    assert {feature["id"] for feature in features} == {row[0] for row in largest}
    assert {feature["id"] for feature in features} != set(range(1, 51))


def test_low_zoom_simplification_drops_vertices(empty_db):
    with psycopg.connect(libpq_url(empty_db)) as conn:
        conn.execute("INSERT INTO district (code, name, geom) VALUES ('370999', '圆区', "
                     "ST_Multi(ST_Buffer(ST_SetSRID(ST_Point(117.1, 36.2), 4326), 0.05, 256)))")
    z = 10
    x, y = tile_of(*CENTRE, z)
    unsimplified = rows(empty_db, f"SELECT ST_NPoints(ST_AsMVTGeom(ST_Transform(geom, 3857), "
                                  f"ST_TileEnvelope({z}, {x}, {y}), 4096, 64, true)) FROM district")[0][0]

    async def render(engine):
        return (await tiles.TileService().tile(engine, "district", z, x, y, PUBLIC)).body

    polygon = decode(run(empty_db, render))["district"]["features"][0]["geometry"]
    rings = polygon["coordinates"] if polygon["type"] == "Polygon" else polygon["coordinates"][0]
    drawn = sum(len(ring) for ring in rings)
    assert unsimplified > 400 and 8 < drawn < unsimplified / 4


def test_boundary_cache_forgets_tiles_when_the_table_changes(empty_db):
    service = tiles.TileService(tiles.TileSettings(version_check_seconds=0))
    z = 16
    x, y = tile_of(*CENTRE, z)

    def add_building(code: str) -> None:
        with psycopg.connect(libpq_url(empty_db)) as conn:
            conn.execute("INSERT INTO building (code, name, micro_grid_code, number, floors, units, households, "
                         "geom) VALUES (%s, '1号楼', '370902001001001001', 1, 6, 2, 24, "
                         "ST_Multi(ST_Expand(ST_SetSRID(ST_Point(%s, %s), 4326), 0.0001)))", (code, *CENTRE))
            conn.execute("SELECT pg_stat_force_next_flush()")

    async def fetch(engine):
        return await service.tile(engine, "building", z, x, y, PUBLIC)

    add_building("370902001001001001001")
    first = run(empty_db, fetch)
    assert len(decode(first.body)["building"]["features"]) == 1
    assert run(empty_db, fetch) is first or service.cache.hits >= 1
    add_building("370902001001001001002")
    second = run(empty_db, fetch)
    assert len(decode(second.body)["building"]["features"]) == 2 and second.etag != first.etag


# -- HTTP: errors and caching headers ----------------------------------------------------------------------------


def test_bad_addresses_are_4xx_and_empty_tiles_are_204(client):
    assert client.get("/tiles/building/25/0/0.mvt").status_code == 400
    assert client.get("/tiles/building/12/4096/0.mvt").status_code == 400
    assert client.get("/tiles/building/12/-1/0.mvt").status_code == 400
    assert client.get("/tiles/building/z/0/0.mvt").status_code == 400
    assert client.get("/tiles/river/12/0/0.mvt").status_code == 404
    assert client.get("/tiles/river.json").status_code == 404
    assert client.get("/tiles/building/16/0/0.mvt").status_code == 204  # far from the city
    assert client.get("/tiles/building/5/26/12.mvt").status_code == 204  # below the layer's zoom range


def test_boundary_tiles_cache_long_with_etag(client):
    x, y = tile_of(*CENTRE, 14)
    response = client.get(f"/tiles/grid/14/{x}/{y}.mvt")
    assert response.status_code == 200
    assert response.headers["cache-control"] == f"public, max-age={tiles.tile_settings().boundary_max_age}"
    etag = response.headers["etag"]
    again = client.get(f"/tiles/grid/14/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert client.get(f"/tiles/grid/14/{x}/{y}.mvt").content == response.content
