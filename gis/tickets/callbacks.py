"""Callbacks (回访) after a closing, and how a resident's answers count in the rates.

A callback is staff calling the resident back once a ticket is closed: is the problem solved, and is the resident
satisfied? It is an event of the ticket's append-only history (action `callback`), not a transition of the closed
loop: the state stays `closed` and the state machine (gis/tickets/workflow.py) is unchanged, as for a rating. The
ticket keeps the latest answer in `callback_at`, `callback_solved` and `callback_satisfied`, which the rates read.

"Not solved" always flags the closing: from then on the closing counts as handled (办结) but not resolved (解决).
Whether the work is done again is a dispatcher's decision — the resident may mean something outside the ticket,
and the caller may be a grid worker who may not reopen — so the callback reopens the ticket only when asked
(`reopen`), through the workflow's own reopen transition in the same transaction (its roles and rules apply once).

One callback per closing (a second answers 409); a reopened and closed-again ticket may be called back anew.

Satisfaction (满意率) counts each resident's answer once: a ticket is one complaint, one resident, and its answer is
the latest of its rating (1-5, 4 or 5 satisfied) and its callback's "satisfied" — whichever was given last wins
(a callback given in the same instant as a rating wins). A callback that did not ask about satisfaction leaves the
rating as the answer.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal
from gis.errors import Conflict, Forbidden, InvalidInput
from gis.tickets.events import record_event
from gis.tickets.roles import VERIFIERS
from gis.tickets.workflow import locked_ticket, transition

CALLERS = VERIFIERS
"""Who records callbacks: those who verify and close, and record ratings from a call-back."""
MAX_NOTE = 4000
REOPEN_NOTE = "回访：问题未解决"


def refuted_sql(alias: str = "t") -> str:
    """SQL boolean: the resident said at a callback after the current closing that the problem is not solved."""
    return f"coalesce({alias}.callback_solved = false AND {alias}.callback_at >= {alias}.closed_at, false)"


def answered_sql(alias: str = "t") -> str:
    """SQL boolean: the resident has answered how satisfied they are (a rating, or a callback that asked)."""
    return f"({alias}.rating IS NOT NULL OR {alias}.callback_satisfied IS NOT NULL)"


def satisfied_sql(alias: str = "t") -> str:
    """SQL boolean: the resident's latest answer is satisfied (a callback's yes, or a rating of 4 or 5)."""
    return (f"(CASE WHEN {alias}.callback_satisfied IS NOT NULL AND ({alias}.rating IS NULL "
            f"OR {alias}.rated_at IS NULL OR {alias}.callback_at >= {alias}.rated_at) "
            f"THEN {alias}.callback_satisfied ELSE {alias}.rating >= 4 END)")


def _check(solved, satisfied, note: str | None, reopen) -> str | None:
    if not isinstance(solved, bool):
        raise InvalidInput("请说明问题是否已解决（solved：true 或 false）")
    if satisfied is not None and not isinstance(satisfied, bool):
        raise InvalidInput("满意与否（satisfied）须为 true、false 或留空")
    if not isinstance(reopen, bool):
        raise InvalidInput("是否重新打开（reopen）须为 true 或 false")
    if reopen and solved:
        raise InvalidInput("只有回访结果为未解决时才能重新打开工单")
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(f"回访说明最多 {MAX_NOTE} 字")
    return note


async def record_callback(conn: AsyncConnection, principal: Principal, ticket_id: int, solved: bool,
                          satisfied: bool | None = None, note: str | None = None, version: int | None = None,
                          reopen: bool = False) -> dict:
    """Record a callback (回访) on a closed ticket in the caller's transaction: whether the problem is solved and,
    when asked, whether the resident is satisfied; reopen the ticket as well when `reopen` (only for not solved).
    InvalidInput for a missing or bad answer, NotFound outside the scope, Forbidden for a role that may not call
    back (or reopen), Conflict for a stale version, a ticket not closed, or a closing called back already."""
    note = _check(solved, satisfied, note, reopen)
    ticket = await locked_ticket(conn, principal, ticket_id)
    if principal.role not in CALLERS:
        raise Forbidden("该角色不能登记回访")
    if version is not None and version != ticket["version"]:
        raise Conflict(f"工单 {ticket_id} 已被更新（当前版本 {ticket['version']}，您看到的是 {version}），请刷新")
    if ticket["state"] != "closed" or ticket["closed_at"] is None:
        raise Conflict("只有已结案的工单可以回访")
    if ticket["callback_at"] is not None and ticket["callback_at"] >= ticket["closed_at"]:
        raise Conflict("本次结案已经回访过")
    await conn.execute(
        text("""UPDATE ticket SET callback_at = now(), callback_solved = :solved, callback_satisfied = :satisfied,
                version = version + 1, updated_at = now() WHERE id = :id"""),
        {"solved": solved, "satisfied": satisfied, "id": ticket_id},
    )
    event_id = await record_event(conn, principal, ticket_id, "callback", "closed", "closed", note,
                                  {"solved": solved, "satisfied": satisfied, "reopen": reopen})
    answer = {"id": ticket_id, "event_id": event_id, "solved": solved, "satisfied": satisfied, "state": "closed",
              "version": ticket["version"] + 1, "reopened": False}
    if reopen:
        moved = await transition(conn, principal, ticket_id, "reopen", note or REOPEN_NOTE, answer["version"])
        answer.update(state=moved["state"], version=moved["version"], reopened=True)
    return answer
