"""The routing of tickets in SQL: which rule, which assignee, who is informed, the deadline.

The statements live in `.sql` files beside this module, read once at import; `{name}` in them is filled here with
`str.format` (literal braces are doubled). Re-routing a complaint placed by hand runs `REROUTE_SQL`; the intake
trigger and the deadline function in the database run the same plan, as `TICKET_FUNCTIONS_SQL` defines them.
Migrations hold their own pasted copy of what they installed, so a change here is a new migration that installs
the new `TICKET_FUNCTIONS_SQL` (tests/test_migrations_frozen.py fails until there is one).
"""

from __future__ import annotations

from importlib.resources import files

LOCAL_ZONE = "Asia/Shanghai"
WORKDAY_MINUTES = 480


def _sql(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8").rstrip("\n")


_DUE_AT = _sql("ticket_due_at.sql")
_PLAN = _sql("routing_plan.sql")
_INTAKE = _sql("routing_intake.sql")
_REROUTE = _sql("routing_reroute.sql")
_FUNCTIONS = _sql("ticket_functions.sql")


def due_at_sql(start: str, policy: str = "p") -> str:
    """The deadline of a ticket reported at `start` under the deadline policy row `policy`: calendar time is
    plain addition; working time is the working minute reached by counting the policy's minutes from `start` on
    the working calendar (Beijing time)."""
    return _DUE_AT.format(start=start, p=policy, zone=LOCAL_ZONE, day=WORKDAY_MINUTES)


def plan_sql(source: str, where: str = "") -> str:
    """The `WITH ... planned AS (...)` chain for the complaints of `source` (a table or a parenthesised query,
    aliased `n`, filtered by the clause `where`), set-based: place kind, the best routing rule per category x
    place kind, the parties always informed (grid workers, grid party branch), the deadline."""
    return "\n" + _PLAN.format(source=source, where=where, due_at=due_at_sql("a.reported_at"))


def intake_sql(source: str) -> str:
    """Tickets for the new complaints of `source`, each dispatched by its rule or left reported, with one
    history event each."""
    return plan_sql(source) + ", " + _INTAKE + "\n"


REROUTE_SQL = plan_sql(
    "(SELECT c.* FROM complaint c JOIN ticket t ON t.complaint_id = c.id AND t.state = 'reported' "
    "WHERE c.id = ANY(CAST(:ids AS bigint[])))") + ", " + _REROUTE + "\n"
"""Route again the still unregistered tickets of complaints (`:ids`) whose place was set by hand: a complaint that
waited in the review queue had no place to route by. The deadline stays the one counted from the report."""

TICKET_FUNCTIONS_SQL = _FUNCTIONS.format(due=due_at_sql("start"), intake=intake_sql("new_complaints")) + "\n"
"""`ticket_due_at(start, class)` and the statement trigger function `ticket_intake()` that opens a ticket for
every new complaint, as the live routing defines them."""
