"""Safe bulk assignment over real HTTP: every filter applies together with the drawn area or the grids, a dry run
names what would be assigned, an idempotency key makes a repeated submit change nothing and answer as the first
did, and a ticket can go to a named person of the receiving organisation."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from conftest import LiveServer, _clone
from test_tickets_support import (
    COMMUNITIES,
    GRIDS,
    LOCAL,
    PASSWORD,
    STREETS,
    add_complaints,
    build_city,
    grid_origin,
    make_users,
    sql,
)

NAMES = ("admin", "street1", "community1", "community2", "grid1", "grid3", "company1")


@pytest.fixture(scope="module")
def world(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    made = build_city(url)
    users = make_users(url, made["companies"])
    server = LiveServer(url)
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in NAMES}
    yield {"url": url, "server": server, "tokens": tokens, "users": users, **made}
    server.stop()


def client(world, name, **headers):
    return world["server"].client(headers={"Authorization": f"Bearer {world['tokens'][name]}", **headers})


def square(index: int) -> dict:
    lon, lat = grid_origin(index)
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + 0.01, lat], [lon + 0.01, lat + 0.01],
                                                [lon, lat + 0.01], [lon, lat]]]}


def department(name: str) -> dict:
    return {"kind": "street_department", "code": STREETS[0], "department": name}


@pytest.fixture
def mixed(world):
    """Tickets inside grid 1 and in grid 2 beside it, of two categories, old and new, overdue and not, in two
    states; returns their ids with those facts."""
    url = world["url"]
    now = datetime.now(LOCAL)
    specs = [(grid, category, age, overdue, state)
             for grid in (GRIDS[0], GRIDS[1]) for category in ("E0501", "E0601") for age in (2, 72)
             for overdue in (False, True) for state in ("registered", "dispatched")]
    ids = add_complaints(url, [{"grid": g, "category": c, "reported_at": now - timedelta(hours=a)}
                               for g, c, a, _, _ in specs])
    for ticket, (_, _, _, overdue, state) in zip(ids, specs):
        sql(url, "UPDATE ticket SET state = %s, due_at = now() + make_interval(hours => %s) WHERE id = %s",
            [state, -3 if overdue else 48, ticket])
    return [dict(zip(("id", "grid", "category", "age", "overdue", "state"), (t, *spec)))
            for t, spec in zip(ids, specs)]


def assigned_to(url, name: str) -> set[int]:
    return {row[0] for row in sql(url, "SELECT id FROM ticket WHERE department = %s", [name])}


CASES = [
    ("polygon + overdue", {"polygon": square(0), "overdue": True},
     lambda t: t["grid"] == GRIDS[0] and t["overdue"]),
    ("polygon + not overdue + category", {"polygon": square(0), "overdue": False, "categories": ["E0601"]},
     lambda t: t["grid"] == GRIDS[0] and not t["overdue"] and t["category"] == "E0601"),
    ("polygon + older than a day", {"polygon": square(0), "min_age_hours": 24},
     lambda t: t["grid"] == GRIDS[0] and t["age"] > 24),
    ("polygon + younger than a day + overdue", {"polygon": square(0), "max_age_hours": 24, "overdue": True},
     lambda t: t["grid"] == GRIDS[0] and t["age"] < 24 and t["overdue"]),
    ("grids + state + overdue", {"grids": [GRIDS[1]], "states": ["registered"], "overdue": True},
     lambda t: t["grid"] == GRIDS[1] and t["state"] == "registered" and t["overdue"]),
    ("grids + every filter", {"grids": [GRIDS[0], GRIDS[1]], "states": ["dispatched"], "categories": ["E0501"],
                              "overdue": True, "max_age_hours": 24},
     lambda t: t["state"] == "dispatched" and t["category"] == "E0501" and t["overdue"] and t["age"] < 24),
]


@pytest.mark.parametrize("name, body, expected", CASES, ids=[case[0] for case in CASES])
def test_every_filter_applies_together_with_the_area(world, mixed, name, body, expected):
    url = world["url"]
    ours = {t["id"] for t in mixed}
    want = {t["id"] for t in mixed if expected(t)}
    assert want and want != ours
    target = f"队-{name}"
    with client(world, "street1") as street:
        preview = street.post("/tickets/assign", json={**body, "assignee": department(target), "dry_run": True})
        assert preview.status_code == 200, preview.text
        assert preview.json()["would_assign"] == len(want) and not assigned_to(url, target)
        assert {t["id"] for t in preview.json()["tickets"]} & ours == want
        answer = street.post("/tickets/assign", json={**body, "assignee": department(target)})
        assert answer.status_code == 200, answer.text
    assert assigned_to(url, target) & ours == want
    assert assigned_to(url, target) - ours == set()  # earlier tests' tickets are all handled below
    sql(url, "UPDATE ticket SET state = 'closed', closed_at = now() WHERE id = ANY(%s)", [list(ours)])


def test_an_unknown_filter_is_refused_not_dropped(world):
    with client(world, "street1") as street:
        for body in ({"polygon": square(0), "overdue_only": True}, {"grids": [GRIDS[0]], "age": 3}):
            answer = street.post("/tickets/assign", json={**body, "assignee": department("不应派出")})
            assert answer.status_code == 422, answer.text
    assert not assigned_to(world["url"], "不应派出")


def test_a_repeated_submit_with_the_same_key_changes_nothing(world):
    url = world["url"]
    tickets = add_complaints(url, [{"grid": GRIDS[0], "category": "E0503"} for _ in range(3)])
    body = {"ticket_ids": tickets, "assignee": department("幂等队")}
    with client(world, "street1", **{"Idempotency-Key": "desk-0001"}) as street:
        first = street.post("/tickets/assign", json=body)
        assert first.status_code == 200 and first.json()["assigned"] == 3
        state = sql(url, "SELECT id, version, dispatched_at FROM ticket WHERE id = ANY(%s) ORDER BY id", [tickets])
        events = sql(url, "SELECT count(*) FROM ticket_event WHERE ticket_id = ANY(%s)", [tickets])
        again = street.post("/tickets/assign", json=body)
        assert again.status_code == 200, again.text
        assert again.json().pop("replayed") is True
        assert again.json() | {"replayed": True} == first.json() | {"replayed": True}
        assert sql(url, "SELECT id, version, dispatched_at FROM ticket WHERE id = ANY(%s) ORDER BY id",
                   [tickets]) == state
        assert sql(url, "SELECT count(*) FROM ticket_event WHERE ticket_id = ANY(%s)", [tickets]) == events
        # the same key for another request is a mistake, not a replay
        other = street.post("/tickets/assign", json={**body, "assignee": department("别的队")})
        assert other.status_code == 409 and "幂等键" in other.json()["detail"]
    # the key may also come in the body; keys are per user
    with client(world, "street1") as street:
        assert street.post("/tickets/assign", json={**body, "idempotency_key": "desk-0001"}).json()["replayed"]
    with client(world, "admin", **{"Idempotency-Key": "desk-0001"}) as admin:
        fresh = admin.post("/tickets/assign", json=body)
        assert fresh.status_code == 200 and "replayed" not in fresh.json() and fresh.json()["assigned"] == 3


def test_two_submits_with_one_key_at_once_assign_once(world):
    url = world["url"]
    tickets = add_complaints(url, [{"grid": GRIDS[1], "category": "E0503"} for _ in range(30)])
    body = {"grids": [GRIDS[1]], "categories": ["E0503"], "assignee": department("并发队")}
    barrier = threading.Barrier(2)
    answers = []

    def send():
        with client(world, "street1", **{"Idempotency-Key": "double-click"}) as http:
            http.get("/auth/me")
            barrier.wait()
            answers.append(http.post("/tickets/assign", json=body))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200]
    assert sorted("replayed" in a.json() for a in answers) == [False, True]
    counts = sql(url, "SELECT ticket_id, count(*) FROM ticket_event WHERE ticket_id = ANY(%s) "
                      "AND action IN ('dispatch', 'reassign') AND data->'assignee'->>'department' = '并发队' "
                      "GROUP BY 1", [tickets])
    assert len(counts) == 30 and all(n == 1 for _, n in counts)


def test_assignment_to_a_named_person_of_the_organisation(world):
    url, users = world["url"], world["users"]
    tickets = add_complaints(url, [{"grid": GRIDS[0], "category": "E0503"} for _ in range(2)])
    community = {"kind": "community", "code": COMMUNITIES[0]}
    with client(world, "street1") as street:
        people = street.get("/tickets/assignees", params=community).json()
        assert {p["username"] for p in people} == {"community1", "grid1", "grid2"}
        assert street.get("/tickets/assignees", params={"kind": "utility", "code": "自来水公司"}).json() == []
        for wrong in ("community2", "grid3", "company1", "nobody"):
            refused = street.post("/tickets/assign", json={"ticket_ids": tickets,
                                                          "assignee": {**community, "user": wrong}})
            assert refused.status_code == 400, (wrong, refused.text)
        refused = street.post("/tickets/assign", json={"ticket_ids": tickets, "assignee": {
            "kind": "utility", "department": "自来水公司", "user": "grid1"}})
        assert refused.status_code == 400
        answer = street.post("/tickets/assign", json={"ticket_ids": tickets,
                                                     "assignee": {**community, "user": "grid1"}})
        assert answer.status_code == 200, answer.text
        assert answer.json()["assignee"]["user"]["username"] == "grid1"
    grid1 = users["grid1"]["id"] if isinstance(users["grid1"], dict) else users["grid1"]
    assert sql(url, "SELECT DISTINCT assignee_kind, assignee_code, assignee_user_id FROM ticket WHERE id = ANY(%s)",
               [tickets]) == [("community", COMMUNITIES[0], grid1)]
    with client(world, "grid1") as person:
        mine = {item["id"]: item for item in person.get("/tickets", params={"mine": "true"}).json()["items"]}
        assert set(tickets) <= set(mine) and mine[tickets[0]]["assignee_user_id"] == grid1
    # the person follows the holder: another holder without a person clears it, by any path
    with client(world, "street1") as street:
        street.post("/tickets/assign", json={"ticket_ids": tickets[:1], "assignee": department("换人队")}
                    ).raise_for_status()
        assert street.post(f"/tickets/{tickets[1]}/transitions", json={
            "action": "return", "note": "不属本单位"}).status_code == 200
    assert sql(url, "SELECT assignee_user_id FROM ticket WHERE id = ANY(%s)", [tickets]) == [(None,), (None,)]
