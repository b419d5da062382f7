"""Open311 as its clients extend it, over real HTTP on the small city: `page`/`page_size`, `extensions=true`
(the detailed status and the public history), `media_url`, the CitySDK filters (`updated_after`/`updated_before`,
`lat`/`long`/`radius`, `just_count`) and the bulk export — each parameter, each refusal, and the public never
seeing more than the privacy policy allows (exact place, description, staff names and notes) on the new fields."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree

import psycopg
import pytest
from pyproj import Geod

from gis.intake.open311 import new_api_key

FORMATS = ("json", "xml")
ALL_TIME = {"start_date": "2000-01-01T00:00:00+08:00"}
LATTICE = 0.0005  # the public lattice of the policy, written out (README, privacy table)
PASSWORD = "extension password 1"
MARKERS = {
    "display_name": "核查员郑某某", "username": "o311-ext-admin", "accept_note": "内部备注甲号已联系",
    "comment": "内部评论乙号", "photo_note": "门牌照片丙号", "verify_note": "核查意见丁号",
    "description": "厨房顶棚渗水戊号", "media_url": "https://example.org/door-photo-wu.jpg",
    "reporter": "王小明", "phone": "13912345678",
}
CJK = re.compile(r"[\u4e00-\u9fff]")
GEOD = Geod(ellps="WGS84")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _snap(value: float) -> float:
    return round(round(value / LATTICE) * LATTICE, 7)


def _xml(response) -> ElementTree.Element:
    assert response.headers["content-type"].startswith("text/xml")
    return ElementTree.fromstring(response.content)


def _errors(response, fmt: str) -> list[dict]:
    if fmt == "json":
        return response.json()
    return [{"code": int(e.findtext("code")), "description": e.findtext("description")}
            for e in _xml(response).findall("error")]


def _ids(response, fmt: str = "json") -> list[int]:
    assert response.status_code == 200, response.text
    if fmt == "json":
        return [int(r["service_request_id"]) for r in response.json()]
    return [int(r.findtext("service_request_id")) for r in _xml(response).findall("request")]


def _create_admin(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from gis.access import auth
    from gis.db.engine import with_driver

    async def create():
        engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool)
        async with engine.begin() as conn:
            await auth.create_user(conn, MARKERS["username"], PASSWORD, "admin", [],
                                   display_name=MARKERS["display_name"])
        await engine.dispose()

    asyncio.run(create())


@pytest.fixture(scope="module")
def world(city_db, http) -> dict:
    """One request posted at a point off the public lattice with a description, a reporter and a media_url, then
    taken through the closed loop by a named administrator with notes, a comment and a photo."""
    with psycopg.connect(city_db) as conn:
        lon, lat, community = conn.execute("""
            SELECT ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom)), c.community_code
            FROM building b JOIN compound c ON c.code = b.compound_code
            WHERE b.valid_to IS NULL ORDER BY b.code LIMIT 1 OFFSET 11""").fetchone()
    # move the point to 0.0002° off the lattice in both axes (about 20 m from its snapped place)
    lon, lat = _snap(lon) + 0.0002, _snap(lat) + 0.0002
    key = new_api_key(city_db, "extensions-client")
    posted = http.post("/open311/v2/requests.json", data={
        "api_key": key, "service_code": "E0601", "lat": lat, "long": lon, "description": MARKERS["description"],
        "first_name": "小明", "last_name": "王", "phone": MARKERS["phone"], "media_url": MARKERS["media_url"]})
    assert posted.status_code == 200, posted.text
    request_id = int(posted.json()[0]["service_request_id"])
    _create_admin(city_db)
    token = http.post("/auth/login", json={"username": MARKERS["username"], "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    with psycopg.connect(city_db) as conn:
        ticket_id, state = conn.execute("SELECT id, state FROM ticket WHERE complaint_id = %s",
                                        (request_id,)).fetchone()

    def act(action: str, **body) -> None:
        answer = http.post(f"/tickets/{ticket_id}/transitions", json={"action": action, **body}, headers=headers)
        assert answer.status_code == 200, answer.text

    if state == "reported":
        act("register")
        state = "registered"
    if state == "registered":
        act("dispatch", assignee={"kind": "community", "code": community})
    act("accept", note=MARKERS["accept_note"])
    assert http.post(f"/tickets/{ticket_id}/comments", json={"note": MARKERS["comment"]},
                     headers=headers).status_code == 201
    photo = http.post(f"/tickets/{ticket_id}/photos", files={"file": ("door.png", PNG, "image/png")},
                      data={"note": MARKERS["photo_note"]}, headers=headers)
    assert photo.status_code == 201, photo.text
    act("handle")
    act("verify", note=MARKERS["verify_note"])
    with psycopg.connect(city_db) as conn:
        changes = conn.execute("""
            SELECT to_state FROM ticket_event WHERE ticket_id = %s AND to_state IS NOT NULL
            AND from_state IS DISTINCT FROM to_state ORDER BY at, id""", (ticket_id,)).fetchall()
    return {"id": request_id, "ticket": ticket_id, "lon": lon, "lat": lat, "photo": photo.json()["id"],
            "headers": headers, "changes": [state for (state,) in changes], "url": city_db}


def _assert_public(text: str, world: dict) -> None:
    """No marker of the people, their text or the exact place in an answer."""
    for name, marker in MARKERS.items():
        assert marker not in text, f"{name} ({marker}) reached the public"
    assert "138****" not in text and "139****5678" not in text
    assert f"{world['lon']:.7f}"[:10] not in text and f"{world['lat']:.7f}"[:9] not in text


# -- paging ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_paging_covers_every_request_exactly_once_in_a_stable_order(http, city_db, fmt):
    with psycopg.connect(city_db) as conn:
        expected = [row[0] for row in conn.execute(
            "SELECT id FROM complaint WHERE reported_at >= %s ORDER BY reported_at DESC, id DESC",
            (ALL_TIME["start_date"],))]
    assert len(expected) > 1000  # more than the unpaged answer's cap, so paging is what reaches them all
    seen: list[int] = []
    page = 1
    while True:
        got = _ids(http.get(f"/open311/v2/requests.{fmt}", params={**ALL_TIME, "page": page, "page_size": 333}),
                   fmt)
        if not got:
            break
        assert len(got) <= 333
        seen += got
        page += 1
    assert len(seen) == len(set(seen)) and seen == expected
    assert page == -(-len(expected) // 333) + 1
    # the same page twice is the same answer; the unpaged answer is the first 1000
    again = _ids(http.get(f"/open311/v2/requests.{fmt}", params={**ALL_TIME, "page": 2, "page_size": 333}), fmt)
    assert again == expected[333:666]
    assert _ids(http.get(f"/open311/v2/requests.{fmt}", params=ALL_TIME), fmt) == expected[:1000]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("params, fragment", [
    ({"page": "0"}, "page 必须在 1 到 100000 之间"),
    ({"page": "-3"}, "page 必须在"),
    ({"page": "100001"}, "page 必须在"),
    ({"page": "two"}, "page 必须是用阿拉伯数字书写的整数"),
    ({"page": "1.5"}, "page 必须是"),
    ({"page_size": "0"}, "page_size 必须在 1 到 1000 之间"),
    ({"page_size": "1001"}, "page_size 必须在 1 到 1000 之间"),
    ({"page_size": "１０"}, "page_size 必须是"),
    ({"extensions": "yes"}, "extensions 只能是 true 或 false"),
    ({"just_count": "1"}, "just_count 只能是 true 或 false"),
    ({"updated_after": "last week"}, "updated_after 须为 W3C 日期时间"),
    ({"updated_after": "2026-02-01T00:00:00Z", "updated_before": "2026-01-01T00:00:00Z"},
     "updated_after 不能晚于 updated_before"),
    ({"lat": "36.2"}, "lat 和 long 必须同时给出"),
    ({"long": "117.1"}, "lat 和 long 必须同时给出"),
    ({"radius": "100"}, "radius 需要与 lat 和 long 一起给出"),
    ({"lat": "36.2", "long": "117.1", "radius": "0"}, "radius 必须在 1 到 20000 之间"),
    ({"lat": "36.2", "long": "117.1", "radius": "20001"}, "radius 必须在 1 到 20000 之间"),
    ({"lat": "96.2", "long": "117.1"}, "lat 必须在 -90 到 90 之间"),
    ({"lat": "36.2", "long": "east"}, "long 必须是用阿拉伯数字书写的十进制数"),
    ({"lat": "nan", "long": "117.1"}, "lat 必须是"),
])
def test_each_refusal_is_a_400_in_chinese(http, fmt, params, fragment):
    response = http.get(f"/open311/v2/requests.{fmt}", params=params)
    assert response.status_code == 400
    errors = _errors(response, fmt)
    assert len(errors) == 1 and errors[0]["code"] == 400 and fragment in errors[0]["description"]
    if "W3C" not in fragment:
        assert CJK.search(errors[0]["description"])


# -- just_count -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_just_count_counts_the_whole_selection(http, city_db, fmt):
    with psycopg.connect(city_db) as conn:
        everything, e06 = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE category_code LIKE 'E06%%') FROM complaint "
            "WHERE reported_at >= %s", (ALL_TIME["start_date"],)).fetchone()
        codes = [code for (code,) in conn.execute("SELECT code FROM category WHERE code LIKE 'E06%%'")]
    assert everything > 1000 and 0 < e06 < everything
    for params, expected in (({**ALL_TIME}, everything), ({**ALL_TIME, "service_code": ",".join(codes)}, e06),
                             ({**ALL_TIME, "page": "3", "page_size": "5"}, everything)):
        response = http.get(f"/open311/v2/requests.{fmt}", params={**params, "just_count": "true"})
        assert response.status_code == 200
        if fmt == "json":
            assert response.json() == {"count": expected}
        else:
            root = _xml(response)
            assert root.tag == "service_requests" and root.findtext("count") == str(expected)
            assert root.find("request") is None
    listed = http.get("/open311/v2/requests.json", params={**ALL_TIME, "just_count": "false", "page_size": 2})
    assert len(listed.json()) == 2


# -- updated_after / updated_before ---------------------------------------------------------------------------------


def test_updated_after_and_before_select_by_the_last_change(http, city_db):
    with psycopg.connect(city_db) as conn:
        *chosen, other = [row[0] for row in conn.execute(
            "SELECT complaint_id FROM ticket ORDER BY id LIMIT 4 OFFSET 40")]
        conn.execute("UPDATE ticket SET updated_at = '2001-05-05T10:00:00+08:00' WHERE complaint_id = ANY(%s)",
                     (chosen,))
        conn.execute("UPDATE ticket SET updated_at = '2001-05-05T12:00:00+08:00' WHERE complaint_id = %s",
                     (other,))
    window = {"updated_after": "2001-05-05T09:00:00+08:00", "updated_before": "2001-05-05T11:00:00+08:00"}
    assert sorted(_ids(http.get("/open311/v2/requests.json", params=window))) == sorted(chosen)
    records = http.get("/open311/v2/requests.json", params=window).json()
    assert {r["updated_datetime"] for r in records} == {"2001-05-05T10:00:00+08:00"}  # Beijing time
    later = _ids(http.get("/open311/v2/requests.json", params={"updated_after": "2001-05-05T11:00:00+08:00",
                                                                "updated_before": "2001-05-06T00:00:00+08:00"}))
    assert later == [other]
    # one bound alone, and together with the requested-time window
    assert set(chosen) <= set(_ids(http.get("/open311/v2/requests.json", params={
        "updated_before": "2001-05-05T11:00:00+08:00"})))
    assert _ids(http.get("/open311/v2/requests.json", params={
        **window, "start_date": "2099-01-01T00:00:00+08:00"})) == []


# -- lat / long / radius --------------------------------------------------------------------------------------------


def _distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


def test_the_circle_tests_the_snapped_place_never_the_exact_one(http, world):
    lon, lat = world["lon"], world["lat"]
    snapped = (_snap(lon), _snap(lat))
    gap = _distance(lon, lat, *snapped)
    assert 20 < gap < 40

    def found(centre_lon: float, centre_lat: float, radius: float) -> bool:
        return world["id"] in _ids(http.get("/open311/v2/requests.json", params={
            **ALL_TIME, "lat": centre_lat, "long": centre_lon, "radius": radius}))

    # a circle around the exact point smaller than the gap to the cell's point misses it; one at the cell finds it
    assert not found(lon, lat, 1) and not found(lon, lat, gap - 2)
    assert found(lon, lat, gap + 2) and found(*snapped, 1)
    # and bisection cannot do better: circles around points anywhere near find it exactly when the snapped point
    # lies within them, whatever the exact point
    for d_lon, d_lat, radius in ((0.0001, 0.0001, 25), (-0.0003, 0.0002, 30), (0.0004, -0.0004, 50),
                                 (0.0002, 0.0002, 5), (-0.0001, -0.0001, 18)):
        centre = (lon + d_lon, lat + d_lat)
        to_snapped = _distance(*centre, *snapped)
        if abs(to_snapped - radius) < 1:
            continue  # too close to the edge to tell
        assert found(*centre, radius) == (to_snapped <= radius), (d_lon, d_lat, radius)


def test_the_circle_selects_what_an_independent_oracle_selects(http, city_db, world):
    with psycopg.connect(city_db) as conn:
        points = conn.execute("SELECT id, ST_X(geom), ST_Y(geom) FROM complaint WHERE reported_at >= %s "
                              "AND geom IS NOT NULL", (ALL_TIME["start_date"],)).fetchall()
    lon, lat = world["lon"] + 0.0013, world["lat"] - 0.0021
    for radius in (150.0, 400.0):
        expected = {cid for cid, x, y in points if _distance(lon, lat, _snap(x), _snap(y)) <= radius}
        assert expected, "the circle should hold some requests"
        got = http.get("/open311/v2/requests.json", params={
            **ALL_TIME, "lat": lat, "long": lon, "radius": radius, "page_size": 1000})
        assert set(_ids(got)) == expected
        for record in got.json():
            assert _distance(lon, lat, record["long"], record["lat"]) <= radius + 0.01
    default = set(_ids(http.get("/open311/v2/requests.json", params={**ALL_TIME, "lat": lat, "long": lon})))
    assert default == {cid for cid, x, y in points if _distance(lon, lat, _snap(x), _snap(y)) <= 500}


# -- extensions: the detailed status and the public history ---------------------------------------------------------


def test_extensions_give_the_detailed_status_and_the_dated_state_changes(http, world):
    plain = http.get(f"/open311/v2/requests/{world['id']}.json").json()[0]
    assert "extended_attributes" not in plain and plain["status"] == "closed"
    record = http.get(f"/open311/v2/requests/{world['id']}.json", params={"extensions": "true"}).json()[0]
    extended = record["extended_attributes"]
    assert (extended["detailed_status"], extended["detailed_status_name"]) == ("closed", "已结案")
    notes = extended["notes"]
    assert [note["status"] for note in notes] == world["changes"]
    assert [(n["status"], n["status_name"], n["action"]) for n in notes[-3:]] == [
        ("in_progress", "处置中", "响应"), ("handled", "待核查", "处置反馈"), ("closed", "已结案", "核查结案")]
    assert notes[0]["status"] in ("reported", "dispatched")
    # dated in Beijing time, oldest first; no one named, nothing written, no comment or photo event
    assert all(note["datetime"].endswith("+08:00") for note in notes)
    assert [n["datetime"] for n in notes] == sorted(n["datetime"] for n in notes)
    assert all(set(note) == {"datetime", "status", "status_name", "action"} for note in notes)
    # the list gives the same record
    listed = http.get("/open311/v2/requests.json", params={"service_request_id": world["id"],
                                                           "extensions": "true"}).json()
    assert listed == [record]


def test_extensions_in_xml(http, world):
    response = http.get(f"/open311/v2/requests/{world['id']}.xml", params={"extensions": "true"})
    request = _xml(response).find("request")
    assert request.findtext("extended_attributes/detailed_status") == "closed"
    assert request.findtext("extended_attributes/detailed_status_name") == "已结案"
    notes = request.findall("extended_attributes/notes/note")
    assert [note.findtext("status") for note in notes] == world["changes"]
    assert notes[-1].findtext("action") == "核查结案"


@pytest.mark.parametrize("path, params", [
    ("/open311/v2/requests/{id}.json", {"extensions": "true"}),
    ("/open311/v2/requests/{id}.xml", {"extensions": "true"}),
    ("/open311/v2/requests.json", {**ALL_TIME, "extensions": "true", "page_size": 1000}),
    ("/open311/v2/requests.xml", {**ALL_TIME, "extensions": "true", "page_size": 1000}),
    ("/open311/v2/requests.json", {"service_request_id": "{id}", "extensions": "true"}),
    ("/open311/v2/requests/export.json", {"extensions": "true"}),
    ("/open311/v2/requests/export.csv", {}),
])
def test_the_public_sees_no_more_than_the_policy_on_the_new_fields(http, world, path, params):
    """Signed in as the very administrator who wrote the notes: GeoReport still answers as the public sees."""
    params = {k: v.replace("{id}", str(world["id"])) if isinstance(v, str) else v for k, v in params.items()}
    url = path.replace("{id}", str(world["id"]))
    if "export" in path:  # the days around the posted request
        now = datetime.now(timezone.utc)
        params = {**params, "start_date": (now - timedelta(days=2)).isoformat(),
                  "end_date": (now + timedelta(days=1)).isoformat()}
    for headers in ({}, world["headers"]):
        response = http.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        assert str(world["id"]) in response.text  # the request is there ...
        _assert_public(response.text, world)  # ... and nothing of the people, their text or the exact place
        assert re.search(r"-?\d+\.\d+", response.text)


def test_media_url_stays_empty_and_staff_photos_stay_staff_only(http, world):
    """The policy's public view shows no photos (gis.access.visibility: photos=False): the staff photo of this
    ticket and the resident's own media_url are never a GeoReport media_url."""
    from gis.access.visibility import POLICY

    assert POLICY["public"].photos is False
    for params in ({}, {"extensions": "true"}):
        record = http.get(f"/open311/v2/requests/{world['id']}.json", params=params).json()[0]
        assert record["media_url"] is None
        assert record.get("extended_attributes", {}).get("media_urls", []) == []
    photo = f"/tickets/{world['ticket']}/photos/{world['photo']}"
    assert http.get(photo).status_code in (401, 404)
    assert http.get(photo, headers=world["headers"]).content == PNG  # the photo exists, for staff


