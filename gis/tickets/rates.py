"""The rates streets are judged on — response rate 响应率, handled rate 办结率, resolution rate 解决率,
satisfaction rate 满意率 and the on-time rate 按时办结率 — per grid, community, street, property company or
department, for any period, in one SQL query; ranked, by month when asked, and with a drill-down to the tickets
behind any figure.

Definitions (tickets reported in [from, to), neither rejected as invalid nor merged as duplicates, within the
caller's scope, whose unit at the level is known). Each rate is a numerator over a denominator, both written once
in `RATES` and used by the figures and by the drill-down alike, so the tickets listed behind a figure are exactly
the ones it counts:
- response rate: tickets first responded to by their response deadline / tickets dispatched;
- handled rate (办结率): tickets verified and closed / tickets counted;
- resolution rate (解决率): closings that held / tickets counted — closed, no repeat complaint of the same
  category at the same compound or building within the repeat window after the closing (gis/tickets/repeats.py),
  and no callback after the closing saying the problem is not solved (gis/tickets/callbacks.py). Handled and
  resolved are kept apart: a closing the problem outlived is handled, not resolved (`repeated` and
  `callback_unsolved` count the two reasons);
- on-time rate: closed by the deadline / closed;
- satisfaction rate: residents satisfied / residents who answered, one answer per ticket: the latest of its
  rating (4 or 5 is satisfied) and its callback's "satisfied" (gis/tickets/callbacks.py). A ticket rated and
  then reopened keeps that answer (reopening does not undo what the resident said), and a new rating or callback
  after it is closed again replaces it. `rated` counts the tickets with an answer.

Ranking: on each rate, the units whose denominator of that rate reaches the minimum sample
(`GRIDGOV_RATES_MIN_SAMPLE`, 10 tickets by default, or the request's `min_sample`) are ranked by the rate,
highest first, ties sharing a rank (1, 2, 2, 4); the others are listed with a rank of None and the rate named
in `unranked`. A rate on a handful of tickets says little, and ranking it would reward the smallest units.

Months (`by="month"`): the same figures per unit and calendar month of Beijing time, each row carrying the
`from`/`to` of its month cut to the period, so the drill-down of a monthly figure is asked with those bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal
from gis.access.visibility import address_sql, visibility
from gis.errors import InvalidInput
from gis.settings import rates_settings
from gis.tickets import repeats
from gis.tickets.callbacks import answered_sql, refuted_sql, satisfied_sql
from gis.tickets.models import overdue_sql
from gis.tickets.scope import ticket_scope_sql

LEVELS = {
    "grid": ("t.grid_code", "SELECT name FROM grid WHERE code = r.unit AND valid_to IS NULL"),
    "community": ("t.community_code", "SELECT name FROM community WHERE code = r.unit AND valid_to IS NULL"),
    "street": ("t.street_code", "SELECT name FROM street WHERE code = r.unit AND valid_to IS NULL"),
    "property_company": ("t.property_company_id::text",
                         "SELECT name FROM property_company WHERE id::text = r.unit"),
    # street departments and utilities the tickets were dispatched to, by the department's name
    "department": ("t.department", "SELECT r.unit"),
}
LEVEL_NAMES_ZH = {"grid": "网格", "community": "社区", "street": "街道", "property_company": "物业企业",
                  "department": "部门"}


def counts_sql(alias: str = "t") -> str:
    """SQL boolean: the ticket `alias` counts in the rates at all (neither rejected as invalid nor merged as a
    duplicate)."""
    return f"{alias}.state NOT IN ('rejected', 'merged')"


def resolved_sql(alias: str = "t", repeated: str | None = None) -> str:
    """SQL boolean: the ticket `alias` is resolved (解决) — closed, its closing held (no repeat complaint within the
    window, gis/tickets/repeats.py) and no callback after the closing said the problem is not solved. The one rule
    of the desk's resolution rate and the red/black list's resolution part. `repeated` names a column that already
    holds the repeat test (`counted_sql`'s `repeated`); None writes the test in place. Either way the statement
    binds the window as `repeats.WINDOW_PARAM` (`repeat_params`)."""
    repeated = repeated or repeats.not_holding_sql(alias)
    return f"({alias}.state = 'closed' AND NOT {repeated} AND NOT {refuted_sql(alias)})"


def repeat_params(repeat_window_days: int | None = None) -> dict[str, int]:
    """The bind parameters `resolved_sql` needs: the repeat window in days (the setting when None)."""
    return {repeats.WINDOW_PARAM: repeats.window_days(repeat_window_days)}


@dataclass(frozen=True)
class Rate:
    name: str
    title_zh: str
    denominator: str
    """SQL predicate over `ticket t`: the ticket counts in the denominator."""
    numerator: str
    """SQL predicate: a ticket of the denominator that counts in the numerator as well."""
    denominator_count: str
    numerator_count: str


RATES: dict[str, Rate] = {
    rate.name: rate
    for rate in (
        Rate("response", "响应率", "t.dispatched_at IS NOT NULL", "t.responded_at <= t.response_due_at",
             "dispatched", "responded_in_time"),
        Rate("handled", "办结率", "TRUE", "t.state = 'closed'", "tickets", "closed"),
        Rate("resolution", "解决率", "TRUE", resolved_sql("t", "t.repeated"), "tickets", "resolved"),
        Rate("on_time", "按时办结率", "t.state = 'closed'", "t.closed_at <= t.due_at", "closed", "closed_in_time"),
        Rate("satisfaction", "满意率", answered_sql("t"), satisfied_sql("t"), "rated", "satisfied"),
    )
}
"""Predicates over the counted tickets `t`, which carry `repeated` (their closing did not hold) besides the
ticket's columns: see `counted_sql`."""
EXTRA_COUNTS = {
    "repeated": "t.repeated",
    "callback_unsolved": f"t.state = 'closed' AND {refuted_sql('t')}",
}
"""Why closings are not resolved: a repeat complaint followed (重复投诉), a callback said not solved (回访未解决)."""
RATE_KEYS = tuple(f"{name}_rate" for name in RATES)
BY = ("unit", "month")
LOCAL_ZONE = "Asia/Shanghai"
DRILL_MAX_LIMIT = 1000


def _ratio(numerator: str, denominator: str) -> str:
    return f"round({numerator}::numeric / nullif({denominator}, 0), 4)"


def _check(principal: Principal, level: str, period_from: datetime, period_to: datetime) -> None:
    if principal.role == "public":
        raise InvalidInput("考核率仅供登录用户查看")
    if level not in LEVELS:
        raise InvalidInput(f"层级（level）须为 {'、'.join(LEVELS)} 之一")
    if period_to <= period_from:
        raise InvalidInput("期间的结束须晚于开始")


def base_sql(principal: Principal, level: str, period_from: datetime, period_to: datetime,
             unit: str | None = None, repeat_window_days: int | None = None) -> tuple[str, dict]:
    """The tickets every rate of `level` counts (the WHERE clause over `ticket t`) and its parameters, the repeat
    window among them."""
    _check(principal, level, period_from, period_to)
    window = repeat_params(repeat_window_days)
    column, _ = LEVELS[level]
    scope, params = ticket_scope_sql(principal, "t")
    where = (f"{scope} AND t.reported_at >= :from_ AND t.reported_at < :to_ "
             f"AND {counts_sql('t')} AND {column} IS NOT NULL")
    if unit is not None:
        where += f" AND {column} = :unit"
        params["unit"] = unit
    return where, {**params, "from_": period_from, "to_": period_to, **window}


def counted_sql(where: str, extra: str = "") -> str:
    """The counted tickets as a derived table `t`: the ticket's columns, `repeated` (its closing did not hold,
    evaluated once per ticket) and any `extra` select items."""
    # OFFSET 0 keeps the subquery from being pulled up, so the repeat test runs once per ticket, not per use.
    return (f"(SELECT t.*, {repeats.not_holding_sql('t')} AS repeated{extra} FROM ticket t WHERE {where} OFFSET 0) t")


def rates_query(principal: Principal, level: str, period_from: datetime, period_to: datetime,
                unit: str | None = None, by: str = "unit", repeat_window_days: int | None = None) -> tuple[str, dict]:
    """The one statement of the figures: counts per unit (and month) and the five rates."""
    if by not in BY:
        raise InvalidInput("by 须为 unit（按单位）或 month（按月）")
    where, params = base_sql(principal, level, period_from, period_to, unit, repeat_window_days)
    column, name_sql = LEVELS[level]
    named: dict[str, str] = {"tickets": "count(*)"}
    for rate in RATES.values():
        # `closed` is the resolution numerator and the on-time denominator: the first definition counts it
        named.setdefault(rate.denominator_count, f"count(*) FILTER (WHERE {rate.denominator})")
        named.setdefault(rate.numerator_count,
                         f"count(*) FILTER (WHERE ({rate.denominator}) AND ({rate.numerator}))")
    for name, predicate in EXTRA_COUNTS.items():
        named[name] = f"count(*) FILTER (WHERE {predicate})"
    named["overdue_open"] = f"count(*) FILTER (WHERE {overdue_sql('t')})"
    counts = [f"{expression} AS {name}" for name, expression in named.items()]
    month = f"date_trunc('month', t.reported_at AT TIME ZONE '{LOCAL_ZONE}')"
    month_select = f", to_char({month}, 'YYYY-MM') AS month" if by == "month" else ""
    group = "1, 2" if by == "month" else "1"
    ratios = ", ".join(f"{_ratio(f'r.{rate.numerator_count}', f'r.{rate.denominator_count}')} AS {rate.name}_rate"
                       for rate in RATES.values())
    sql = f"""
        SELECT r.*, ({name_sql}) AS name, {ratios}
        FROM (
            SELECT {column} AS unit{month_select}, {', '.join(counts)}
            FROM {counted_sql(where)}
            GROUP BY {group}
        ) r ORDER BY {'r.month, ' if by == 'month' else ''}r.unit"""
    return sql, params


def settle(rows: Sequence, min_sample: int | None = None, sort: str | None = None, by: str = "unit",
           period_from: datetime | None = None, period_to: datetime | None = None) -> list[dict]:
    """Rows of the statement as plain values, ranked on each rate among the units with enough sample (per
    month when `by` is month), ordered by `sort` (a rate's name) when given."""
    if min_sample is None:
        min_sample = default_min_sample()
    if min_sample < 0:
        raise InvalidInput("最小样本量（min_sample）不能为负数")
    if sort is not None and sort not in RATES:
        raise InvalidInput(f"排序（sort）须为 {'、'.join(RATES)} 之一")
    items = []
    for row in rows:
        item = dict(row)
        for key in RATE_KEYS:
            item[key] = float(item[key]) if item[key] is not None else None
        item["unranked"] = []
        if by == "month" and period_from is not None and period_to is not None:
            item["from"], item["to"] = month_bounds(item["month"], period_from, period_to)
        items.append(item)
    groups: dict[str | None, list[dict]] = {}
    for item in items:
        groups.setdefault(item.get("month"), []).append(item)
    for group in groups.values():
        for rate in RATES.values():
            key = f"{rate.name}_rate"
            ranked = [i for i in group if i[rate.denominator_count] >= max(min_sample, 1) and i[key] is not None]
            ranked.sort(key=lambda i: -i[key])
            previous, place = None, 0
            for position, i in enumerate(ranked, start=1):
                if i[key] != previous:
                    place, previous = position, i[key]
                i[f"{rate.name}_rank"] = place
            for i in group:
                if f"{rate.name}_rank" not in i:
                    i[f"{rate.name}_rank"] = None
                    i["unranked"].append(rate.name)
            for i in group:
                i[f"{rate.name}_ranked_units"] = len(ranked)
    if sort is not None:
        items.sort(key=lambda i: (i.get("month") or "", i[f"{sort}_rank"] is None, i[f"{sort}_rank"] or 0,
                                  i["unit"]))
    return items


def default_min_sample() -> int:
    """The least sample to be ranked when a request names none (the setting)."""
    return rates_settings().min_sample


def month_bounds(month: str, period_from: datetime, period_to: datetime) -> tuple[datetime, datetime]:
    """The bounds of a `YYYY-MM` month of Beijing time, cut to the period."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(LOCAL_ZONE)
    year, number = int(month[:4]), int(month[5:7])
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return max(start, period_from), min(end, period_to)


async def rates(conn: AsyncConnection, principal: Principal, level: str, period_from: datetime,
                period_to: datetime, unit: str | None = None, by: str = "unit", min_sample: int | None = None,
                sort: str | None = None, repeat_window_days: int | None = None) -> list[dict]:
    """The five rates per unit of `level` (or per month when `by` is month) over [period_from, period_to), ranked
    among the units with at least `min_sample` tickets and ordered by `sort`, repeat complaints judged over
    `repeat_window_days` (the setting when None); InvalidInput for an unknown level, by or sort, or a bad window."""
    sql, params = rates_query(principal, level, period_from, period_to, unit, by, repeat_window_days)
    rows = (await conn.execute(text(sql), params)).mappings().all()
    return settle(rows, min_sample, sort, by, period_from, period_to)


def rates_sync(conn, principal: Principal, level: str, period_from: datetime, period_to: datetime,
               unit: str | None = None, by: str = "unit", min_sample: int | None = None,
               sort: str | None = None, repeat_window_days: int | None = None) -> list[dict]:
    """`rates` on a synchronous connection (the street report)."""
    sql, params = rates_query(principal, level, period_from, period_to, unit, by, repeat_window_days)
    rows = conn.execute(text(sql), params).mappings().all()
    return settle(rows, min_sample, sort, by, period_from, period_to)


def drill_query(principal: Principal, rate: str, level: str, unit: str, period_from: datetime,
                period_to: datetime, limit: int = 100, offset: int = 0,
                repeat_window_days: int | None = None) -> tuple[str, dict]:
    """The tickets of one figure's denominator, each flagged `in_numerator`, with the totals of both; each closed
    ticket lists the repeat complaints that undid its closing (`repeat_ticket_ids`) and its callback's answer."""
    if rate not in RATES:
        raise InvalidInput(f"考核率（rate）须为 {'、'.join(RATES)} 之一")
    if not unit:
        raise InvalidInput("请指定单位（unit）")
    if not 1 <= limit <= DRILL_MAX_LIMIT:
        raise InvalidInput(f"每页条数（limit）须在 1 到 {DRILL_MAX_LIMIT} 之间")
    if offset < 0:
        raise InvalidInput("偏移量（offset）不能为负数")
    spec = RATES[rate]
    where, params = base_sql(principal, level, period_from, period_to, unit, repeat_window_days)
    view = visibility(principal)
    sql = f"""
        SELECT page.*, {repeats.repeat_ids_sql('page')} AS repeat_ticket_ids
        FROM (
            SELECT t.id, t.state, t.category_code, cat.name_zh AS category_zh, t.reported_at, t.dispatched_at,
                   t.response_due_at, t.responded_at, t.closed_at, t.due_at, t.rating,
                   t.callback_at, t.callback_solved, t.callback_satisfied, t.repeated,
                   t.grid_code, t.community_code, t.street_code, t.property_company_id, t.department,
                   t.compound_code, t.complaint_id,
                   {address_sql(view, 'c')} AS address,
                   coalesce({spec.numerator}, false) AS in_numerator,
                   count(*) OVER () AS denominator,
                   count(*) FILTER (WHERE {spec.numerator}) OVER () AS numerator
            FROM {counted_sql(f"{where} AND {spec.denominator}")}
            JOIN complaint c ON c.id = t.complaint_id JOIN category cat ON cat.code = t.category_code
            ORDER BY t.reported_at, t.id LIMIT :limit OFFSET :offset
        ) page ORDER BY page.reported_at, page.id"""
    return sql, {**params, "limit": limit, "offset": offset}


async def rate_tickets(conn: AsyncConnection, principal: Principal, rate: str, level: str, unit: str,
                       period_from: datetime, period_to: datetime, limit: int = 100, offset: int = 0,
                       repeat_window_days: int | None = None) -> dict:
    """The drill-down of one figure: {denominator, numerator, rate, items, next_offset}; `denominator` and
    `numerator` equal the figure's counts, and every item says whether it is in the numerator (and, when closed,
    which repeat complaints undid its closing)."""
    sql, params = drill_query(principal, rate, level, unit, period_from, period_to, limit, offset, repeat_window_days)
    rows = [dict(row) for row in (await conn.execute(text(sql), params)).mappings()]
    if rows:
        denominator, numerator = rows[0]["denominator"], rows[0]["numerator"]
    else:  # a page past the end, or no ticket: count the totals alone
        spec = RATES[rate]
        where, count_params = base_sql(principal, level, period_from, period_to, unit, repeat_window_days)
        denominator, numerator = (await conn.execute(text(
            f"SELECT count(*), count(*) FILTER (WHERE {spec.numerator}) "
            f"FROM {counted_sql(f'{where} AND {spec.denominator}')}"), count_params)).one()
    for row in rows:
        row.pop("denominator"), row.pop("numerator"), row.pop("complaint_id")
        row["repeat_ticket_ids"] = list(row["repeat_ticket_ids"] or [])
    return {
        "rate": rate, "rate_zh": RATES[rate].title_zh, "level": level, "unit": unit,
        "from": period_from, "to": period_to, "denominator": denominator, "numerator": numerator,
        "value": round(numerator / denominator, 4) if denominator else None,
        "repeat_window_days": repeats.window_days(repeat_window_days),
        "items": rows, "next_offset": offset + limit if offset + len(rows) < denominator else None,
    }
