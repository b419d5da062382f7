"""Assignment by area (按区域派遣): select tickets by street, grids or a drawn polygon plus filters, and assign
or reassign them in bulk. Optimistic concurrency: each ticket is updated only at the version the dispatcher saw,
so of two dispatchers racing for one ticket one wins and the other gets a Conflict.

Safe to submit twice: with an idempotency key (per user) the first answer is stored with the assignment in one
transaction, and a repeated submit with the same key changes nothing and gets that answer back (marked
`replayed`); the same key with a different request is refused. A dry run answers what would be assigned (the
count and ids, and the tickets the selection holds that are no longer open for assignment) without changing
anything, for the confirmation the dispatcher reads before submitting.

A named person: the assignee may name a user of the receiving organisation (a property company's staff, a
community's staff or the grid workers of its grids, a street office's staff), stored as the ticket's
`assignee_user_id` beside the organisation, which stays the holder."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal
from gis.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.tickets.events import actor_name
from gis.tickets.filters import TicketFilter, where_sql
from gis.tickets.models import ASSIGNEE_KINDS, sql_list
from gis.tickets.roles import DISPATCHERS

ASSIGNABLE = ("reported", "registered", "dispatched", "in_progress")
MAX_BULK = 10_000
MAX_KEY_LENGTH = 200
PEOPLE_KINDS = ("property_company", "community", "street_department")
"""Organisations whose people can be named as the one to act; a utility is reached as a whole."""


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
    checked = {"kind": kind, "code": code, "department": department}
    person = str(assignee.get("user") or "").strip()
    if person:
        checked["user"] = await check_person(conn, kind, code, person)
    return checked


def _belongs_sql() -> str:
    """Is app_user `u` one of the people of the organisation (:kind, :code)?"""
    return """u.active AND (
        (:kind = 'property_company' AND u.role = 'property_company' AND u.property_company_id::text = :code)
        OR (:kind = 'community' AND u.role = 'community' AND :code = ANY(u.scope_codes))
        OR (:kind = 'community' AND u.role = 'grid_worker'
            AND EXISTS (SELECT 1 FROM unnest(u.scope_codes) s(code) WHERE starts_with(s.code, :code)))
        OR (:kind = 'street_department' AND u.role = 'street' AND :code = ANY(u.scope_codes)))"""


async def check_person(conn: AsyncConnection, kind: str, code: str, person: str) -> dict:
    """The named person (a user id or username) checked to be an active user of the organisation."""
    if kind not in PEOPLE_KINDS:
        raise InvalidInput("这类承办单位不能指定到人，请只选单位")
    row = (await conn.execute(text(f"""
        SELECT u.id, u.username, u.display_name, u.role, {_belongs_sql()} AS belongs
        FROM app_user u WHERE (u.id::text = :person OR u.username = :person) ORDER BY u.id LIMIT 1"""),
        {"person": person, "kind": kind, "code": code})).mappings().first()
    if row is None or not row["belongs"]:
        raise InvalidInput(f"用户 {person} 不是承办单位 {code} 的在岗人员，不能指派给他")
    return {"id": row["id"], "username": row["username"], "display_name": row["display_name"]}


async def people(conn: AsyncConnection, principal: Principal, kind: str, code: str) -> list[dict]:
    """The people of an organisation a dispatcher may name (empty when it has none, or cannot have any)."""
    if principal.role not in DISPATCHERS:
        raise Forbidden("只有派单人员可以查看承办单位的人员")
    if kind not in ASSIGNEE_KINDS:
        raise InvalidInput(f"承办单位类型须为 {'、'.join(ASSIGNEE_KINDS)} 之一")
    if kind not in PEOPLE_KINDS or not code:
        return []
    rows = (await conn.execute(text(f"""
        SELECT u.id, u.username, u.display_name, u.role FROM app_user u WHERE {_belongs_sql()}
        ORDER BY u.role, u.username"""), {"kind": kind, "code": code})).mappings()
    return [dict(row) for row in rows]


def request_digest(assignee: dict, selection: TicketFilter, versions: dict | None, note: str | None) -> str:
    """What a submit asked for, as a digest: the same key may only repeat the same request."""
    body = {"assignee": assignee, "selection": selection.__dict__, "note": note,
            "versions": {str(k): v for k, v in (versions or {}).items()}}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


async def _claim_key(conn: AsyncConnection, principal: Principal, key: str, digest: str) -> dict | None:
    """Claim the idempotency key for this transaction, or the first answer given with it. A second submit that
    arrives while the first is under way waits for it here (the key's row is locked until the first commits)."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"幂等键（Idempotency-Key）须为 1 到 {MAX_KEY_LENGTH} 个可见字符")
    if principal.user_id is None:
        raise InvalidInput("幂等键只用于登录用户的派单")
    claimed = (await conn.execute(text("""
        INSERT INTO assignment_request (user_id, idempotency_key, body_digest) VALUES (:u, :k, :d)
        ON CONFLICT DO NOTHING RETURNING 1"""), {"u": principal.user_id, "k": key, "d": digest})).first()
    if claimed is not None:
        return None
    first = (await conn.execute(text("""
        SELECT body_digest, response FROM assignment_request WHERE user_id = :u AND idempotency_key = :k"""),
        {"u": principal.user_id, "k": key})).one()
    if first.body_digest != digest:
        raise Conflict("这个幂等键已用于另一次不同内容的派单；新的派单请使用新的键")
    return {**first.response, "replayed": True}


async def assign(
    conn: AsyncConnection,
    principal: Principal,
    assignee: dict,
    selection: TicketFilter,
    versions: dict[int, int] | None = None,
    note: str | None = None,
    idempotency_key: str | None = None,
    dry_run: bool = False,
) -> dict:
    """Assign the selected tickets to `assignee` in the caller's transaction; all or none.

    `versions` maps ticket id to the version the dispatcher saw; without it the versions read here are used,
    which still refuses a ticket that another dispatcher changes before this statement gets its row lock.
    Every filter of `selection` applies together (area, grids, category, state, age, overdue)."""
    if principal.role not in DISPATCHERS:
        raise Forbidden(f"a {principal.role} user may not assign tickets")
    if selection.is_empty():
        raise InvalidInput("select tickets: ticket_ids, or an area (street, grids, polygon) and filters")
    if idempotency_key is not None and not dry_run:
        first = await _claim_key(conn, principal, idempotency_key,
                                 request_digest(assignee, selection, versions, note))
        if first is not None:
            return first
        answer = await _assign(conn, principal, assignee, selection, versions, note, dry_run)
        await conn.execute(text("""
            UPDATE assignment_request SET response = CAST(:r AS jsonb) WHERE user_id = :u AND idempotency_key = :k"""),
            {"r": json.dumps(answer, ensure_ascii=False, default=str), "u": principal.user_id,
             "k": idempotency_key})
        return answer
    return await _assign(conn, principal, assignee, selection, versions, note, dry_run)


async def _assign(conn: AsyncConnection, principal: Principal, assignee: dict, selection: TicketFilter,
                  versions: dict[int, int] | None, note: str | None, dry_run: bool) -> dict:
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
    skipped = [t["id"] for t in tickets if t["state"] not in ASSIGNABLE]
    tickets = [t for t in tickets if t["state"] in ASSIGNABLE]
    if not tickets:
        return {"assigned": 0, "tickets": [], "skipped": skipped, "dry_run": dry_run}
    checked = await check_assignee(conn, principal, assignee, tickets)
    if dry_run:
        return {"assigned": 0, "would_assign": len(tickets), "assignee": checked, "dry_run": True,
                "tickets": [{"id": t["id"], "version": t["version"]} for t in tickets], "skipped": skipped}
    expected = {t["id"]: t["version"] for t in tickets}
    if versions:
        unknown = sorted(set(versions) - set(expected))
        if unknown:
            raise NotFound(f"no open ticket(s) {', '.join(map(str, unknown[:20]))} in the selection")
        expected.update({int(k): int(v) for k, v in versions.items()})
    ids = list(expected)
    updated = (await conn.execute(text(f"""
        WITH wanted AS (SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[])) AS w(id, version)),
        changed AS (
            UPDATE ticket t SET state = 'dispatched', version = t.version + 1, updated_at = now(),
                   assignee_kind = :kind, assignee_code = :code, department = :department,
                   assignee_user_id = CAST(:person AS bigint),
                   registered_at = coalesce(t.registered_at, now()), dispatched_at = now(),
                   response_due_at = now() + make_interval(hours => p.response_hours)
            FROM wanted w, deadline_policy p
            WHERE t.id = w.id AND t.version = w.version AND p.deadline_class = t.deadline_class
              AND t.state IN {sql_list(ASSIGNABLE)}
            RETURNING t.id, t.version, w.version AS seen)
        SELECT id, version FROM changed"""),
        {"ids": ids, "versions": [expected[i] for i in ids], "kind": checked["kind"], "code": checked["code"],
         "department": checked["department"], "person": (checked.get("user") or {}).get("id")},
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
    return {"assigned": len(ids), "assignee": checked, "dry_run": False, "skipped": skipped,
            "tickets": [{"id": row[0], "version": row[1]} for row in updated]}
