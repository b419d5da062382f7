"""The three rates streets are judged on — response rate 响应率, resolution rate 解决率, satisfaction rate
满意率 — per grid, community, street or property company, for any period, in one SQL query.

Definitions (tickets reported in [from, to), neither rejected as invalid nor merged as duplicates):
- response rate: tickets first responded to by their response deadline / tickets dispatched;
- resolution rate: tickets verified and closed / tickets counted; on-time rate: closed by the deadline / closed;
- satisfaction rate: ratings of 4 or 5 (satisfied, fairly satisfied) / rated tickets. A ticket counts with
  its latest rating: one rated and then reopened keeps that rating (reopening does not undo what the
  resident said), and when it is closed and rated again the new rating replaces the old.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.auth import Principal
from gis.errors import InvalidInput
from gis.tickets.filters import OPEN_SQL
from gis.tickets.scope import ticket_scope_sql

LEVELS = {
    "grid": ("t.grid_code", "SELECT name FROM grid WHERE code = r.unit AND valid_to IS NULL"),
    "community": ("t.community_code", "SELECT name FROM community WHERE code = r.unit AND valid_to IS NULL"),
    "street": ("t.street_code", "SELECT name FROM street WHERE code = r.unit AND valid_to IS NULL"),
    "property_company": ("t.property_company_id::text",
                         "SELECT name FROM property_company WHERE id::text = r.unit"),
}


def _ratio(numerator: str, denominator: str) -> str:
    return f"round({numerator}::numeric / nullif({denominator}, 0), 4)"


async def rates(conn: AsyncConnection, principal: Principal, level: str, period_from: datetime,
                period_to: datetime, unit: str | None = None) -> list[dict]:
    if principal.role == "public":
        raise InvalidInput("rates are for signed-in users")
    if level not in LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(LEVELS)}")
    if period_to <= period_from:
        raise InvalidInput("the period's end must come after its start")
    column, name_sql = LEVELS[level]
    scope, params = ticket_scope_sql(principal, "t")
    unit_clause = f"AND {column} = :unit" if unit else ""
    sql = f"""
        SELECT r.*, ({name_sql}) AS name,
               {_ratio('r.responded_in_time', 'r.dispatched')} AS response_rate,
               {_ratio('r.closed', 'r.tickets')} AS resolution_rate,
               {_ratio('r.closed_in_time', 'r.closed')} AS on_time_rate,
               {_ratio('r.satisfied', 'r.rated')} AS satisfaction_rate
        FROM (
            SELECT {column} AS unit,
                   count(*) AS tickets,
                   count(*) FILTER (WHERE t.dispatched_at IS NOT NULL) AS dispatched,
                   count(*) FILTER (WHERE t.responded_at <= t.response_due_at) AS responded_in_time,
                   count(*) FILTER (WHERE t.state = 'closed') AS closed,
                   count(*) FILTER (WHERE t.state = 'closed' AND t.closed_at <= t.due_at) AS closed_in_time,
                   count(*) FILTER (WHERE t.state IN {OPEN_SQL} AND t.due_at < now()) AS overdue_open,
                   count(t.rating) AS rated,
                   count(*) FILTER (WHERE t.rating >= 4) AS satisfied
            FROM ticket t
            WHERE {scope} AND t.reported_at >= :from_ AND t.reported_at < :to_
              AND t.state NOT IN ('rejected', 'merged') AND {column} IS NOT NULL {unit_clause}
            GROUP BY 1
        ) r ORDER BY r.unit"""
    result = await conn.execute(text(sql), {**params, "from_": period_from, "to_": period_to, "unit": unit})
    rows = []
    for row in result.mappings():
        item = dict(row)
        for key in ("response_rate", "resolution_rate", "on_time_rate", "satisfaction_rate"):
            item[key] = float(item[key]) if item[key] is not None else None
        rows.append(item)
    return rows
