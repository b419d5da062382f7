"""Notes and photos on a ticket, rule by rule, called directly against the real PostGIS.

Written out here, not read from the code: a note has 1 to 4,000 characters after trimming; a photo is a non-empty
JPEG, PNG or WebP (told by its own first bytes) of at most 10 MB; the roles that may add either are the
administrator, street, community, grid worker and property company; either is a history event that leaves the
ticket's state where it was.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from conftest import _clone
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from test_tickets_support import COMPOUNDS, GRIDS, add_complaints, build_city

from gis.access.auth import Principal
from gis.db.engine import with_driver
from gis.errors import Conflict, Forbidden, InvalidInput
from gis.tickets import workflow

ADMIN = Principal(role="admin", username="notes-admin", user_id=None)
MAY_ADD = ("admin", "street", "community", "grid_worker", "property_company")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 60
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 60
TEN_MB = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def url(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    build_city(url)
    return url


@pytest.fixture(scope="module")
def ticket(url) -> int:
    return add_complaints(url, [{"grid": GRIDS[0]}])[0]


def _principal(role: str) -> Principal:
    scope = {"street": (GRIDS[0][:9],), "community": (GRIDS[0][:12],), "grid_worker": (GRIDS[0],),
             "property_company": tuple(c for c, g in COMPOUNDS.items() if g == GRIDS[0])}.get(role, ())
    return Principal(role=role, username=f"notes-{role}", scope=scope)


def _act(url: str, ticket: int, act, state: str = "in_progress"):
    """Put the ticket in `state`, run `act(conn)`, and return its answer, the last history row and the ticket's
    state and version afterwards; all rolled back."""

    async def attempt():
        engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("UPDATE ticket SET state = :state WHERE id = :id"),
                                   {"state": state, "id": ticket})
                version = text("SELECT version FROM ticket WHERE id = :id")
                before = (await conn.execute(version, {"id": ticket})).scalar()
                answer = await act(conn)
                event = (await conn.execute(text(
                    "SELECT action, from_state, to_state, note, data, id FROM ticket_event WHERE ticket_id = :id "
                    "ORDER BY id DESC LIMIT 1"), {"id": ticket})).one()
                if isinstance(answer, dict) and "content_type" in answer:  # a photo: the stored row it names
                    answer = {**answer, "stored": tuple((await conn.execute(text(
                        "SELECT ticket_id, event_id, content_type, size_bytes FROM ticket_photo WHERE id = :id"),
                        {"id": answer["id"]})).one())}
                after = (await conn.execute(text("SELECT state, version - :before FROM ticket WHERE id = :id"),
                                            {"id": ticket, "before": before})).one()
                await conn.rollback()
                return answer, tuple(event), tuple(after)
        finally:
            await engine.dispose()

    return asyncio.run(attempt())


def _comment(url, ticket, note, principal=ADMIN, state="in_progress"):
    return _act(url, ticket, lambda conn: workflow.comment(conn, principal, ticket, note), state)


def _photo(url, ticket, content, principal=ADMIN, filename="scene.jpg", note=None):
    return _act(url, ticket, lambda conn: workflow.add_photo(conn, principal, ticket, filename, content, note))


@pytest.mark.parametrize("state", ["reported", "in_progress", "closed"])
def test_a_note_is_history_and_leaves_the_state(url, ticket, state):
    answer, event, after = _comment(url, ticket, "  楼道灯已报修  ", state=state)
    assert isinstance(answer, int)
    assert event[:4] == ("comment", state, state, "楼道灯已报修")
    assert after == (state, 0)


@pytest.mark.parametrize("note", [None, "", "   \n "])
def test_a_note_needs_text(url, ticket, note):
    with pytest.raises(InvalidInput) as refused:
        _comment(url, ticket, note)
    assert str(refused.value) == "a comment needs text"


def test_a_note_has_at_most_4000_characters(url, ticket):
    assert _comment(url, ticket, "漏" * 4000)[1][3] == "漏" * 4000
    with pytest.raises(InvalidInput) as refused:
        _comment(url, ticket, "漏" * 4001)
    assert str(refused.value) == "a comment has at most 4000 characters"


@pytest.mark.parametrize("role", MAY_ADD)
def test_the_roles_that_may_add_notes_and_photos(url, ticket, role):
    principal = _principal(role)
    assert _comment(url, ticket, "到场查看", principal)[1][0] == "comment"
    assert _photo(url, ticket, JPEG, principal)[1][0] == "photo"


def test_a_planner_may_add_neither(url, ticket):
    planner = _principal("planner")
    with pytest.raises(Forbidden) as refused:
        _comment(url, ticket, "到场查看", planner)
    assert str(refused.value) == "a planner user may not comment"
    with pytest.raises(Forbidden) as refused:
        _photo(url, ticket, JPEG, planner)
    assert str(refused.value) == "a planner user may not add photos"


@pytest.mark.parametrize(("content", "kind"), [(JPEG, "image/jpeg"), (PNG, "image/png"), (WEBP, "image/webp")])
def test_a_photo_is_told_by_its_own_bytes(url, ticket, content, kind):
    assert workflow.photo_type(content) == kind
    answer, event, after = _photo(url, ticket, content, filename="现场.bin", note="处置前")
    assert answer["content_type"] == kind and answer["size_bytes"] == len(content) and answer["ticket_id"] == ticket
    assert answer["event_id"] == event[5] and answer["stored"] == (ticket, event[5], kind, len(content))
    assert event[:4] == ("photo", "in_progress", "in_progress", "处置前")
    assert event[4] == {"filename": "现场.bin", "bytes": len(content)}
    assert after == ("in_progress", 0)


@pytest.mark.parametrize("content", [
    b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 60,  # a RIFF file that is not WebP
    b"RIFF\x24\x00\x00\x00\x00WEBP" + b"\x00" * 60,  # WEBP one byte late
    b"GIF89a" + b"\x00" * 60,
    b"\xff\xd8" + b"\x00" * 60,  # JPEG's first two bytes only
])
def test_other_files_are_not_photos(content):
    with pytest.raises(InvalidInput) as refused:
        workflow.photo_type(content)
    assert str(refused.value) == "a photo must be a JPEG, PNG or WebP image"


def test_an_empty_photo_is_refused(url, ticket):
    with pytest.raises(InvalidInput) as refused:
        _photo(url, ticket, b"")
    assert str(refused.value) == "the photo is empty"


def test_a_photo_has_at_most_10_mb(url, ticket):
    at_most = JPEG + b"\x00" * (TEN_MB - len(JPEG))
    assert _photo(url, ticket, at_most)[0]["size_bytes"] == TEN_MB
    with pytest.raises(InvalidInput) as refused:
        _photo(url, ticket, at_most + b"\x00")
    assert str(refused.value) == "a photo has at most 10 MB"


def test_a_photo_without_a_name_is_called_photo_and_long_names_are_cut(url, ticket):
    assert _photo(url, ticket, PNG, filename="")[1][4]["filename"] == "photo"
    assert _photo(url, ticket, PNG, filename="长" * 300)[1][4]["filename"] == "长" * 200


def _merge(url, ticket, merge_into):
    return _act(url, ticket, lambda conn: workflow.transition(conn, ADMIN, ticket, "merge", merge_into=merge_into),
                state="registered")


def test_a_merge_names_the_ticket_that_survives(url, ticket):
    with pytest.raises(InvalidInput) as refused:
        _merge(url, ticket, None)
    assert str(refused.value) == "merge needs merge_into: the id of the ticket that survives"


def test_a_ticket_is_not_merged_into_itself(url, ticket):
    with pytest.raises(InvalidInput) as refused:
        _merge(url, ticket, ticket)
    assert str(refused.value) == "a ticket cannot be merged into itself"


def test_duplicates_merge_only_into_an_open_ticket(url, ticket):
    closed = add_complaints(url, [{"grid": GRIDS[0]}])[0]
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE ticket SET state = 'closed' WHERE id = %s", (closed,))
    with pytest.raises(Conflict) as refused:
        _merge(url, ticket, closed)
    assert str(refused.value) == f"ticket {closed} is closed; duplicates merge only into an open ticket"
    survivor = add_complaints(url, [{"grid": GRIDS[0]}])[0]
    answer, event, after = _merge(url, ticket, survivor)
    assert answer["state"] == "merged" and event[:3] == ("merge", "registered", "merged") and after[0] == "merged"
    assert event[4] == {"merged_into": survivor}  # the history names the ticket that survives


@pytest.mark.parametrize(("assignee_kind", "assignee_code", "allowed"), [
    ("property_company", "{me}", True),
    ("property_company", "{other}", False),  # another company's ticket in the same compound
    ("community", "{me}", False),  # a community's ticket whose code happens to read like the company's id
])
def test_a_company_acts_only_on_tickets_dispatched_to_itself(url, ticket, assignee_kind, assignee_code, allowed):
    company = Principal(role="property_company", username="notes-company", company_id=41,
                        scope=_principal("property_company").scope)
    code = assignee_code.format(me=41, other=42)

    async def accept(conn):
        await conn.execute(text("UPDATE ticket SET assignee_kind = :kind, assignee_code = :code WHERE id = :id"),
                           {"kind": assignee_kind, "code": code, "id": ticket})
        return await workflow.transition(conn, company, ticket, "accept")

    if allowed:
        assert _act(url, ticket, accept, state="dispatched")[0]["state"] == "in_progress"
    else:
        with pytest.raises(Forbidden) as refused:
            _act(url, ticket, accept, state="dispatched")
        assert str(refused.value) == "this ticket is not assigned to your company"
