"""Emerging hot spot analysis: the Mann–Kendall test against hand-computed values and scipy, each space-time
class rule on a series made for it, planted patterns (fixtures/emerging_patterns.py) classified as planted on a
lattice and in the small city through SQL, and the proactive tasks, the monthly shortlist and the replay built
on them."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
import pytest
from scipy import stats
from sqlalchemy import create_engine

from fixtures.emerging_patterns import PLANTS, plan_patterns, plant_patterns
from gis.analytics import emerging as em
from gis.analytics import proactive
from gis.db.engine import with_driver
from tests.conftest import LiveServer

PASSWORD = "emerging-test-pass-1"
FIRST_MONTH = datetime(2025, 11, 1, tzinfo=timezone(timedelta(hours=8)))


# --- Mann–Kendall ---------------------------------------------------------------------------------------------

def test_mann_kendall_on_hand_computed_series():
    # 1..5: S = 10, Var = 5·4·15/18 = 16.667, z = (10 − 1)/√16.667 = 2.2045, p = 0.0275
    trend = em.mann_kendall(np.array([[1, 2, 3, 4, 5]]))
    assert trend.s[0] == 10 and trend.variance[0] == pytest.approx(50 / 3)
    assert trend.z[0] == pytest.approx(2.204541, abs=1e-6) and trend.p[0] == pytest.approx(0.027486, abs=1e-6)
    assert trend.tau[0] == 1.0
    # 3, 1, 2, 2: pairs (+: 1→2, 1→2; −: 3→1, 3→2, 3→2; 0: 2=2) S = −1; a tie of two: Var = (4·3·13 − 2·1·9)/18
    trend = em.mann_kendall(np.array([[3, 1, 2, 2]]))
    assert trend.s[0] == -1 and trend.variance[0] == pytest.approx((156 - 18) / 18)
    assert trend.z[0] == 0.0 and trend.p[0] == 1.0  # |S| = 1 vanishes with the continuity correction
    flat = em.mann_kendall(np.zeros((1, 6)))
    assert flat.z[0] == 0 and flat.p[0] == 1


def test_mann_kendall_agrees_with_scipy_kendall_tau():
    rng = np.random.default_rng(3)
    series = np.round(rng.normal(size=(40, 12)).cumsum(axis=1), 1)
    series[:10] = rng.integers(0, 4, size=(10, 12))  # heavy ties
    trend = em.mann_kendall(series)
    steps = np.arange(12)
    n0 = 12 * 11 / 2
    for row, s, variance, z in zip(series, trend.s, trend.variance, trend.z):
        tau_b, p_scipy = stats.kendalltau(steps, row, method="asymptotic")
        ties = sum(t * (t - 1) / 2 for t in np.unique(row, return_counts=True)[1])
        assert s == pytest.approx(tau_b * np.sqrt(n0 * (n0 - ties)))  # S from tau-b
        # scipy's asymptotic p has no continuity correction: undo ours and compare
        if variance > 0:
            assert 2 * stats.norm.sf(abs(s) / np.sqrt(variance)) == pytest.approx(p_scipy, rel=1e-6)
            assert z == pytest.approx((s - np.sign(s)) / np.sqrt(variance))


# --- the rules ------------------------------------------------------------------------------------------------

def _series(marks: str) -> np.ndarray:
    return np.array([{"H": 2, "C": -2, ".": 0}[m] for m in marks])


RISING = np.linspace(2, 6, 12)
FLAT = np.array([3.0, 3.2, 2.9, 3.1, 3.0, 2.8, 3.3, 3.0, 2.9, 3.1, 3.0, 3.05])
RULE_CASES = [
    ("new hot spot", "...........H", FLAT),
    ("new hot spot", "CC.........H", FLAT),  # cold before does not matter: never hot before
    ("consecutive hot spot", "........HHHH", FLAT),
    ("intensifying hot spot", "HHHHHHHHHHHH", RISING),
    ("intensifying hot spot", ".HHHHHHHHHHH", RISING),  # 11 of 12 is 90 %
    ("persistent hot spot", "HHHHHHHHHHHH", FLAT),
    ("diminishing hot spot", "HHHHHHHHHHHH", RISING[::-1]),
    ("sporadic hot spot", "..H..H....HH", FLAT),
    ("oscillating hot spot", "..C..H....HH", FLAT),
    ("oscillating hot spot", "C.........HH".replace(".", "H", 3), FLAT),
    ("historical hot spot", "HHHHHHHHHHH.", RISING),
    ("new cold spot", "...........C", -FLAT),
    ("consecutive cold spot", "..........CC", -FLAT),
    ("intensifying cold spot", "CCCCCCCCCCCC", -RISING),
    ("persistent cold spot", "CCCCCCCCCCCC", -FLAT),
    ("diminishing cold spot", "CCCCCCCCCCCC", -RISING[::-1]),
    ("sporadic cold spot", "C...C.....CC", -FLAT),
    ("oscillating cold spot", "H...C.....CC", -FLAT),
    ("historical cold spot", "CCCCCCCCCCC.", -FLAT),
    ("no pattern", "............", FLAT),
    ("no pattern", "HHHHHHHHHH..", FLAT),  # 10 of 12 hot, not the final: under 90 %, not historical
    ("no pattern", "..H..H.H....", FLAT),
]


@pytest.mark.parametrize(("expected", "marks", "z"), RULE_CASES)
def test_each_rule_as_esri_states_it(expected, marks, z):
    names, _ = em.classify(_series(marks)[None, :], z[None, :])
    assert names == [expected]


def test_every_class_is_reachable_by_a_rule_case():
    assert {case[0] for case in RULE_CASES} == set(em.CLASSES)


# --- planted patterns -----------------------------------------------------------------------------------------

def _lattice(side: int) -> tuple[list[str], np.ndarray]:
    pairs = [(r * side + c, rr * side + cc) for r in range(side) for c in range(side)
             for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1))
             if 0 <= (rr := r + dr) < side and 0 <= (cc := c + dc) < side]
    return [f"L{i:04d}" for i in range(side * side)], np.array(pairs)


def test_planted_patterns_on_a_lattice_are_classified_as_planted():
    codes, pairs = _lattice(22)
    planted = plan_patterns(codes, pairs, seed=7)
    assert set(planted.centres.values()) == set(PLANTS)
    cube = em.Cube("micro_grid", codes, codes, codes, ["X"], [None] * 12, planted.counts[:, None, :], pairs, 0.0)
    result = em.classify_cube(cube, em.space_time_gi(cube))
    got = {code: result.classes[codes.index(code), 0] for code in planted.centres}
    assert got == planted.centres
    # away from the clusters nothing is a hot spot
    near = {code for cluster in planted.clusters.values() for code in cluster}
    far = [i for i, code in enumerate(codes) if code not in near and not any(
        codes[j] in near for pair in pairs for j in pair if i in pair)]
    assert sum(result.classes[i, 0].endswith("hot spot") for i in far) <= len(far) * 0.02


def test_a_task_needs_the_minimum_of_complaints_of_its_own(monkeypatch):
    from gis.settings import proactive_settings

    codes, pairs = _lattice(22)
    planted = plan_patterns(codes, pairs, seed=7)
    # silence the members of the planted clusters one at a time until one stays a hot spot through its
    # neighbours alone: a task class without a complaint of its own
    for member in (m for cluster in planted.clusters.values() for m in cluster if m not in planted.centres):
        counts = planted.counts.copy()
        counts[codes.index(member)] = 0
        cube = em.Cube("micro_grid", codes, codes, codes, ["X"], [None] * 12, counts[:, None, :], pairs, 0.0)
        result = em.classify_cube(cube, em.space_time_gi(cube))
        if result.classes[codes.index(member), 0] in proactive.TASK_CLASSES:
            break
    totals = counts.sum(axis=1)
    classed = np.isin(result.classes[:, 0], proactive.TASK_CLASSES)
    assert classed[codes.index(member)] and totals[codes.index(member)] == 0
    assert not proactive.task_pairs(result, 1)[totals == 0].any()
    assert (proactive.task_pairs(result, 1)[:, 0] == (classed & (totals >= 1))).all()
    new = codes.index(next(c for c, k in planted.centres.items() if k == "new hot spot"))
    own = int(totals[new])
    assert proactive.task_pairs(result, own)[new, 0] and not proactive.task_pairs(result, own + 1)[new, 0]
    monkeypatch.setenv("GRIDGOV_PROACTIVE_MIN_COMPLAINTS", str(own + 1))
    proactive_settings.cache_clear()
    try:
        assert not proactive.task_pairs(result)[new, 0]
    finally:
        monkeypatch.delenv("GRIDGOV_PROACTIVE_MIN_COMPLAINTS")
        proactive_settings.cache_clear()
    assert proactive.task_pairs(result)[new, 0] == (own >= proactive_settings().min_complaints)


@pytest.fixture(scope="module")
def planted(city_db):
    with psycopg.connect(city_db) as conn:
        category = conn.execute("SELECT category_code FROM complaint GROUP BY 1 ORDER BY count(*) DESC "
                                "LIMIT 1").fetchone()[0]
    result = plant_patterns(city_db, category, FIRST_MONTH, seed=7)
    return {"url": city_db, "category": category, "planted": result}


@pytest.fixture(scope="module")
def engine(planted):
    engine = create_engine(with_driver(planted["url"], "psycopg"))
    yield engine
    engine.dispose()


def test_planted_patterns_in_the_city_are_classified_as_planted(planted, engine):
    with engine.connect() as conn:
        figure = em.emerging_figure(conn, "micro_grid", "2026-10", 12, [planted["category"]])
    by_code = {row["code"]: row for row in figure.rows}
    assert figure.meta["months"][0] == "2025-11" and figure.meta["months"][-1] == "2026-10"
    got = {code: by_code.get(code, {}).get("pattern", "no pattern") for code in planted["planted"].centres}
    assert got == planted["planted"].centres
    persistent = next(c for c, k in planted["planted"].centres.items() if k == "persistent hot spot")
    assert by_code[persistent]["hot_steps"] == 12 and by_code[persistent]["pattern_zh"] == "持续热点"


@pytest.fixture(scope="module")
def server(planted):
    url = planted["url"]

    async def users():
        from gis.access.auth import create_user
        from gis.db.engine import async_engine

        with psycopg.connect(url) as conn:
            street = conn.execute("SELECT code FROM street WHERE valid_to IS NULL ORDER BY code LIMIT 1").fetchone()[0]
            grid = conn.execute("SELECT grid_code FROM micro_grid WHERE code = %s", (persistent,)).fetchone()[0]
        engine = async_engine(url)
        async with engine.begin() as conn:
            await create_user(conn, "emerging_admin", PASSWORD, "admin")
            await create_user(conn, "emerging_street", PASSWORD, "street", scope_codes=[street])
            await create_user(conn, "emerging_planner", PASSWORD, "planner")
            await create_user(conn, "emerging_worker", PASSWORD, "grid_worker", scope_codes=[grid])
        await engine.dispose()
        return street, grid

    persistent = next(c for c, k in planted["planted"].centres.items() if k == "persistent hot spot")
    street, grid = asyncio.run(users())
    live = LiveServer(url)
    live.street, live.grid = street, grid
    yield live
    live.stop()


def _token(server, name):
    with server.client() as client:
        return client.post("/auth/login", json={"username": name, "password": PASSWORD}).json()["access_token"]


def test_proactive_tasks_open_once_per_area_and_category(server, planted):
    centres = planted["planted"].centres
    task_centres = {code for code, kind in centres.items() if kind in proactive.TASK_CLASSES}
    street_token = _token(server, "emerging_street")
    with server.client() as client:
        assert client.post("/analytics/proactive", params={"month": "2026-10"}).status_code == 401
        refused = client.post("/analytics/proactive", params={"month": "2026-10"},
                              headers={"Authorization": f"Bearer {_token(server, 'emerging_planner')}"})
        assert refused.status_code == 403 and "主动治理" in refused.json()["detail"]
        # a street office opens tasks inside its own street only
        own = client.post("/analytics/proactive", params={"month": "2026-10"},
                          headers={"Authorization": f"Bearer {street_token}"}).json()
        assert own["rows"] and all(r["area_code"].startswith(server.street) for r in own["rows"])
        headers = {"Authorization": f"Bearer {_token(server, 'emerging_admin')}"}
        first = client.post("/analytics/proactive", params={"month": "2026-10"}, headers=headers)
        assert first.status_code == 200, first.text
        body = first.json()
        again = client.post("/analytics/proactive", params={"month": "2026-10"}, headers=headers).json()
        bad = client.post("/analytics/proactive", params={"month": "2026-13"}, headers=headers)
    planted_rows = {r["area_code"]: r for r in body["rows"] if r["category_code"] == planted["category"]}
    assert task_centres <= set(planted_rows) | {r["area_code"] for r in own["rows"]}
    not_tasked = {code for code, kind in centres.items() if kind not in proactive.TASK_CLASSES}
    assert not (not_tasked & set(planted_rows))
    assert body["meta"]["opened"] + len(own["rows"]) >= len(task_centres)
    assert again["meta"]["opened"] == 0 and again["meta"]["already_open"] == again["meta"]["found"] > 0
    assert bad.status_code == 400 and "期间" in bad.json()["detail"]
    with psycopg.connect(planted["url"]) as conn:
        rows = conn.execute("""
            SELECT t.area_code, t.grid_code, t.party_organisation_code, t.grid_worker_ids,
                   (SELECT array_agg(w.id ORDER BY w.is_part_time, w.id) FROM grid_worker w
                    WHERE w.grid_code = t.grid_code),
                   (SELECT p.code FROM party_organisation p WHERE p.kind = 'grid_branch' AND p.unit_code = t.grid_code
                    ORDER BY p.code LIMIT 1), count(*) OVER (PARTITION BY t.area_code, t.category_code)
            FROM proactive_task t WHERE t.category_code = %s""", (planted["category"],)).fetchall()
    assert rows and all(r[6] == 1 for r in rows)  # once per micro-grid × category
    for area, grid, party, workers, expected_workers, expected_party, _ in rows:
        assert area.startswith(grid) and party == expected_party and workers == (expected_workers or [])
    assert any(r[3] for r in rows) and any(r[2] for r in rows)


def test_grid_workers_read_and_complete_their_own_tasks(server, planted):
    persistent = next(c for c, k in planted["planted"].centres.items() if k == "persistent hot spot")
    admin = {"Authorization": f"Bearer {_token(server, 'emerging_admin')}"}
    worker = {"Authorization": f"Bearer {_token(server, 'emerging_worker')}"}
    planner = {"Authorization": f"Bearer {_token(server, 'emerging_planner')}"}
    with server.client() as client:
        client.post("/analytics/proactive", params={"month": "2026-10"}, headers=admin)
        everything = client.get("/analytics/proactive", params={"limit": 5000}, headers=admin).json()["rows"]
        own = client.get("/analytics/proactive", params={"state": "open"}, headers=worker).json()["rows"]
        refused = client.get("/analytics/proactive", headers=planner)
        elsewhere = next(r for r in everything if not r["area_code"].startswith(server.grid))
        mine = next(r for r in own if r["area_code"] == persistent and r["category_code"] == planted["category"])
        not_found = client.post(f"/analytics/proactive/{elsewhere['id']}/done", headers=worker)
        done = client.post(f"/analytics/proactive/{mine['id']}/done", headers=worker)
        again = client.post(f"/analytics/proactive/{mine['id']}/done", headers=worker)
        still_open = client.get("/analytics/proactive", params={"state": "open"}, headers=worker).json()["rows"]
    assert own and all(r["area_code"].startswith(server.grid) for r in own)
    assert {r["id"] for r in own} < {r["id"] for r in everything}
    assert refused.status_code == 403 and "网格员" in refused.json()["detail"]
    assert not_found.status_code == 404 and "主动治理任务" in not_found.json()["detail"]
    assert done.status_code == 200 and done.json()["state"] == "done" and done.json()["done_at"]
    assert mine["pattern_zh"] == "持续热点" and len(mine["opened_at"]) == 16  # Beijing time, to the minute
    assert again.status_code == 409 and mine["id"] not in {r["id"] for r in still_open}


def test_monthly_problems_shortlist_the_planted_category(server, planted):
    with server.client() as client:
        response = client.get("/analytics/monthly-problems", params={"month": "2026-10", "limit": 5})
        bad = client.get("/analytics/monthly-problems", params={"month": "2026-10", "limit": 0})
        xlsx = client.get("/analytics/monthly-problems", params={"month": "2026-10", "format": "xlsx"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["title"] == "2026年10月 每月一题" and len(body["rows"]) == 5
    top = body["rows"][0]
    assert top["category_code"] == planted["category"] and top["hot_micro_grids"] >= 3
    assert top["complaints_window"] >= top["complaints_month"] > 0 and "热点" in top["patterns_zh"]
    assert [r["rank"] for r in body["rows"]] == [1, 2, 3, 4, 5]
    assert bad.status_code == 422 and xlsx.status_code == 200


def test_the_replay_counts_complaints_in_pairs_with_a_task(planted, engine):
    with engine.connect() as conn:
        result = proactive.replay(conn, first="2025-11", last="2026-10")
    meta, rows = result.figure.meta, result.figure.rows
    assert [r["month"] for r in rows] == [f"2025-{m}" for m in (11, 12)] + [f"2026-{m:02d}" for m in range(1, 11)]
    assert rows[0]["tasks_opened"] == rows[1]["tasks_opened"] == rows[2]["tasks_opened"] == 0  # first run: Jan
    assert meta["tasks"] == len(result.tasks) == sum(r["tasks_opened"] for r in rows) > 0
    assert meta["in_task_pairs"] == sum(r["in_task_pairs"] for r in rows) == len(result.lead_days) > 0
    assert (result.lead_days >= 0).all() and meta["median_lead_days"] > 0
    centres = {kind: code for code, kind in planted["planted"].centres.items()}
    category, counts, codes = planted["category"], planted["planted"].counts, planted["planted"].codes
    beijing = FIRST_MONTH.tzinfo
    # hot from the start: a task after the first run (close of January, three months seen), opened 1 February
    assert result.tasks[(centres["persistent hot spot"], category)] == datetime(2026, 2, 1, tzinfo=beijing)
    # hot from August on: new at the close of August, so a task from 1 September
    assert result.tasks[(centres["consecutive hot spot"], category)] == datetime(2026, 9, 1, tzinfo=beijing)
    # hot only in the final month: no run after it, no task
    assert (centres["new hot spot"], category) not in result.tasks
    # the persistent centre's complaints from February on all came where a task was open
    february_on = int(counts[codes.index(centres["persistent hot spot"]), 3:].sum())
    in_pairs_from_february = sum(r["in_task_pairs"] for r in rows[3:])
    assert in_pairs_from_february >= february_on > 100


def test_bad_input_is_refused_with_a_reason(server):
    with server.client() as client:
        answers = {
            "month": client.get("/analytics/emerging-cube", params={"month": "2026-13"}),
            "months": client.get("/analytics/emerging-cube", params={"months": 2}),
            "level": client.get("/analytics/emerging-cube", params={"level": "street"}),
            "category": client.get("/analytics/emerging-cube", params={"categories": "NOPE"}),
            "problems": client.get("/analytics/monthly-problems", params={"month": "2026"}),
        }
        good = client.get("/analytics/emerging-cube", params={"month": "2026-10", "format": "csv"})
    assert answers["month"].status_code == 400 and "期间" in answers["month"].json()["detail"]
    assert answers["months"].status_code == 422 and answers["level"].status_code == 422
    assert answers["category"].status_code == 400 and "NOPE" in answers["category"].json()["detail"]
    assert answers["problems"].status_code == 400 and "YYYY-MM" in answers["problems"].json()["detail"]
    assert good.status_code == 200 and "pattern" in good.content.decode("utf-8-sig").splitlines()[0]


def test_the_default_months_ignore_implausible_times(fresh_city_db):
    with psycopg.connect(fresh_city_db) as conn:
        newest, oldest = conn.execute(
            "SELECT to_char(max(reported_at) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'), "
            "to_char(min(reported_at) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') FROM complaint").fetchone()
        for odd in ("infinity", "-infinity", "9999-12-31 23:00:00+00", "1900-01-01 00:00:00+08"):
            conn.execute("""INSERT INTO complaint (source, category_code, description, reported_at, match_level,
                                                   placement, micro_grid_code)
                            SELECT source, category_code, description, %s, match_level, placement, micro_grid_code
                            FROM complaint ORDER BY id LIMIT 1""", (odd,))
    engine = create_engine(with_driver(fresh_city_db, "psycopg"))
    try:
        with engine.connect() as conn:
            assert (em.latest_month(conn), em.first_month(conn)) == (newest, oldest)
            figure = em.emerging_figure(conn)
    finally:
        engine.dispose()
    assert figure.meta["months"][-1] == newest
