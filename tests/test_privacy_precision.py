"""The public's place precision on every public path, against the documented policy written out here.

Policy (README "Intake, tickets and roles", issue 12): the public sees a complaint's place snapped to a 0.0005°
lattice (about 50 m), on tiles, the map's GeoJSON, ticket lists, GeoJSON and tiles, Open311 GET, OGC and search.
The value is written in this file, never imported, so a change of the code's constant fails here.

Seeded complaints lie off the lattice (0.00017° and 0.00031° past a lattice line), so for each public coordinate
the test asserts that it is a multiple of 0.0005, that it differs from the stored point, and that it lies in the
stored point's own cell (within half a step): a coarser lattice or the exact point both fail.
"""

from __future__ import annotations

import math

import mapbox_vector_tile
import psycopg
import pytest

POLICY_STEP_DEG = 0.0005
"""The documented public lattice, in degrees."""
OFFSETS = (0.00017, 0.00031)
"""How far past a lattice line the seeded points lie, east and north."""
MARKER = "PRIV-"
PHONE = "13812345678"
MERCATOR_HALF = 20037508.342789244


@pytest.fixture(scope="module")
def seeded(city_db) -> dict[int, tuple[float, float]]:
    """Nine complaints on a 3 × 3 block of lattice cells inside the city, off the lattice; complaint id → point."""
    with psycopg.connect(city_db) as conn:
        lon, lat = conn.execute("""
            SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM micro_grid
                                          WHERE valid_to IS NULL ORDER BY code LIMIT 1 OFFSET 10) m""").fetchone()
        base_lon = math.floor(lon / POLICY_STEP_DEG) * POLICY_STEP_DEG
        base_lat = math.floor(lat / POLICY_STEP_DEG) * POLICY_STEP_DEG
        template = conn.execute(
            "SELECT category_code, match_level, street_code, community_code, grid_code, micro_grid_code, "
            "compound_code FROM complaint WHERE grid_code IS NOT NULL ORDER BY id LIMIT 1").fetchone()
        points = {}
        for i in range(3):
            for j in range(3):
                x = round(base_lon + i * POLICY_STEP_DEG + OFFSETS[0], 7)
                y = round(base_lat + j * POLICY_STEP_DEG + OFFSETS[1], 7)
                cid = conn.execute(
                    "INSERT INTO complaint (source, external_id, category_code, description, address, reported_at, "
                    "geom, match_level, placement, street_code, community_code, grid_code, micro_grid_code, "
                    "compound_code, reporter_name, reporter_phone) VALUES ('hotline', %s, %s, %s, %s, "
                    "now() - interval '1 hour', ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s, 'inside', %s, %s, %s, "
                    "%s, %s, '王女士', %s) RETURNING id",
                    (f"{MARKER}{i}{j}", template[0], f"楼道灯坏了，请联系{PHONE}", "泰山区某小区2号楼2单元301室",
                     x, y, *template[1:], PHONE)).fetchone()[0]
                points[cid] = (x, y)
    return points


def _ticket_to_complaint(url: str) -> dict[int, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT t.id, t.complaint_id FROM ticket t JOIN complaint c ON c.id = t.complaint_id "
                                 "WHERE c.external_id LIKE %s", (MARKER + "%",)).fetchall())


def _bbox(seeded) -> str:
    xs = [p[0] for p in seeded.values()]
    ys = [p[1] for p in seeded.values()]
    return f"{min(xs) - 0.001},{min(ys) - 0.001},{max(xs) + 0.001},{max(ys) + 0.001}"


def _assert_public_places(places: dict[int, list[tuple[float, float]]], seeded, tolerance: float = 1e-9) -> None:
    """Each seeded complaint was returned, and every place given for it obeys the policy."""
    assert set(places) == set(seeded), f"seeded complaints missing from the answer: {set(seeded) - set(places)}"
    for cid, found in places.items():
        assert found
        true_x, true_y = seeded[cid]
        for x, y in found:
            for value, true in ((x, true_x), (y, true_y)):
                steps = value / POLICY_STEP_DEG
                assert abs(steps - round(steps)) * POLICY_STEP_DEG <= tolerance, (cid, value, "not on the lattice")
                assert abs(value - true) > 10 * tolerance, (cid, value, "the exact stored coordinate")
                assert abs(value - true) <= POLICY_STEP_DEG / 2 + tolerance, (cid, value, true, "not its own cell")


