"""The street office's desk over HTTP: the rates per level ranked with a minimum sample, the monthly trend, and the
drill-down from any figure to the tickets behind it — whose count equals the figure, by the same definitions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from conftest import LiveServer, _clone
from test_tickets_deadlines import _year_of_complaints
from test_tickets_support import LOCAL, PASSWORD, STREETS, build_city, make_users

from fixtures.ticket_history import simulate_ticket_history

RATE_COUNTS = {"response": ("dispatched", "responded_in_time"), "handled": ("tickets", "closed"),
               "resolution": ("tickets", "resolved"), "on_time": ("closed", "closed_in_time"),
               "satisfaction": ("rated", "satisfied")}


@pytest.fixture(scope="module")
def desk(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    made = build_city(url)
    make_users(url, made["companies"])
    _year_of_complaints(url, 1500, seed=21)
    simulate_ticket_history(url, seed=17, now=datetime.now(LOCAL))
    server = LiveServer(url)
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in ("admin", "street1", "planner")}
    yield {"url": url, "server": server, "tokens": tokens}
    server.stop()


def client(desk, name):
    return desk["server"].client(headers={"Authorization": f"Bearer {desk['tokens'][name]}"})


TODAY = datetime.now(LOCAL).date()  # periods are Beijing dates
PERIOD = {"from": (TODAY - timedelta(days=200)).isoformat(), "to": (TODAY + timedelta(days=1)).isoformat()}


def drill_all(http, params) -> tuple[dict, list[dict]]:
    """Every page of one figure's drill-down."""
    items, offset, first = [], 0, None
    while offset is not None:
        page = http.get("/tickets/rates/tickets", params={**params, "limit": 97, "offset": offset})
        assert page.status_code == 200, page.text
        body = page.json()
        first = first or body
        assert (body["denominator"], body["numerator"]) == (first["denominator"], first["numerator"])
        items += body["items"]
        offset = body["next_offset"]
    return first, items


@pytest.mark.parametrize("level", ["grid", "community", "property_company", "department"])
def test_every_figure_equals_the_count_of_its_drill_down(desk, level):
    with client(desk, "admin") as http:
        answer = http.get("/tickets/rates", params={"level": level, **PERIOD})
        assert answer.status_code == 200, answer.text
        rows = answer.json()["rows"]
        assert rows, "no units"
        checked = 0
        for row in rows:
            for rate, (denominator, numerator) in RATE_COUNTS.items():
                body, items = drill_all(http, {"rate": rate, "level": level, "unit": row["unit"], **PERIOD})
                assert body["denominator"] == row[denominator] == len(items), (level, row["unit"], rate)
                assert body["numerator"] == row[numerator] == sum(i["in_numerator"] for i in items)
                assert len({i["id"] for i in items}) == len(items)
                assert body["value"] == row[f"{rate}_rate"]
                checked += row[denominator]
        assert checked > 100


def test_a_street_office_drills_into_its_own_figures_only(desk):
    with client(desk, "street1") as http:
        rows = http.get("/tickets/rates", params={"level": "grid", **PERIOD}).json()["rows"]
        assert rows and all(row["unit"].startswith(STREETS[0]) for row in rows)
        row = rows[0]
        body, items = drill_all(http, {"rate": "resolution", "level": "grid", "unit": row["unit"], **PERIOD})
        assert body["denominator"] == row["tickets"] == len(items)
        assert all(item["street_code"] == STREETS[0] for item in items)
        other = http.get("/tickets/rates/tickets", params={"rate": "resolution", "level": "street",
                                                          "unit": STREETS[1], **PERIOD}).json()
        assert other["denominator"] == 0 and other["items"] == []


def test_ranking_honours_the_minimum_sample(desk):
    with client(desk, "admin") as http:
        everyone = http.get("/tickets/rates", params={"level": "grid", "min_sample": 0, "sort": "resolution",
                                                      **PERIOD}).json()
        rows = everyone["rows"]
        assert [row["resolution_rank"] for row in rows] == sorted(row["resolution_rank"] for row in rows)
        rates_in_order = [row["resolution_rate"] for row in rows]
        assert rates_in_order == sorted(rates_in_order, reverse=True)
        assert rows[0]["resolution_rank"] == 1
        # a threshold between the grids' sizes: the smaller grids are listed but not ranked
        sizes = sorted(row["tickets"] for row in rows)
        threshold = sizes[len(sizes) // 2]
        cut = http.get("/tickets/rates", params={"level": "grid", "min_sample": threshold, **PERIOD}).json()
        assert cut["min_sample"] == threshold
        assert {row["unit"] for row in cut["rows"]} == {row["unit"] for row in rows}
        for row in cut["rows"]:
            if row["tickets"] < threshold:
                assert row["resolution_rank"] is None and "resolution" in row["unranked"]
            else:
                assert row["resolution_rank"] >= 1
        assert any(row["resolution_rank"] is None for row in cut["rows"])
        # the default threshold is the documented setting, 10 tickets
        assert http.get("/tickets/rates", params={"level": "grid", **PERIOD}).json()["min_sample"] == 10
        assert http.get("/tickets/rates", params={"level": "grid", "sort": "speed"}).status_code == 400


def test_the_monthly_trend_adds_up_and_drills_down(desk):
    with client(desk, "admin") as http:
        whole = {row["unit"]: row for row in http.get(
            "/tickets/rates", params={"level": "community", **PERIOD}).json()["rows"]}
        months = http.get("/tickets/rates", params={"level": "community", "by": "month", **PERIOD}).json()
        assert months["by"] == "month"
        rows = months["rows"]
        assert len({row["month"] for row in rows}) >= 6
        for unit, row in whole.items():
            for key in ("tickets", "dispatched", "responded_in_time", "closed", "resolved", "repeated", "rated",
                        "satisfied"):
                assert sum(m[key] for m in rows if m["unit"] == unit) == row[key], (unit, key)
        busiest = max(rows, key=lambda m: m["dispatched"])
        body, items = drill_all(http, {"rate": "response", "level": "community", "unit": busiest["unit"],
                                       "from": busiest["from"][:10], "to": busiest["to"][:10]})
        assert body["denominator"] == busiest["dispatched"] == len(items)
        assert body["numerator"] == busiest["responded_in_time"]
        assert all(datetime.fromisoformat(item["reported_at"]).astimezone(LOCAL).strftime("%Y-%m")
                   == busiest["month"] for item in items)


def test_bad_drill_downs_are_refused_in_chinese(desk):
    with client(desk, "admin") as http:
        for params in ({"rate": "speed", "unit": STREETS[0]}, {"rate": "response", "unit": STREETS[0],
                                                                "level": "district"}):
            answer = http.get("/tickets/rates/tickets", params=params)
            assert answer.status_code == 400
            assert any("\u4e00" <= ch <= "\u9fff" for ch in answer.json()["detail"])
    with desk["server"].client() as public:
        assert public.get("/tickets/rates/tickets", params={"rate": "response", "unit": "x"}).status_code == 401
