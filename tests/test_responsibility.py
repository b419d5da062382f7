"""Who is responsible here: the answer for points of a hand-made city, over the core and real HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest

from gis.access.auth import PUBLIC, Principal
from gis.db.engine import async_engine
from gis.errors import InvalidInput, NotFound
from gis.serve.responsibility import responsible_parties
from tests.browser import minicity
from tests.conftest import LiveServer

STAFF = Principal(role="street", username="street-office", scope=(minicity.STREET,))


@pytest.fixture(scope="module")
def mini_db(pg_cluster, empty_template) -> str:
    from tests.conftest import _clone

    url = _clone(pg_cluster, empty_template)
    minicity.load_minicity(url)
    return url


@pytest.fixture(scope="module")
def mini_http(mini_db):
    server = LiveServer(mini_db)
    try:
        with server.client() as client:
            yield client
    finally:
        server.stop()


def ask(url: str, lon: float, lat: float, principal: Principal) -> dict:
    async def go():
        engine = async_engine(url)
        try:
            async with engine.connect() as conn:
                return await responsible_parties(conn, lon, lat, principal)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_inside_a_building_names_every_party(mini_db):
    answer = ask(mini_db, *minicity.IN_BUILDING, STAFF)
    assert answer["district"]["code"] == minicity.DISTRICT
    assert answer["street"] == {"code": minicity.STREET, "name": "财源街道"}
    assert answer["community"]["code"] == minicity.COMMUNITY
    assert answer["grid"]["code"] == minicity.GRID
    assert answer["micro_grid"]["code"] == minicity.MICRO_A
    assert answer["compound"]["code"] == minicity.COMPOUND
    assert answer["compound"]["management_mode"] == "community_led"
    assert answer["building"]["number"] == 1
    company = answer["property_company"]
    # the latest half-year decides the standing, not the earlier black listing
    assert (company["standing"], company["evaluation_period"]) == ("red", "2024H1")
    assert answer["owners_committee"]["party_member_count"] == 5
    kinds = [org["kind"] for org in answer["party_organisations"]]
    assert kinds == ["community_committee", "grid_branch", "compound_branch", "company_branch"]
    # staff see contacts
    assert answer["contacts_shown"] is True
    assert answer["grid_workers"][0]["contact"] == {"name": "网格员甲", "phone": "13900000003"}
    assert answer["building"]["leader"]["phone"] == "13900000002"
    assert answer["party_organisations"][0]["secretary"]["name"] == "书记甲"
    assert company["contact"]["phone"] == "13900000001"


def test_public_sees_no_contact(mini_db):
    answer = ask(mini_db, *minicity.IN_BUILDING, PUBLIC)
    assert answer["contacts_shown"] is False
    text = repr(answer)
    for secret in ("139000000", "网格员甲", "书记", "业委会主任甲", "楼栋长甲", "0538-6200001", "物业经理甲"):
        assert secret not in text
    assert answer["grid_workers"][0]["is_party_member"] is True


def test_micro_grid_without_compound(mini_db):
    answer = ask(mini_db, *minicity.IN_MICRO_B, STAFF)
    assert answer["micro_grid"]["code"] == minicity.MICRO_B
    assert answer["compound"] is None and answer["property_company"] is None
    assert answer["owners_committee"] is None and answer["building"] is None
    assert [org["kind"] for org in answer["party_organisations"]] == ["community_committee", "grid_branch"]


def test_outside_and_bad_points(mini_db):
    with pytest.raises(NotFound):
        ask(mini_db, *minicity.OUTSIDE, STAFF)
    with pytest.raises(InvalidInput):
        ask(mini_db, 200.0, 36.0, STAFF)
    with pytest.raises(InvalidInput):
        ask(mini_db, float("nan"), 36.0, STAFF)


def test_over_http(mini_http):
    http = mini_http
    response = http.get("/responsibility", params={"lon": minicity.IN_BUILDING[0],
                                                   "lat": minicity.IN_BUILDING[1]})
    assert response.status_code == 200
    body = response.json()
    assert body["compound"]["name"] == "东苑小区" and body["contacts_shown"] is False
    assert "13900000" not in response.text
    assert http.get("/responsibility", params={"lon": 117.2, "lat": 36.3}).status_code == 404
    assert http.get("/responsibility", params={"lon": 500, "lat": 36}).status_code == 400
    assert http.get("/responsibility", params={"lon": "east", "lat": 36}).status_code == 422
    assert http.get("/responsibility", params={"lon": "nan", "lat": 36}).status_code == 400
    assert http.get("/responsibility", params={"lat": 36}).status_code == 422


def test_map_lookups_over_http(mini_http):
    from tests.browser.minicity import COMPOUND

    http = mini_http
    hits = http.get("/map/search.json", params={"q": "东苑1号楼"}).json()
    assert [(hit["kind"], hit["code"]) for hit in hits] == [("building", minicity.BUILDING)]
    hits = http.get("/map/search.json", params={"q": "东苑"}).json()
    assert ("compound", COMPOUND) in [(hit["kind"], hit["code"]) for hit in hits]
    assert http.get("/map/search.json", params={"q": " "}).status_code == 400
    party = http.get("/map/party-organisations.geojson",
                     params={"bbox": "117.09,36.19,117.12,36.22"}).json()
    assert sorted(f["properties"]["kind"] for f in party["features"]) == [
        "community_committee", "compound_branch", "grid_branch"]
    assert "书记" not in json.dumps(party, ensure_ascii=False)
    for bad in ("1,2,3", "a,b,c,d", "117.2,36,117.1,36.3", "nan,36,117,37"):
        response = http.get("/map/complaints.geojson", params={"bbox": bad})
        assert response.status_code == 400, bad
    assert http.get("/map/party-organisations.geojson",
                    params={"bbox": "117,36,118,37", "kinds": "secret"}).status_code == 400
    config = http.get("/map/config.json").json()
    assert config["base_tile_url"] is None and "GET /tickets" in config["routes"]
