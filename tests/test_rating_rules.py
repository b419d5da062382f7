"""The resident's rating (考核评价) of a closed ticket, rule by rule, called directly against the real PostGIS.

The rules are written out here, not read from the code: a score is 1 to 5; the public rates with the phone the
complaint was made with and gets one answer for every refusal; staff record ratings only in the verifying roles;
only a closed ticket is rated, once per closing; a rating moves the ticket's version by one and is kept in its
history with the score.
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import _clone
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from test_tickets_support import COMPOUNDS, GRIDS, add_complaints, build_city

from gis.access.auth import Principal
from gis.db.engine import with_driver
from gis.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.tickets import workflow

ADMIN = Principal(role="admin", username="rating-admin", user_id=None)
PUBLIC = Principal(role="public", username="public", user_id=None)
PHONE = "13912345678"
REFUSED_FOR_THE_PUBLIC = "没有可由该号码评价的工单：工单号与来电号码不符，或工单尚未办结，或已经评价过"
VERIFYING = ("admin", "street", "community", "grid_worker")
NOT_VERIFYING = ("property_company", "planner")


@pytest.fixture(scope="module")
def url(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    build_city(url)
    return url


def _principal(role: str) -> Principal:
    scope = {"street": (GRIDS[0][:9],), "community": (GRIDS[0][:12],), "grid_worker": (GRIDS[0],),
             "property_company": tuple(c for c, g in COMPOUNDS.items() if g == GRIDS[0])}.get(role, ())
    return Principal(role=role, username=f"rating-{role}", scope=scope)


def _rate(url: str, ticket: int, state: str, principal: Principal, score: int = 4, phone: str | None = None,
          rated: bool = False, rated_before_closing: bool = False, rated_at_sql: str | None = None):
    """Put the ticket in `state` (rated already when `rated`, at a time before or after its closing), rate it,
    and return the answer, the ticket's stored rating facts and its last history row; all rolled back."""

    async def attempt():
        engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("UPDATE ticket SET state = :state, closed_at = now() - interval '1 hour', "
                                        "rating = NULL, rated_at = NULL WHERE id = :id"),
                                   {"state": state, "id": ticket})
                if rated:
                    offset = "2 hours" if rated_before_closing else "10 minutes"
                    rated_at = rated_at_sql or f"now() - interval '{offset}'"
                    await conn.execute(text(f"UPDATE ticket SET rating = 2, rated_at = {rated_at} "
                                            "WHERE id = :id"), {"id": ticket})
                version = text("SELECT version FROM ticket WHERE id = :id")
                before = (await conn.execute(version, {"id": ticket})).scalar()
                answer = await workflow.rate(conn, principal, ticket, score, "很满意", reporter_phone=phone)
                stored = (await conn.execute(text(
                    "SELECT rating, rating_comment, rated_at IS NOT NULL, version - :before FROM ticket "
                    "WHERE id = :id"),
                    {"id": ticket, "before": before})).one()
                event = (await conn.execute(text(
                    "SELECT action, from_state, to_state, note, data->>'score' FROM ticket_event WHERE ticket_id = :id "
                    "ORDER BY id DESC LIMIT 1"), {"id": ticket})).one()
                await conn.rollback()
                return answer, tuple(stored), tuple(event), before
        finally:
            await engine.dispose()

    return asyncio.run(attempt())


@pytest.fixture(scope="module")
def ticket(url) -> int:
    return add_complaints(url, [{"grid": GRIDS[0], "reporter_phone": PHONE}])[0]


@pytest.mark.parametrize("score", [1, 5])
def test_the_scale_ends_are_accepted(url, ticket, score):
    answer, stored, event, before = _rate(url, ticket, "closed", ADMIN, score=score)
    assert answer == {"id": ticket, "rating": score, "version": before + 1}
    assert stored == (score, "很满意", True, 1)
    assert event == ("rate", "closed", "closed", "很满意", str(score))


