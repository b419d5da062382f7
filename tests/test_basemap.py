"""The city's own base map: MBTiles and PMTiles files made here (raster and vector) are served byte for byte with
their media types, missing tiles are 204, bad addresses a 400 in Chinese, a misconfigured file a clear error (at
start, on /health, 503 on its routes) and never a 500; and the demo's base map built from the small city decodes
into district, landuse, water, roads and labels, with roads that never enter a compound.

PMTiles archives are written with the `pmtiles` package (protomaps' own implementation of the format), so the
app's reader is held to another writer than its own; the leaf directories are forced small to be followed.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import sqlite3
from pathlib import Path

import mapbox_vector_tile
import psycopg
import pytest
from pmtiles.tile import Compression, Entry, TileType, serialize_header, zxy_to_tileid
from pmtiles.writer import build_roots_leaves
from starlette.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from gis.basemap.build import build_basemap, tile_range
from gis.db.engine import libpq_url
from gis.serve import basemap as basemap_module
from gis.serve.basemap import BasemapService, decompressed, read_all_tiles
from gis.settings import basemap_settings

HAN = re.compile(r"[\u4e00-\u9fff]")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")


def png(marker: int) -> bytes:
    """A distinct PNG-looking body per tile (the server never decodes raster tiles)."""
    return PNG + marker.to_bytes(4, "big")


def mvt(name: str) -> bytes:
    """A real vector tile with one layer holding one line named `name`."""
    return mapbox_vector_tile.encode([{"name": "roads", "features": [
        {"geometry": "LINESTRING (0 0, 4096 4096)", "properties": {"name": name}}]}])


def write_mbtiles(path: Path, tiles: dict[tuple[int, int, int], bytes], fmt: str, **meta) -> Path:
    """An MBTiles file as the specification has it: rows in TMS order (flipped from XYZ)."""
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE metadata (name text, value text); CREATE TABLE tiles "
                       "(zoom_level integer, tile_column integer, tile_row integer, tile_data blob);")
    metadata = {"name": "测试底图", "format": fmt, "minzoom": "0", "maxzoom": "14",
                "bounds": "117.0,36.1,117.2,36.3", "attribution": "测试单位", **meta}
    conn.executemany("INSERT INTO metadata VALUES (?, ?)", metadata.items())
    conn.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)",
                     [(z, x, (1 << z) - 1 - y, body) for (z, x, y), body in tiles.items()])
    conn.commit()
    conn.close()
    return path


def write_pmtiles(path: Path, tiles: dict[tuple[int, int, int], bytes], tile_type, compression, leaf_size=4,
                  metadata=None) -> Path:
    """A PMTiles v3 archive through the `pmtiles` package's serializers, with leaf directories of `leaf_size`
    entries, identical neighbouring tiles stored once as a run, and gzipped directories and metadata."""
    entries, blobs, offset = [], b"", 0
    for tile_id, body in sorted((zxy_to_tileid(*zxy), body) for zxy, body in tiles.items()):
        last = entries[-1] if entries else None
        if last and last.tile_id + last.run_length == tile_id and blobs[last.offset:last.offset + last.length] == body:
            last.run_length += 1
            continue
        entries.append(Entry(tile_id, offset, len(body), 1))
        blobs += body
        offset += len(body)
    root, leaves, _ = build_roots_leaves(entries, leaf_size)
    meta = gzip.compress(json.dumps(metadata or {"name": "测试", "attribution": "测试单位"}).encode())
    zooms = [z for z, _, _ in tiles]
    header = {
        "root_offset": 127, "root_length": len(root), "metadata_offset": 127 + len(root), "metadata_length": len(meta),
        "leaf_directory_offset": 127 + len(root) + len(meta), "leaf_directory_length": len(leaves),
        "tile_data_offset": 127 + len(root) + len(meta) + len(leaves), "tile_data_length": len(blobs),
        "addressed_tiles_count": len(tiles), "tile_entries_count": len(entries), "tile_contents_count": len(entries),
        "clustered": True, "internal_compression": Compression.GZIP, "tile_compression": compression,
        "tile_type": tile_type, "min_zoom": min(zooms), "max_zoom": max(zooms),
        "min_lon_e7": 1170000000, "min_lat_e7": 361000000, "max_lon_e7": 1172000000, "max_lat_e7": 363000000,
        "center_zoom": 12, "center_lon_e7": 1171000000, "center_lat_e7": 362000000,
    }
    path.write_bytes(serialize_header(header) + root + meta + leaves + blobs)
    return path


def client_for(url: str, path) -> TestClient:
    """The app (with its lifespan) serving the base-map file `path` (None: not configured)."""
    app = create_app(url)
    app.state.basemap_service = BasemapService(path)
    return TestClient(app)


def raw_get(client: TestClient, url: str, **headers):
    """(status, headers, body exactly as sent, before any content decoding)."""
    with client.stream("GET", url, headers=headers) as response:
        return response.status_code, response.headers, b"".join(response.iter_raw())


# --- serving a city's own file -----------------------------------------------------------------------------

def test_mbtiles_raster_tiles_leave_byte_for_byte_with_the_row_flipped(empty_db, tmp_path):
    tiles = {(14, 13520, 6420): png(1), (14, 13520, (1 << 14) - 1 - 6420): png(2), (12, 3380, 1605): png(3)}
    path = write_mbtiles(tmp_path / "raster.mbtiles", tiles, "png")
    with client_for(empty_db, path) as client:
        for (z, x, y), body in tiles.items():
            status, headers, sent = raw_get(client, f"/basemap/{z}/{x}/{y}.png")
            assert (status, headers["content-type"], sent) == (200, "image/png", body)
            assert "content-encoding" not in headers
            assert client.get(f"/basemap/{z}/{x}/{y}").content == body  # the extension may be left out
        document = client.get("/basemap.json").json()
    assert document["format"] == "png" and document["bounds"] == [117.0, 36.1, 117.2, 36.3]
    assert (document["minzoom"], document["maxzoom"], document["attribution"]) == (0, 14, "测试单位")
    assert document["tiles"][0].endswith("/basemap/{z}/{x}/{y}.png?v=" + document["version"])


def test_mbtiles_vector_tiles_go_out_gzipped_as_stored_or_decompressed(empty_db, tmp_path):
    body = mvt("青年路")
    stored = gzip.compress(body)
    path = write_mbtiles(tmp_path / "vector.mbtiles", {(13, 6760, 3210): stored}, "pbf",
                         json=json.dumps({"vector_layers": [{"id": "roads", "fields": {"name": "String"}}]}))
    with client_for(empty_db, path) as client:
        status, headers, sent = raw_get(client, "/basemap/13/6760/3210.pbf", **{"Accept-Encoding": "gzip"})
        assert (status, headers["content-type"], headers["content-encoding"]) == (
            200, "application/vnd.mapbox-vector-tile", "gzip")
        assert sent == stored and headers["vary"] == "Accept-Encoding"
        status, headers, sent = raw_get(client, "/basemap/13/6760/3210.mvt", **{"Accept-Encoding": "identity"})
        assert status == 200 and "content-encoding" not in headers and sent == body
        assert mapbox_vector_tile.decode(sent)["roads"]["features"][0]["properties"]["name"] == "青年路"
        document = client.get("/basemap.json").json()
    assert document["format"] == "pbf" and document["vector_layers"][0]["id"] == "roads"


@pytest.mark.parametrize("kind, tile_type, extension, media", [
    ("png", TileType.PNG, "png", "image/png"), ("jpg", TileType.JPEG, "jpg", "image/jpeg"),
    ("webp", TileType.WEBP, "webp", "image/webp")])
def test_pmtiles_raster_archives_through_leaf_directories_and_runs(empty_db, tmp_path, kind, tile_type, extension,
                                                                    media):
    # 40 tiles in leaves of 4 entries: the root points at leaves only; two neighbours share one body (a run)
    tiles = {(z, x, y): png(z * 100 + x * 10 + y) for z in (1, 2) for x in range(1 << z) for y in range(1 << z)}
    tiles.update({(3, x, y): png(3000 + x * 10 + y) for x in range(4) for y in range(4)})
    first, second = (3, 0, 0), (3, 0, 1)  # tile ids 21 and 22 on the Hilbert curve
    assert zxy_to_tileid(*second) == zxy_to_tileid(*first) + 1
    tiles[second] = tiles[first]
    path = write_pmtiles(tmp_path / f"raster.{kind}.pmtiles", tiles, tile_type, Compression.NONE)
    with client_for(empty_db, path) as client:
        for (z, x, y), body in tiles.items():
            status, headers, sent = raw_get(client, f"/basemap/{z}/{x}/{y}.{extension}")
            assert (status, headers["content-type"], sent) == (200, media, body), (z, x, y)
        assert client.get("/basemap/3/7/7").status_code == 204  # within the zooms, not in the archive
        document = client.get("/basemap.json").json()
    assert (document["format"], document["minzoom"], document["maxzoom"]) == (kind, 1, 3)
    assert document["bounds"] == [117.0, 36.1, 117.2, 36.3]


def test_pmtiles_vector_archive_with_gzipped_tiles(empty_db, tmp_path):
    tiles = {(14, 13520 + i, 6420): gzip.compress(mvt(f"路{i}")) for i in range(30)}
    path = write_pmtiles(tmp_path / "vector.pmtiles", tiles, TileType.MVT, Compression.GZIP, leaf_size=8,
                         metadata={"attribution": "本市测绘院", "vector_layers": [{"id": "roads"}]})
    with client_for(empty_db, path) as client:
        for (z, x, y), stored in tiles.items():
            status, headers, sent = raw_get(client, f"/basemap/{z}/{x}/{y}.pbf", **{"Accept-Encoding": "gzip"})
            assert (status, headers["content-encoding"], sent) == (200, "gzip", stored)
        status, _, sent = raw_get(client, "/basemap/14/13521/6420.pbf", **{"Accept-Encoding": "identity"})
        assert mapbox_vector_tile.decode(sent)["roads"]["features"][0]["properties"]["name"] == "路1"
        document = client.get("/basemap.json").json()
    assert document["attribution"] == "本市测绘院" and document["vector_layers"] == [{"id": "roads"}]


def test_missing_tiles_are_204_and_tiles_are_cached_by_version_and_etag(empty_db, tmp_path):
    path = write_mbtiles(tmp_path / "raster.mbtiles", {(10, 845, 401): png(1)}, "png", minzoom="10",
                         maxzoom="12")
    with client_for(empty_db, path) as client:
        version = client.get("/basemap.json").json()["version"]
        for address in ("10/845/402.png", "9/422/200.png", "13/6760/3208.png"):  # absent, below, above the zooms
            answer = client.get(f"/basemap/{address}")
            assert answer.status_code == 204 and answer.content == b"", address
        current = client.get(f"/basemap/10/845/401.png?v={version}")
        assert current.headers["cache-control"] == "public, max-age=31536000, immutable"
        plain = client.get("/basemap/10/845/401.png")
        assert plain.headers["cache-control"] == "public, max-age=3600"
        assert client.get("/basemap/10/845/401.png?v=old").headers["cache-control"] == "public, max-age=3600"
        again = client.get("/basemap/10/845/401.png", headers={"If-None-Match": plain.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("address", ["25/0/0.png", "10/1024/0.png", "10/0/1024", "a/1/1", "10/-1/3",
                                     "10/1/1.pbf", "10/1/x.png", "10/1/1.5.png", "10/１/1"])
def test_bad_tile_addresses_are_refused_in_chinese(empty_db, tmp_path, address):
    path = write_mbtiles(tmp_path / "raster.mbtiles", {(10, 845, 401): png(1)}, "png")
    with client_for(empty_db, path) as client:
        answer = client.get(f"/basemap/{address}")
    assert answer.status_code == 400, (address, answer.status_code, answer.text)
    assert HAN.search(answer.json()["detail"]), answer.text


def test_a_file_changed_while_serving_is_reopened(empty_db, tmp_path):
    path = write_mbtiles(tmp_path / "raster.mbtiles", {(10, 845, 401): png(1)}, "png")
    with client_for(empty_db, path) as client:
        first = client.get("/basemap.json").json()["version"]
        replacement = write_mbtiles(tmp_path / "new.mbtiles", {(10, 845, 401): png(2)}, "png")
        os.replace(replacement, path)
        assert client.get("/basemap/10/845/401.png").content == png(2)
        assert client.get("/basemap.json").json()["version"] != first


@pytest.mark.parametrize("make", ["missing", "directory", "garbage", "not-tiles", "bad-format", "truncated-pmtiles"])
def test_a_misconfigured_file_is_a_clear_error_never_a_500(empty_db, tmp_path, make):
    path = tmp_path / "city.mbtiles"
    if make == "directory":
        path.mkdir()
    elif make == "garbage":
        path.write_bytes(b"this is no tile file at all")
    elif make == "not-tiles":
        sqlite3.connect(path).execute("CREATE TABLE other (a)").connection.commit()
    elif make == "bad-format":
        write_mbtiles(path, {(10, 845, 401): png(1)}, "tiff")
    elif make == "truncated-pmtiles":
        whole = write_pmtiles(tmp_path / "whole.pmtiles", {(1, 0, 0): png(1), (1, 1, 1): png(2)}, TileType.PNG,
                              Compression.NONE).read_bytes()
        path.write_bytes(whole[:140])
    with client_for(empty_db, path) as client:
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        reason = health.json()["basemap"]["detail"]
        assert health.json()["basemap"]["status"] == "error" and "city.mbtiles" in reason and HAN.search(reason)
        for url in ("/basemap.json", "/basemap/10/845/401.png"):
            answer = client.get(url)
            assert answer.status_code == 503 and answer.json()["detail"] == reason, (url, answer.text)


def test_serve_refuses_to_start_with_an_unreadable_base_map(tmp_path, monkeypatch):
    from cli.main import app

    monkeypatch.setenv("GRIDGOV_BASEMAP", str(tmp_path / "nowhere.pmtiles"))
    basemap_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--port", "1"])
    finally:
        basemap_settings.cache_clear()
    assert result.exit_code == 2
    assert "底图文件不存在" in result.output and "nowhere.pmtiles" in result.output


def test_without_a_base_map_the_tilejson_is_empty_and_tiles_are_404(empty_db, monkeypatch):
    monkeypatch.delenv("GRIDGOV_BASEMAP", raising=False)
    basemap_settings.cache_clear()
    try:
        with TestClient(create_app(empty_db)) as client:  # the settings, not a service handed in
            assert client.get("/basemap.json").status_code == 204
            answer = client.get("/basemap/10/845/401.png")
            assert answer.status_code == 404 and HAN.search(answer.json()["detail"])
            assert client.get("/health").json()["basemap"] == {"status": "none"}
    finally:
        basemap_settings.cache_clear()


def test_the_setting_names_the_file(empty_db, tmp_path, monkeypatch):
    path = write_mbtiles(tmp_path / "raster.mbtiles", {(10, 845, 401): png(7)}, "png")
    monkeypatch.setenv("GRIDGOV_BASEMAP", str(path))
    monkeypatch.setenv("GRIDGOV_BASEMAP_ATTRIBUTION", "泰安市自然资源局")
    basemap_settings.cache_clear()
    try:
        with TestClient(create_app(empty_db)) as client:
            assert client.get("/basemap/10/845/401.png").content == png(7)
            assert client.get("/basemap.json").json()["attribution"] == "泰安市自然资源局"
            assert client.get("/health").json()["basemap"]["status"] == "ok"
    finally:
        basemap_settings.cache_clear()


def test_the_reader_finds_every_tile_id_as_the_reference_numbers_them():
    for z in range(0, 9):
        for x in range(0, 1 << z, max(1, (1 << z) // 7)):
            for y in range(0, 1 << z, max(1, (1 << z) // 5)):
                assert basemap_module.zxy_to_tile_id(z, x, y) == zxy_to_tileid(z, x, y)


# --- the demo's own base map ---------------------------------------------------------------------------------

def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def built(city_db, tmp_path_factory) -> dict:
    """The small city's base map, built once for the module."""
    path = tmp_path_factory.mktemp("basemap") / "city.mbtiles"
    calls = []
    report = build_basemap(city_db, path, minzoom=10, maxzoom=17, road_names=("青年路", "东岳大街", "灵山大街"),
                           progress=lambda done, total: calls.append((done, total)))
    return {"path": path, "report": report, "tiles": read_all_tiles(path), "progress": calls}


