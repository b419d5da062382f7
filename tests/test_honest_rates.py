"""Honest rates: handled (办结) and resolved (解决) kept apart, callbacks (回访) after closing, repeat complaints
(重复投诉) undoing a closing within the window, and the fake-closure figures on a planted history of the small city:
the detection's recall and precision and the resolution rate before and after the rule."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from conftest import LiveServer, _clone
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from test_tickets_support import COMPOUNDS, GRIDS, LOCAL, PASSWORD, STREETS, add_complaints, build_city, make_users, sql

from fixtures.fake_closures import COUNTS, SPAN_DAYS, plan_cases, plant_fake_closures
from gis.access.auth import Principal
from gis.db.engine import with_driver
from gis.errors import InvalidInput
from gis.tickets import rates, repeats

ADMIN = Principal(role="admin", username="honest-admin", user_id=1)
NOW = datetime.now(LOCAL)
PERIOD = (NOW - timedelta(days=120), NOW + timedelta(days=1))


def run(url: str, work):
    """Run `work(conn)` on an async connection to `url`."""
    async def go():
        engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def street_rates(url: str, period=PERIOD, **kwargs) -> dict[str, dict]:
    rows = run(url, lambda conn: rates.rates(conn, ADMIN, "street", *period, **kwargs))
    return {row["unit"]: row for row in rows}


def drill(url: str, unit: str, rate: str = "resolution", period=PERIOD, **kwargs) -> dict:
    return run(url, lambda conn: rates.rate_tickets(conn, ADMIN, rate, "street", unit, *period, limit=1000,
                                                    **kwargs))


def close(url: str, ticket: int, at: datetime) -> None:
    sql(url, "UPDATE ticket SET state = 'closed', closed_at = %s, handled_at = %s, version = version + 1 "
             "WHERE id = %s", [at, at - timedelta(hours=1), ticket])


# --- the repeat rule on the tiny city -------------------------------------------------------------------------

FIRST_COMPOUND, SECOND_COMPOUND = list(COMPOUNDS)[0], list(COMPOUNDS)[1]
FOLLOW_UPS = {
    # variant: (follow-up complaint, days after the closing, counted as a repeat with the 30-day window)
    "same category, same compound, 10 days after": ({"grid": GRIDS[0]}, 10, True),
    "same category, same compound, 29 days after": ({"grid": GRIDS[0]}, 29.5, True),
    "same category, same compound, 40 days after": ({"grid": GRIDS[0]}, 40, False),
    "another category, same compound": ({"grid": GRIDS[0], "category": "E0201"}, 10, False),
    "same category, another compound": ({"grid": GRIDS[1], "compound": SECOND_COMPOUND}, 10, False),
    "reported before the closing": ({"grid": GRIDS[0]}, -2, False),
}


@pytest.mark.parametrize("variant", sorted(FOLLOW_UPS))
def test_a_closing_holds_unless_the_same_problem_comes_back_within_the_window(empty_db, variant):
    url = empty_db
    build_city(url)
    follow_up, days, repeated = FOLLOW_UPS[variant]
    closed_at = NOW - timedelta(days=100)
    (first,) = add_complaints(url, [{"grid": GRIDS[0], "category": "E0601",
                                     "reported_at": closed_at - timedelta(days=4)}])
    close(url, first, closed_at)
    (second,) = add_complaints(url, [{"category": "E0601", **follow_up,
                                      "reported_at": closed_at + timedelta(days=days)}])
    row = street_rates(url)[STREETS[0]]
    assert row["closed"] == 1 and row["handled_rate"] == pytest.approx(1 / row["tickets"])
    assert row["resolved"] == (0 if repeated else 1)
    assert row["repeated"] == (1 if repeated else 0)
    items = {item["id"]: item for item in drill(url, STREETS[0])["items"]}
    assert items[first]["repeat_ticket_ids"] == ([second] if repeated else [])
    assert items[first]["in_numerator"] is (not repeated)
    # the window is the setting's: with 45 days the 40-day follow-up undoes the closing too
    wider = street_rates(url, repeat_window_days=45)[STREETS[0]]
    assert wider["repeated"] == (1 if repeated or variant.endswith("40 days after") else 0)


def test_a_rejected_follow_up_says_nothing_and_a_reopened_ticket_has_no_closing(empty_db):
    url = empty_db
    build_city(url)
    closed_at = NOW - timedelta(days=100)
    first, other = add_complaints(url, [{"grid": GRIDS[0], "reported_at": closed_at - timedelta(days=3)},
                                        {"grid": GRIDS[2], "reported_at": closed_at - timedelta(days=3)}])
    close(url, first, closed_at)
    (rejected,) = add_complaints(url, [{"grid": GRIDS[0], "reported_at": closed_at + timedelta(days=3)}])
    sql(url, "UPDATE ticket SET state = 'rejected' WHERE id = %s", [rejected])
    assert street_rates(url)[STREETS[0]]["repeated"] == 0
    close(url, other, closed_at)
    (again,) = add_complaints(url, [{"grid": GRIDS[2], "reported_at": closed_at + timedelta(days=3)}])
    assert street_rates(url)[STREETS[1]]["repeated"] == 1
    sql(url, "UPDATE ticket SET state = 'dispatched', closed_at = NULL WHERE id = %s", [other])  # reopened
    row = street_rates(url)[STREETS[1]]
    assert (row["repeated"], row["closed"], row["resolved"]) == (0, 0, 0)


def test_outside_any_compound_the_building_is_the_place(empty_db):
    url = empty_db
    build_city(url)
    closed_at = NOW - timedelta(days=100)
    grid = GRIDS[3]  # no compound in this grid
    first, same, other = add_complaints(url, [
        {"grid": grid, "compound": None, "reported_at": closed_at - timedelta(days=2)},
        {"grid": grid, "compound": None, "reported_at": closed_at + timedelta(days=5)},
        {"grid": grid, "compound": None, "reported_at": closed_at + timedelta(days=6)}])
    sql(url, "UPDATE complaint SET micro_grid_code = %s, building_code = CASE WHEN id = (SELECT complaint_id "
             "FROM ticket WHERE id = %s) THEN %s ELSE %s END "
             "WHERE id IN (SELECT complaint_id FROM ticket WHERE id = ANY(%s))",
        [grid + "001", other, grid + "001002", grid + "001001", [first, same, other]])
    close(url, first, closed_at)
    items = {item["id"]: item for item in drill(url, STREETS[1])["items"]}
    assert items[first]["repeat_ticket_ids"] == [same]
    sql(url, "UPDATE complaint SET building_code = NULL WHERE id = (SELECT complaint_id FROM ticket WHERE id = %s)",
        [first])
    assert street_rates(url)[STREETS[1]]["repeated"] == 0  # no building, no compound: no place to repeat at


def test_the_window_is_checked():
    for bad in (0, 367, -1, True, "30"):
        with pytest.raises(InvalidInput):
            repeats.window_days(bad)
    assert repeats.window_days() == 30 and repeats.window_days(1) == 1


# --- callbacks over HTTP --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def desk(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    made = build_city(url)
    make_users(url, made["companies"])
    server = LiveServer(url)
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in ("admin", "street1", "street2", "grid1", "planner")}
    yield {"url": url, "server": server, "tokens": tokens}
    server.stop()


def client(desk, name=None):
    headers = {"Authorization": f"Bearer {desk['tokens'][name]}"} if name else {}
    return desk["server"].client(headers=headers)


def test_a_callback_is_recorded_once_per_closing_and_counts_as_not_resolved(desk):
    url = desk["url"]
    closed_at = NOW - timedelta(days=20)
    ticket, still_open = add_complaints(url, [{"grid": GRIDS[0], "reported_at": closed_at - timedelta(days=2)},
                                              {"grid": GRIDS[0], "category": "E0201",
                                               "reported_at": closed_at - timedelta(days=2)}])
    close(url, ticket, closed_at)
    sql(url, "UPDATE ticket SET rating = 5, rated_at = %s WHERE id = %s", [closed_at + timedelta(hours=2), ticket])
    before = street_rates(url)[STREETS[0]]
    assert (before["resolved"], before["rated"], before["satisfied"]) == (1, 1, 1)
    answer = {"solved": False, "satisfied": False, "note": "居民反映仍在漏水"}
    with client(desk) as anonymous:
        assert anonymous.post(f"/tickets/{ticket}/callbacks", json=answer).status_code == 401
    with client(desk, "planner") as http:
        assert http.post(f"/tickets/{ticket}/callbacks", json=answer).status_code == 403
    with client(desk, "street2") as http:
        assert http.post(f"/tickets/{ticket}/callbacks", json=answer).status_code == 404
    with client(desk, "grid1") as http:
        refused = http.post(f"/tickets/{still_open}/callbacks", json=answer)
        assert refused.status_code == 409 and "已结案" in refused.json()["detail"]
        for bad in ({"satisfied": True}, {"solved": "yes"}, {"solved": True, "reopen": True}, {"solved": 1}):
            assert 400 <= http.post(f"/tickets/{ticket}/callbacks", json=bad).status_code < 500, bad
        # a grid worker may call back but not reopen: the whole callback is refused, nothing recorded
        assert http.post(f"/tickets/{ticket}/callbacks", json={**answer, "reopen": True}).status_code == 403
        assert sql(url, "SELECT callback_at FROM ticket WHERE id = %s", [ticket]) == [(None,)]
        done = http.post(f"/tickets/{ticket}/callbacks", json=answer)
        assert done.status_code == 201, done.text
        assert done.json()["state"] == "closed" and done.json()["reopened"] is False
        again = http.post(f"/tickets/{ticket}/callbacks", json={"solved": True})
        assert again.status_code == 409 and "回访过" in again.json()["detail"]
        shown = http.get(f"/tickets/{ticket}").json()
    assert (shown["callback_solved"], shown["callback_satisfied"], shown["state"]) == (False, False, "closed")
    event = [e for e in shown["history"] if e["action"] == "callback"]
    assert len(event) == 1 and event[0]["note"] == "居民反映仍在漏水" and event[0]["data"]["solved"] is False
    after = street_rates(url)[STREETS[0]]
    # handled, not resolved; the resident's later answer replaces the rating: one answer, counted once
    assert (after["closed"], after["resolved"], after["callback_unsolved"]) == (1, 0, 1)
    assert (after["rated"], after["satisfied"]) == (1, 0)
    item = next(i for i in drill(url, STREETS[0])["items"] if i["id"] == ticket)
    assert item["in_numerator"] is False and item["callback_solved"] is False


def test_a_not_solved_callback_can_reopen_and_the_later_answer_wins(desk):
    url = desk["url"]
    closed_at = NOW - timedelta(days=15)
    reopened, rated_later = add_complaints(url, [
        {"grid": GRIDS[2], "category": "E0601", "reported_at": closed_at - timedelta(days=1)},
        {"grid": GRIDS[2], "category": "E0201", "reported_at": closed_at - timedelta(days=1)}])
    for ticket in (reopened, rated_later):
        close(url, ticket, closed_at)
    with client(desk, "street2") as http:
        moved = http.post(f"/tickets/{reopened}/callbacks", json={"solved": False, "reopen": True})
        assert moved.status_code == 201, moved.text
        assert (moved.json()["state"], moved.json()["reopened"]) == ("dispatched", True)
        history = [e["action"] for e in http.get(f"/tickets/{reopened}").json()["history"]]
        assert history[-2:] == ["callback", "reopen"]
        answered = http.post(f"/tickets/{rated_later}/callbacks", json={"solved": True, "satisfied": True})
        assert answered.status_code == 201, answered.text
    # the resident rated 2 after the callback said satisfied: the rating is the later answer
    sql(url, "UPDATE ticket SET rating = 2, rated_at = callback_at + interval '1 hour' WHERE id = %s", [rated_later])
    row = street_rates(url)[STREETS[1]]
    items = {i["id"]: i for i in drill(url, STREETS[1], "satisfaction")["items"]}
    assert items[rated_later]["in_numerator"] is False
    assert row["rated"] == len(items) and row["satisfied"] == sum(i["in_numerator"] for i in items.values())
    resolved = {i["id"]: i["in_numerator"] for i in drill(url, STREETS[1])["items"]}
    assert resolved[reopened] is False and resolved[rated_later] is True


# --- the planted history: the fake-closure figures -----------------------------------------------------------

@pytest.fixture(scope="module")
def planted(city_db):
    first = sql(city_db, "SELECT min(reported_at) FROM ticket")[0][0]
    start = (first - timedelta(days=SPAN_DAYS + 120)).astimezone(LOCAL).replace(hour=0, minute=0, second=0,
                                                                                 microsecond=0)
    history = plant_fake_closures(city_db, seed=7, start=start)
    streets = [row[0] for row in sql(city_db, "SELECT code FROM street WHERE valid_to IS NULL ORDER BY code")]
    return city_db, history, streets


def detected(url, history, streets, **kwargs) -> tuple[set[int], dict]:
    """The closings the rule found not holding (from the drill-down) and the summed counts of the figures."""
    period = (history.start, history.end)
    found: set[int] = set()
    for street in streets:
        answer = drill(url, street, period=period, **kwargs)
        assert answer["next_offset"] is None
        found |= {item["id"] for item in answer["items"] if item["repeat_ticket_ids"]}
    rows = street_rates(url, period=period, **kwargs).values()
    totals = {key: sum(row[key] for row in rows) for key in ("tickets", "closed", "resolved", "repeated")}
    return found, totals


def test_fake_closures_are_found_and_the_resolution_rate_counts_them(planted):
    url, history, streets = planted
    found, totals = detected(url, history, streets)
    fake = history.fake
    assert len(fake) >= COUNTS["fake"]
    recall = len(found & fake) / len(fake)
    precision = len(found & fake) / len(found) if found else 0.0
    before = totals["closed"] / totals["tickets"]
    after = totals["resolved"] / totals["tickets"]
    print(f"\nfake closures: {len(fake)} planted ({len(history.by_kind.get('fake_building', []))} outside compounds), "
          f"{len(found)} detected, recall {recall:.3f}, precision {precision:.3f}; "
          f"{totals['tickets']} tickets, {totals['closed']} closed; resolution rate before the rule "
          f"{before:.4f} (= handled rate), after {after:.4f}")
    assert totals["tickets"] == history.tickets and totals["closed"] == history.closed
    assert recall == 1.0 and precision == 1.0
    assert totals["repeated"] == len(found)
    for kind in ("late", "other_category", "other_compound", "before_closing", "honest", "open"):
        assert not found & set(history.by_kind[kind]), kind
    assert totals["resolved"] == history.closed - len(fake)
    assert after < before


def test_a_wider_window_reaches_the_late_ones(planted):
    url, history, streets = planted
    found, _ = detected(url, history, streets, repeat_window_days=2 * history.window_days + 1)
    assert found == history.fake | set(history.by_kind["late"])


def test_units_with_few_tickets_are_not_ranked_on_the_new_rates(planted):
    url, history, _ = planted
    rows = run(url, lambda conn: rates.rates(conn, ADMIN, "grid", history.start, history.end, min_sample=12))
    for name, denominator in (("handled", "tickets"), ("resolution", "tickets")):
        ranked = [row for row in rows if row[f"{name}_rank"] is not None]
        unranked = [row for row in rows if row[f"{name}_rank"] is None]
        assert ranked and unranked, name
        assert all(row[denominator] >= 12 for row in ranked)
        assert all(row[denominator] < 12 and name in row["unranked"] for row in unranked)
        order = sorted(ranked, key=lambda row: row[f"{name}_rank"])
        assert [row[f"{name}_rate"] for row in order] == sorted((row[f"{name}_rate"] for row in ranked), reverse=True)


def test_the_plan_is_deterministic_and_gives_every_case_its_own_pair():
    compounds = [(f"C{n:03d}", f"C{n:03d}B1") for n in range(60)]
    loose = [f"L{n}" for n in range(5)]
    categories = [f"K{n}" for n in range(12)]
    start = datetime(2024, 1, 1, tzinfo=LOCAL)
    one = plan_cases(compounds, loose, categories, 3, start)
    assert one == plan_cases(compounds, loose, categories, 3, start)
    assert one != plan_cases(compounds, loose, categories, 4, start)
    firsts = [(case.first.building, case.first.category) for case in one]
    assert len(firsts) == len(set(firsts))
    for case in one:
        for follow in case.follow_ups:
            gap = follow.reported_at - case.first.closed_at if case.first.closed_at else None
            if case.kind in ("fake", "fake_building", "other_category", "other_compound"):
                assert timedelta(0) < gap < timedelta(days=30)
            elif case.kind == "late":
                assert gap > timedelta(days=30)
            elif case.kind == "before_closing":
                assert gap < timedelta(0)
