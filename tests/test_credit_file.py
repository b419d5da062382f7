"""The credit file as the county seed describes it (issue 15, item 6): a company reports basic, good and bad
items; the street serving it or the housing department approves or rejects each with a reason; only approved
items score, by configurable rules (party building among them); the published grades — company names and grades
only — need no sign-in."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from conftest import LiveServer, _clone
from test_evaluation_inputs import PASSWORD, make_users, sql

from gis.analytics.credit import grade_of
from gis.settings import CreditSettings


@pytest.fixture(scope="module")
def world(pg_cluster, small_template):
    url = _clone(pg_cluster, small_template)
    companies = sql(url, """
        SELECT pc.id, min(cm.street_code) FROM property_company pc
        JOIN compound cp ON cp.property_company_id = pc.id AND cp.valid_to IS NULL
        JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
        GROUP BY pc.id ORDER BY pc.id""")
    mine, street = companies[0]
    other_street = next((s for _, s in companies if s != street), None)
    outside = next(c for c, s in companies if c != mine and not sql(url, """
        SELECT 1 FROM compound cp JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
        WHERE cp.property_company_id = %s AND cp.valid_to IS NULL AND cm.street_code = %s""", [c, street]))
    make_users(url, [("admin", "admin", [], None), ("street", "street", [street], None),
                     ("company", "property_company", [], mine), ("planner", "planner", [], None)]
               + ([("other_street", "street", [other_street], None)] if other_street else []))
    sql(url, "UPDATE property_company SET contact_name = '王经理', contact_phone = '13905381234'")
    sql(url, "DELETE FROM credit_item")  # the demo city's items; these tests report their own
    server = LiveServer(url)
    names = ["admin", "street", "company", "planner"] + (["other_street"] if other_street else [])
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in names}
    yield {"url": url, "server": server, "tokens": tokens, "mine": mine, "outside": outside}
    server.stop()


def client(world, name=None):
    headers = {"Authorization": f"Bearer {world['tokens'][name]}"} if name else {}
    return world["server"].client(headers=headers)


def grades(world) -> dict[str, dict]:
    name = sql(world["url"], "SELECT name FROM property_company WHERE id = %s", [world["mine"]])[0][0]
    with client(world) as public:
        answer = public.get("/evaluation/credit-grades")
    assert answer.status_code == 200
    return {row["company_name"]: row for row in answer.json()["rows"]}[name]


def test_a_self_reported_item_counts_only_after_approval(world):
    base = grades(world)
    assert base["grade"] == "B"  # the base score of 80 with nothing approved
    with client(world, "company") as company:
        items = [company.post("/evaluation/credit-items", json={
            "kind": kind, "category": category, "title": title, "occurred_on": "2026-05-01"})
            for kind, category, title in (("good", "party_building", "成立物业企业党支部"),
                                          ("good", "award", "市级红色物业示范项目"),
                                          ("good", "praise", "业主送锦旗"))]
        assert all(item.status_code == 201 for item in items), [item.text for item in items]
        ids = [item.json()["id"] for item in items]
        assert company.post("/evaluation/credit-items", json={
            "company_id": world["outside"], "kind": "good", "category": "award", "title": "冒名",
            "occurred_on": "2026-05-01"}).status_code == 404
        unknown = company.post("/evaluation/credit-items", json={
            "kind": "good", "category": "lottery", "title": "中奖", "occurred_on": "2026-05-01"})
        assert unknown.status_code == 400 and "未知的信用事项" in unknown.json()["detail"]
        # the company cannot approve its own items
        assert company.post(f"/evaluation/credit-items/{ids[0]}/review", json={
            "decision": "approve", "reason": "自批"}).status_code == 403
    assert grades(world) == base  # pending items change nothing

    with client(world, "street") as street:
        listed = street.get("/evaluation/credit-items", params={"status": "pending"}).json()["rows"]
        assert {row["id"] for row in listed} >= set(ids)
        no_reason = street.post(f"/evaluation/credit-items/{ids[0]}/review", json={"decision": "approve",
                                                                                  "reason": " "})
        assert no_reason.status_code == 400 and "理由" in no_reason.json()["detail"]
        for item_id in ids[:2]:
            approved = street.post(f"/evaluation/credit-items/{item_id}/review", json={
                "decision": "approve", "reason": "经核实属实"})
            assert approved.status_code == 200 and approved.json()["status"] == "approved"
        assert street.post(f"/evaluation/credit-items/{ids[0]}/review", json={
            "decision": "reject", "reason": "重复"}).status_code == 409
    if "other_street" in world["tokens"]:
        with client(world, "other_street") as other:  # another street's company is none of its business
            assert other.post(f"/evaluation/credit-items/{ids[2]}/review", json={
                "decision": "approve", "reason": "越权"}).status_code == 404
    with client(world, "admin") as housing:
        rejected = housing.post(f"/evaluation/credit-items/{ids[2]}/review", json={
            "decision": "reject", "reason": "无锦旗照片"})
        assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    after = grades(world)
    assert after["grade"] == "A"  # 80 + party building 5 + award 5 = 90; the rejected praise counts nothing
    with client(world) as public:  # the credit file holds the approved items only
        file = public.get(f"/analytics/companies/{world['mine']}/credit-file", params={"part": "credit_items"})
    assert sorted(row["title"] for row in file.json()["rows"]) == ["市级红色物业示范项目", "成立物业企业党支部"]
    assert file.json()["meta"]["credit_grade"] == "A"
    with client(world, "company") as company:
        own = pd.DataFrame(company.get("/evaluation/credit-items").json()["rows"]).set_index("id")
    assert own.loc[ids[2], "status"] == "rejected" and own.loc[ids[2], "review_reason"] == "无锦旗照片"
    assert set(own["company_id"]) == {world["mine"]}


def test_bad_items_lower_the_grade_within_the_category_cap(world):
    with client(world, "admin") as housing:
        for _ in range(3):
            item = housing.post("/evaluation/credit-items", json={
                "company_id": world["mine"], "kind": "bad", "category": "bad_credit", "title": "失信被执行",
                "occurred_on": "2026-06-01"})
            assert item.status_code == 201, item.text
            assert housing.post(f"/evaluation/credit-items/{item.json()['id']}/review", json={
                "decision": "approve", "reason": "法院公告"}).status_code == 200
    # 90 - min(15, 3 x 15) = 75: grade C with the default rules
    assert grades(world)["grade"] == "C"
    rules = CreditSettings(grades={"A": 95, "B": 70, "C": 50})
    assert grade_of(75, rules) == "B" and grade_of(49.9, rules) == "D"


def test_the_published_grades_show_names_and_grades_only(world):
    with client(world) as public:
        json_rows = public.get("/evaluation/credit-grades").json()["rows"]
        page = public.get("/evaluation/credit-grades.html")
        xlsx = public.get("/evaluation/credit-grades", params={"format": "xlsx"})
        refused = public.get("/evaluation/credit-items")
    assert refused.status_code == 401
    assert json_rows and all(set(row) == {"company_name", "grade", "grade_zh"} for row in json_rows)
    assert page.status_code == 200 and "信用等级公示" in page.text
    for text in (page.text, str(json_rows)):
        assert "13905381234" not in text and "王经理" not in text
    frame = pd.read_excel(io.BytesIO(xlsx.content))
    assert list(frame.columns) == ["company_name", "grade", "grade_zh"]
    with client(world, "planner") as planner:
        rows = planner.get("/evaluation/credit-items").json()["rows"]
    assert rows and all(row["reported_by"] is None and row["reviewed_by"] is None for row in rows)