def decoded(built: dict, z: int) -> dict[tuple[int, int], dict]:
    return {(x, y): mapbox_vector_tile.decode(decompressed(body)) for (tz, x, y), body in built["tiles"].items()
            if tz == z}


def test_the_demo_base_map_has_every_layer_and_names(built, city_db):
    report = built["report"]
    assert report.built and report.tiles == len(built["tiles"]) > 100
    assert sorted(report.tiles_by_zoom) == list(range(10, 18))
    assert built["progress"][-1][0] == built["progress"][-1][1]
    assert all(body[:2] == b"\x1f\x8b" for body in built["tiles"].values())  # stored gzipped, as MBTiles has it
    for z in (12, 15):
        layers = set().union(*(tile.keys() for tile in decoded(built, z).values()))
        assert {"district", "water", "roads", "labels"} <= layers, (z, layers)
    labels = [f["properties"] for tile in decoded(built, 15).values()
              for f in tile.get("labels", {}).get("features", [])]
    names = {(p["kind"], p["name"]) for p in labels}
    streets = {name for name, in sql(city_db, "SELECT name FROM street WHERE valid_to IS NULL")}
    communities = {name for name, in sql(city_db, "SELECT name FROM community WHERE valid_to IS NULL")}
    assert {("street", name) for name in streets} <= names
    assert {("community", name) for name in communities} <= names
    assert {kind for kind, _ in names} == {"district", "street", "community", "road", "water"}
    assert {name for kind, name in names if kind == "road"} <= {"青年路", "东岳大街", "灵山大街"}
    classes = {f["properties"]["class"] for tile in decoded(built, 16).values()
               for f in tile.get("roads", {}).get("features", [])}
    assert classes == {"primary", "secondary", "tertiary", "minor"}
    metadata = dict(sqlite3.connect(built["path"]).execute("SELECT name, value FROM metadata").fetchall())
    assert metadata["format"] == "pbf" and HAN.search(metadata["attribution"])
    assert [layer["id"] for layer in json.loads(metadata["json"])["vector_layers"]] == [
        "district", "landuse", "water", "roads", "labels"]


