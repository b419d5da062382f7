"""Assignment by area (按区域派遣): select tickets by street, grids or a drawn polygon plus filters, and assign
or reassign them in bulk. Optimistic concurrency: each ticket is updated only at the version the dispatcher saw,
so of two dispatchers racing for one ticket one wins and the other gets a Conflict."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.auth import Principal
from gis.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.tickets.events import actor_name
from gis.tickets.filters import TicketFilter, where_sql
from gis.tickets.models import ASSIGNEE_KINDS
from gis.tickets.roles import DISPATCHERS

ASSIGNABLE = ("reported", "registered", "dispatched", "in_progress")
MAX_BULK = 10_000


async def check_assignee(conn: AsyncConnection, principal: Principal, assignee: dict, tickets: list[dict]) -> dict:
    """Validate {kind, code, department} against the database and the tickets it would receive."""
    kind = assignee.get("kind")
    code = str(assignee.get("code") or "").strip()
    department = (assignee.get("department") or "").strip() or None
    if kind not in ASSIGNEE_KINDS:
        raise InvalidInput(f"assignee kind must be one of {', '.join(ASSIGNEE_KINDS)}")
    if kind in ("street_department", "utility") and not department:
        raise InvalidInput(f"a {kind} assignee needs its department (e.g. 综合行政执法中队, 自来水公司)")
    if kind == "utility":
        code = code or department
    if not code:
        raise InvalidInput("the assignee needs a code")
    if kind == "property_company":
        found = (await conn.execute(text("SELECT 1 FROM property_company WHERE id::text = :c"), {"c": code})).first()
        if found is None:
            raise InvalidInput(f"no property company with id {code}")
        # The company's users see only its compounds, so it can only be given tickets there.
        elsewhere = [t["id"] for t in tickets if str(t.get("property_company_id")) != code]
        if elsewhere:
            raise InvalidInput(f"ticket(s) {', '.join(map(str, elsewhere[:20]))} are not in a compound of company "
                               f"{code}")
    elif kind in ("community", "street_department"):
        table = "community" if kind == "community" else "street"
        column = "community_code" if kind == "community" else "street_code"
        found = (await conn.execute(text(f"SELECT 1 FROM {table} WHERE code = :c AND valid_to IS NULL"),
                                    {"c": code})).first()
        if found is None:
            raise InvalidInput(f"no {table} with code {code}")
        elsewhere = [t["id"] for t in tickets if t.get(column) != code]
        if elsewhere:
            raise InvalidInput(f"ticket(s) {', '.join(map(str, elsewhere[:20]))} are not in {table} {code}")
    elif kind == "user":
        found = (await conn.execute(text("SELECT role FROM app_user WHERE id::text = :c AND active"),
                                    {"c": code})).first()
        if found is None:
            raise InvalidInput(f"no active user with id {code}")
    return {"kind": kind, "code": code, "department": department}


async def assign(
    conn: AsyncConnection,
    principal: Principal,
    assignee: dict,
    selection: TicketFilter,
    versions: dict[int, int] | None = None,
    note: str | None = None,
) -> dict:
    """Assign the selected tickets to `assignee` in the caller's transaction; all or none.

    `versions` maps ticket id to the version the dispatcher saw; without it the versions read here are used,
    which still refuses a ticket that another dispatcher changes before this statement gets its row lock."""
    if principal.role not in DISPATCHERS:
        raise Forbidden(f"a {principal.role} user may not assign tickets")
    if selection.is_empty():
        raise InvalidInput("select tickets: ticket_ids, or an area (street, grids, polygon) and filters")
    where, params, needs_complaint = where_sql(principal, selection)
    join = "JOIN complaint c ON c.id = t.complaint_id" if needs_complaint else ""
    rows = (await conn.execute(text(f"""
        SELECT t.id, t.version, t.state, t.street_code, t.community_code, t.property_company_id
        FROM ticket t {join} WHERE {where} ORDER BY t.id LIMIT {MAX_BULK + 1}"""), params)).mappings().all()
    tickets = [dict(row) for row in rows]
    if len(tickets) > MAX_BULK:
        raise InvalidInput(f"at most {MAX_BULK} tickets per assignment; narrow the selection")
    if selection.ids:
        missing = sorted(set(selection.ids) - {t["id"] for t in tickets})
        if missing:
            raise NotFound(f"no ticket(s) {', '.join(map(str, missing[:20]))}")
        closed = [t["id"] for t in tickets if t["state"] not in ASSIGNABLE]
        if closed:
            raise Conflict(f"ticket(s) {', '.join(map(str, closed[:20]))} are no longer open for assignment")
    tickets = [t for t in tickets if t["state"] in ASSIGNABLE]
    if not tickets:
        return {"assigned": 0, "tickets": []}
    checked = await check_assignee(conn, principal, assignee, tickets)
    expected = {t["id"]: t["version"] for t in tickets}
    if versions:
        unknown = sorted(set(versions) - set(expected))
        if unknown:
            raise NotFound(f"no open ticket(s) {', '.join(map(str, unknown[:20]))} in the selection")
        expected.update({int(k): int(v) for k, v in versions.items()})
    ids = list(expected)
    updated = (await conn.execute(text("""
        WITH wanted AS (SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[])) AS w(id, version)),
        changed AS (
            UPDATE ticket t SET state = 'dispatched', version = t.version + 1, updated_at = now(),
                   assignee_kind = :kind, assignee_code = :code, department = :department,
                   registered_at = coalesce(t.registered_at, now()), dispatched_at = now(),
                   response_due_at = now() + make_interval(hours => p.response_hours)
            FROM wanted w, deadline_policy p
            WHERE t.id = w.id AND t.version = w.version AND p.deadline_class = t.deadline_class
              AND t.state IN ('reported', 'registered', 'dispatched', 'in_progress')
            RETURNING t.id, t.version, w.version AS seen)
        SELECT id, version FROM changed"""),
        {"ids": ids, "versions": [expected[i] for i in ids], "kind": checked["kind"], "code": checked["code"],
         "department": checked["department"]},
    )).all()
    if len(updated) != len(ids):
        lost = sorted(set(ids) - {row[0] for row in updated})
        # Raising rolls the caller's transaction back, so nothing of this batch is kept.
        raise Conflict(f"ticket(s) {', '.join(map(str, lost[:20]))} were changed by someone else; reload and retry")
    states = {t["id"]: t["state"] for t in tickets}
    await conn.execute(text("""
        INSERT INTO ticket_event (ticket_id, actor_user_id, actor, action, from_state, to_state, note, data)
        SELECT id, :uid, :actor, CASE WHEN from_state IN ('dispatched', 'in_progress') THEN 'reassign'
                                      ELSE 'dispatch' END,
               from_state, 'dispatched', :note, CAST(:data AS jsonb)
        FROM unnest(CAST(:ids AS bigint[]), CAST(:states AS text[])) AS s(id, from_state)"""),
        {"uid": principal.user_id, "actor": actor_name(principal), "note": note,
         "data": json.dumps({"assignee": checked, "bulk": len(ids)}, ensure_ascii=False),
         "ids": ids, "states": [states[i] for i in ids]})
    return {"assigned": len(ids), "assignee": checked,
            "tickets": [{"id": row[0], "version": row[1]} for row in updated]}
