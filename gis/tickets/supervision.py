"""Supervision (督办) and escalation (吹哨报到): the overdue list, reminders and escalations sent to the holder of
a ticket, the departments' answers, and how soon supervised tickets moved.

- A reminder (`supervise`) or an escalation (`escalate`) is an event of the ticket's append-only history that
  names the holder at that moment and leaves the state and the version alone (the holder's next action is not
  refused as a conflict). Each one also counts in `ticket.supervision_count` and sets `ticket.supervised_at`,
  which every ticket list and detail shows to the holder.
- An escalation goes to a department (综合行政执法中队, 市场监管所, ...), which reports back (报到): its answer is
  recorded by the street office (or the administrator) as an `escalation_answer` event and on the escalation.
- Street offices (their own street) and the administrator supervise; everyone else is refused.
- The figures (`stats`): per unit, the tickets first supervised in a period, reminders and escalations, and how
  many moved after it — a change of state after the first supervision of the period — with the median hours.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal
from gis.access.visibility import address_sql, visibility
from gis.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.tickets.events import record_event
from gis.tickets.filters import TicketFilter, where_sql
from gis.tickets.models import OPEN_STATES, overdue_sql
from gis.tickets.rates import LEVELS
from gis.tickets.scope import ticket_scope_sql

SUPERVISORS = frozenset({"admin", "street"})
"""Who may remind, escalate and record a department's answer."""
ACTIONS = ("supervise", "escalate")
MOVED_WITHIN_HOURS = 24
MAX_NOTE = 2000
OVERDUE_MAX_LIMIT = 1000
DEFAULT_REMINDER = "请抓紧办理，按时限办结并反馈。"
STATE_ZH = {"reported": "待立案", "registered": "已立案", "dispatched": "已派遣", "in_progress": "处置中",
            "handled": "待核查", "closed": "已结案", "rejected": "不予立案", "merged": "已并单"}


def _check_supervisor(principal: Principal) -> None:
    if principal.role not in SUPERVISORS:
        raise Forbidden("只有街道或管理员可以督办、吹哨或登记部门报到")


def _text(value: str | None, what: str, required: bool) -> str | None:
    value = (value or "").strip() or None
    if required and not value:
        raise InvalidInput(f"请填写{what}")
    if value and len(value) > MAX_NOTE:
        raise InvalidInput(f"{what}最多 {MAX_NOTE} 个字")
    return value


async def _locked(conn: AsyncConnection, principal: Principal, ticket_id: int) -> dict:
    scope, params = ticket_scope_sql(principal, "t")
    row = (await conn.execute(text(
        f"SELECT t.* FROM ticket t WHERE t.id = :id AND {scope} FOR UPDATE"), {"id": ticket_id, **params}
    )).mappings().first()
    if row is None:
        raise NotFound(f"没有工单 {ticket_id}")
    return dict(row)


def _holder(ticket: dict) -> dict:
    return {"kind": ticket["assignee_kind"], "code": ticket["assignee_code"], "department": ticket["department"],
            "user_id": ticket.get("assignee_user_id")}


async def _supervision_event(conn: AsyncConnection, principal: Principal, ticket_id: int, action: str,
                             note: str | None, data: dict) -> dict:
    ticket = await _locked(conn, principal, ticket_id)
    _check_supervisor(principal)
    if ticket["state"] not in OPEN_STATES:
        raise Conflict(f"工单 {ticket_id} {STATE_ZH.get(ticket['state'], ticket['state'])}，无需督办")
    overdue_hours = (await conn.execute(text("SELECT round(extract(epoch FROM now() - :due) / 3600.0, 1)"),
                                        {"due": ticket["due_at"]})).scalar_one()
    data = {**data, "holder": _holder(ticket), "overdue_hours": float(overdue_hours)}
    event_id = await record_event(conn, principal, ticket_id, action, ticket["state"], ticket["state"], note, data)
    row = (await conn.execute(text("""
        UPDATE ticket SET supervision_count = supervision_count + 1, supervised_at = now()
        WHERE id = :id RETURNING supervision_count, supervised_at"""), {"id": ticket_id})).one()
    return {"ticket_id": ticket_id, "event_id": event_id, "action": action, "state": ticket["state"],
            "version": ticket["version"], "holder": data["holder"], "supervision_count": row[0],
            "supervised_at": row[1], "ticket": ticket}


