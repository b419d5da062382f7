"""Tables of the ticket workflow, the users and their tokens.

Ticket 工单 · history event 流转记录 · routing rule 派遣规则 · deadline class 处置时限 · working calendar 工作日历 ·
merged duplicate 并单.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    Time,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis.layers.models import DEADLINE_CLASSES, Base, _in

STATES = ("reported", "registered", "rejected", "dispatched", "in_progress", "handled", "closed", "merged")
"""reported 上报 · registered 立案 · rejected 不予立案 · dispatched 已派遣 · in_progress 处置中 ·
handled 已处置 (awaiting verification) · closed 核查结案 · merged 已并单."""

OPEN_STATES = ("reported", "registered", "dispatched", "in_progress", "handled")
"""A ticket is open (未办结) in these states, final in the others: the one definition every path uses."""
FINAL_STATES = tuple(state for state in STATES if state not in OPEN_STATES)
"""rejected, closed, merged: nothing more happens to the ticket unless it is reopened."""


def sql_list(states: tuple[str, ...]) -> str:
    """States as an SQL list, `('reported', 'registered')`, for `state IN ...`."""
    return "(" + ", ".join(f"'{state}'" for state in states) + ")"


OPEN_SQL = sql_list(OPEN_STATES)
"""The open states as an SQL list: `t.state IN {OPEN_SQL}`."""
FINAL_SQL = sql_list(FINAL_STATES)
"""The final states as an SQL list: `t.state IN {FINAL_SQL}`."""


def overdue_sql(alias: str = "t") -> str:
    """SQL for "open and past its due time" (超期) of the ticket `alias`."""
    return f"({alias}.state IN {OPEN_SQL} AND {alias}.due_at < now())"

ASSIGNEE_KINDS = ("property_company", "community", "street_department", "utility", "user")
PLACES = ("any", "compound", "managed_compound", "unmanaged_compound", "open_space")
"""Where a complaint fell: in a compound with a property company, in one without (old estates), or outside
compounds (streets, squares, shared spaces of the community)."""

USER_ROLES = ("admin", "street", "community", "grid_worker", "property_company", "planner")


class AppUser(Base):
    """A person who signs in. `scope_codes` are street, community or grid codes; a property-company user is
    scoped by `property_company_id` to the compounds that company manages."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    display_name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(24), CheckConstraint(_in("role", USER_ROLES), name="role"),
                                      nullable=False)
    scope_codes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    property_company_id: Mapped[int | None] = mapped_column(ForeignKey("property_company.id"))
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuthToken(Base):
    """A bearer token; only its SHA-256 digest is stored, so a leaked table gives no usable token."""

    __tablename__ = "auth_token"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RoutingRule(Base):
    """派遣规则: category (or its responsible kind) × place → responsible party; lowest priority wins."""

    __tablename__ = "routing_rule"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    priority: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    # No foreign key: the shipped rules name catalogue codes that are seeded after the schema exists.
    category_code: Mapped[str | None] = mapped_column(String(16))
    responsible_kind: Mapped[str | None] = mapped_column(String(24))
    place: Mapped[str] = mapped_column(String(24), CheckConstraint(_in("place", PLACES), name="place"),
                                       nullable=False, server_default="any")
    assignee_kind: Mapped[str] = mapped_column(
        String(24), CheckConstraint(_in("assignee_kind", ASSIGNEE_KINDS[:4]), name="assignee_kind"), nullable=False
    )
    department: Mapped[str | None] = mapped_column(Text)
    auto_dispatch: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    __table_args__ = (
        CheckConstraint(
            "assignee_kind NOT IN ('street_department', 'utility') OR department IS NOT NULL",
            name="department_needed",
        ),
    )


