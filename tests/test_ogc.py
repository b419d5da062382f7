"""OGC API - Features: read through GDAL's OAPIF driver and over plain HTTP, checked against the database.

The checks follow the OGC conformance suite ets-ogcapi-features10: landing page links, conformance classes,
collection metadata, limit bounds, bbox, datetime, paging links and 404s.
"""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from gis.db.engine import libpq_url

# -- a small city of our own ------------------------------------------------------------------------------------
# Rectangles nested four ways per level keep expected counts and extents easy to state independently of the
# code under test; the demo-city loader is used instead when it is available (see `ogc_city_db`).

WEST, SOUTH, EAST, NORTH = 117.04, 36.14, 117.16, 36.26
DISTRICT = "370902"
POLICY_PUBLIC_GRID_DEG = 0.0005
"""The public's place lattice as the README's privacy table states it: written here, not read from the code."""


def _rect(x0: float, y0: float, x1: float, y1: float) -> str:
    return f"SRID=4326;MULTIPOLYGON((({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0})))"


def _split(box, rows: int, cols: int):
    x0, y0, x1, y1 = box
    width, height = (x1 - x0) / cols, (y1 - y0) / rows
    # numbered west to east, north to south, like unit grids
    for row in range(rows):
        for col in range(cols):
            top = y1 - row * height
            yield (x0 + col * width, top - height, x0 + (col + 1) * width, top)


