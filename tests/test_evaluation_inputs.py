"""The evaluation's inputs through the API (issue 15, item 4): regulator inspections with items, street and
community ratings, residents' satisfaction surveys, each in its role's scope with Chinese reasons for refusals;
the evaluation recomputed with pandas from the exported inputs equals gridgov's; a company with one rating is
listed as insufficient data, not black-listed."""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import LiveServer
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import create_async_engine

from gis.access import auth
from gis.analytics.evaluation import compute_evaluation
from gis.db.engine import with_driver
from gis.settings import EvaluationSettings

PERIOD = "2026H1"
PASSWORD = "evaluation inputs pw"
MIN_INSPECTIONS, MIN_RATINGS, MIN_SURVEY = 2, 2, 30
"""The documented least samples (EvaluationSettings defaults)."""


def make_users(url: str, specs: list[tuple[str, str, list[str], int | None]]) -> None:
    async def create() -> None:
        engine = create_async_engine(with_driver(url, "asyncpg"))
        async with engine.begin() as conn:
            for username, role, scope, company in specs:
                await auth.create_user(conn, username, PASSWORD, role, scope, company)
        await engine.dispose()

    asyncio.run(create())


def sql(url: str, statement: str, params=None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def world(city_db):
    url = city_db
    # Start from a city with no evaluation inputs: everything below comes in through the API.
    sql(url, "DELETE FROM regulator_inspection; DELETE FROM company_rating; DELETE FROM company_evaluation; "
             "DELETE FROM satisfaction_survey")
    units = sql(url, """
        SELECT cp.property_company_id, cp.code, cp.community_code, cm.street_code FROM compound cp
        JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
        WHERE cp.valid_to IS NULL AND cp.property_company_id IS NOT NULL ORDER BY 1, 2""")
    frame = pd.DataFrame(units, columns=["company", "compound", "community", "street"])
    first_street = frame["street"].min()
    first_community = frame.loc[frame["street"] == first_street, "community"].min()
    make_users(url, [("admin", "admin", [], None), ("street", "street", [first_street], None),
                     ("community", "community", [first_community], None), ("planner", "planner", [], None)])
    server = LiveServer(url)
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in ("admin", "street", "community", "planner")}
    yield {"url": url, "server": server, "tokens": tokens, "units": frame, "street": first_street,
           "community": first_community}
    server.stop()


def client(world, name=None):
    headers = {"Authorization": f"Bearer {world['tokens'][name]}"} if name else {}
    return world["server"].client(headers=headers)


def test_each_role_records_its_own_inputs_and_is_told_why_not(world):
    units = world["units"]
    own = units[units["community"] == world["community"]].iloc[0]
    other = units[units["street"] != world["street"]].iloc[0]
    with client(world, "community") as community:
        answer = community.post("/evaluation/surveys", json={
            "compound_code": own["compound"], "surveyed_on": "2026-02-10", "sample_size": 12, "score": 80})
        assert answer.status_code == 201, answer.text
        assert answer.json()["company_id"] == own["company"]
        outside = community.post("/evaluation/surveys", json={
            "compound_code": other["compound"], "surveyed_on": "2026-02-10", "sample_size": 12, "score": 80})
        assert outside.status_code == 404 and "管辖范围" in outside.json()["detail"]
        for bad, reason in (({"score": 150}, "0 到 100"), ({"sample_size": 0}, "正整数"),
                            ({"surveyed_on": "1999-01-01"}, "不是可信的时间")):
            refused = community.post("/evaluation/surveys", json={
                "compound_code": own["compound"], "surveyed_on": "2026-02-11", "sample_size": 12, "score": 80,
                **bad})
            assert refused.status_code == 400 and reason in refused.json()["detail"], refused.text
        assert community.post("/evaluation/inspections", json={
            "company_id": int(own["company"]), "inspected_on": "2026-02-01", "score": 90}).status_code == 403
    with client(world, "street") as street:
        serving = int(units.loc[units["street"] == world["street"], "company"].iloc[0])
        elsewhere = sorted(set(units["company"]) - set(units.loc[units["street"] == world["street"], "company"]))
        rated = street.post("/evaluation/ratings", json={"company_id": serving, "period": PERIOD, "score": 85})
        assert rated.status_code == 201, rated.text
        assert rated.json()["rater_level"] == "street" and rated.json()["rater_code"] == world["street"]
        if elsewhere:
            refused = street.post("/evaluation/ratings", json={"company_id": int(elsewhere[0]), "period": PERIOD,
                                                               "score": 85})
            assert refused.status_code == 404 and "物业服务企业" in refused.json()["detail"]
        quarter = street.post("/evaluation/ratings", json={"company_id": serving, "period": "2026Q1", "score": 85})
        assert quarter.status_code == 400 and "半年" in quarter.json()["detail"]
    with client(world) as public:
        assert public.post("/evaluation/ratings", json={"company_id": 1, "period": PERIOD,
                                                        "score": 85}).status_code == 401
    # Clean slate for the recomputation below.
    sql(world["url"], "DELETE FROM company_rating; DELETE FROM satisfaction_survey")