class DeadlinePolicy(Base):
    """处置时限 of a deadline class, counted in working or calendar time; `response_hours` is the calendar time
    allowed between dispatch and the first response."""

    __tablename__ = "deadline_policy"
    deadline_class: Mapped[str] = mapped_column(
        String(16), CheckConstraint(_in("deadline_class", DEADLINE_CLASSES), name="deadline_class"),
        primary_key=True,
    )
    amount: Mapped[int] = mapped_column(Integer, CheckConstraint("amount > 0", name="amount"), nullable=False)
    unit: Mapped[str] = mapped_column(String(8), CheckConstraint("unit IN ('hours', 'days')", name="unit"),
                                      nullable=False)
    basis: Mapped[str] = mapped_column(String(16), CheckConstraint("basis IN ('working', 'calendar')", name="basis"),
                                       nullable=False)
    response_hours: Mapped[int] = mapped_column(Integer, nullable=False)


class WorkCalendar(Base):
    """工作日历: one row per local day; `cum_minutes` is the working time from the calendar's start to the day's
    start, so a working-time deadline is one index lookup."""

    __tablename__ = "work_calendar"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean, nullable=False)
    start_time: Mapped[time] = mapped_column(Time, nullable=False, server_default=text("'09:00'"))
    minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    cum_minutes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        Index("ix_work_calendar_cum", "cum_minutes", postgresql_where=text("minutes > 0")),
    )


class Ticket(Base):
    """工单: one per complaint, carrying the complaint's codes so scope and area filters stay on one table."""

    __tablename__ = "ticket"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), unique=True,
                                              nullable=False)
    category_code: Mapped[str] = mapped_column(ForeignKey("category.code"), nullable=False)
    state: Mapped[str] = mapped_column(String(16), CheckConstraint(_in("state", STATES), name="state"),
                                       nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    street_code: Mapped[str | None] = mapped_column(String(32))
    community_code: Mapped[str | None] = mapped_column(String(32))
    grid_code: Mapped[str | None] = mapped_column(String(32))
    compound_code: Mapped[str | None] = mapped_column(String(32))
    property_company_id: Mapped[int | None] = mapped_column(BigInteger)
    deadline_class: Mapped[str] = mapped_column(String(16), nullable=False)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    response_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    assignee_kind: Mapped[str | None] = mapped_column(
        String(24), CheckConstraint(_in("assignee_kind", ASSIGNEE_KINDS), name="assignee_kind")
    )
    assignee_code: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(Text)
    rule_id: Mapped[int | None] = mapped_column(BigInteger)
    informed: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    reject_reason: Mapped[str | None] = mapped_column(Text)
    reopen_count: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    send_back_count: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    rating: Mapped[int | None] = mapped_column(SmallInteger, CheckConstraint("rating BETWEEN 1 AND 5", name="rating"))
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # 回访: the latest callback after a closing (gis/tickets/callbacks.py); the history keeps every one
    callback_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    callback_solved: Mapped[bool | None] = mapped_column(Boolean)
    callback_satisfied: Mapped[bool | None] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    # Few indexes on purpose: each one costs the bulk intake of complaints (see benchmarks/bench_tickets.py).
    __table_args__ = (
        Index("ix_ticket_street_state_due", "street_code", "state", "due_at"),
        Index("ix_ticket_community_state", "community_code", "state"),
        Index("ix_ticket_grid_state", "grid_code", "state"),
        Index("ix_ticket_compound_state", "compound_code", "state"),
        Index("ix_ticket_reported_at", "reported_at"),
        Index("ix_ticket_merged_into", "merged_into_id", postgresql_where=text("merged_into_id IS NOT NULL")),
        # repeat complaints (重复投诉): the same category at the same compound after a closing (gis/tickets/repeats.py)
        Index("ix_ticket_repeat", "compound_code", "category_code", "reported_at"),
        CheckConstraint("(callback_at IS NULL) = (callback_solved IS NULL)", name="callback_complete"),
    )


class TicketEvent(Base):
    """流转记录: the append-only history of a ticket — transitions, assignments, comments, photos, ratings."""

    __tablename__ = "ticket_event"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), nullable=False, index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(String(24), nullable=False)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSONB)


class TicketPhoto(Base):
    """A photo of the scene or of the work done, kept in the database beside its history event."""

    __tablename__ = "ticket_photo"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), nullable=False, index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("ticket_event.id", ondelete="CASCADE"), nullable=False)
    filename: Mapped[str] = mapped_column(Text, nullable=False)
    content_type: Mapped[str] = mapped_column(String(32), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
