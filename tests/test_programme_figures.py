"""The programme figures recomputed independently: pandas over the registry's own exports (the CSV templates the
city reads back), with the rules as the definitions state them, against /analytics/programme as of two dates
around a takeover made here — the exports taken before the takeover answer the day before it, those taken after
answer its day. Also the per-area figure, the trend, the XLSX export, the gaps layer and the coverage table."""

from __future__ import annotations

import asyncio
import io
from datetime import date, timedelta

import openpyxl
import pandas as pd
import pytest
from conftest import LiveServer

from gis.registry.history import today

PASSWORD = "programme password 1"
MODES = {"专业物业": "professional", "社区领办": "community_led", "代管": "entrusted", "自管": "self_managed",
         "无物业": "none"}
KINDS = ("compound_attributes", "property_company", "owners_committee", "party_organisation", "grid_worker",
         "cross_appointment")


def _create_admin(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from gis.access import auth
    from gis.db.engine import with_driver

    async def create():
        engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool)
        async with engine.begin() as conn:
            await auth.create_user(conn, "prog-admin", PASSWORD, "admin", [])
        await engine.dispose()

    asyncio.run(create())


def _exports(http, headers) -> dict[str, pd.DataFrame]:
    frames = {}
    for kind in KINDS:
        response = http.get(f"/registry/{kind}/export.csv", headers=headers)
        assert response.status_code == 200, response.text
        frames[kind] = pd.read_csv(io.BytesIO(response.content), dtype=str, encoding="utf-8-sig",
                                   keep_default_na=False)
    for layer in ("community", "grid"):
        body = http.get(f"/layers/{layer}.geojson", params={"limit": 50_000}).json()
        frames[layer] = pd.DataFrame([f["properties"] for f in body["features"]])
    return frames


def _day(value: str) -> date | None:
    return date.fromisoformat(value) if value else None


def _yes(value: str) -> bool:
    return value == "是"