def _features_places(collection: dict, ids: dict[int, int] | None = None) -> dict[int, list]:
    places: dict[int, list] = {}
    for feature in collection["features"]:
        fid = int(feature["id"]) if not isinstance(feature["id"], str) or feature["id"].isdigit() else None
        cid = ids.get(fid) if ids is not None else fid
        if cid is None:
            continue
        lon, lat = feature["geometry"]["coordinates"][:2]
        places.setdefault(cid, []).append((lon, lat))
    return places


def _only(places: dict[int, list], seeded) -> dict[int, list]:
    return {cid: found for cid, found in places.items() if cid in seeded}


def test_map_geojson(http, seeded):
    answer = http.get("/map/complaints.geojson", params={"bbox": _bbox(seeded)})
    assert answer.status_code == 200, answer.text
    _assert_public_places(_only(_features_places(answer.json()), seeded), seeded)


def test_tickets_list(http, city_db, seeded):
    ids = _ticket_to_complaint(city_db)
    answer = http.get("/tickets", params={"bbox": _bbox(seeded), "limit": 1000})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    items = body["items"] if isinstance(body, dict) else body
    places: dict[int, list] = {}
    for item in items:
        cid = ids.get(int(item["id"]))
        if cid is not None:
            places.setdefault(cid, []).append((item["lon"], item["lat"]))
    _assert_public_places(places, seeded)


def test_tickets_geojson(http, city_db, seeded):
    answer = http.get("/tickets.geojson", params={"bbox": _bbox(seeded), "limit": 1000})
    assert answer.status_code == 200, answer.text
    _assert_public_places(_only(_features_places(answer.json(), _ticket_to_complaint(city_db)), seeded), seeded)


def test_open311_list_and_single_requests(http, seeded):
    listed = http.get("/open311/v2/requests.json", params={"service_request_id": ",".join(map(str, seeded))})
    assert listed.status_code == 200, listed.text
    places: dict[int, list] = {}
    for record in listed.json():
        places.setdefault(int(record["service_request_id"]), []).append((float(record["long"]), float(record["lat"])))
    for cid in seeded:
        one = http.get(f"/open311/v2/requests/{cid}.json")
        assert one.status_code == 200, one.text
        for record in one.json():
            places.setdefault(int(record["service_request_id"]), []).append(
                (float(record["long"]), float(record["lat"])))
    _assert_public_places(_only(places, seeded), seeded)
    assert all(len(found) == 2 for found in places.values() if found)


def test_ogc_items_and_single_items(http, seeded):
    answer = http.get("/ogc/collections/complaint/items", params={"bbox": _bbox(seeded), "limit": 1000})
    assert answer.status_code == 200, answer.text
    places = _only(_features_places(answer.json()), seeded)
    for cid in seeded:
        one = http.get(f"/ogc/collections/complaint/items/{cid}")
        assert one.status_code == 200, one.text
        feature = one.json()
        lon, lat = feature["geometry"]["coordinates"][:2]
        places.setdefault(cid, []).append((lon, lat))
    _assert_public_places(places, seeded)


def test_search_by_ticket_number(http, city_db, seeded):
    with psycopg.connect(city_db) as conn:
        numbers = dict(conn.execute("SELECT id, external_id FROM complaint WHERE id = ANY(%s)",
                                    (list(seeded),)).fetchall())
    places: dict[int, list] = {}
    for cid, number in numbers.items():
        answer = http.get("/map/search.json", params={"q": number})
        assert answer.status_code == 200, answer.text
        for hit in answer.json():
            if hit["kind"] == "complaint" and int(hit["code"]) == cid:
                places.setdefault(cid, []).append((float(hit["lon"]), float(hit["lat"])))
                xmin, ymin, xmax, ymax = hit["bbox"]
                places[cid].append((xmin, ymin))
                places[cid].append((xmax, ymax))
    _assert_public_places(places, seeded, tolerance=1e-6)


