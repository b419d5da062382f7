"""Hardening over real HTTP: security headers on every kind of response, request ids, the request body limit,
and hostile input (huge, nested, NaN, out-of-range, injected, wrongly encoded) answered with a clear 4xx while
the server stays up."""

from __future__ import annotations

import json
import re

import pytest
from conftest import LiveServer

URLS_OF_EVERY_KIND = [
    "/health",  # JSON
    "/map",  # the HTML page
    "/static/map/main.js",  # a static asset (the map's entry module)
    "/layers/community.geojson",  # GeoJSON
    "/tiles/building/15/27036/12971.mvt",  # a vector tile
    "/no/such/path",  # a 404 from the router
    "/layers/community.geojson?bbox=a,b,c,d",  # a 400 from the typed errors
    "/tickets?limit=-1",  # a 422 from validation
]


@pytest.fixture(scope="module")
def live_app(city_db):
    """The module's server, with small body limits so the limit tests send kilobytes, not megabytes."""
    server = LiveServer(city_db, {"GRIDGOV_HARDENING_MAX_BODY_BYTES": "4096",
                                  "GRIDGOV_HARDENING_MAX_UPLOAD_BYTES": "65536"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def small_limits(live_app):
    return live_app


@pytest.mark.parametrize("path", URLS_OF_EVERY_KIND)
def test_security_headers_on_every_response(http, path):
    response = http.get(path, follow_redirects=False)
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert re.search(r"script-src 'self'(;|$)", policy), policy
    # no foreign origin anywhere unless an operator configures a base map
    assert "http:" not in policy and "https:" not in policy and "*" not in policy
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])


def test_error_responses_are_json_with_the_headers(http):
    response = http.get("/layers/community.geojson?bbox=a,b,c,d")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert "bbox" in response.json()["detail"]


def test_the_map_page_loads_nothing_from_elsewhere(http):
    page = http.get("/map").text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script>" not in page.replace(" ", "")  # inline scripts would be blocked by the policy


def test_a_configured_base_map_is_the_only_foreign_origin(monkeypatch):
    from api.middleware import content_security_policy
    from gis.settings import api_settings

    monkeypatch.setenv("GRIDGOV_API_BASE_TILE_URL", "https://{s}.tiles.example.org/{z}/{x}/{y}.png")
    api_settings.cache_clear()
    try:
        policy = content_security_policy()
    finally:
        monkeypatch.delenv("GRIDGOV_API_BASE_TILE_URL")
        api_settings.cache_clear()
    image_sources = re.search(r"img-src ([^;]*)", policy).group(1)
    assert "https://*.tiles.example.org" in image_sources
    assert re.search(r"script-src 'self';", policy) and re.search(r"connect-src 'self';", policy)


def test_request_ids_are_echoed_only_when_safe(http):
    assert http.get("/health", headers={"X-Request-ID": "abc-123.x"}).headers["x-request-id"] == "abc-123.x"
    # a value that could split or pollute log lines is replaced, never echoed
    for hostile in ("a b", "x" * 65, "id;drop", "é"):
        echoed = http.get("/health", headers={"X-Request-ID": hostile.encode("utf-8")})
        assert echoed.headers["x-request-id"] != hostile
        assert re.fullmatch(r"[0-9a-f]{32}", echoed.headers["x-request-id"])


# --- body limits --------------------------------------------------------------------------------------------