async def remind(conn: AsyncConnection, principal: Principal, ticket_id: int, note: str | None = None) -> dict:
    """督办: a reminder to the holder, in the history; the state does not change."""
    note = _text(note, "督办意见", required=False) or DEFAULT_REMINDER
    answer = await _supervision_event(conn, principal, ticket_id, "supervise", note, {})
    answer.pop("ticket")
    return answer


async def escalate(conn: AsyncConnection, principal: Principal, ticket_id: int, department: str | None,
                   reason: str | None) -> dict:
    """吹哨: the ticket escalated to a department, which is to report back (报到); the state does not change."""
    department = _text(department, "吹哨的部门", required=True)
    reason = _text(reason, "吹哨事由", required=True)
    answer = await _supervision_event(conn, principal, ticket_id, "escalate", reason, {"department": department})
    ticket = answer.pop("ticket")
    escalation_id = (await conn.execute(text("""
        INSERT INTO ticket_escalation (ticket_id, event_id, street_code, department, reason, requested_by_user_id,
                                       requested_by, holder)
        VALUES (:t, :e, :street, :department, :reason, :uid, :actor, CAST(:holder AS jsonb)) RETURNING id"""),
        {"t": ticket_id, "e": answer["event_id"], "street": ticket["street_code"], "department": department,
         "reason": reason, "uid": principal.user_id, "actor": principal.username,
         "holder": _json(answer["holder"])})).scalar_one()
    return {**answer, "escalation_id": escalation_id, "department": department}