def oracle(x: dict[str, pd.DataFrame], day: date) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """{(level, code): {figure: (numerator, denominator)}} from the exports, as of `day`."""
    c = x["compound_attributes"].copy()
    c["mode"] = c["管理方式"].map(MODES)
    c["old"] = c["老旧小区"].map(_yes)
    c["households"] = c["户数"].astype(int)
    c["area"] = c["建筑面积（平方米）"].astype(float)
    c["due"] = pd.to_numeric(c["应收物业费（元）"], errors="coerce")
    c["collected"] = pd.to_numeric(c["实收物业费（元）"], errors="coerce")
    terms = x["owners_committee"].copy()
    terms["start"] = terms["任期开始日期"].map(_day)
    latest = terms[terms["start"] <= day].sort_values("start").groupby("小区编码").last()
    c = c.join(latest[["委员人数", "党员委员人数", "主任是否党员"]], on="小区编码")
    c["committee"] = c["委员人数"].notna()
    c["members"] = pd.to_numeric(c["委员人数"]).fillna(0)
    c["party"] = pd.to_numeric(c["党员委员人数"]).fillna(0)
    c["chair_party"] = c["主任是否党员"].fillna("否").map(_yes)
    orgs = x["party_organisation"].copy()
    orgs["start"] = orgs["成立日期"].map(_day)
    orgs["end"] = orgs.get("撤销日期", pd.Series("", index=orgs.index)).map(_day)
    alive = orgs[orgs["start"].map(lambda s: s is None or s <= day) & orgs["end"].map(lambda e: e is None or e > day)]
    alive_units = {kind: set(alive[alive["组织类型"] == kind]["所属单位编码"]) for kind in set(orgs["组织类型"])}
    branches_registered = set(orgs[orgs["组织类型"] == "企业党支部"]["所属单位编码"])
    cross = x["cross_appointment"]
    cross = cross[cross["任职日期"].map(_day) <= day]
    pairs = cross[((cross["本职单位类型"] == "物业企业") & (cross["兼任单位类型"] == "社区两委"))
                  | ((cross["本职单位类型"] == "社区两委") & (cross["兼任单位类型"] == "物业企业"))]
    cross_refs = set(pairs["本职单位编码"]) | set(pairs["兼任单位编码"])
    companies = x["property_company"].set_index("统一社会信用代码")
    workers = x["grid_worker"]
    workers = workers[workers["任职日期"].map(_day) <= day]
    grids = x["grid"][["code"]].copy()
    grids["branch"] = grids["code"].isin(alive_units.get("网格党支部", set()))
    grids["workers"] = grids["code"].map(workers.groupby("网格编码").size()).fillna(0)
    company_workers = workers[(workers["是否兼职"] == "是") & (workers["所属物业企业信用代码"] != "")]
    grids["company_workers"] = grids["code"].map(company_workers.groupby("网格编码").size()).fillna(0)
    communities = x["community"][["code"]].copy()
    communities["org"] = communities["code"].isin(alive_units.get("社区党委", set()))
    communities["cross"] = communities["code"].isin(cross_refs)

    def company_row(credit: str) -> dict:
        company = companies.loc[credit]
        has_org = credit in alive_units.get("企业党支部", set()) or (
            _yes(company["有党组织"]) and credit not in branches_registered)
        return {"led": _yes(company["社区领办"]), "org": has_org,
                "work": has_org or _yes(company["未建党组织但开展党的工作"]), "cross": credit in cross_refs}

    def figures(cs: pd.DataFrame, gs: pd.DataFrame, ms: pd.DataFrame) -> dict[str, tuple[float, float]]:
        service = cs["mode"].isin(["professional", "community_led"])
        old = cs[cs["old"]]
        gap = (cs["mode"] == "none") | (cs["old"] & ~cs["mode"].isin(["professional", "community_led", "entrusted"]))
        committees = cs[cs["committee"]]
        fees = cs[cs["due"].notna() & cs["collected"].notna()]
        serving = [company_row(credit) for credit in sorted(set(cs["物业企业信用代码"]) - {""})]
        count = lambda rows, key: float(sum(row[key] for row in rows))  # noqa: E731
        return {
            "professional_households": (cs[service]["households"].sum(), cs["households"].sum()),
            "professional_area": (cs[service]["area"].sum(), cs["area"].sum()),
            "old_estate_coverage": (old["mode"].isin(["professional", "community_led", "entrusted"]).sum(), len(old)),
            "community_led_old_estates": ((old["mode"] == "community_led").sum(), len(old)),
            "community_led_companies": (count(serving, "led"), len(serving)),
            "gap_compounds": (gap.sum(), len(cs)),
            "committee_formation": (len(committees), len(cs)),
            "committee_party_share": (committees["party"].sum(), committees["members"].sum()),
            "committee_party_half": ((2 * committees["party"] >= committees["members"]).sum(), len(committees)),
            "committee_party_chairs": (committees["chair_party"].sum(), len(committees)),
            "community_party_coverage": (ms["org"].sum(), len(ms)),
            "grid_party_coverage": (gs["branch"].sum(), len(gs)),
            "company_party_org": (count(serving, "org"), len(serving)),
            "company_party_work": (count(serving, "work"), len(serving)),
            "cross_companies": (count(serving, "cross"), len(serving)),
            "cross_communities": (ms["cross"].sum(), len(ms)),
            "part_time_grid_workers": (gs["company_workers"].sum(), gs["workers"].sum()),
            "fee_collection": (fees["collected"].sum(), fees["due"].sum()),
        }

    out = {("city", "city"): figures(c, grids, communities)}
    for level, width in (("district", 6), ("street", 9), ("community", 12)):
        for code in sorted(set(communities["code"].str[:width])):
            out[(level, code)] = figures(c[c["小区编码"].str[:width] == code], grids[grids["code"].str[:width] == code],
                                         communities[communities["code"].str[:width] == code])
    return out


@pytest.fixture(scope="module")
def story(city_db):
    """Fees registered for three compounds, the exports; a takeover of an old estate without management 30 days
    ago; the exports again."""
    _create_admin(city_db)
    server = LiveServer(city_db)
    with server.client() as http:
        token = http.post("/auth/login", json={"username": "prog-admin", "password": PASSWORD}).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        attributes = http.get("/registry/compound_attributes/export.csv", headers=admin).content.decode("utf-8-sig")
        frame = pd.read_csv(io.StringIO(attributes), dtype=str, keep_default_na=False)
        frame.loc[frame.index[:3], "应收物业费（元）"] = ["120000.00", "80000.00", "50000.50"]
        frame.loc[frame.index[:3], "实收物业费（元）"] = ["110000.00", "64000.00", "50000.50"]
        report = http.post("/registry/compound_attributes/imports", headers=admin,
                           files={"file": ("fees.csv", frame.to_csv(index=False).encode("utf-8"), "text/csv")})
        assert report.status_code == 200 and report.json()["updated"] == 3, report.text
        before = _exports(http, admin)
        attributes = before["compound_attributes"]
        target = attributes[(attributes["管理方式"] == "无物业") & (attributes["老旧小区"] == "是")].iloc[0]
        companies = before["property_company"]
        company = companies[companies["社区领办"] == "否"].iloc[0]["统一社会信用代码"]
        taken_on = today() - timedelta(days=30)
        taken = http.post(f"/registry/compounds/{target['小区编码']}/takeover", headers=admin, json={
            "company_credit_code": company, "on_date": taken_on.isoformat(), "reason": "测试：接管无物业老旧小区"})
        assert taken.status_code == 200, taken.text
        after = _exports(http, admin)
        yield {"http": http, "before": before, "after": after, "compound": target["小区编码"], "on": taken_on,
               "households": int(target["户数"]), "admin": admin}
    server.stop()


