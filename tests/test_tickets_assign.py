"""Assignment by area: by street, a set of grids or a drawn polygon with filters, in bulk, all or none; and the
race of two dispatchers — real parallel HTTP requests against the real app — where one wins and one gets 409."""

from __future__ import annotations

import threading

import pytest
from conftest import LiveServer, _clone
from test_tickets_support import (
    GRIDS,
    PASSWORD,
    STREETS,
    add_complaints,
    build_city,
    grid_origin,
    make_users,
    sql,
)


@pytest.fixture(scope="module")
def world(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    made = build_city(url)
    make_users(url, made["companies"])
    server = LiveServer(url)
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in ("admin", "street1", "street2", "community1", "grid1")}
    yield {"url": url, "server": server, "tokens": tokens, **made}
    server.stop()


def client(world, name):
    return world["server"].client(headers={"Authorization": f"Bearer {world['tokens'][name]}"})


SQUAD = {"kind": "street_department", "code": STREETS[0], "department": "综合行政执法中队"}


def test_assign_by_grids_polygon_and_filters(world):
    url = world["url"]
    noise = add_complaints(url, [{"grid": g, "category": "E0501"} for g in GRIDS[:2] for _ in range(3)])
    leaks = add_complaints(url, [{"grid": GRIDS[1], "category": "E0601"}])
    with client(world, "street1") as street:
        moved = street.post("/tickets/assign", json={
            "grids": [GRIDS[1]], "categories": ["E0501"], "assignee": {**SQUAD, "department": "城管中队"}})
        assert moved.status_code == 200, moved.text
        assert moved.json()["assigned"] == 3
        assert sql(url, "SELECT count(*) FROM ticket WHERE department = '城管中队'") == [(3,)]
        lon, lat = grid_origin(0)
        polygon = {"type": "Polygon", "coordinates": [[[lon, lat], [lon + 0.01, lat], [lon + 0.01, lat + 0.01],
                                                       [lon, lat + 0.01], [lon, lat]]]}
        drawn = street.post("/tickets/assign", json={
            "polygon": polygon, "categories": ["E0501"], "assignee": {**SQUAD, "department": "派出所"}})
        assert drawn.json()["assigned"] == 3
        assert {r[0] for r in sql(url, "SELECT grid_code FROM ticket WHERE department = '派出所'")} == {GRIDS[0]}
        # Overdue filter: nothing of these is overdue yet.
        none = street.post("/tickets/assign", json={"street": STREETS[0], "overdue": True, "assignee": SQUAD})
        assert none.json()["assigned"] == 0
        # A ticket outside the community cannot go to that community: refused with the reason.
        wrong = street.post("/tickets/assign", json={"ticket_ids": leaks, "assignee": {
            "kind": "community", "code": GRIDS[2][:12]}})
        assert wrong.status_code == 400 and "not in community" in wrong.json()["detail"]
        assert street.post("/tickets/assign", json={"assignee": SQUAD}).status_code == 400
    with client(world, "grid1") as worker:
        assert worker.post("/tickets/assign", json={"ticket_ids": noise[:1], "assignee": SQUAD}).status_code == 403
    history = sql(url, "SELECT action, from_state FROM ticket_event WHERE ticket_id = %s ORDER BY id", [noise[3]])
    assert history == [("auto_dispatch", "reported"), ("reassign", "dispatched")]


def test_bulk_assignment_is_all_or_none(world):
    url = world["url"]
    tickets = add_complaints(url, [{"grid": GRIDS[0], "category": "E0501"} for _ in range(4)])
    versions = dict(sql(url, "SELECT id, version FROM ticket WHERE id = ANY(%s)", [tickets]))
    sql(url, "UPDATE ticket SET version = version + 1 WHERE id = %s", [tickets[2]])  # someone else got there
    with client(world, "street1") as street:
        refused = street.post("/tickets/assign", json={
            "ticket_ids": tickets, "versions": {str(k): v for k, v in versions.items()},
            "assignee": {**SQUAD, "department": "all-or-none"}})
    assert refused.status_code == 409 and str(tickets[2]) in refused.json()["detail"]
    assert sql(url, "SELECT count(*) FROM ticket WHERE department = 'all-or-none'") == [(0,)]
    assert sql(url, "SELECT count(*) FROM ticket_event WHERE action IN ('dispatch', 'reassign') "
                    "AND ticket_id = ANY(%s)", [tickets]) == [(0,)]


def race(world, body_for: dict[str, dict]) -> dict[str, int]:
    """Send the bodies at the same instant from parallel threads; returns each dispatcher's status."""
    barrier = threading.Barrier(len(body_for))
    statuses: dict[str, int] = {}

    def send(name: str, body: dict) -> None:
        with client(world, name) as http:
            http.get("/auth/me")  # warm the connection so both requests leave together
            barrier.wait()
            statuses[name] = http.post("/tickets/assign", json=body).status_code

    threads = [threading.Thread(target=send, args=item) for item in body_for.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.parametrize("round_", range(5))
def test_two_dispatchers_race_for_one_ticket(world, round_):
    url = world["url"]
    ticket = add_complaints(url, [{"grid": GRIDS[0], "category": "E0501"}])[0]
    version = sql(url, "SELECT version FROM ticket WHERE id = %s", [ticket])[0][0]
    statuses = race(world, {
        "admin": {"ticket_ids": [ticket], "versions": {str(ticket): version},
                  "assignee": {**SQUAD, "department": "A队"}},
        "street1": {"ticket_ids": [ticket], "versions": {str(ticket): version},
                    "assignee": {**SQUAD, "department": "B队"}},
    })
    assert sorted(statuses.values()) == [200, 409]
    winner = "A队" if statuses["admin"] == 200 else "B队"
    assert sql(url, "SELECT department, version FROM ticket WHERE id = %s", [ticket]) == [(winner, version + 1)]
    assignments = sql(url, "SELECT data->'assignee'->>'department' FROM ticket_event WHERE ticket_id = %s "
                           "AND action IN ('dispatch', 'reassign')", [ticket])
    assert assignments == [(winner,)]


def test_area_race_without_versions(world):
    """Both select by area at once (no versions sent): still exactly one assignment per ticket."""
    url = world["url"]
    tickets = add_complaints(url, [{"grid": GRIDS[1], "category": "E0503"} for _ in range(20)])
    statuses = race(world, {
        "admin": {"grids": [GRIDS[1]], "categories": ["E0503"], "assignee": {**SQUAD, "department": "甲"}},
        "street1": {"grids": [GRIDS[1]], "categories": ["E0503"], "assignee": {**SQUAD, "department": "乙"}},
    })
    assert 200 in statuses.values()
    counts = sql(url, "SELECT ticket_id, count(*) FROM ticket_event WHERE ticket_id = ANY(%s) "
                      "AND action IN ('dispatch', 'reassign') GROUP BY 1", [tickets])
    if sorted(statuses.values()) == [200, 409]:
        assert len(counts) == 20 and all(n == 1 for _, n in counts)
    else:
        # The second one came after the first had committed: a legitimate sequential reassignment.
        assert len(counts) == 20 and all(n == 2 for _, n in counts)
