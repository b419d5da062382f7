"""The field app's API on the small city over real HTTP: reports of new issues (巡查上报) through the intake path,
stored once per client id; the address at a point; the signed-in worker's grids; photos only within scope; the
ticket's current holder in Chinese; and times written with their offset."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid

import httpx
import psycopg
import pytest

from gis.db.engine import async_engine, libpq_url

PASSWORD = "field-test-password-1"
OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def city(city_db) -> dict:
    """Two grids of one community with a point inside a building of each, and users for both."""
    rows = sql(city_db, """
        SELECT DISTINCT ON (m.grid_code) m.grid_code, b.code, ST_X(ST_PointOnSurface(b.geom)),
               ST_Y(ST_PointOnSurface(b.geom)), b.number, c.name, c.code
        FROM building b JOIN micro_grid m ON m.code = b.micro_grid_code AND m.valid_to IS NULL
        JOIN compound c ON c.code = b.compound_code AND c.valid_to IS NULL
        WHERE b.valid_to IS NULL AND ST_Area(b.geom::geography) > 300
        ORDER BY m.grid_code, b.code LIMIT 2""")
    (grid_a, building_a, lon_a, lat_a, number_a, compound_a, compound_code_a), (grid_b, _, lon_b, lat_b, *_) = rows
    street, community = sql(city_db, "SELECT street_code, code FROM community WHERE code = %s AND valid_to IS NULL",
                            (grid_a[:12],))[0]
    names = dict(sql(city_db, "SELECT 'street', name FROM street WHERE code = %s AND valid_to IS NULL UNION ALL "
                              "SELECT 'community', name FROM community WHERE code = %s AND valid_to IS NULL UNION ALL "
                              "SELECT 'grid', name FROM grid WHERE code = %s AND valid_to IS NULL",
                     (street, community, grid_a)))

    async def add_users():
        from gis.access.auth import create_user

        engine = async_engine(city_db)
        try:
            async with engine.begin() as conn:
                await create_user(conn, "field-a", PASSWORD, "grid_worker", [grid_a], display_name="王网格")
                await create_user(conn, "field-b", PASSWORD, "grid_worker", [grid_b], display_name="李网格")
                await create_user(conn, "field-street", PASSWORD, "street", [street])
                await create_user(conn, "field-planner", PASSWORD, "planner")
        finally:
            await engine.dispose()

    asyncio.run(add_users())
    category, = sql(city_db, "SELECT code FROM category WHERE active ORDER BY code LIMIT 1")[0]
    return {"grid_a": grid_a, "grid_b": grid_b, "point_a": (lon_a, lat_a), "point_b": (lon_b, lat_b),
            "building_a": building_a, "number_a": number_a, "compound_a": compound_a,
            "compound_code_a": compound_code_a, "street": street, "community": community, "names": names,
            "category": category}


def client(live_app, username: str | None) -> httpx.Client:
    if username is None:
        return live_app.client()
    with live_app.client() as http:  # the app's own client timeout: sign-in hashes, slow on a loaded machine
        answer = http.post("/auth/login", json={"username": username, "password": PASSWORD})
    answer.raise_for_status()
    return live_app.client(headers={"Authorization": f"Bearer {answer.json()['access_token']}"})


def report_body(city, **changes) -> dict:
    lon, lat = city["point_a"]
    return {"client_id": str(uuid.uuid4()), "category_code": city["category"], "lon": lon, "lat": lat,
            "description": "楼道灯不亮", **changes}


def test_the_same_client_id_twice_stores_one_complaint(live_app, city, city_db):
    body = report_body(city)
    with client(live_app, "field-a") as http:
        first = http.post("/field/reports", json=body)
        again = http.post("/field/reports", json=body)
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    made, repeat = first.json(), again.json()
    assert made["created"] is True and repeat["created"] is False and repeat["exists"] is True
    assert repeat["complaint_id"] == made["complaint_id"] and repeat["ticket_id"] == made["ticket_id"]
    assert "已经提交过" in repeat["message"]
    stored = sql(city_db, """SELECT c.id, c.source, c.reporter_name, c.placement, c.grid_code, c.building_code,
                                    c.address, t.id FROM complaint c JOIN ticket t ON t.complaint_id = c.id
                             WHERE c.external_id = %s""", (body["client_id"],))
    assert stored == [(made["complaint_id"], "patrol", "王网格", "inside", city["grid_a"], city["building_a"],
                       (f"{city['names']['street']}{city['names']['community']}{city['compound_a']}"
                        f"{city['number_a']}号楼"), made["ticket_id"])]
    # routed like any intake: the ticket has its parties and a due time, and its history starts with the intake
    events = [a for a, in sql(city_db, "SELECT action FROM ticket_event WHERE ticket_id = %s ORDER BY id",
                              (made["ticket_id"],))]
    assert events and events[0] in ("report", "auto_dispatch")
    parties = sql(city_db, "SELECT count(*) FROM complaint_party WHERE complaint_id = %s", (made["complaint_id"],))
    assert parties == [(1,)]


def test_simultaneous_retries_store_one_complaint(live_app, city, city_db):
    body = report_body(city)
    barrier = threading.Barrier(2)
    answers = []

    def send():
        with client(live_app, "field-a") as http:
            barrier.wait()
            answers.append(http.post("/field/reports", json=body))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert sql(city_db, "SELECT count(*) FROM complaint WHERE external_id = %s", (body["client_id"],)) == [(1,)]


def test_a_report_with_photos_as_a_form(live_app, city, city_db):
    body = report_body(city, description="井盖破损")
    with client(live_app, "field-a") as http:
        answer = http.post("/field/reports", data={k: str(v) for k, v in body.items()},
                           files=[("photos", ("a.png", PNG, "image/png")), ("photos", ("b.png", PNG, "image/png"))])
        assert answer.status_code == 201, answer.text
        ticket = answer.json()["ticket_id"]
        shown = http.get(f"/tickets/{ticket}").json()
        assert len(shown["photos"]) == 2
        photo = http.get(f"/tickets/{ticket}/photos/{shown['photos'][0]['id']}")
        assert photo.status_code == 200 and photo.content == PNG
    assert sql(city_db, "SELECT count(*) FROM ticket_photo WHERE ticket_id = %s", (ticket,)) == [(2,)]


def test_bad_reports_are_refused_with_a_chinese_reason_and_store_nothing(live_app, city, city_db):
    before = sql(city_db, "SELECT count(*) FROM complaint")[0][0]
    lon_b, lat_b = city["point_b"]
    with client(live_app, "field-a") as http:
        cases = [
            (report_body(city, client_id="not-a-uuid"), 400, "UUID"),
            (report_body(city, lon=None), 400, "位置"),
            (report_body(city, category_code="NO-SUCH"), 400, "类别"),
            (report_body(city, lon=lon_b, lat=lat_b), 400, "不在您负责的范围内"),  # another grid
            (report_body(city, lon=10.0, lat=10.0), 404, "不在本市"),
            (report_body(city, lon="1_0"), 400, ""),
            (report_body(city, reported_at="2090-01-01T00:00:00+08:00"), 400, "上报时间"),
        ]
        for body, status, reason in cases:
            answer = http.post("/field/reports", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert reason in answer.json()["detail"], answer.text
        bad_photo = http.post("/field/reports", data={k: str(v) for k, v in report_body(city).items()},
                              files=[("photos", ("a.txt", b"not an image", "text/plain"))])
        assert bad_photo.status_code == 400
        assert http.post("/field/reports", content=b"[1, 2]", headers={"Content-Type": "application/json"}
                         ).status_code == 400
        assert http.post("/field/reports", content=b"x=1", headers={"Content-Type": "text/plain"}).status_code == 400
    with client(live_app, "field-planner") as http:
        assert http.post("/field/reports", json=report_body(city)).status_code == 403
    with client(live_app, None) as http:
        assert http.post("/field/reports", json=report_body(city)).status_code == 401
    assert sql(city_db, "SELECT count(*) FROM complaint")[0][0] == before


def test_place_gives_the_address_from_the_layers_and_the_scope(live_app, city):
    lon, lat = city["point_a"]
    with client(live_app, "field-a") as http:
        place = http.get("/field/place", params={"lon": lon, "lat": lat}).json()
        other = http.get("/field/place", params={"lon": city["point_b"][0], "lat": city["point_b"][1]}).json()
        outside = http.get("/field/place", params={"lon": 10, "lat": 10})
    assert place["grid_code"] == city["grid_a"] and place["compound_code"] == city["compound_code_a"]
    assert place["building_code"] == city["building_a"] and place["in_scope"] is True
    assert place["address"] == (f"{city['names']['street']}{city['names']['community']}{city['compound_a']}"
                                f"{city['number_a']}号楼")
    assert other["grid_code"] == city["grid_b"] and other["in_scope"] is False
    assert outside.status_code == 404 and "不在本市" in outside.json()["detail"]


def test_me_gives_the_workers_grids_and_their_box(live_app, city, city_db):
    with client(live_app, "field-a") as http:
        me = http.get("/field/me").json()
    assert me["name"] == "王网格" and me["level"] == "grid"
    assert me["units"] == [{"code": city["grid_a"], "name": city["names"]["grid"]}]
    expected = sql(city_db, "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM grid "
                            "WHERE code = %s AND valid_to IS NULL", (city["grid_a"],))[0]
    assert me["bbox"] == pytest.approx(list(expected), abs=1e-6)
    with client(live_app, None) as http:
        assert http.get("/field/me").status_code == 401


def test_photos_are_read_only_within_scope(live_app, city):
    with client(live_app, "field-a") as http:
        ticket = http.post("/field/reports", json=report_body(city)).json()["ticket_id"]
        photo = http.post(f"/tickets/{ticket}/photos", files={"file": ("p.png", PNG, "image/png")})
        assert photo.status_code == 201, photo.text
        photo_id = photo.json()["id"]
        assert http.get(f"/tickets/{ticket}/photos/{photo_id}").content == PNG
    with client(live_app, "field-b") as http:
        assert http.get(f"/tickets/{ticket}/photos/{photo_id}").status_code == 404
        assert http.get(f"/tickets/{ticket}").status_code == 404
    with client(live_app, "field-planner") as http:
        assert http.get(f"/tickets/{ticket}/photos/{photo_id}").status_code == 404
    with client(live_app, None) as http:
        assert http.get(f"/tickets/{ticket}/photos/{photo_id}").status_code in (401, 404)


def test_the_ticket_shows_its_current_holder_by_name(live_app, city, city_db):
    with client(live_app, "field-a") as http:
        ticket = http.post("/field/reports", json=report_body(city)).json()["ticket_id"]
    company = sql(city_db, "SELECT id, name FROM property_company ORDER BY id LIMIT 1")[0]
    with client(live_app, "field-street") as street:
        community = street.post("/tickets/assign", json={
            "ticket_ids": [ticket], "assignee": {"kind": "community", "code": city["community"], "user": "field-a"}})
        assert community.status_code == 200, community.text
        shown = street.get(f"/tickets/{ticket}").json()
        assert shown["holder_zh"] == (f"社区 · {city['names']['community']}"
                                      f"（指定 王网格（网格员，{city['names']['grid']}））")
        listed = street.get("/tickets", params={"grid": city["grid_a"], "limit": 1000}).json()["items"]
        assert [t["holder_zh"] for t in listed if t["id"] == ticket] == [shown["holder_zh"]]
        sql(city_db, "UPDATE ticket SET assignee_kind = 'property_company', assignee_code = %s, "
                     "assignee_user_id = NULL WHERE id = %s", (str(company[0]), ticket))
        assert street.get(f"/tickets/{ticket}").json()["holder_zh"] == f"物业 · {company[1]}"
        sql(city_db, "UPDATE ticket SET assignee_kind = NULL, assignee_code = NULL WHERE id = %s", (ticket,))
        assert street.get(f"/tickets/{ticket}").json()["holder_zh"] == "未派遣"


def _times(value, key=""):
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _times(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _times(item, key)
    elif isinstance(value, str) and (key.endswith("_at") or key == "at") and value:
        yield key, value


def test_times_are_written_with_their_offset(live_app, city):
    with client(live_app, "field-a") as http:
        made = http.post("/field/reports", json=report_body(city, reported_at="2026-01-05 09:30")).json()
        ticket = made["ticket_id"]
        http.post(f"/tickets/{ticket}/comments", json={"note": "已到现场"}).raise_for_status()
        http.post(f"/tickets/{ticket}/photos", files={"file": ("p.png", PNG, "image/png")}).raise_for_status()
        answers = [made, http.get(f"/tickets/{ticket}").json(),
                   http.get("/tickets", params={"state": "open", "limit": 50}).json()]
    found = [item for answer in answers for item in _times(answer)]
    assert {"due_at", "reported_at", "at", "uploaded_at"} <= {key for key, _ in found}
    assert all(OFFSET.match(value) for _, value in found), [v for _, v in found if not OFFSET.match(v)][:5]
    # a time without a zone given by the phone is Beijing time
    assert answers[1]["reported_at"].startswith("2026-01-05T01:30:00") or \
        answers[1]["reported_at"].startswith("2026-01-05T09:30:00+08:00")