def _json(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


async def answer_escalation(conn: AsyncConnection, principal: Principal, escalation_id: int,
                            answer: str | None) -> dict:
    """报到: the department's answer to an escalation, recorded once, in the history of its ticket."""
    answer = _text(answer, "部门的答复", required=True)
    row = (await conn.execute(text("SELECT ticket_id FROM ticket_escalation WHERE id = :id"),
                              {"id": escalation_id})).first()
    if row is None:
        raise NotFound(f"没有吹哨记录 {escalation_id}")
    ticket = await _locked(conn, principal, row[0])  # NotFound outside the caller's scope
    _check_supervisor(principal)
    escalation = (await conn.execute(text("SELECT * FROM ticket_escalation WHERE id = :id FOR UPDATE"),
                                     {"id": escalation_id})).mappings().one()
    if escalation["answered_at"] is not None:
        raise Conflict(f"吹哨记录 {escalation_id} 的部门答复已登记，不能重复登记")
    event_id = await record_event(conn, principal, ticket["id"], "escalation_answer", ticket["state"],
                                  ticket["state"], answer,
                                  {"escalation_id": escalation_id, "department": escalation["department"]})
    answered_at = (await conn.execute(text("""
        UPDATE ticket_escalation SET answer = :answer, answered_by_user_id = :uid, answered_by = :actor,
               answered_at = now(), answer_event_id = :e
        WHERE id = :id RETURNING answered_at"""),
        {"answer": answer, "uid": principal.user_id, "actor": principal.username, "e": event_id,
         "id": escalation_id})).scalar_one()
    return {"escalation_id": escalation_id, "ticket_id": ticket["id"], "department": escalation["department"],
            "answer": answer, "answered_at": answered_at, "event_id": event_id}


async def escalations(conn: AsyncConnection, principal: Principal, ticket_id: int | None = None,
                      unanswered: bool = False, limit: int = 200) -> list[dict]:
    """Escalations in the caller's scope, newest first; staff names and texts as the privacy policy allows."""
    if principal.role == "public":
        raise Forbidden("吹哨记录仅供登录的工作人员查看")
    if not 1 <= limit <= OVERDUE_MAX_LIMIT:
        raise InvalidInput(f"条数（limit）须在 1 到 {OVERDUE_MAX_LIMIT} 之间")
    scope, params = ticket_scope_sql(principal, "t")
    people = visibility(principal).history_people
    clauses = [scope]
    if ticket_id is not None:
        clauses.append("x.ticket_id = :ticket_id")
        params["ticket_id"] = ticket_id
    if unanswered:
        clauses.append("x.answered_at IS NULL")
    rows = (await conn.execute(text(f"""
        SELECT x.id, x.ticket_id, x.department, x.requested_at, x.answered_at, x.holder, t.state,
               t.street_code, t.grid_code,
               {'x.reason' if people else 'NULL'} AS reason, {'x.requested_by' if people else 'NULL'} AS requested_by,
               {'x.answer' if people else 'NULL'} AS answer, {'x.answered_by' if people else 'NULL'} AS answered_by
        FROM ticket_escalation x JOIN ticket t ON t.id = x.ticket_id
        WHERE {' AND '.join(clauses)} ORDER BY x.requested_at DESC, x.id DESC LIMIT :limit"""),
        {**params, "limit": limit})).mappings()
    return [dict(row) for row in rows]


async def overdue(conn: AsyncConnection, principal: Principal, street: str | None = None,
                  community: str | None = None, grids: list[str] | None = None,
                  categories: list[str] | None = None, limit: int = 100, offset: int = 0) -> dict:
    """The open tickets past their deadline in the caller's scope, most overdue first."""
    if principal.role == "public":
        raise Forbidden("超期工单仅供登录用户查看")
    if not 1 <= limit <= OVERDUE_MAX_LIMIT:
        raise InvalidInput(f"条数（limit）须在 1 到 {OVERDUE_MAX_LIMIT} 之间")
    if offset < 0:
        raise InvalidInput("偏移量（offset）不能为负数")
    selection = TicketFilter(overdue=True, street=street, community=community, grids=grids or [],
                             categories=categories or [])
    where, params, _ = where_sql(principal, selection)
    view = visibility(principal)
    holder = ("t.assignee_kind, t.assignee_code, t.department, t.assignee_user_id" if view.handling else
              "NULL AS assignee_kind, NULL AS assignee_code, NULL AS department, NULL AS assignee_user_id")
    rows = (await conn.execute(text(f"""
        SELECT t.id, t.state, t.category_code, cat.name_zh AS category_zh, t.reported_at, t.due_at,
               round((extract(epoch FROM now() - t.due_at) / 3600.0)::numeric, 1)::float8 AS overdue_hours,
               t.street_code, t.community_code, t.grid_code, g.name AS grid_name, {address_sql(view, 'c')} AS address,
               {holder}, t.supervision_count, t.supervised_at,
               (SELECT count(*) FROM ticket_escalation x WHERE x.ticket_id = t.id AND x.answered_at IS NULL)
                   AS open_escalations,
               count(*) OVER () AS total
        FROM ticket t JOIN complaint c ON c.id = t.complaint_id JOIN category cat ON cat.code = t.category_code
        LEFT JOIN grid g ON g.code = t.grid_code AND g.valid_to IS NULL
        WHERE {where} ORDER BY t.due_at, t.id LIMIT :limit OFFSET :offset"""),
        {**params, "limit": limit, "offset": offset})).mappings().all()
    items = [dict(row) for row in rows]
    total = items[0]["total"] if items else None
    for item in items:
        item.pop("total")
        item["state_zh"] = STATE_ZH.get(item["state"], item["state"])
    if total is None:
        total = (await conn.execute(text(
            f"SELECT count(*) FROM ticket t WHERE {where}"), params)).scalar_one() if offset else 0
    return {"total": total, "items": items,
            "next_offset": offset + limit if offset + len(items) < total else None}


def stats_query(principal: Principal, level: str, period_from: datetime, period_to: datetime) -> tuple[str, dict]:
    """Per unit of `level`: tickets first supervised in [from, to), reminders and escalations in it, how many
    moved (changed state) after the first supervision, within 24 hours, and the median hours until they did;
    escalations answered. The one statement of the figures (the API and the street report)."""
    if principal.role == "public":
        raise Forbidden("督办统计仅供登录用户查看")
    if level not in LEVELS:
        raise InvalidInput(f"层级（level）须为 {'、'.join(LEVELS)} 之一")
    if period_to <= period_from:
        raise InvalidInput("期间的结束须晚于开始")
    column, name_sql = LEVELS[level]
    scope, params = ticket_scope_sql(principal, "t")
    sql = f"""
        WITH sup AS (
            SELECT e.ticket_id, min(e.at) AS first_at,
                   count(*) FILTER (WHERE e.action = 'supervise') AS reminders,
                   count(*) FILTER (WHERE e.action = 'escalate') AS escalations
            FROM ticket_event e
            WHERE e.action IN ('supervise', 'escalate') AND e.at >= :from_ AND e.at < :to_
            GROUP BY 1),
        moved AS (
            SELECT s.*, (SELECT min(m.at) FROM ticket_event m
                         WHERE m.ticket_id = s.ticket_id AND m.at > s.first_at AND m.to_state IS NOT NULL
                           AND m.from_state IS DISTINCT FROM m.to_state) AS moved_at,
                        (SELECT count(*) FILTER (WHERE x.answered_at IS NOT NULL) FROM ticket_escalation x
                         WHERE x.ticket_id = s.ticket_id AND x.requested_at >= :from_
                           AND x.requested_at < :to_) AS answered
            FROM sup s)
        SELECT r.*, ({name_sql}) AS name FROM (
            SELECT {column} AS unit, count(*) AS supervised_tickets, sum(m.reminders)::int AS reminders,
                   sum(m.escalations)::int AS escalations, sum(m.answered)::int AS escalations_answered,
                   count(m.moved_at) AS moved,
                   count(*) FILTER (WHERE m.moved_at <= m.first_at + make_interval(hours => {MOVED_WITHIN_HOURS}))
                       AS moved_within_24h,
                   round((percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY extract(epoch FROM m.moved_at - m.first_at) / 3600.0))::numeric, 2)::float8
                       AS median_hours_to_move,
                   count(*) FILTER (WHERE {overdue_sql("t")}) AS still_overdue
            FROM moved m JOIN ticket t ON t.id = m.ticket_id
            WHERE {scope} AND {column} IS NOT NULL
            GROUP BY 1) r
        ORDER BY r.supervised_tickets DESC, r.unit"""
    return sql, {**params, "from_": period_from, "to_": period_to}


def _stats_rows(rows) -> list[dict]:
    out = []
    for row in rows:
        item = dict(row)
        item["moved_share"] = round(item["moved"] / item["supervised_tickets"], 4) if item["supervised_tickets"] \
            else None
        out.append(item)
    return out


async def stats(conn: AsyncConnection, principal: Principal, level: str, period_from: datetime,
                period_to: datetime) -> list[dict]:
    """The supervision figures per unit of `level` for [period_from, period_to) (see stats_query); Forbidden for the
    public, InvalidInput for an unknown level."""
    sql, params = stats_query(principal, level, period_from, period_to)
    return _stats_rows((await conn.execute(text(sql), params)).mappings())


def stats_sync(conn, principal: Principal, level: str, period_from: datetime, period_to: datetime) -> list[dict]:
    """`stats` on a synchronous connection (the street report)."""
    sql, params = stats_query(principal, level, period_from, period_to)
    return _stats_rows(conn.execute(text(sql), params).mappings())


def supervision_sql(alias: str = "t") -> list[tuple[str, str]]:
    """(name, SQL) of the supervision fields a ticket shows to those who see how it is handled."""
    return [("supervision_count", f"{alias}.supervision_count"), ("supervised_at", f"{alias}.supervised_at"),
            ("assignee_user_id", f"{alias}.assignee_user_id")]