def seed_city(url: str, complaints: int = 1500, seed: int = 3) -> None:
    """Insert a small nested city: 1 district, 2 streets, 8 communities, 32 grids, 128 micro-grids and
    compounds, 1,152 buildings, party organisations, and `complaints` complaints with reporters."""
    rng = random.Random(seed)
    rows: dict[str, list[tuple]] = {name: [] for name in (
        "street", "community", "grid", "micro_grid", "compound", "building", "party_organisation")}
    district_box = (WEST, SOUTH, EAST, NORTH)
    grids = []
    for s, street_box in enumerate(_split(district_box, 1, 2), start=1):
        street = f"{DISTRICT}{s:03d}"
        rows["street"].append((street, f"第{s}街道", street, _rect(*street_box)))
        for c, community_box in enumerate(_split(street_box, 2, 2), start=1):
            community = f"{street}{c:03d}"
            rows["community"].append((community, f"{s}-{c}社区", street, _rect(*community_box)))
            rows["party_organisation"].append((f"P{community}", "community_committee", f"{s}-{c}社区党委",
                                               community, f"书记{s}{c}", f"1380000{s}{c:03d}", 30))
            compound_serial = 0
            for g, grid_box in enumerate(_split(community_box, 2, 2), start=1):
                grid = f"{community}{g:03d}"
                rows["grid"].append((grid, f"{s}-{c}-{g}网格", community, 100 * g, _rect(*grid_box)))
                rows["party_organisation"].append((f"P{grid}", "grid_branch", f"{s}-{c}-{g}网格党支部", grid,
                                                   f"支书{s}{c}{g}", None, 8))
                grids.append((grid, community, street, grid_box))
                for m, micro_box in enumerate(_split(grid_box, 2, 2), start=1):
                    micro = f"{grid}{m:03d}"
                    compound_serial += 1
                    compound = f"{community}C{compound_serial:04d}"
                    rows["micro_grid"].append((micro, f"{s}-{c}-{g}-{m}微网格", grid, compound, 40,
                                               _rect(*micro_box)))
                    rows["compound"].append((compound, f"幸福{s}{c}{g}{m}小区", community, grid,
                                             1980 + rng.randrange(40), rng.random() < 0.3, 20000.0, 300,
                                             "professional", _rect(*micro_box)))
                    for b, building_box in enumerate(_split(micro_box, 3, 3), start=1):
                        bx0, by0, bx1, by1 = building_box
                        dx, dy = (bx1 - bx0) * 0.2, (by1 - by0) * 0.3
                        rows["building"].append((f"{micro}{b:03d}", f"{b}号楼", micro, compound, b, 6, 2, 24,
                                                 _rect(bx0 + dx, by0 + dy, bx1 - dx, by1 - dy)))
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    complaint_rows = []
    for i in range(complaints):
        grid, community, street, (x0, y0, x1, y1) = grids[rng.randrange(len(grids))]
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        reported = start + timedelta(minutes=rng.randrange(365 * 24 * 60))
        complaint_rows.append(("hotline", f"E{i}", "noise" if i % 3 else "parking", f"投诉{i}", f"地址{i}",
                               reported, f"SRID=4326;POINT({x} {y})", street, community, grid,
                               f"居民{i}", f"139{i:08d}"))
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT code FROM category ORDER BY code LIMIT 2")
        categories = [row[0] for row in cur.fetchall()]
        complaint_rows = [row[:2] + (categories[0] if row[2] == "noise" else categories[-1],) + row[3:]
                          for row in complaint_rows]
        cur.execute("INSERT INTO district (code, name, geom) VALUES (%s, %s, %s)",
                    (DISTRICT, "泰山区", _rect(*district_box)))
        cur.executemany("INSERT INTO street (code, name, district_code, geom) VALUES (%s, %s, %s, %s)",
                        [(code, name, DISTRICT, geom) for code, name, _, geom in rows["street"]])
        cur.executemany("INSERT INTO community (code, name, street_code, geom) VALUES (%s, %s, %s, %s)",
                        rows["community"])
        cur.executemany("INSERT INTO grid (code, name, community_code, households, geom) "
                        "VALUES (%s, %s, %s, %s, %s)", rows["grid"])
        # an earlier shape of the first grid, closed when the current one began
        first = rows["grid"][0]
        cur.execute("UPDATE grid SET valid_from = DATE '2022-01-01' WHERE code = %s", (first[0],))
        cur.execute("INSERT INTO grid (code, name, community_code, households, geom, valid_from, valid_to) "
                    "VALUES (%s, %s, %s, %s, ST_Multi(ST_Buffer(%s::geometry, -0.001)), DATE '2000-01-01', "
                    "DATE '2022-01-01')", (first[0], first[1] + "(旧)", first[2], 50, first[4]))
        cur.executemany("INSERT INTO micro_grid (code, name, grid_code, compound_code, households, geom) "
                        "VALUES (%s, %s, %s, %s, %s, %s)", rows["micro_grid"])
        cur.executemany("INSERT INTO compound (code, name, community_code, grid_code, build_year, is_old_estate, "
                        "floor_area_m2, households, management_mode, geom) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows["compound"])
        cur.executemany("INSERT INTO building (code, name, micro_grid_code, compound_code, number, floors, units, "
                        "households, geom) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows["building"])
        cur.executemany("INSERT INTO party_organisation (code, kind, name, unit_code, secretary_name, "
                        "secretary_phone, member_count) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        rows["party_organisation"])
        with cur.copy("COPY complaint (source, external_id, category_code, description, address, reported_at, "
                      "geom, street_code, community_code, grid_code, reporter_name, reporter_phone, "
                      "match_level, placement) FROM STDIN") as copy:
            for row in complaint_rows:
                copy.write_row(row + ("coordinates", "inside"))
        cur.execute("ANALYZE")


# -- fixtures ----------------------------------------------------------------------------------------------------

import asyncio  # noqa: E402
import subprocess  # noqa: E402

import pyogrio  # noqa: E402
from conftest import LiveServer, _clone  # noqa: E402

from gis.access.auth import PUBLIC, Principal  # noqa: E402
from gis.db.engine import async_engine  # noqa: E402
from gis.serve import features  # noqa: E402

COLLECTION_IDS = ("district", "street", "community", "grid", "micro_grid", "compound", "building",
                  "party_organisation", "complaint")
PERSONAL_KEYS = {"reporter_name", "reporter_phone", "secretary_name", "secretary_phone"}


@pytest.fixture(scope="module")
def seeded_db(pg_cluster, empty_template) -> str:
    url = _clone(pg_cluster, empty_template)
    seed_city(url)
    return url


@pytest.fixture(scope="module")
def server(seeded_db):
    live = LiveServer(seeded_db)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server):
    with server.client() as http_client:
        yield http_client


def db_rows(url: str, sql: str, params=None) -> list[tuple]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql, params).fetchall()


def expected_count(url: str, collection_id: str) -> int:
    where = "WHERE valid_to IS NULL" if collection_id in features.LAYERS else ""
    return db_rows(url, f"SELECT count(*) FROM {collection_id} {where}")[0][0]


def expected_extent(url: str, collection_id: str) -> list[float]:
    if collection_id == "party_organisation":
        # every organisation of the seed serves a community or a grid
        sql = ("SELECT ST_Extent(u.geom) FROM party_organisation p JOIN (SELECT code, geom FROM community "
               "WHERE valid_to IS NULL UNION ALL SELECT code, geom FROM grid WHERE valid_to IS NULL) u "
               "ON u.code = p.unit_code")
    else:
        where = "WHERE valid_to IS NULL" if collection_id in features.LAYERS else ""
        sql = f"SELECT ST_Extent(geom) FROM {collection_id} {where}"
    sql = f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM ({sql}) s(e)"
    return [float(v) for v in db_rows(url, sql)[0]]


def run_service(url: str, coroutine_factory):
    async def main():
        engine = async_engine(url)
        try:
            return await coroutine_factory(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


# -- landing page, conformance, API definition -------------------------------------------------------------------


def test_landing_page_links_resolve(client):
    page = client.get("/ogc")
    assert page.status_code == 200 and page.headers["content-type"].startswith("application/json")
    links = {link["rel"]: link for link in page.json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(links)
    for rel in ("service-desc", "conformance", "data"):
        assert all(key in links[rel] for key in ("href", "rel", "type"))
        assert client.get(links[rel]["href"]).status_code == 200


def test_conformance_declares_core_geojson_oas30(client):
    classes = client.get("/ogc/conformance").json()["conformsTo"]
    for name in ("core", "geojson", "oas30"):
        assert f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{name}" in classes


def test_api_definition_is_openapi_30_with_items_parameters(client):
    response = client.get("/ogc/api")
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    document = response.json()
    assert document["openapi"].startswith("3.0")
    assert '"type": "null"' not in json.dumps(document)
    items = document["paths"]["/ogc/collections/{collection_id}/items"]["get"]
    limit = next(p for p in items["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == features.MAX_LIMIT and limit["schema"]["minimum"] == 1


# -- collections -------------------------------------------------------------------------------------------------


def test_collections_metadata_with_extents_from_the_data(client, seeded_db):
    listing = client.get("/ogc/collections").json()
    by_id = {collection["id"]: collection for collection in listing["collections"]}
    assert set(by_id) == set(COLLECTION_IDS)
    for collection_id, collection in by_id.items():
        rels = {link["rel"]: link["type"] for link in collection["links"]}
        assert rels["items"] == "application/geo+json" and "self" in rels
        assert collection["itemType"] == "feature"
        bbox = collection["extent"]["spatial"]["bbox"][0]
        expected = expected_extent(seeded_db, collection_id)
        tolerance = POLICY_PUBLIC_GRID_DEG if collection_id == "complaint" else 1e-6
        assert bbox == pytest.approx(expected, abs=tolerance), collection_id
        assert client.get(f"/ogc/collections/{collection_id}").json()["id"] == collection_id
    first, last = db_rows(seeded_db, "SELECT min(reported_at), max(reported_at) FROM complaint")[0]
    interval = by_id["complaint"]["extent"]["temporal"]["interval"][0]
    assert [datetime.fromisoformat(value.replace("Z", "+00:00")) for value in interval] == [first, last]
    assert by_id["grid"]["extent"]["temporal"]["interval"][0] == ["2000-01-01T00:00:00Z", None]


def test_unknown_collection_and_feature_are_404(client):
    assert client.get("/ogc/collections/nothing").status_code == 404
    assert client.get("/ogc/collections/nothing/items").status_code == 404
    assert client.get("/ogc/collections/grid/items/999999999999999").status_code == 404
    assert client.get("/ogc/collections/complaint/items/abc").status_code == 404
    assert client.get("/ogc/collections/complaint/items/99999999").status_code == 404
    assert client.get("/ogc/collections/grid/items/370902001001001@nonsense").status_code == 404


# -- GDAL's OAPIF driver -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("collection_id", COLLECTION_IDS)
def test_gdal_reads_every_collection_page_by_page(server, seeded_db, collection_id):
    frame = pyogrio.read_dataframe(f"OAPIF:{server.url}/ogc", layer=collection_id, PAGE_SIZE="300")
    assert len(frame) == expected_count(seeded_db, collection_id)
    tolerance = POLICY_PUBLIC_GRID_DEG if collection_id == "complaint" else 1e-6
    assert list(frame.total_bounds) == pytest.approx(expected_extent(seeded_db, collection_id), abs=tolerance)
    assert not PERSONAL_KEYS & set(frame.columns)
    if "code" in frame.columns:
        assert frame["code"].is_unique


def test_ogrinfo_summary_counts_and_extent(server, seeded_db):
    result = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{server.url}/ogc", "building"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert f"Feature Count: {expected_count(seeded_db, 'building')}" in result.stdout
    west, south, east, north = expected_extent(seeded_db, "building")
    assert f"Extent: ({west:.6f}, {south:.6f}) - ({east:.6f}, {north:.6f})" in result.stdout


# -- items: paging, limit, bbox, datetime, property filters ------------------------------------------------------


def test_paging_by_next_links_visits_every_feature_once(client, seeded_db):
    url, seen, pages = "/ogc/collections/building/items?limit=100", [], 0
    while url:
        response = client.get(url)
        assert response.headers["content-type"].startswith("application/geo+json")
        page = response.json()
        pages += 1
        rels = {link["rel"]: link["href"] for link in page["links"]}
        assert page["numberReturned"] == len(page["features"]) <= 100
        assert page["numberMatched"] == 1152
        assert ("prev" in rels) == (pages > 1)
        seen += [feature["id"] for feature in page["features"]]
        url = rels.get("next")
    expected = [row[0] for row in db_rows(seeded_db, "SELECT code FROM building WHERE valid_to IS NULL ORDER BY code")]
    assert seen == expected and pages == 12


def test_limit_bounds(client):
    assert client.get("/ogc/collections/building/items?limit=0").status_code == 400
    assert client.get("/ogc/collections/building/items?limit=ten").status_code == 400
    assert client.get("/ogc/collections/building/items?offset=-1").status_code == 400
    page = client.get("/ogc/collections/building/items?limit=20000").json()  # above the maximum: the maximum
    assert page["numberReturned"] == 1152
    assert client.get("/ogc/collections/building/items").json()["numberReturned"] == features.DEFAULT_LIMIT


def test_bbox_returns_exactly_the_intersecting_features(client, seeded_db):
    box = (117.05, 36.17, 117.09, 36.21)
    page = client.get("/ogc/collections/building/items", params={"bbox": ",".join(map(str, box)),
                                                                 "limit": 5000}).json()
    expected = {row[0] for row in db_rows(
        seeded_db, "SELECT code FROM building WHERE valid_to IS NULL AND geom && ST_MakeEnvelope(%s,%s,%s,%s,4326)",
        box)}
    assert {feature["id"] for feature in page["features"]} == expected and 0 < len(expected) < 1152
    assert page["numberMatched"] == len(expected)
    for bad in ("1,2,3", "a,b,c,d", "117,40,118,36", "117,36,118,95"):
        assert client.get("/ogc/collections/building/items", params={"bbox": bad}).status_code == 400
    assert client.get("/ogc/collections/building/items",
                      params={"bbox": "0,0,1,1", "bbox-crs": "EPSG:3857"}).status_code == 400


def test_datetime_on_complaints_and_on_boundary_versions(client, seeded_db):
    page = client.get("/ogc/collections/complaint/items",
                      params={"datetime": "2024-03-01T00:00:00Z/2024-03-31", "limit": 10000}).json()
    expected = db_rows(seeded_db, "SELECT count(*) FROM complaint WHERE reported_at >= '2024-03-01' "
                                  "AND reported_at < '2024-04-01'")[0][0]
    assert page["numberMatched"] == page["numberReturned"] == expected > 0
    open_ended = client.get("/ogc/collections/complaint/items", params={"datetime": "2024-12-01/.."}).json()
    assert open_ended["numberMatched"] == db_rows(
        seeded_db, "SELECT count(*) FROM complaint WHERE reported_at >= '2024-12-01'")[0][0]
    old = client.get("/ogc/collections/grid/items", params={"datetime": "2010-06-01", "limit": 100}).json()
    ids = {feature["id"] for feature in old["features"]}
    assert "370902001001001@2000-01-01" in ids and "370902001001001" not in ids and len(ids) == 32
    assert client.get("/ogc/collections/grid/items/370902001001001@2000-01-01").json()["properties"][
        "valid_to"] == "2022-01-01"
    assert client.get("/ogc/collections/complaint/items", params={"datetime": "yesterday"}).status_code == 400
    assert client.get("/ogc/collections/party_organisation/items",
                      params={"datetime": "2024-01-01"}).status_code == 400


def test_property_filters_and_unknown_parameters(client, seeded_db):
    grid = "370902002001003"
    page = client.get("/ogc/collections/complaint/items", params={"grid_code": grid, "limit": 1000}).json()
    expected = db_rows(seeded_db, "SELECT count(*) FROM complaint WHERE grid_code = %s", (grid,))[0][0]
    assert page["numberMatched"] == expected > 0
    assert all(feature["properties"]["grid_code"] == grid for feature in page["features"])
    assert client.get("/ogc/collections/building/items", params={"floors": 6}).json()["numberMatched"] == 1152
    assert client.get("/ogc/collections/building/items", params={"floors": "six"}).status_code == 400
    assert client.get("/ogc/collections/building/items", params={"colour": "red"}).status_code == 400
    # the public may not filter on what it may not see
    assert client.get("/ogc/collections/complaint/items", params={"reporter_name": "居民1"}).status_code == 400


def test_single_feature_matches_the_database(client, seeded_db):
    code, coordinates = db_rows(seeded_db, "SELECT code, ST_AsGeoJSON(geom)::json->'coordinates' FROM building "
                                           "ORDER BY code LIMIT 1 OFFSET 77")[0]
    response = client.get(f"/ogc/collections/building/items/{code}")
    assert response.headers["content-type"].startswith("application/geo+json")
    feature = response.json()
    assert feature["id"] == code and feature["properties"]["code"] == code
    got = [point for ring in feature["geometry"]["coordinates"][0] for point in ring]
    want = [point for ring in coordinates[0] for point in ring]
    assert len(got) == len(want) and all(a == pytest.approx(b, abs=1e-7) for p, q in zip(got, want)
                                         for a, b in zip(p, q))
    assert {link["rel"] for link in feature["links"]} == {"self", "collection"}


# -- roles and personal data -------------------------------------------------------------------------------------


def test_public_complaints_are_anonymised_and_coarsened(client, seeded_db):
    page = client.get("/ogc/collections/complaint/items", params={"limit": 200}).json()
    exact = dict(db_rows(seeded_db, "SELECT id, ARRAY[ST_X(geom), ST_Y(geom)] FROM complaint"))
    grid = POLICY_PUBLIC_GRID_DEG
    for feature in page["features"]:
        assert not {"reporter_name", "reporter_phone", "description", "address", "building_code"} & set(
            feature["properties"])
        x, y = feature["geometry"]["coordinates"]
        assert round(x / grid) * grid == pytest.approx(x, abs=1e-9)
        assert abs(x - exact[feature["id"]][0]) <= grid / 2 + 1e-9
        assert abs(y - exact[feature["id"]][1]) <= grid / 2 + 1e-9
    assert "secretary_phone" not in client.get("/ogc/collections/party_organisation/items").text


def test_staff_see_personal_data_within_their_scope_only(seeded_db):
    community = "370902001002"
    staff = Principal(role="community", username="c1", scope=(community,))
    planner = Principal(role="planner", username="p1")
    service = features.FeatureService()
    collection = features.get_collection("complaint")

    async def read(engine):
        results = {}
        for name, principal in (("staff", staff), ("planner", planner), ("public", PUBLIC)):
            request = features.items_request(collection, principal, {"limit": "10000"})
            body, returned, matched = await service.items(engine, "complaint", principal, request)
            results[name] = (json.loads(body), matched)
        with pytest.raises(features.NotFound):
            outside = db_rows(seeded_db, "SELECT id FROM complaint WHERE community_code <> %s LIMIT 1",
                              (community,))[0][0]
            await service.feature(engine, "complaint", str(outside), staff)
        parties = await service.items(engine, "party_organisation", staff,
                                      features.items_request(features.get_collection("party_organisation"), staff,
                                                             {}))
        return results, json.loads(parties[0])

    results, parties = run_service(seeded_db, read)
    staff_features, staff_matched = results["staff"]
    expected = db_rows(seeded_db, "SELECT count(*) FROM complaint WHERE community_code = %s", (community,))[0][0]
    assert staff_matched == len(staff_features) == expected > 0
    assert all(f["properties"]["community_code"] == community for f in staff_features)
    assert all(f["properties"]["reporter_phone"].startswith("139") for f in staff_features)
    planner_features, planner_matched = results["planner"]
    assert planner_matched == 1500
    assert all("description" in f["properties"] and "reporter_name" not in f["properties"] for f in planner_features)
    # planners read the text with phone numbers masked, never the numbers themselves
    assert not any(re.search(r"1[3-9]\d{9}", f["properties"]["description"] or "") for f in planner_features)
    # a community user reads the secretaries of its own chain of units only (street above, grids below)
    shown = [f for f in parties if f["properties"].get("secretary_name")]
    assert shown and all(community.startswith(f["properties"]["unit_code"])
                         or f["properties"]["unit_code"].startswith(community) for f in shown)
    assert any(f["properties"].get("secretary_name") is None for f in parties)
