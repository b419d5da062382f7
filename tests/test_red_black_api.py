"""The reads the red/black list and the credit files need in the browser (issue 18, item 2): the list within a
street or community (the companies serving it, with their ranks in the whole list), the companies and compounds
a rater picks from, a company's compounds with their shapes, and the credit file's rectification tasks. Every
expectation is an oracle of its own: compound codes start with their street's and community's codes, so the
companies of an area are read by prefix here, not by the join the code uses."""

from __future__ import annotations

import pytest
import shapely
from conftest import LiveServer
from test_evaluation_inputs import PASSWORD, make_users, sql


@pytest.fixture(scope="module")
def world(city_db):
    url = city_db
    streets = [row[0] for row in sql(url, "SELECT code FROM street WHERE valid_to IS NULL ORDER BY code")]
    community = sql(url, "SELECT community_code FROM compound WHERE valid_to IS NULL AND property_company_id IS NOT "
                         "NULL ORDER BY community_code LIMIT 1")[0][0]
    company = sql(url, "SELECT min(id) FROM property_company")[0][0]
    make_users(url, [("rb_admin", "admin", [], None), ("rb_planner", "planner", [], None),
                     ("rb_street", "street", [streets[0]], None), ("rb_community", "community", [community], None),
                     ("rb_company", "property_company", [], company)])
    server = LiveServer(url)
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in ("rb_admin", "rb_planner", "rb_street", "rb_community", "rb_company")}
    yield {"url": url, "server": server, "tokens": tokens, "streets": streets, "community": community}
    server.stop()


def client(world, name=None):
    headers = {"Authorization": f"Bearer {world['tokens'][name]}"} if name else {}
    return world["server"].client(headers=headers)


def serving(url: str, prefix: str) -> set[int]:
    """The oracle: companies managing a current compound whose code starts with the area's code."""
    return {row[0] for row in sql(url, "SELECT DISTINCT property_company_id FROM compound WHERE valid_to IS NULL "
                                       "AND property_company_id IS NOT NULL AND code LIKE %s", [prefix + "%"])}


@pytest.mark.parametrize("period", ["2026H1", "2026H2", "2026"])
def test_the_list_within_an_area_is_the_companies_serving_it_with_their_city_ranks(world, period):
    with client(world) as http:
        whole = http.get(f"/analytics/evaluations/{period}")
        assert whole.status_code == 200, whole.text
        every = {row["company_id"]: row for row in whole.json()["rows"]}
        areas = [*world["streets"], world["community"], ",".join(world["streets"])]
        for area in areas:
            answer = http.get(f"/analytics/evaluations/{period}", params={"within": area})
            assert answer.status_code == 200, answer.text
            rows = answer.json()["rows"]
            expected = set().union(*(serving(world["url"], code) for code in area.split(",")))
            assert {row["company_id"] for row in rows} == expected
            assert expected and len(rows) == len(expected)
            for row in rows:  # the rank, standing and total are the whole list's
                assert {k: row[k] for k in ("rank", "standing", "total_score")} == {
                    k: every[row["company_id"]][k] for k in ("rank", "standing", "total_score")}
            assert answer.json()["meta"]["within"] == area.split(",")
    assert len(serving(world["url"], world["streets"][0])) < len(every)  # the filter narrows the list


@pytest.mark.parametrize("within", ["abc", "12345", "3709020011" * 2, ",", "３７０９０２００１"])
def test_a_bad_area_is_a_400_with_a_chinese_reason(world, within):
    with client(world) as http:
        answer = http.get("/analytics/evaluations/2026H1", params={"within": within})
    if within == ",":  # no code at all is the whole list
        assert answer.status_code == 200
        return
    assert answer.status_code == 400, answer.text
    assert "街道或社区代码" in answer.json()["detail"]