def _post_inputs(world) -> dict:
    """Every input of the half-year through the API as the administrator; returns the two thin companies."""
    units = world["units"]
    rng = np.random.default_rng(15)
    companies = sorted(int(c) for c in units["company"].unique())
    one_rating, one_inspection = companies[0], companies[1]
    with client(world, "admin") as admin:
        for company in companies:
            mine = units[units["company"] == company]
            poor = company == one_rating
            for n in range(1 if company == one_inspection else 3):
                answer = admin.post("/evaluation/inspections", json={
                    "company_id": company, "inspected_on": f"2026-0{n + 2}-1{n}", "compound_code": mine.iloc[0][
                        "compound"], "score": 10.0 if poor else round(float(rng.uniform(55, 98)), 1),
                    "items": [{"item": "消防通道", "deduction": 5, "note": "堆放杂物"}, {"item": "环境卫生"}],
                    "note": "例行检查"})
                assert answer.status_code == 201, answer.text
            raters = [("street", code) for code in sorted(mine["street"].unique())] + [
                ("community", code) for code in sorted(mine["community"].unique())]
            for level, code in raters[:1] if poor else raters:
                answer = admin.post("/evaluation/ratings", json={
                    "company_id": company, "period": PERIOD, "rater_level": level, "rater_code": code,
                    "score": 0.0 if poor else round(float(rng.uniform(50, 99)), 1)})
                assert answer.status_code == 201, answer.text
            for k, compound in enumerate(mine["compound"]):
                answer = admin.post("/evaluation/surveys", json={
                    "compound_code": compound, "surveyed_on": f"2026-05-{k % 27 + 1:02d}",
                    "sample_size": int(rng.integers(3, 40)), "score": round(float(rng.uniform(40, 100)), 1)})
                assert answer.status_code == 201, answer.text
    return {"one_rating": one_rating, "one_inspection": one_inspection}


def _exported(world, kind: str) -> pd.DataFrame:
    with client(world, "admin") as admin:
        answer = admin.get(f"/evaluation/{kind}", params={"period": PERIOD, "format": "csv"})
    assert answer.status_code == 200, answer.text
    return pd.read_csv(io.BytesIO(answer.content), encoding="utf-8-sig")


def test_the_evaluation_recomputed_from_the_exported_inputs_equals_gridgovs(world):
    thin = _post_inputs(world)
    inspections, ratings, surveys = (_exported(world, kind) for kind in ("inspections", "ratings", "surveys"))
    assert (inspections["items"].str.contains("消防通道:5")).all()

    # The parts as the rules state them, from the exports alone.
    regulator = inspections.groupby("company_id")["score"].agg(["mean", "size"])
    street_part = ratings.groupby("company_id")["score"].agg(["mean", "size"])
    street_only = ratings[ratings["rater_level"] == "street"].groupby("company_id")["score"].mean()
    community_only = ratings[ratings["rater_level"] == "community"].groupby("company_id")["score"].mean()
    weighted = surveys.assign(w=surveys["score"] * surveys["sample_size"]).groupby("company_id")[
        ["w", "sample_size"]].sum()
    survey = (weighted["w"] / weighted["sample_size"])[weighted["sample_size"] >= MIN_SURVEY]
    insufficient = set(regulator.index[regulator["size"] < MIN_INSPECTIONS]) | set(
        street_part.index[street_part["size"] < MIN_RATINGS])
    assert insufficient == {thin["one_rating"], thin["one_inspection"]}

    with client(world, "planner") as planner:
        body = planner.get(f"/analytics/evaluations/{PERIOD}").json()
    got = pd.DataFrame(body["rows"]).set_index("company_id")
    np.testing.assert_allclose(got["regulator_score"].loc[regulator.index], regulator["mean"], atol=1e-3)
    np.testing.assert_allclose(got["street_score"].loc[street_part.index], street_part["mean"], atol=1e-3)
    np.testing.assert_allclose(got["survey_score"].loc[survey.index], survey, atol=1e-3)
    assert got["survey_score"].drop(survey.index).isna().all()
    assert set(got.index[got["insufficient_data"]]) == insufficient
    assert got.loc[sorted(insufficient), "rank"].isna().all()
    assert (got.loc[sorted(insufficient), "grade"] == "insufficient").all()
    assert body["meta"]["ranked"] == len(got) - len(insufficient)

    # Tai'an's scheme without the residents' part: the whole total, ranks and lists from the exports.
    weights = {"regulator": 3.0, "street": 2.0, "community": 5.0}
    expected = pd.DataFrame({"regulator": regulator["mean"], "street": street_only, "community": community_only})
    expected = expected.drop(sorted(insufficient))
    expected["total"] = sum(w * expected[part] for part, w in weights.items()) / sum(weights.values())
    expected = expected.sort_values("total", ascending=False)
    n = len(expected)
    expected["standing"] = ["red"] + ["none"] * (n - 2) + ["black"]  # 10 % of fewer than 20, at least one
    engine = create_engine(with_driver(world["url"], "psycopg"))
    with engine.connect() as conn:
        figure = compute_evaluation(conn, PERIOD, EvaluationSettings(
            residents_weight=0, regulator_weight=3, street_weight=2, community_weight=5))
    engine.dispose()
    variant = pd.DataFrame(figure.rows)
    ranked = variant[~variant["insufficient_data"]].set_index("company_id")
    assert list(ranked.index) == list(expected.index)
    np.testing.assert_allclose(ranked["total_score"], expected["total"], atol=1e-3)
    assert list(ranked["standing"]) == list(expected["standing"])
    assert figure.meta["weights"] == {"residents": 0, "regulator": 3, "street": 2, "community_party": 5}