def tile_lines_as_wkt(z: int, x: int, y: int, features: list[dict]) -> list[str]:
    """The road lines of a decoded tile as WGS-84 WKT (tile units back to longitude and latitude)."""
    def lonlat(px: float, py: float) -> str:
        n = 1 << z
        lon = (x + px / 4096) / n * 360 - 180
        lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 1 - py / 4096) / n))))
        return f"{lon:.9f} {lat:.9f}"

    lines = []
    for feature in features:
        geometry = feature["geometry"]
        parts = geometry["coordinates"] if geometry["type"] == "MultiLineString" else [geometry["coordinates"]]
        lines += [f"LINESTRING({', '.join(lonlat(*point) for point in part)})" for part in parts if len(part) > 1]
    return lines


def test_roads_run_between_compounds_never_through_them(built, city_db):
    tiles = decoded(built, 17)
    sample = sorted(key for key, tile in tiles.items() if tile.get("roads"))[::9]
    assert len(sample) >= 20
    lines = [line for x, y in sample for line in tile_lines_as_wkt(17, x, y, tiles[(x, y)]["roads"]["features"])]
    assert len(lines) > 100
    crossing = """
        SELECT count(*) FROM unnest(%s::text[]) AS road(wkt)
        JOIN compound c ON c.valid_to IS NULL AND c.geom && ST_GeomFromText(road.wkt, 4326)
        WHERE ST_Intersects(ST_Buffer(ST_Transform(c.geom, 4548), -2.0),
                            ST_Transform(ST_GeomFromText(road.wkt, 4326), 4548))"""
    assert sql(city_db, crossing, (lines,))[0][0] == 0
    # the check sees a road through a compound: the line from a compound's west edge to its east edge
    west, middle, east = sql(city_db, """
        SELECT ST_XMin(geom), ST_Y(ST_PointOnSurface(geom)), ST_XMax(geom) FROM compound
        WHERE valid_to IS NULL ORDER BY code LIMIT 1""")[0]
    assert sql(city_db, crossing, ([f"LINESTRING({west} {middle}, {east} {middle})"],))[0][0] >= 1


