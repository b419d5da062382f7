"""Supervision (督办) and escalation (吹哨报到) over real HTTP on the tiny city: the overdue list sorted by how overdue,
reminders and escalations recorded in the append-only history without touching the state, shown to the holder,
the department's answer, and the figures of how soon supervised tickets moved."""

from __future__ import annotations

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
    make_users,
    sql,
)

NAMES = ("admin", "street1", "street2", "community1", "grid1", "planner")


@pytest.fixture(scope="module")
def world(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    made = build_city(url)
    make_users(url, made["companies"])
    server = LiveServer(url)
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in NAMES}
    yield {"url": url, "server": server, "tokens": tokens}
    server.stop()


def client(world, name):
    return world["server"].client(headers={"Authorization": f"Bearer {world['tokens'][name]}"})


def to_community(world, tickets):
    with client(world, "street1") as street:
        answer = street.post("/tickets/assign", json={"ticket_ids": tickets, "assignee": {
            "kind": "community", "code": COMMUNITIES[0]}})
        assert answer.status_code == 200, answer.text


def overdue_by(url, hours: dict[int, float]) -> None:
    for ticket, h in hours.items():
        sql(url, "UPDATE ticket SET due_at = now() - make_interval(secs => %s) WHERE id = %s", [h * 3600, ticket])


def test_the_overdue_list_is_sorted_by_how_overdue_and_scoped(world):
    url = world["url"]
    mine = add_complaints(url, [{"grid": GRIDS[i % 2], "category": "E0501"} for i in range(5)])
    theirs = add_complaints(url, [{"grid": GRIDS[2], "category": "E0501"}])
    overdue_by(url, {mine[0]: 5, mine[1]: 50, mine[2]: 0.5, theirs[0]: 80})
    sql(url, "UPDATE ticket SET state = 'closed', closed_at = now() WHERE id = %s", [mine[2]])
    with client(world, "street1") as street:
        answer = street.get("/supervision/overdue")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        ids = [item["id"] for item in body["items"]]
        assert ids[:2] == [mine[1], mine[0]] and mine[2] not in ids and theirs[0] not in ids
        assert set(mine[3:]).isdisjoint(ids)
        hours = [item["overdue_hours"] for item in body["items"]]
        assert hours == sorted(hours, reverse=True) and 49 < hours[0] < 51
        assert body["total"] == len(ids)
        assert body["items"][0]["state_zh"] == "已派遣" and "address" in body["items"][0]
    with client(world, "admin") as admin:
        assert admin.get("/supervision/overdue").json()["items"][0]["id"] == theirs[0]
    with world["server"].client() as public:
        assert public.get("/supervision/overdue").status_code == 401


def test_a_reminder_reaches_the_holder_without_changing_the_ticket(world):
    url = world["url"]
    ticket, other = add_complaints(url, [{"grid": GRIDS[0], "category": "E0501"} for _ in range(2)])
    to_community(world, [ticket, other])
    overdue_by(url, {ticket: 30})
    before = sql(url, "SELECT state, version FROM ticket WHERE id = %s", [ticket])[0]
    with client(world, "street1") as street:
        sent = street.post(f"/supervision/tickets/{ticket}/remind", json={"note": "已超期，请今日内处理"})
        assert sent.status_code == 201, sent.text
        assert sent.json()["supervision_count"] == 1
        assert sent.json()["holder"]["kind"] == "community" and sent.json()["holder"]["code"] == COMMUNITIES[0]
        assert street.post(f"/supervision/tickets/{ticket}/remind", json={}).json()["supervision_count"] == 2
    assert sql(url, "SELECT state, version FROM ticket WHERE id = %s", [ticket])[0] == before
    events = sql(url, "SELECT action, from_state, to_state, note FROM ticket_event WHERE ticket_id = %s "
                      "AND action = 'supervise' ORDER BY id", [ticket])
    assert [e[:3] for e in events] == [("supervise", before[0], before[0])] * 2
    assert events[0][3] == "已超期，请今日内处理" and events[1][3]
    # the holder sees it: in the detail, its history and the list of its own tickets
    with client(world, "community1") as holder:
        detail = holder.get(f"/tickets/{ticket}").json()
        assert detail["supervision_count"] == 2 and detail["supervised_at"]
        assert [e["note"] for e in detail["history"] if e["action"] == "supervise"][0] == "已超期，请今日内处理"
        listed = {item["id"]: item for item in holder.get("/tickets", params={"mine": "true"}).json()["items"]}
        assert listed[ticket]["supervision_count"] == 2 and listed[other]["supervision_count"] == 0
        # the version did not move, so the holder's next step with the version it had is accepted
        moved = holder.post(f"/tickets/{ticket}/transitions", json={"action": "accept", "version": before[1]})
        assert moved.status_code == 200, moved.text
    with client(world, "grid1") as worker:
        assert {item["id"]: item for item in worker.get("/tickets").json()["items"]}[ticket]["supervision_count"] == 2


