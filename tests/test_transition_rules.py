"""The closed loop's guards around a transition, called directly against the real PostGIS, with the answers
written out here: an unknown action, a role that may not act, a company acting on another's ticket, a stale
version (the offline queue's conflict), the states an action is allowed from, a note left out.
"""

from __future__ import annotations

import pytest
from test_comment_photo_rules import _act, _principal, ticket, url  # noqa: F401  (shared fixtures and helper)

from gis.access.auth import Principal
from gis.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.tickets import workflow

ADMIN = Principal(role="admin", username="rules-admin", user_id=None)
ACTIONS = "register, reject, dispatch, accept, return, handle, verify, send_back, reopen, merge"


def _transition(url, ticket, action, state, principal=ADMIN, **options):
    return _act(url, ticket, lambda conn: workflow.transition(conn, principal, ticket, action, **options), state)


def test_an_unknown_action_names_the_actions(url, ticket):
    with pytest.raises(InvalidInput) as refused:
        _transition(url, ticket, "close", "handled")
    assert str(refused.value) == f"unknown action 'close'; actions are {ACTIONS}"


def test_a_role_that_may_not_act_is_told_so(url, ticket):
    with pytest.raises(Forbidden) as refused:
        _transition(url, ticket, "verify", "handled", _principal("property_company"))
    assert str(refused.value) == "a property_company user may not verify tickets"


@pytest.mark.parametrize(("action", "state"), [("accept", "dispatched"), ("return", "dispatched"),
                                               ("handle", "in_progress")])
def test_a_company_handles_only_its_own_tickets(url, ticket, action, state):
    company = Principal(role="property_company", username="rules-company", company_id=41,
                        scope=_principal("property_company").scope)

    async def act(conn):
        await conn.exec_driver_sql("UPDATE ticket SET assignee_kind = 'property_company', assignee_code = '42' "
                                   f"WHERE id = {ticket}")
        return await workflow.transition(conn, company, ticket, action, note="不归我司")

    with pytest.raises(Forbidden) as refused:
        _act(url, ticket, act, state)
    assert str(refused.value) == "this ticket is not assigned to your company"


def test_a_stale_version_is_a_conflict_and_the_current_one_is_not(url, ticket):
    async def current_version(conn):
        return (await conn.exec_driver_sql(f"SELECT version FROM ticket WHERE id = {ticket}")).scalar()

    version = _act(url, ticket, current_version, "handled")[0]
    answer, event, after = _transition(url, ticket, "verify", "handled", version=version)
    assert answer == {"id": ticket, "state": "closed", "version": version + 1} and after == ("closed", 1)
    with pytest.raises(Conflict) as refused:
        _transition(url, ticket, "verify", "handled", version=version - 1)
    assert str(refused.value) == (f"ticket {ticket} changed (version {version}, you had {version - 1}); "
                                  "reload it")


def test_a_refusal_says_which_states_the_action_is_allowed_from(url, ticket):
    with pytest.raises(Conflict) as refused:
        _transition(url, ticket, "reject", "dispatched", note="重复")
    assert str(refused.value) == ("cannot reject a ticket that is dispatched; "
                                  "reject is allowed from reported, registered")


def test_a_transition_without_a_note_keeps_none(url, ticket):
    answer, event, _ = _transition(url, ticket, "register", "reported")
    assert answer["state"] == "registered" and event[:4] == ("register", "reported", "registered", None)


def test_a_ticket_that_does_not_exist_is_named_in_the_answer(url, ticket):
    missing = ticket + 1_000_000
    with pytest.raises(NotFound) as refused:
        _act(url, ticket, lambda conn: workflow.transition(conn, ADMIN, missing, "verify"), "handled")
    assert str(refused.value) == f"no ticket {missing}"