# -- the bulk export ------------------------------------------------------------------------------------------------

PERIOD = {"start_date": "2000-01-01T00:00:00+08:00", "end_date": "2000-12-31T23:59:59+08:00"}


def _period_of_history(city_db: str) -> tuple[dict, list[int]]:
    """A period of at most 366 days holding most of the city's requests, and their ids oldest first."""
    with psycopg.connect(city_db) as conn:
        last = conn.execute("SELECT max(reported_at) FROM complaint").fetchone()[0]
        period = {"start_date": (last.replace(microsecond=0) - timedelta(days=365)).isoformat(),
                  "end_date": last.replace(microsecond=0).isoformat()}
        ids = [row[0] for row in conn.execute(
            "SELECT id FROM complaint WHERE reported_at >= %s AND reported_at <= %s ORDER BY reported_at, id",
            (period["start_date"], period["end_date"]))]
    return period, ids


def test_the_export_is_the_whole_period_as_one_file(http, city_db):
    period, ids = _period_of_history(city_db)
    assert len(ids) > 1000
    as_json = http.get("/open311/v2/requests/export.json", params=period)
    assert as_json.status_code == 200 and as_json.headers["content-type"].startswith("application/json")
    assert "attachment" in as_json.headers["content-disposition"]
    records = as_json.json()
    assert [int(r["service_request_id"]) for r in records] == ids
    as_csv = http.get("/open311/v2/requests/export.csv", params=period)
    assert as_csv.headers["content-type"].startswith("text/csv") and as_csv.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert [int(r["service_request_id"]) for r in rows] == ids
    assert {r["detailed_status_name"] for r in rows} <= {"已上报", "已立案", "已派遣", "处置中", "待核查", "已结案",
                                                         "不予立案", "已并单"}
    # the same public records GET requests gives, page by page
    paged: dict[int, dict] = {}
    for page in range(1, -(-len(ids) // 1000) + 1):
        for record in http.get("/open311/v2/requests.json", params={**period, "page": page}).json():
            paged[int(record["service_request_id"])] = record
    assert {int(r["service_request_id"]): r for r in records} == paged
    by_id = {int(r["service_request_id"]): r for r in rows}
    sample = records[len(records) // 2]
    line = by_id[int(sample["service_request_id"])]
    assert (float(line["lat"]), float(line["long"]), line["address"]) == (sample["lat"], sample["long"],
                                                                          sample["address"])
    # filters apply as in GET requests
    closed = http.get("/open311/v2/requests/export.json", params={**period, "status": "closed"}).json()
    assert closed and {r["status"] for r in closed} == {"closed"}
    assert {r["service_request_id"] for r in closed} == {r["service_request_id"] for r in records
                                                         if r["status"] == "closed"}


@pytest.mark.parametrize("path, params, status, fragment", [
    ("export.json", {"start_date": "2026-01-01T00:00:00+08:00"}, 400, "需要 start_date 和 end_date"),
    ("export.csv", {"end_date": "2026-01-01T00:00:00+08:00"}, 400, "需要 start_date 和 end_date"),
    ("export.json", {"start_date": "2024-01-01T00:00:00+08:00", "end_date": "2025-01-02T00:00:00+08:00"}, 400,
     "最长 366 天"),
    ("export.json", {**PERIOD, "page": "2"}, 400, "不接受参数 page"),
    ("export.json", {**PERIOD, "service_request_id": "1"}, 400, "不接受参数 service_request_id"),
    ("export.json", {**PERIOD, "just_count": "true"}, 400, "不接受参数 just_count"),
    ("export.csv", {**PERIOD, "radius": "5"}, 400, "radius 需要与 lat 和 long 一起给出"),
    ("export.json", {**PERIOD, "extensions": "maybe"}, 400, "extensions 只能是 true 或 false"),
    ("export.xml", PERIOD, 404, "导出格式只能是 .json 或 .csv"),
])
def test_export_refusals(http, path, params, status, fragment):
    response = http.get(f"/open311/v2/requests/{path}", params=params)
    assert response.status_code == status
    errors = response.json()
    assert errors[0]["code"] == status and fragment in errors[0]["description"]


def test_an_empty_period_is_an_empty_file(http):
    assert http.get("/open311/v2/requests/export.json", params=PERIOD).json() == []
    lines = http.get("/open311/v2/requests/export.csv", params=PERIOD).content.decode("utf-8-sig").splitlines()
    assert lines == [",".join(("service_request_id", "status", "detailed_status", "detailed_status_name",
                               "service_code", "service_name", "agency_responsible", "requested_datetime",
                               "updated_datetime", "expected_datetime", "address", "lat", "long", "status_notes"))]