def test_a_companys_compounds_are_its_current_ones_with_their_shapes(world):
    companies = [row[0] for row in sql(world["url"], "SELECT id FROM property_company ORDER BY id")]
    with client(world) as http:
        for company in companies:
            answer = http.get(f"/analytics/companies/{company}/compounds.geojson")
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"].startswith("application/geo+json")
            features = answer.json()["features"]
            expected = dict(sql(world["url"], "SELECT code, ST_Area(geom::geography) FROM compound "
                                              "WHERE valid_to IS NULL AND property_company_id = %s", [company]))
            assert {f["properties"]["code"] for f in features} == set(expected)
            for feature in features:
                shape = shapely.geometry.shape(feature["geometry"])
                assert shape.geom_type == "MultiPolygon" and shape.is_valid
                # the shape is the compound's: its area in m² (a rough equal-area factor at 36° N) is close
                area = shape.area * 111_320 ** 2 * 0.809
                assert area == pytest.approx(expected[feature["properties"]["code"]], rel=0.02)
        missing = http.get("/analytics/companies/999999/compounds.geojson")
    assert missing.status_code == 404
    assert "999999" in missing.json()["detail"] and "物业服务企业" in missing.json()["detail"]


def test_the_raters_pickers_hold_the_companies_and_compounds_of_their_area(world):
    street = world["streets"][0]
    with client(world, "rb_street") as http:
        answer = http.get("/evaluation/companies")
    assert answer.status_code == 200, answer.text
    companies = answer.json()
    assert {c["id"] for c in companies} == serving(world["url"], street)
    listed = {place["code"] for c in companies for place in c["compounds"]}
    expected = {row[0] for row in sql(world["url"], "SELECT code FROM compound WHERE valid_to IS NULL AND "
                                                    "property_company_id IS NOT NULL AND code LIKE %s", [street + "%"])}
    assert listed == expected
    for company in companies:  # each compound under the company managing it
        managed = {row[0] for row in sql(world["url"], "SELECT code FROM compound WHERE valid_to IS NULL AND "
                                                       "property_company_id = %s", [company["id"]])}
        assert {place["code"] for place in company["compounds"]} <= managed
        assert company["name"]
    with client(world, "rb_community") as http:
        mine = http.get("/evaluation/companies").json()
    assert {c["id"] for c in mine} == serving(world["url"], world["community"])
    assert all(p["community_code"] == world["community"] for c in mine for p in c["compounds"])
    with client(world, "rb_admin") as http:
        everyone = http.get("/evaluation/companies").json()
    assert {c["id"] for c in everyone} == serving(world["url"], "")


@pytest.mark.parametrize("name,status", [(None, 401), ("rb_planner", 403), ("rb_company", 403)])
def test_only_raters_get_the_pickers(world, name, status):
    with client(world, name) as http:
        answer = http.get("/evaluation/companies")
    assert answer.status_code == status
    assert any("\u4e00" <= ch <= "\u9fff" for ch in answer.json()["detail"])


def test_the_credit_file_holds_the_rectification_tasks_without_the_follow_ups_note(world):
    tasks = sql(world["url"], "SELECT company_id, period, deadline, result FROM rectification_task ORDER BY 1, 2")
    assert tasks, "the small city has black-listed companies with rectification tasks"
    company = tasks[0][0]
    with client(world, "rb_admin") as http:
        task_id = http.get("/evaluation/rectifications").json()["rows"][0]["id"]
        follow = http.post(f"/evaluation/rectifications/{task_id}/follow-up",
                           json={"result": "failed", "note": "整改不到位-RBNOTE"})
        assert follow.status_code == 200, follow.text
    followed = sql(world["url"], "SELECT company_id FROM rectification_task WHERE id = %s", [task_id])[0][0]
    with client(world) as http:
        for company in {company, followed}:
            answer = http.get(f"/analytics/companies/{company}/credit-file", params={"part": "rectifications"})
            assert answer.status_code == 200, answer.text
            expected = [(p, d.isoformat(), r) for c, p, d, r in sql(
                world["url"], "SELECT company_id, period, deadline, result FROM rectification_task "
                              "WHERE company_id = %s ORDER BY period", [company])]
            assert [(r["period"], r["deadline"], r["result"]) for r in answer.json()["rows"]] == expected
            assert "RBNOTE" not in answer.text and "rb_admin" not in answer.text