@pytest.mark.parametrize("score", [0, 6, -1])
def test_a_score_off_the_scale_is_refused(url, ticket, score):
    with pytest.raises(InvalidInput) as refused:
        _rate(url, ticket, "closed", ADMIN, score=score)
    assert str(refused.value) == "a rating is 1 (very dissatisfied) to 5 (very satisfied)"


def test_the_public_rates_with_the_complaints_phone(url, ticket):
    answer, stored, event, _ = _rate(url, ticket, "closed", PUBLIC, score=5, phone=f"  {PHONE} ")
    assert answer["rating"] == 5 and stored == (5, "很满意", True, 1)
    assert event[0] == "rate" and event[4] == "5"


def test_the_public_without_a_phone_is_asked_for_it(url, ticket):
    for phone in (None, ""):
        with pytest.raises(InvalidInput) as refused:
            _rate(url, ticket, "closed", PUBLIC, phone=phone)
        assert str(refused.value) == "give the phone number the complaint was made with"


@pytest.mark.parametrize(("state", "phone", "rated"), [
    ("closed", "13900000000", False),  # another phone
    ("handled", PHONE, False),  # not closed
    ("closed", PHONE, True),  # rated already
])
def test_the_public_gets_one_answer_for_every_refusal(url, ticket, state, phone, rated):
    with pytest.raises(NotFound) as refused:
        _rate(url, ticket, state, PUBLIC, phone=phone, rated=rated)
    assert str(refused.value) == REFUSED_FOR_THE_PUBLIC


def test_the_public_cannot_rate_a_ticket_that_does_not_exist(url):
    with pytest.raises(NotFound) as refused:
        _rate(url, 987654321, "closed", PUBLIC, phone=PHONE)
    assert str(refused.value) == REFUSED_FOR_THE_PUBLIC


@pytest.mark.parametrize("role", VERIFYING)
def test_the_verifying_roles_record_ratings(url, ticket, role):
    answer, stored, _, _ = _rate(url, ticket, "closed", _principal(role), score=3)
    assert answer["rating"] == 3 and stored[0] == 3


@pytest.mark.parametrize("role", NOT_VERIFYING)
def test_other_roles_may_not_record_ratings(url, ticket, role):
    """Even on a ticket they may read (the planner reads all; the company its own compound's)."""
    principal = _principal(role)
    with pytest.raises(Forbidden) as refused:
        _rate(url, ticket, "closed", principal)
    assert str(refused.value) == f"a {role} user may not record ratings"



@pytest.mark.parametrize("state", ["reported", "registered", "dispatched", "in_progress", "handled", "rejected"])
def test_only_a_closed_ticket_is_rated(url, ticket, state):
    with pytest.raises(Conflict) as refused:
        _rate(url, ticket, state, ADMIN)
    assert str(refused.value) == f"only a closed ticket can be rated; this one is {state}"


def test_a_closing_is_rated_once(url, ticket):
    with pytest.raises(Conflict) as refused:
        _rate(url, ticket, "closed", ADMIN, rated=True)
    assert str(refused.value) == "this ticket has been rated already"


def test_a_new_closing_may_be_rated_anew(url, ticket):
    """Rated before the ticket was reopened and closed again: the new closing takes a new rating."""
    answer, stored, _, _ = _rate(url, ticket, "closed", ADMIN, score=5, rated=True, rated_before_closing=True)
    assert answer["rating"] == 5 and stored[0] == 5


@pytest.mark.parametrize("rated_at", ["NULL", "closed_at"])
def test_a_rating_without_its_time_or_at_the_closing_counts_for_that_closing(url, ticket, rated_at):
    """A rating stored without its time (older data), or given at the very moment of the closing, is this
    closing's rating."""
    with pytest.raises(Conflict) as refused:
        _rate(url, ticket, "closed", ADMIN, rated=True, rated_at_sql=rated_at)
    assert str(refused.value) == "this ticket has been rated already"
