"""Repeat complaints (重复投诉): whether a closing held.

A closing (核查结案) does not hold when a complaint of the same category at the same place is reported after it,
within the repeat window (`GRIDGOV_RATES_REPEAT_WINDOW_DAYS`, 30 days by default): the problem came back, so the
ticket was handled (办结) but not resolved (解决). The rule, written once here and used by the rates, their
drill-down and the fake-closure benchmark:

- the place is the closed ticket's compound; a ticket outside any compound is placed by its complaint's building
  (one outside both has no place to repeat at);
- the follow-up is reported after the closing time and at most the window after it, is another ticket, and was not
  rejected as invalid (a merged duplicate counts: a resident called again);
- only the current closing is judged: a reopened ticket has no closing until it is closed again.

Computed in SQL where the tickets are: one range probe of `ix_ticket_repeat` per closing.
"""

from __future__ import annotations

from gis.errors import InvalidInput
from gis.settings import rates_settings

WINDOW_PARAM = "repeat_days"
"""The bind parameter holding the window in days, in every statement that uses the rule."""
MAX_WINDOW_DAYS = 366


def window_days(value: int | None = None) -> int:
    """The repeat window in days: `value`, or the setting when None; InvalidInput outside 1 to 366."""
    days = rates_settings().repeat_window_days if value is None else value
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_WINDOW_DAYS:
        raise InvalidInput(f"重复投诉的时间窗口须为 1 到 {MAX_WINDOW_DAYS} 天")
    return days


def _follows(alias: str) -> str:
    """SQL over a follow-up ticket `r`: same category, reported within the window after `alias`'s closing."""
    return (f"r.category_code = {alias}.category_code AND r.id <> {alias}.id AND r.state <> 'rejected' "
            f"AND r.reported_at > {alias}.closed_at "
            f"AND r.reported_at <= {alias}.closed_at + make_interval(days => :{WINDOW_PARAM})")


def _by_compound(alias: str) -> str:
    return (f"SELECT r.id, r.reported_at FROM ticket r "
            f"WHERE r.compound_code = {alias}.compound_code AND {_follows(alias)}")


def _by_building(alias: str) -> str:
    # A ticket's reported_at is its complaint's (copied at intake, never changed), and a follow-up's complaint was
    # reported within the window: naming both lets a complaint table partitioned by month (gis/db/partitions.py)
    # read only the months concerned; LIMIT 1 (the id is unique) tells its planner the closed ticket's complaint is
    # one row, not one per month, so the search starts from it as on a single table.
    return (f"SELECT r.id, r.reported_at FROM (SELECT tc.micro_grid_code, tc.building_code FROM complaint tc "
            f"WHERE tc.id = {alias}.complaint_id AND tc.reported_at = {alias}.reported_at "
            f"AND tc.building_code IS NOT NULL LIMIT 1) tc "
            f"JOIN complaint rc ON rc.micro_grid_code = tc.micro_grid_code AND rc.building_code = tc.building_code "
            f"AND rc.reported_at > {alias}.closed_at "
            f"AND rc.reported_at <= {alias}.closed_at + make_interval(days => :{WINDOW_PARAM}) "
            f"JOIN ticket r ON r.complaint_id = rc.id AND r.reported_at = rc.reported_at "
            f"WHERE {alias}.compound_code IS NULL AND {_follows(alias)}")


def not_holding_sql(alias: str = "t") -> str:
    """SQL boolean: the ticket `alias` is closed and its closing did not hold (a repeat complaint followed it)."""
    return (f"({alias}.state = 'closed' AND (EXISTS ({_by_compound(alias)}) "
            f"OR ({alias}.compound_code IS NULL AND EXISTS ({_by_building(alias)}))))")


def repeat_ids_sql(alias: str = "t") -> str:
    """SQL array of the ids of the repeat complaints' tickets that undo `alias`'s closing, oldest first (empty when
    it held or the ticket is not closed)."""
    return (f"(CASE WHEN {alias}.state = 'closed' THEN ARRAY(SELECT f.id FROM ({_by_compound(alias)} "
            f"UNION {_by_building(alias)}) f ORDER BY f.reported_at, f.id) ELSE '{{}}'::bigint[] END)")