def test_water_stays_out_of_the_compounds(built, city_db):
    tiles = decoded(built, 15)
    rings = []
    for (x, y), tile in tiles.items():
        for feature in tile.get("water", {}).get("features", []):
            geometry = feature["geometry"]
            polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
            outer = [{"geometry": {"type": "LineString", "coordinates": polygon[0]}} for polygon in polygons]
            rings += [f"POLYGON(({wkt[len('LINESTRING('):-1]}))" for wkt in tile_lines_as_wkt(15, x, y, outer)]
    kinds = {f["properties"]["kind"] for tile in tiles.values() for f in tile.get("water", {}).get("features", [])}
    assert kinds == {"river", "lake"} and len(rings) > 5
    inside = """
        SELECT count(*) FROM unnest(%s::text[]) AS water(wkt)
        JOIN compound c ON c.valid_to IS NULL AND c.geom && ST_GeomFromText(water.wkt, 4326)
        WHERE ST_Intersects(ST_Buffer(ST_Transform(c.geom, 4548), -2.0),
                            ST_Transform(ST_MakeValid(ST_GeomFromText(water.wkt, 4326)), 4548))"""
    assert sql(city_db, inside, (rings,))[0][0] == 0


def test_the_build_is_deterministic_and_skipped_when_the_city_is_unchanged(built, city_db, tmp_path):
    again = build_basemap(city_db, tmp_path / "again.mbtiles", road_names=("青年路", "东岳大街", "灵山大街"))
    assert read_all_tiles(again.path) == built["tiles"]
    assert again.fingerprint == built["report"].fingerprint
    unchanged = build_basemap(city_db, again.path, road_names=("青年路", "东岳大街", "灵山大街"), if_changed=True)
    assert not unchanged.built
    renamed = build_basemap(city_db, again.path, road_names=("泰山大街",), if_changed=True)
    assert renamed.built and renamed.fingerprint != again.fingerprint