def _api(http, level: str, code: str, day: date) -> dict[str, dict]:
    params = {"level": level, "as_of": day.isoformat()}
    if level != "city":
        params["code"] = code
    response = http.get("/analytics/programme", params=params)
    assert response.status_code == 200, response.text
    return {row["key"]: row for row in response.json()["rows"]}


def _areas(story) -> list[tuple[str, str]]:
    code = story["compound"]
    return [("city", "city"), ("district", code[:6]), ("street", code[:9]), ("community", code[:12])]


@pytest.mark.parametrize("when", ["before", "after"])
def test_every_figure_equals_pandas_over_the_exports(story, when):
    day = story["on"] - timedelta(days=1) if when == "before" else story["on"]
    expected = oracle(story[when], day)
    other_street = sorted(code for level, code in expected if level == "street" and code != story["compound"][:9])
    for level, code in _areas(story) + [("street", other_street[0])]:
        got = _api(story["http"], level, code, day)
        assert set(got) == set(expected[(level, code)])
        for key, (numerator, denominator) in expected[(level, code)].items():
            row = got[key]
            assert row["numerator"] == pytest.approx(float(numerator), abs=0.01), (level, code, key)
            assert row["denominator"] == pytest.approx(float(denominator), abs=0.01), (level, code, key)
            value = (numerator if row["kind"] == "count" else numerator / denominator if denominator else None)
            assert row["value"] == (None if value is None else pytest.approx(float(value), abs=1e-5)), (key, code)
            if row["target"] is not None and row["value"] is not None:
                assert row["met"] == (row["value"] >= row["target"])
                assert row["gap"] == pytest.approx(row["target"] - row["value"], abs=1e-6)


def test_the_takeover_moves_the_figures_as_the_versions_say(story):
    http, on = story["http"], story["on"]
    for level, code in _areas(story):
        before, after = _api(http, level, code, on - timedelta(days=1)), _api(http, level, code, on)
        assert after["gap_compounds"]["value"] == before["gap_compounds"]["value"] - 1
        assert after["old_estate_coverage"]["numerator"] == before["old_estate_coverage"]["numerator"] + 1
        assert after["professional_households"]["numerator"] == (before["professional_households"]["numerator"]
                                                                 + story["households"])
        assert after["committee_formation"] == before["committee_formation"]
    # the fees were registered (they have no versions: the same on both days)
    fees = _api(http, "city", "city", on)["fee_collection"]
    attributes = story["before"]["compound_attributes"]
    rows = attributes[(attributes["应收物业费（元）"] != "") & (attributes["实收物业费（元）"] != "")]
    assert {"120000.00", "80000.00", "50000.50"} <= set(rows["应收物业费（元）"])
    due, collected = rows["应收物业费（元）"].astype(float).sum(), rows["实收物业费（元）"].astype(float).sum()
    assert (fees["numerator"], fees["denominator"]) == (pytest.approx(collected), pytest.approx(due))
    assert 0 < collected < due
    assert fees["dated"] is False and "没有历史版本" in fees["description"]


def test_gaps_layer_follows_the_same_rule(story):
    http, on, compound = story["http"], story["on"], story["compound"]
    for day, present in ((on - timedelta(days=1), True), (on, False)):
        layer = http.get("/analytics/gaps.geojson", params={"as_of": day.isoformat()})
        assert layer.status_code == 200 and layer.headers["content-type"].startswith("application/geo+json")
        features = layer.json()["features"]
        codes = {f["properties"]["code"] for f in features}
        assert (compound in codes) is present
        assert all(f["geometry"]["type"] == "MultiPolygon" for f in features)
        assert len(codes) == _api(http, "city", "city", day)["gap_compounds"]["value"]
        expected = oracle(story["before" if present else "after"], day)[("city", "city")]["gap_compounds"][0]
        assert len(codes) == expected
    street = http.get("/analytics/gaps", params={"level": "street", "code": compound[:9],
                                                 "as_of": (on - timedelta(days=1)).isoformat()}).json()
    assert compound in {row["code"] for row in street["rows"]}
    assert all(row["street_code"] == compound[:9] and row["reason"] for row in street["rows"])