def test_an_oversized_json_body_is_refused_before_it_is_read(small_limits):
    with small_limits.client() as client:
        body = json.dumps({"username": "x" * 10_000, "password": "y"})
        response = client.post("/auth/login", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert "4096" in response.json()["detail"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert client.get("/health").status_code == 200


def test_an_oversized_streamed_body_without_length_is_cut(small_limits):
    def chunks():
        for _ in range(64):
            yield b"a" * 1024

    with small_limits.client() as client:
        response = client.post("/open311/v2/requests.json", content=chunks(),
                               headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.status_code == 413
    with small_limits.client() as client:
        assert client.get("/health").status_code == 200


def test_uploads_have_their_own_larger_limit(small_limits):
    with small_limits.client() as client:
        # 20 KB of multipart passes the 4 KB body limit (it is an upload) and reaches the route: not a 413
        small_file = {"file": ("export.csv", b"a,b\n" + b"1,2\n" * 5000, "text/csv")}
        assert client.post("/complaints/imports", files=small_file).status_code in (401, 403)
        big_file = {"file": ("export.csv", b"a,b\n" + b"1,2\n" * 40_000, "text/csv")}
        assert client.post("/complaints/imports", files=big_file).status_code == 413


def test_a_lying_content_length_is_a_400(small_limits):
    raw = (b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 12abc\r\n\r\n{}")
    import socket

    with socket.create_connection(("127.0.0.1", small_limits.port), timeout=5) as sock:
        sock.sendall(raw)
        answer = sock.recv(4096)
    # uvicorn's parser may refuse it first; either way a 400, never a 500
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]


# --- hostile input ------------------------------------------------------------------------------------------

HOSTILE_TEXT = [
    "'; DROP TABLE complaint; --",
    "\" OR 1=1 --",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "%' OR '%'='",
    "\\x00\\",
    "𠀀" * 100,
    "x" * 5000,
]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_injected_text_in_search_is_only_text(http, text):
    response = http.get("/map/search.json", params={"q": text})
    assert response.status_code in (200, 400, 422), response.text[:200]
    if response.status_code == 200:
        assert isinstance(response.json(), list)
    assert http.get("/health").json()["status"] == "ok"


def test_a_nul_byte_in_text_is_a_4xx(http):
    response = http.get("/map/search.json", params={"q": "abc\x00def"})
    assert response.status_code in (200, 400, 422), response.text[:200]


BAD_BBOXES = ["nan,nan,nan,nan", "inf,-inf,1,2", "-200,36,117,37", "117,36,116,35", "117,-95,118,95",
              "1e309,0,1,1", "117.1,36.1,117.2", "117,36,118,37,5", "", ",,,"]


@pytest.mark.parametrize("bbox", BAD_BBOXES)
@pytest.mark.parametrize("path", ["/layers/building.geojson", "/ogc/collections/building/items",
                                  "/map/complaints.geojson", "/map/party-organisations.geojson"])
def test_bad_bounding_boxes_are_4xx(http, path, bbox):
    response = http.get(path, params={"bbox": bbox})
    assert response.status_code < 500, (path, bbox, response.status_code, response.text[:300])


@pytest.mark.parametrize("lon,lat", [("nan", "36.2"), ("117.1", "inf"), ("400", "36"), ("117", "-91"),
                                     ("1e400", "1"), ("abc", "1")])
def test_responsibility_at_impossible_points_is_4xx(http, lon, lat):
    response = http.get("/responsibility", params={"lon": lon, "lat": lat})
    assert 400 <= response.status_code < 500, (lon, lat, response.status_code, response.text[:300])


def test_deeply_nested_json_is_a_4xx(http):
    nested = "[" * 100_000 + "]" * 100_000
    response = http.post("/auth/login", content=nested, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    assert http.get("/health").status_code == 200


def test_wrong_json_types_and_encodings_are_4xx(http):
    for body, content_type in [
        (b"\xff\xfe{\x00}\x00", "application/json"),
        ("{\"username\": \"张三\", \"password\": \"口令\"}".encode("gbk"), "application/json"),
        (b"{\"username\": 5, \"password\": []}", "application/json"),
        (b"not json", "application/json"),
        (b"{\"username\": \"a\", \"password\": \"b\"}", "text/plain"),
    ]:
        response = http.post("/auth/login", content=body, headers={"content-type": content_type})
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text[:200])


@pytest.mark.parametrize("tile", ["/tiles/building/99/1/1.mvt", "/tiles/building/15/-1/0.mvt",
                                  "/tiles/building/3/8/8.mvt", "/tiles/nope/1/1/1.mvt",
                                  "/tiles/building/15/99999999999999999999/1.mvt"])
def test_impossible_tiles_are_4xx(http, tile):
    assert 400 <= http.get(tile).status_code < 500


def test_geojson_is_declared_as_geojson(http):
    everywhere = {"bbox": "116,35,118,37"}
    for path, params in [("/layers/community.geojson", {}), ("/ogc/collections/community/items", {}),
                         ("/map/complaints.geojson", everywhere), ("/map/party-organisations.geojson", everywhere)]:
        response = http.get(path, params=params)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("application/geo+json"), path
        assert response.json()["type"] == "FeatureCollection"


def test_geojson_is_declared_as_geojson_in_the_openapi_document(http):
    paths = http.get("/openapi.json").json()["paths"]
    undeclared = [
        path for path, operations in paths.items()
        if (path.endswith(".geojson") or path.endswith("/items") or path.endswith("/items/{feature_id}"))
        and "application/geo+json" not in operations["get"]["responses"].get("200", {}).get("content", {})
    ]
    assert undeclared == []