def test_the_builder_never_overwrites_a_citys_own_file(city_db, tmp_path):
    from gis.errors import SetupError

    own = write_mbtiles(tmp_path / "own.mbtiles", {(10, 845, 401): png(1)}, "png")
    before = own.read_bytes()
    with pytest.raises(SetupError, match="不是 gridgov 生成的底图"):
        build_basemap(city_db, own)
    assert not build_basemap(city_db, own, if_changed=True).built  # `make demo` serves the city's own file
    assert own.read_bytes() == before


def test_the_built_file_is_served_as_stored(built, city_db):
    (z, x, y), stored = next((key, body) for key, body in sorted(built["tiles"].items()) if key[0] == 15)
    with client_for(city_db, built["path"]) as client:
        status, headers, sent = raw_get(client, f"/basemap/{z}/{x}/{y}.pbf", **{"Accept-Encoding": "gzip"})
        assert (status, headers["content-encoding"], sent) == (200, "gzip", stored)
        document = client.get("/basemap.json").json()
    assert (document["minzoom"], document["maxzoom"], document["format"]) == (10, 17, "pbf")
    west, south, east, north = document["bounds"]
    assert tile_range((0, 0, 1, 1), 0) == (range(0, 1), range(0, 1))
    city = sql(city_db, "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                        "(SELECT ST_Extent(geom) AS e FROM district WHERE valid_to IS NULL) s")[0]
    assert west <= city[0] and south <= city[1] and east >= city[2] and north >= city[3]


def test_the_command_builds_and_then_leaves_an_unchanged_city_alone(city_db, tmp_path, monkeypatch):
    from cli.main import app
    from gis.settings import database_settings

    monkeypatch.setenv("GRIDGOV_DATABASE_URL", city_db)
    monkeypatch.delenv("GRIDGOV_BASEMAP", raising=False)
    database_settings.cache_clear()
    basemap_settings.cache_clear()
    out = tmp_path / "demo.mbtiles"
    try:
        first = CliRunner().invoke(app, ["basemap", "build", "--out", str(out), "--max-zoom", "14"])
        second = CliRunner().invoke(app, ["basemap", "build", "--out", str(out), "--max-zoom", "14", "--if-changed"])
        looked = CliRunner().invoke(app, ["basemap", "info", str(out)])
    finally:
        database_settings.cache_clear()
        basemap_settings.cache_clear()
    assert first.exit_code == 0, first.output
    assert "tiles (z10:" in first.output and sorted({z for z, _, _ in read_all_tiles(out)}) == [10, 11, 12, 13, 14]
    assert second.exit_code == 0 and "up to date" in second.output
    assert looked.exit_code == 0 and "mbtiles, pbf, zoom 10-14" in looked.output


def test_a_broken_gzipped_tile_is_a_503_for_a_client_that_needs_it_decompressed(empty_db, tmp_path):
    broken = b"\x1f\x8b" + b"not gzip at all"
    path = write_mbtiles(tmp_path / "vector.mbtiles", {(13, 6760, 3210): broken}, "pbf")
    with client_for(empty_db, path) as client:
        status, headers, sent = raw_get(client, "/basemap/13/6760/3210.pbf", **{"Accept-Encoding": "gzip"})
        assert (status, sent) == (200, broken)  # as stored: the client's decoder is the judge
        answer = client.get("/basemap/13/6760/3210.pbf", headers={"Accept-Encoding": "identity"})
    assert answer.status_code == 503 and HAN.search(answer.json()["detail"])


def test_threads_reading_one_pmtiles_archive_each_get_their_own_tiles(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    tiles = {(6, x, y): png(x * 64 + y) for x in range(0, 64, 3) for y in range(0, 64, 5)}
    path = write_pmtiles(tmp_path / "many.pmtiles", tiles, TileType.PNG, Compression.NONE, leaf_size=5)
    opened = basemap_module.open_basemap(path)
    addresses = sorted(tiles) * 4
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda zxy: opened.tile(*zxy).body, addresses))
    opened.close()
    assert found == [tiles[zxy] for zxy in addresses]