# -- tiles: decoded, tile units turned back into degrees ---------------------------------------------------------


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _degrees(px: float, py: float, extent: int, z: int, x: int, y: int) -> tuple[float, float]:
    """Tile units (y pointing down) of tile z/x/y back to lon/lat."""
    size = 2 * MERCATOR_HALF / (1 << z)
    mx = -MERCATOR_HALF + x * size + px / extent * size
    my = MERCATOR_HALF - y * size - py / extent * size
    return math.degrees(mx / 6378137.0), math.degrees(2 * math.atan(math.exp(my / 6378137.0)) - math.pi / 2)


def _tile_places(http, path: str, seeded, ids: dict[int, int] | None, z: int = 18) -> dict[int, list]:
    centre = next(iter(seeded.values()))
    cx, cy = _tile_of(*centre, z)
    places: dict[int, list] = {}
    tiles_read = 0
    for dx in (-2, -1, 0, 1, 2):
        for dy in (-2, -1, 0, 1, 2):
            x, y = cx + dx, cy + dy
            answer = http.get(path.format(z=z, x=x, y=y))
            assert answer.status_code in (200, 204), answer.text
            if answer.status_code == 204:
                continue
            tiles_read += 1
            for layer in mapbox_vector_tile.decode(answer.content, default_options={"y_coord_down": True}).values():
                for feature in layer["features"]:
                    # the feature's id, or its `id` attribute where the layer keeps ids as attributes
                    fid = int(feature.get("id") or feature["properties"].get("id") or 0)
                    cid = ids.get(fid) if ids is not None else fid
                    if cid not in seeded or feature["geometry"]["type"] != "Point":
                        continue
                    px, py = feature["geometry"]["coordinates"]
                    lon, lat = _degrees(px, py, layer["extent"], z, x, y)
                    # a point in a tile's buffer is also drawn by its neighbour: keep those inside the tile
                    if 0 <= px <= layer["extent"] and 0 <= py <= layer["extent"]:
                        places.setdefault(cid, []).append((lon, lat))
    assert tiles_read > 0
    return places


def test_complaint_tiles(http, seeded):
    # at zoom 18 a tile unit is under 4 cm: 1e-6° tells the lattice from the 17 m and 34 m offsets
    _assert_public_places(_tile_places(http, "/tiles/complaint/{z}/{x}/{y}.mvt", seeded, None), seeded,
                          tolerance=1e-6)


def test_ticket_tiles(http, city_db, seeded):
    _assert_public_places(_tile_places(http, "/tickets/tiles/{z}/{x}/{y}.mvt", seeded, _ticket_to_complaint(city_db)),
                          seeded, tolerance=1e-6)


# -- beyond the place: what the old tests locked in (issue 21) -----------------------------------------------------


def test_planners_read_no_phone_numbers_in_descriptions(http, city_db, seeded):
    """A planner reads complaint text through OGC with phone numbers masked, as Open311 masks them."""
    from gis.access import auth
    from gis.db.engine import async_engine

    async def make() -> None:
        engine = async_engine(city_db)
        async with engine.begin() as conn:
            await auth.create_user(conn, "privacy-planner", "correct horse battery", "planner")
        await engine.dispose()

    import asyncio

    asyncio.run(make())
    token = http.post("/auth/login", json={"username": "privacy-planner", "password": "correct horse battery"}
                      ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    read = 0
    for cid in seeded:
        answer = http.get(f"/ogc/collections/complaint/items/{cid}", headers=headers)
        assert answer.status_code == 200, answer.text
        assert PHONE not in answer.text
        read += 1
    listed = http.get("/ogc/collections/complaint/items", params={"bbox": _bbox(seeded)}, headers=headers)
    assert listed.status_code == 200 and listed.json()["features"]
    assert PHONE not in listed.text
    assert read == len(seeded)
