"""Open311 GeoReport v2 over real HTTP: every call in JSON and XML, and each error case."""

from __future__ import annotations

from xml.etree import ElementTree

import psycopg
import pytest

from gis.intake.open311 import new_api_key

FORMATS = ("json", "xml")


@pytest.fixture(scope="module")
def api_key(city_db) -> str:
    return new_api_key(city_db, "test-client")


@pytest.fixture(scope="module")
def building(city_db) -> dict:
    """A building with its compound, community and a point inside it."""
    with psycopg.connect(city_db) as conn:
        row = conn.execute("""
            SELECT b.code, b.number, b.micro_grid_code, c.code, c.name, cm.name, s.name,
                   ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom))
            FROM building b JOIN compound c ON c.code = b.compound_code
            JOIN community cm ON cm.code = c.community_code JOIN street s ON s.code = cm.street_code
            WHERE b.valid_to IS NULL ORDER BY b.code LIMIT 1 OFFSET 7""").fetchone()
    keys = ("code", "number", "micro_grid_code", "compound_code", "compound", "community", "street", "lon", "lat")
    return dict(zip(keys, row))


def _xml(response) -> ElementTree.Element:
    assert response.headers["content-type"].startswith("text/xml")
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ElementTree.fromstring(response.content)


def _errors(response, fmt: str) -> list[dict]:
    if fmt == "json":
        return response.json()
    return [{"code": int(e.findtext("code")), "description": e.findtext("description")}
            for e in _xml(response).findall("error")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_discovery(http, fmt):
    response = http.get(f"/open311/v2/discovery.{fmt}")
    assert response.status_code == 200
    if fmt == "json":
        endpoint = response.json()["endpoints"][0]
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert endpoint["url"].endswith("/open311/v2") and "text/xml" in endpoint["formats"]
    else:
        root = _xml(response)
        assert root.tag == "discovery"
        assert root.find("endpoints/endpoint/formats/format") is not None


@pytest.mark.parametrize("fmt", FORMATS)
def test_services_list_the_catalogue(http, city_db, fmt):
    with psycopg.connect(city_db) as conn:
        codes = {code for (code,) in conn.execute("SELECT code FROM category WHERE active")}
    response = http.get(f"/open311/v2/services.{fmt}")
    assert response.status_code == 200
    if fmt == "json":
        services = response.json()
        assert {s["service_code"] for s in services} == codes
        assert all(s["type"] == "realtime" and s["metadata"] is True for s in services)
    else:
        assert {s.findtext("service_code") for s in _xml(response).findall("service")} == codes


@pytest.mark.parametrize("fmt", FORMATS)
def test_service_definition_and_unknown_code(http, fmt):
    response = http.get(f"/open311/v2/services/E0602.{fmt}")
    assert response.status_code == 200
    if fmt == "json":
        body = response.json()
        assert body["service_code"] == "E0602"
        assert {a["code"] for a in body["attributes"]} == {"building_unit", "urgency"}
    else:
        root = _xml(response)
        assert root.tag == "service_definition"
        assert [v.findtext("key") for v in root.findall("attributes/attribute/values/value")] == ["normal", "urgent"]
    missing = http.get(f"/open311/v2/services/NOPE.{fmt}")
    assert missing.status_code == 404
    assert _errors(missing, fmt) == [{"code": 404, "description": "没有服务类别 service_code NOPE"}]


def test_unknown_format_is_an_error(http):
    for path in ("/open311/v2/services.csv", "/open311/v2/services/E0601.csv", "/open311/v2/requests/1.yaml"):
        response = http.get(path)
        assert response.status_code == 404
        assert response.json()[0]["code"] == 404


@pytest.mark.parametrize("fmt", FORMATS)
def test_post_with_coordinates_then_read_it_back(http, api_key, building, fmt):
    form = {"api_key": api_key, "service_code": "E0601", "lat": building["lat"], "long": building["lon"],
            "description": "厨房漏水，联系我13812345678", "first_name": "小明", "last_name": "王",
            "phone": "13812345678", "email": "resident@example.org", "attribute[urgency]": "urgent"}
    response = http.post(f"/open311/v2/requests.{fmt}", data=form)
    assert response.status_code == 200, response.text
    if fmt == "json":
        answer = response.json()[0]
        request_id, token = answer["service_request_id"], answer["token"]
    else:
        request = _xml(response).find("request")
        request_id, token = request.findtext("service_request_id"), request.findtext("token")
    assert request_id.isdigit()

    one = http.get(f"/open311/v2/requests/{request_id}.{fmt}")
    assert one.status_code == 200
    if fmt == "json":
        record = one.json()[0]
    else:
        element = _xml(one).find("request")
        record = {child.tag: child.text for child in element}
    assert record["service_request_id"] == request_id
    assert record["service_code"] == "E0601" and record["status"] == "open"
    # GeoReport reads need no key: the place is the public's, on the 0.0005° lattice of the privacy policy
    # (README), within half a step of the true point and not the exact point itself.
    lat, lon = float(record["lat"]), float(record["long"])
    for value, true in ((lat, building["lat"]), (lon, building["lon"])):
        assert abs(value / 0.0005 - round(value / 0.0005)) < 1e-6
        assert abs(value - true) <= 0.00025 + 1e-9
    assert (lat, lon) != (round(building["lat"], 7), round(building["lon"], 7))
    # Personal data never appears in public answers; nor does the free text, which may name a unit or a room.
    assert "13812345678" not in one.text and "王小明" not in one.text and "resident@example.org" not in one.text
    assert "138****5678" not in one.text and "厨房漏水" not in one.text
    assert not record.get("description")

    by_token = http.get(f"/open311/v2/tokens/{token}.{fmt}")
    assert by_token.status_code == 200
    if fmt == "json":
        assert by_token.json() == [{"service_request_id": request_id, "token": token}]
    else:
        assert _xml(by_token).find("request").findtext("service_request_id") == request_id


def test_post_is_placed_with_its_responsible_parties(http, api_key, building, city_db):
    response = http.post("/open311/v2/requests.json", data={
        "api_key": api_key, "service_code": "E0603", "lat": building["lat"], "long": building["lon"]})
    request_id = int(response.json()[0]["service_request_id"])
    with psycopg.connect(city_db) as conn:
        row = conn.execute("""
            SELECT c.source, c.placement, c.micro_grid_code, c.building_code, c.compound_code, c.description,
                   p.grid_worker_ids, p.community_party_id
            FROM complaint c JOIN complaint_party p ON p.complaint_id = c.id WHERE c.id = %s""",
                           (request_id,)).fetchone()
    source, placement, micro, building_code, compound, description, workers, community_party = row
    assert (source, placement, micro, building_code, compound) == (
        "open311", "inside", building["micro_grid_code"], building["code"], building["compound_code"])
    assert description == "电梯故障"  # the service name stands in for a missing description
    assert workers and community_party is not None


@pytest.mark.parametrize("fmt", FORMATS)
def test_post_with_an_address_only_is_geocoded(http, api_key, building, city_db, fmt):
    address = (f"{building['street']}{building['community']}{building['compound']}"
               f"{building['number']}号楼2单元")
    response = http.post(f"/open311/v2/requests.{fmt}", data={
        "api_key": api_key, "service_code": "E0602", "address_string": address, "description": "下水道堵塞"})
    assert response.status_code == 200, response.text
    request_id = (response.json()[0]["service_request_id"] if fmt == "json"
                  else _xml(response).find("request").findtext("service_request_id"))
    with psycopg.connect(city_db) as conn:
        level, placement, building_code = conn.execute(
            "SELECT match_level, placement, building_code FROM complaint WHERE id = %s", (int(request_id),)
        ).fetchone()
    assert (level, placement, building_code) == ("building", "inside", building["code"])


def test_post_in_gcj02_keeps_the_original_coordinates(http, api_key, building, city_db):
    from gis.layers.crs import from_storage

    gx, gy = from_storage(building["lon"], building["lat"], "GCJ-02")
    response = http.post("/open311/v2/requests.json", data={
        "api_key": api_key, "service_code": "E0604", "lat": gy, "long": gx, "crs": "gcj02"})
    request_id = int(response.json()[0]["service_request_id"])
    with psycopg.connect(city_db) as conn:
        ox, oy, system, lon, lat, building_code = conn.execute(
            "SELECT original_x, original_y, original_crs, ST_X(geom), ST_Y(geom), building_code FROM complaint "
            "WHERE id = %s", (request_id,)).fetchone()
    assert (ox, oy, system) == (pytest.approx(gx), pytest.approx(gy), "GCJ-02")
    assert abs(lon - building["lon"]) < 1e-7 and abs(lat - building["lat"]) < 1e-7
    assert building_code == building["code"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("form, status, fragment", [
    ({"service_code": "E0601", "lat": "36.2", "long": "117.1"}, 403, "提交诉求需要 api_key"),
    ({"api_key": "wrong", "service_code": "E0601", "lat": "36.2", "long": "117.1"}, 403, "api_key 无效"),
    ({"service_code": "", "lat": "36.2", "long": "117.1"}, 400, "service_code 为必填项"),
    ({"service_code": "XX99", "lat": "36.2", "long": "117.1"}, 400, "没有服务类别 service_code XX99"),
    ({"service_code": "E0601"}, 400, "需要位置"),
    ({"service_code": "E0601", "lat": "36.2"}, 400, "lat 和 long 必须同时给出"),
    ({"service_code": "E0601", "lat": "north", "long": "117.1"}, 400, "lat 必须是"),
    ({"service_code": "E0601", "lat": "136.2", "long": "117.1"}, 400, "不是地球上的点"),
    ({"service_code": "E0601", "lat": "36.2", "long": "117.1", "crs": "mars-2"}, 400, "mars-2"),
    ({"service_code": "E0601", "lat": "36.2", "long": "117.1", "attribute[urgency]": "at once"}, 400,
     "attribute[urgency] 只能是以下之一"),
    ({"service_code": "E0601", "lat": "36.2", "long": "117.1", "attribute[colour]": "red"}, 400,
     "没有属性 colour"),
])
def test_post_errors(http, api_key, fmt, form, status, fragment):
    if form.get("api_key") is None and status != 403:
        form = {**form, "api_key": api_key}
    response = http.post(f"/open311/v2/requests.{fmt}", data=form)
    assert response.status_code == status
    errors = _errors(response, fmt)
    assert len(errors) == 1 and errors[0]["code"] == status and fragment in errors[0]["description"]


def test_post_must_be_form_encoded(http, api_key):
    response = http.post("/open311/v2/requests.json", json={"api_key": api_key, "service_code": "E0601"})
    assert response.status_code == 400 and "form-encoded" in response.json()[0]["description"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_get_requests_filters(http, api_key, building, fmt):
    made = []
    for code in ("E0611", "E0611", "E0615"):
        response = http.post("/open311/v2/requests.json", data={
            "api_key": api_key, "service_code": code, "lat": building["lat"], "long": building["lon"]})
        made.append(response.json()[0]["service_request_id"])

    def ids(response) -> list[str]:
        assert response.status_code == 200
        if fmt == "json":
            return [r["service_request_id"] for r in response.json()]
        return [r.findtext("service_request_id") for r in _xml(response).findall("request")]

    assert set(ids(http.get(f"/open311/v2/requests.{fmt}", params={"service_request_id": ",".join(made)}))) == \
        set(made)
    by_code = ids(http.get(f"/open311/v2/requests.{fmt}", params={"service_code": "E0615", "status": "open"}))
    assert made[2] in by_code and made[0] not in by_code
    closed = ids(http.get(f"/open311/v2/requests.{fmt}", params={"service_code": "E0611", "status": "closed"}))
    assert made[0] not in closed and made[1] not in closed
    window = ids(http.get(f"/open311/v2/requests.{fmt}", params={
        "start_date": "2000-01-01T00:00:00Z", "end_date": "2000-02-01T00:00:00+08:00"}))
    assert window == []


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("params, fragment", [
    ({"start_date": "yesterday"}, "start_date 须为 W3C 日期时间"),
    ({"end_date": "2026-99-01"}, "end_date 须为 W3C 日期时间"),
    ({"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, "不能晚于"),
    ({"status": "pending"}, "status 只能是 open、closed"),
    ({"service_request_id": "12,abc"}, "以逗号分隔的诉求编号"),
])
def test_get_requests_errors(http, fmt, params, fragment):
    response = http.get(f"/open311/v2/requests.{fmt}", params=params)
    assert response.status_code == 400
    errors = _errors(response, fmt)
    assert errors[0]["code"] == 400 and fragment in errors[0]["description"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_request_and_token(http, fmt):
    for path in (f"/open311/v2/requests/999999999.{fmt}", f"/open311/v2/requests/abc.{fmt}",
                 f"/open311/v2/tokens/no-such-token.{fmt}"):
        response = http.get(path)
        assert response.status_code == 404
        assert _errors(response, fmt)[0]["code"] == 404


def test_closed_ticket_reads_closed(http, api_key, building, city_db):
    response = http.post("/open311/v2/requests.json", data={
        "api_key": api_key, "service_code": "E0612", "lat": building["lat"], "long": building["lon"]})
    request_id = response.json()[0]["service_request_id"]
    with psycopg.connect(city_db) as conn:
        conn.execute("UPDATE ticket SET state = 'closed', closed_at = now() WHERE complaint_id = %s",
                     (int(request_id),))
    record = http.get(f"/open311/v2/requests/{request_id}.json").json()[0]
    assert record["status"] == "closed"
    closed = http.get("/open311/v2/requests.json", params={"status": "closed", "service_code": "E0612"}).json()
    assert request_id in {r["service_request_id"] for r in closed}


def test_revoked_key_is_refused(http, city_db):
    from gis.intake.open311 import revoke_api_key

    key = new_api_key(city_db, "short-lived")
    revoke_api_key(city_db, "short-lived")
    response = http.post("/open311/v2/requests.json", data={
        "api_key": key, "service_code": "E0601", "lat": "36.2", "long": "117.1"})
    assert response.status_code == 403