def test_who_may_supervise(world):
    url = world["url"]
    ticket, closed = add_complaints(url, [{"grid": GRIDS[0], "category": "E0501"} for _ in range(2)])
    sql(url, "UPDATE ticket SET state = 'closed', closed_at = now() WHERE id = %s", [closed])
    for name, status in (("grid1", 403), ("community1", 403), ("planner", 403), ("street2", 404)):
        with client(world, name) as http:
            answer = http.post(f"/supervision/tickets/{ticket}/remind", json={})
            assert answer.status_code == status, (name, answer.text)
    with world["server"].client() as public:
        assert public.post(f"/supervision/tickets/{ticket}/remind", json={}).status_code == 401
    with client(world, "admin") as admin:
        refused = admin.post(f"/supervision/tickets/{closed}/remind", json={})
        assert refused.status_code == 409 and "无需督办" in refused.json()["detail"]
        assert admin.post(f"/supervision/tickets/{ticket}/remind", json={"nope": 1}).status_code == 422
    assert sql(url, "SELECT supervision_count FROM ticket WHERE id = ANY(%s)", [[ticket, closed]]) == [(0,), (0,)]


def test_escalation_to_a_department_and_its_answer(world):
    url = world["url"]
    ticket = add_complaints(url, [{"grid": GRIDS[1], "category": "E0501"}])[0]
    state = sql(url, "SELECT state, version FROM ticket WHERE id = %s", [ticket])[0]
    with client(world, "street1") as street:
        assert street.post(f"/supervision/tickets/{ticket}/escalate",
                           json={"department": "", "reason": "x"}).status_code == 400
        sent = street.post(f"/supervision/tickets/{ticket}/escalate",
                           json={"department": "综合行政执法中队", "reason": "占道经营反复发生，需执法"})
        assert sent.status_code == 201, sent.text
        escalation = sent.json()["escalation_id"]
        waiting = street.get("/supervision/escalations", params={"unanswered": "true"}).json()
        assert [e["id"] for e in waiting if e["ticket_id"] == ticket] == [escalation]
        answered = street.post(f"/supervision/escalations/{escalation}/answer",
                               json={"answer": "已派执法队员到场，限期整改"})
        assert answered.status_code == 200, answered.text
        again = street.post(f"/supervision/escalations/{escalation}/answer", json={"answer": "再答"})
        assert again.status_code == 409
        listed = street.get("/supervision/escalations", params={"ticket_id": ticket}).json()
        assert listed[0]["answer"] == "已派执法队员到场，限期整改" and listed[0]["department"] == "综合行政执法中队"
        detail = street.get(f"/tickets/{ticket}").json()
        actions = [e["action"] for e in detail["history"]]
        assert actions[-2:] == ["escalate", "escalation_answer"]
        assert detail["history"][-1]["note"] == "已派执法队员到场，限期整改"
    with client(world, "street2") as other:
        assert other.post(f"/supervision/escalations/{escalation}/answer", json={"answer": "x"}).status_code == 404
        assert other.get("/supervision/escalations", params={"ticket_id": ticket}).json() == []
    assert sql(url, "SELECT state, version FROM ticket WHERE id = %s", [ticket])[0] == state


def test_counts_of_supervised_tickets_and_how_soon_they_moved(world):
    url = world["url"]
    moves, stays = add_complaints(url, [{"grid": GRIDS[3], "category": "E0501"} for _ in range(2)])
    with client(world, "admin") as admin:
        admin.post("/tickets/assign", json={"ticket_ids": [moves, stays], "assignee": {
            "kind": "community", "code": COMMUNITIES[1]}}).raise_for_status()
        for ticket in (moves, stays):
            assert admin.post(f"/supervision/tickets/{ticket}/remind", json={}).status_code == 201
        admin.post(f"/supervision/tickets/{stays}/escalate",
                   json={"department": "市场监管所", "reason": "需要联合处置"}).raise_for_status()
        assert admin.post(f"/tickets/{moves}/transitions", json={"action": "accept"}).status_code == 200
        today = datetime.now(LOCAL).date()  # periods are Beijing dates
        period = {"from": today.isoformat(), "to": (today + timedelta(days=1)).isoformat()}
        rows = {row["unit"]: row for row in admin.get("/supervision/stats",
                                                      params={"level": "grid", **period}).json()["rows"]}
        row = rows[GRIDS[3]]
        assert (row["supervised_tickets"], row["reminders"], row["escalations"], row["moved"],
                row["moved_within_24h"], row["escalations_answered"]) == (2, 2, 1, 1, 1, 0)
        assert 0 <= row["median_hours_to_move"] < 1 and row["moved_share"] == 0.5
        before = {"from": "2020-01-01", "to": "2020-02-01"}
        assert admin.get("/supervision/stats", params={"level": "grid", **before}).json()["rows"] == []
        assert admin.get("/supervision/stats", params={"level": "district"}).status_code == 400
    with client(world, "street1") as street:
        units = {row["unit"] for row in street.get("/supervision/stats", params={"level": "grid"}).json()["rows"]}
        assert units and all(unit.startswith(STREETS[0]) for unit in units)