def test_a_company_with_one_rating_is_not_on_the_black_list(world):
    with client(world, "admin") as admin:
        body = admin.get(f"/analytics/evaluations/{PERIOD}").json()
    rows = {row["company_id"]: row for row in body["rows"]}
    thin = min(rows)  # the company rated once, 0 points, with inspections of 10 points
    assert rows[thin]["ratings"] == 1 and rows[thin]["total_score"] < min(
        r["total_score"] for r in rows.values() if not r["insufficient_data"])
    assert rows[thin]["standing"] == "none" and rows[thin]["insufficient_data"] is True
    assert "少于" in " ".join(json.loads(rows[thin]["inputs"])["insufficient"])
    black = [r for r in rows.values() if r["standing"] == "black"]
    assert len(black) == 1 and black[0]["company_id"] != thin and not black[0]["insufficient_data"]


def test_planners_read_the_inputs_without_staff_names(world):
    with client(world, "planner") as planner:
        answer = planner.get("/evaluation/inspections", params={"period": PERIOD})
    assert answer.status_code == 200
    rows = answer.json()["rows"]
    assert rows and all(row["recorded_by"] is None and row["note"] is None for row in rows)


def test_inputs_import_from_a_gbk_file_in_the_callers_scope(world, tmp_path):
    from gis.access.auth import Principal
    from gis.db.engine import sync_engine
    from gis.registry import load

    units = world["units"]
    own = units[units["street"] == world["street"]].iloc[0]
    other = units[units["street"] != world["street"]].iloc[0]
    credit = dict(sql(world["url"], "SELECT id, credit_code FROM property_company"))
    lines = ["物业企业信用代码,评价期间（如2026H1）,评分单位层级,评分单位编码,得分",
             f"{credit[own['company']]},2025H2,街道,{world['street']},88.5",
             f"{credit[other['company']]},2025H2,街道,{other['street']},70",
             f"{credit[own['company']]},2025Q3,街道,{world['street']},80",
             f"{credit[own['company']]},2025H2,街道,{world['street']},101"]
    path = tmp_path / "评分.csv"
    path.write_bytes("\r\n".join(lines).encode("gbk"))
    street = Principal(role="street", username="street", scope=(world["street"],))
    engine = sync_engine(world["url"])
    try:
        with engine.begin() as conn:
            report = load.import_file(conn, street, "company_rating", path)
        with engine.begin() as conn:
            again = load.import_file(conn, street, "company_rating", path)
    finally:
        engine.dispose()
    states = [row.state for row in report.rows]
    assert states == ["imported", "rejected", "rejected", "rejected"], report.rows
    reasons = " ".join(row.reason for row in report.rows[1:])
    assert "管辖范围" in reasons and "半年" in reasons
    assert [row.state for row in again.rows] == ["unchanged", "rejected", "rejected", "rejected"]
    stored = sql(world["url"], "SELECT score, recorded_by FROM company_rating WHERE period = '2025H2'")
    assert stored == [(88.5, "street")]


def test_the_street_report_lists_a_thin_company_as_insufficient_data(world, tmp_path):
    from gis.analytics.report import build_report
    from gis.db.engine import sync_engine

    units = world["units"]
    thin = int(min(units["company"]))  # rated once (see _post_inputs)
    street = units.loc[units["company"] == thin, "street"].min()
    engine = sync_engine(world["url"])
    try:
        with engine.connect() as conn:
            files = build_report(conn, street, PERIOD, tmp_path, pdf=False)
    finally:
        engine.dispose()
    page = files.html.read_text(encoding="utf-8")
    section = page[page.index("物业企业红黑榜"):]
    assert "<td>数据不足</td>" in section and "None" not in section[:section.index("</table>")]