def test_one_figure_per_area_and_its_trend(story):
    http, on = story["http"], story["on"]
    expected = oracle(story["after"], on)
    body = http.get("/analytics/programme/old_estate_coverage",
                    params={"level": "community", "as_of": on.isoformat()}).json()
    rows = {row["code"]: row for row in body["rows"]}
    communities = {code for level, code in expected if level == "community"}
    assert set(rows) == communities
    for code in communities:
        numerator, denominator = expected[("community", code)]["old_estate_coverage"]
        assert (rows[code]["numerator"], rows[code]["denominator"]) == (numerator, denominator)
    assert body["meta"]["target"] == 0.7 and "70%" in body["meta"]["target_source"]
    within = http.get("/analytics/programme/grid_party_coverage", params={
        "level": "community", "within": story["compound"][:9]}).json()["rows"]
    assert within and all(row["code"].startswith(story["compound"][:9]) for row in within)
    trend = http.get("/analytics/programme/trend", params={"until": on.isoformat(), "months": 3}).json()
    assert [row["as_of"] for row in trend["rows"]][-1] == on.isoformat() and len(trend["rows"]) == 3
    now = _api(http, "city", "city", on)
    assert all(trend["rows"][-1][key] == row["value"] for key, row in now.items())
    for row in trend["rows"][:-1]:  # earlier months end on their last day
        month_end = date.fromisoformat(row["as_of"])
        assert (month_end + timedelta(days=1)).day == 1
        assert row["gap_compounds"] == _api(http, "city", "city", month_end)["gap_compounds"]["value"]


def test_xlsx_export_has_chinese_headers_and_the_same_numbers(story):
    http, on = story["http"], story["on"]
    response = http.get("/analytics/programme", params={"as_of": on.isoformat(), "format": "xlsx"})
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).worksheets[0]
    header = [cell.value for cell in sheet[1]]
    assert header[:4] == ["指标编码", "指标", "数值", "分子"] and "目标值" in header and "是否达标" in header
    values = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    for key, row in _api(http, "city", "city", on).items():
        assert values[key][1] == row["title"] and values[key][2] == row["value"]


def test_coverage_table_counts_with_the_same_rules(story):
    http = story["http"]
    coverage = {row["code"]: row for row in http.get("/analytics/coverage", params={"level": "street"}).json()["rows"]}
    for code in [c for c in coverage if c != "total"]:
        now = _api(http, "street", code, today())
        assert coverage[code]["old_served_count"] == now["old_estate_coverage"]["numerator"]
        assert coverage[code]["old_count"] == now["old_estate_coverage"]["denominator"]
        assert coverage[code]["professional_households"] == now["professional_households"]["numerator"]
        assert coverage[code]["committee_count"] == now["committee_formation"]["numerator"]


@pytest.mark.parametrize("params, status, words", [
    ({"level": "street"}, 400, "街道编码"),
    ({"level": "street", "code": "999999999"}, 404, "没有编码为 999999999 的街道"),
    ({"as_of": "2999-01-01"}, 400, "晚于今天"),
    ({"as_of": "1999-12-31"}, 400, "早于"),
    ({"bbox": "117,36,116,37"}, 400, "bbox"),
    ({"level": "street", "code": "370902001", "bbox": "116,36,118,37"}, 400, "层级应为 city"),
])
def test_bad_requests_get_a_reason(story, params, status, words):
    response = story["http"].get("/analytics/programme", params=params)
    assert response.status_code == status, response.text
    assert words in response.text


def test_unknown_figure_is_404_naming_the_figures(story):
    response = story["http"].get("/analytics/programme/no_such_figure")
    assert response.status_code == 404 and "old_estate_coverage" in response.json()["detail"]


def test_a_target_is_set_in_the_environment(city_db):
    server = LiveServer(city_db, {"GRIDGOV_PROGRAMME_COMMITTEE_FORMATION": "0.95",
                                  "GRIDGOV_PROGRAMME_OLD_ESTATE_COVERAGE": "none"})
    try:
        with server.client() as http:
            rows = {row["key"]: row for row in http.get("/analytics/programme").json()["rows"]}
    finally:
        server.stop()
    assert rows["committee_formation"]["target"] == 0.95 and rows["committee_formation"]["met"] is False
    assert rows["old_estate_coverage"]["target"] is None and rows["old_estate_coverage"]["met"] is None
