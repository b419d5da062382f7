"""What the red/black list sets in motion (issue 15, item 5): a black-listed company gets a rectification task;
black twice in a row without a passed rectification starts exit, which hands over every compound as a dated
takeover (to the community-led company of its community, or the one the street names); the monthly subsidy
ledger follows the dated management versions and is exported to XLSX."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
from conftest import LiveServer, _clone
from test_evaluation_inputs import PASSWORD, make_users, sql

from fixtures.evaluation_inputs import generate_evaluation_inputs
from gis.access.auth import Principal
from gis.db.engine import sync_engine
from gis.registry.history import take_over

H1, H2 = "2026H1", "2026H2"
BEIJING = timezone(timedelta(hours=8))


def _poor_company(url: str) -> int:
    """A professional company made poor in both half-years: inspections and ratings of 20 and surveys of 0 with
    enough respondents to count."""
    generate_evaluation_inputs(url, seed=1)
    sql(url, "DELETE FROM company_evaluation")
    worst = sql(url, """
        SELECT pc.id FROM property_company pc JOIN compound cp ON cp.property_company_id = pc.id
        WHERE cp.valid_to IS NULL AND NOT pc.is_community_led GROUP BY pc.id ORDER BY count(*) DESC, pc.id
        LIMIT 1""")[0][0]
    sql(url, "UPDATE regulator_inspection SET score = 20 WHERE company_id = %s", [worst])
    sql(url, "UPDATE company_rating SET score = 20 WHERE company_id = %s", [worst])
    sql(url, "DELETE FROM satisfaction_survey WHERE company_id = %s", [worst])
    sql(url, """
        INSERT INTO satisfaction_survey (compound_code, company_id, surveyed_on, sample_size, score)
        SELECT code, %(c)s, day, 100, 0 FROM compound, unnest(ARRAY[DATE '2026-03-01', DATE '2026-09-01']) day
        WHERE property_company_id = %(c)s AND valid_to IS NULL""", {"c": worst})
    return worst


@pytest.fixture
def world(pg_cluster, small_template):
    url = _clone(pg_cluster, small_template)
    worst = _poor_company(url)
    street = sql(url, """SELECT min(cm.street_code) FROM compound cp JOIN community cm ON cm.code = cp.community_code
                         WHERE cp.property_company_id = %s AND cp.valid_to IS NULL""", [worst])[0][0]
    make_users(url, [("admin", "admin", [], None), ("street", "street", [street], None),
                     ("planner", "planner", [], None)])
    server = LiveServer(url)
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in ("admin", "street", "planner")}
    yield {"url": url, "server": server, "tokens": tokens, "worst": worst}
    server.stop()


def client(world, name):
    return world["server"].client(headers={"Authorization": f"Bearer {world['tokens'][name]}"})


def _evaluate(world, period: str) -> dict:
    with client(world, "admin") as admin:
        answer = admin.post(f"/analytics/evaluations/{period}")
    assert answer.status_code == 200, answer.text
    return {row["company_id"]: row for row in answer.json()["rows"]}


def _task(world, period: str) -> dict:
    with client(world, "street") as street:
        tasks = street.get("/evaluation/rectifications", params={"period": period}).json()["rows"]
    return next(task for task in tasks if task["company_id"] == world["worst"])


def test_a_black_listed_company_gets_a_task_and_a_passed_rectification_prevents_exit(world):
    first = _evaluate(world, H1)
    assert first[world["worst"]]["standing"] == "black"
    task = _task(world, H1)
    assert task["deadline"] == (date(2026, 7, 1) + timedelta(days=90)).isoformat()
    assert task["result"] == "pending" and "行业主管部门检查" in task["items"]
    black = [c for c, row in first.items() if row["standing"] == "black"]
    with client(world, "admin") as admin:
        assert len(admin.get("/evaluation/rectifications", params={"period": H1}).json()["rows"]) == len(black)
    with client(world, "street") as street:
        refused = street.post(f"/evaluation/rectifications/{task['id']}/follow-up", json={"result": "failed"})
        assert refused.status_code == 400 and "原因" in refused.json()["detail"]
        passed = street.post(f"/evaluation/rectifications/{task['id']}/follow-up", json={"result": "passed"})
        assert passed.status_code == 200, passed.text
        again = street.post(f"/evaluation/rectifications/{task['id']}/follow-up", json={"result": "failed",
                                                                                       "note": "复查"})
        assert again.status_code == 409
    second = _evaluate(world, H2)
    assert second[world["worst"]]["standing"] == "black"
    assert second[world["worst"]]["flagged_for_exit"] is False
    with client(world, "admin") as admin:
        refused = admin.post("/evaluation/exits", json={"company_id": world["worst"], "period": H2})
    assert refused.status_code == 400 and "清退" in refused.json()["detail"]


def _versions_as_of(url: str, day: date) -> dict[str, int | None]:
    """Each compound's managing company on `day`, read from the stored versions (the compound's current columns
    where no version was written)."""
    versions = pd.DataFrame(sql(url, "SELECT compound_code, valid_from, valid_to, property_company_id "
                                     "FROM compound_management_version"),
                            columns=["code", "valid_from", "valid_to", "company"])
    current = dict(sql(url, "SELECT code, property_company_id FROM compound WHERE valid_to IS NULL"))
    out = dict(current)
    for code, group in versions.groupby("code"):
        live = group[(group["valid_from"] <= day) & (group["valid_to"].isna() | (group["valid_to"] > day))]
        out[code] = None if live.empty or pd.isna(live["company"].iloc[0]) else int(live["company"].iloc[0])
    return out


def test_exit_after_two_black_half_years_hands_over_every_compound(world):
    url, worst = world["url"], world["worst"]
    _evaluate(world, H1)
    with client(world, "street") as street:
        failed = street.post(f"/evaluation/rectifications/{_task(world, H1)['id']}/follow-up",
                             json={"result": "failed", "note": "消防通道仍被占用"})
        assert failed.status_code == 200, failed.text
    second = _evaluate(world, H2)
    assert second[worst]["standing"] == "black" and second[worst]["flagged_for_exit"] is True

    compounds = sql(url, """
        SELECT cp.code, (SELECT min(led.property_company_id) FROM compound led
                         JOIN property_company pc ON pc.id = led.property_company_id AND pc.is_community_led
                         WHERE led.community_code = cp.community_code AND led.valid_to IS NULL)
        FROM compound cp WHERE cp.property_company_id = %s AND cp.valid_to IS NULL ORDER BY 1""", [worst])
    assert len(compounds) >= 2
    named_successor = sql(url, "SELECT id FROM property_company WHERE is_community_led ORDER BY id LIMIT 1")[0][0]
    # The street names a company for the compounds whose community has no community-led one, and for one more.
    named = {code: named_successor for code, led in compounds if led is None}
    named[compounds[0][0]] = named_successor
    expected = {code: named.get(code, led) for code, led in compounds}
    with client(world, "street") as street:
        assert street.post("/evaluation/exits", json={"company_id": worst, "period": H2}).status_code == 403
    today = datetime.now(BEIJING).date()
    with client(world, "admin") as admin:
        started = admin.post("/evaluation/exits", json={"company_id": worst, "period": H2, "successors": named})
        assert started.status_code == 201, started.text
        assert started.json()["compounds"] == len(compounds)
        assert admin.post("/evaluation/exits", json={"company_id": worst, "period": H2}).status_code == 409
        listed = pd.DataFrame(admin.get("/evaluation/exits").json()["rows"])
    # every compound handed over, as a dated takeover, to the company expected
    now = dict(sql(url, "SELECT code, property_company_id FROM compound WHERE code = ANY(%s) AND valid_to IS NULL",
                   [list(expected)]))
    assert now == expected
    assert sql(url, "SELECT count(*) FROM compound WHERE property_company_id = %s AND valid_to IS NULL",
               [worst])[0][0] == 0
    assert dict(zip(listed["compound_code"], listed["to_company_id"])) == expected
    assert set(listed.loc[listed["named_by_street"], "compound_code"]) == set(named)
    assert (listed["handed_over_on"] == today.isoformat()).all()
    before, after = _versions_as_of(url, today - timedelta(days=1)), _versions_as_of(url, today)
    assert all(before[code] == worst for code in expected)
    assert all(after[code] == expected[code] for code in expected)
    reasons = sql(url, "SELECT DISTINCT reason FROM compound_management_version WHERE compound_code = ANY(%s) "
                       "AND valid_from = %s", [list(expected), today])
    assert len(reasons) == 1 and "清退" in reasons[0][0]


def test_the_subsidy_ledger_follows_the_dated_versions_and_exports_to_xlsx(world):
    url = world["url"]
    rows = _evaluate(world, H2)
    excellent = {c for c, row in rows.items() if row["grade"] == "excellent"}
    assert excellent
    # One old estate of an ineligible company is taken over by an excellent one on 1 October: from October on, the
    # estate is the excellent company's in the ledger.
    estate = sql(url, """SELECT code FROM compound WHERE valid_to IS NULL AND is_old_estate
                         AND property_company_id <> ALL(%s) ORDER BY code LIMIT 1""", [sorted(excellent)])[0][0]
    taker = min(excellent)
    credit_code = sql(url, "SELECT credit_code FROM property_company WHERE id = %s", [taker])[0][0]
    engine = sync_engine(url)
    with engine.begin() as conn:  # the registry's one rule of takeovers (as its API and import use it)
        take_over(conn, Principal(role="admin", username="admin"), estate, credit_code, date(2026, 10, 1),
                  "接管老旧小区")
    engine.dispose()
    with client(world, "admin") as admin:
        built = admin.post(f"/evaluation/subsidy-ledger/{H2}")
        assert built.status_code == 200, built.text
        xlsx = admin.get(f"/evaluation/subsidy-ledger/{H2}", params={"by": "company", "format": "xlsx"})
        assert xlsx.status_code == 200
    got = pd.DataFrame(built.json()["rows"])
    area = dict(sql(url, "SELECT code, floor_area_m2 FROM compound WHERE valid_to IS NULL AND is_old_estate"))
    expected = []
    for month in range(7, 13):
        day = date(2026, month, 1)
        for code, company in _versions_as_of(url, day).items():
            if code in area and company in excellent:
                expected.append((company, f"2026-{month:02d}", code, round(area[code] * 0.2, 2)))
    expected = pd.DataFrame(expected, columns=["company_id", "month", "compound_code", "amount_yuan"])
    key = ["company_id", "month", "compound_code"]
    pd.testing.assert_frame_equal(got[[*key, "amount_yuan"]].sort_values(key).reset_index(drop=True),
                                  expected.sort_values(key).reset_index(drop=True), check_dtype=False)
    months_of_estate = set(got.loc[got["compound_code"] == estate, "month"])
    assert months_of_estate == {"2026-10", "2026-11", "2026-12"}
    by_company = pd.read_excel(io.BytesIO(xlsx.content))
    assert by_company["amount_yuan"].sum() == pytest.approx(expected["amount_yuan"].sum(), abs=0.05)
    assert set(by_company["month"]) == {f"2026-{m:02d}" for m in range(7, 13)}
