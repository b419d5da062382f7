"""The closed-loop state machine: which action moves a ticket from which state to which, and who may act.

立案 register · 不予立案 reject · 派遣 dispatch · 响应/接单 accept · 退单 return · 处置完成 handle ·
核查结案 verify · 核查不通过退回 send back · 重新打开 reopen · 并单 merge.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal
from gis.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.tickets.assignment import check_assignee
from gis.tickets.events import record_event
from gis.tickets.models import OPEN_STATES
from gis.tickets.roles import COMMENTERS, DISPATCHERS, HANDLERS, VERIFIERS
from gis.tickets.scope import ticket_scope_sql


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: str
    roles: frozenset[str]
    needs_note: bool = False
    title_zh: str = ""


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("register", ("reported",), "registered", DISPATCHERS, title_zh="立案"),
        Transition("reject", ("reported", "registered"), "rejected", DISPATCHERS, needs_note=True,
                   title_zh="不予立案"),
        Transition("dispatch", ("registered",), "dispatched", DISPATCHERS, title_zh="派遣"),
        Transition("accept", ("dispatched",), "in_progress", HANDLERS, title_zh="响应"),
        Transition("return", ("dispatched",), "registered", HANDLERS, needs_note=True, title_zh="退单"),
        Transition("handle", ("in_progress",), "handled", HANDLERS, title_zh="处置反馈"),
        Transition("verify", ("handled",), "closed", VERIFIERS, title_zh="核查结案"),
        Transition("send_back", ("handled",), "in_progress", VERIFIERS, needs_note=True, title_zh="退回重办"),
        Transition("reopen", ("closed",), "dispatched", DISPATCHERS, needs_note=True, title_zh="重新打开"),
        Transition("merge", OPEN_STATES, "merged", DISPATCHERS, title_zh="并单"),
    )
}

# Columns each action sets besides the state; :now is the transaction time.
_SETS = {
    "register": "registered_at = now()",
    "reject": "reject_reason = :note",
    "dispatch": "dispatched_at = now(), assignee_kind = :assignee_kind, assignee_code = :assignee_code, "
                "department = :department, "
                "response_due_at = now() + make_interval(hours => (SELECT response_hours FROM deadline_policy "
                "WHERE deadline_class = t.deadline_class))",
    "accept": "responded_at = coalesce(responded_at, now())",
    "return": "assignee_kind = NULL, assignee_code = NULL, department = NULL",
    "handle": "handled_at = now()",
    "verify": "closed_at = now()",
    "send_back": "handled_at = NULL, send_back_count = send_back_count + 1",
    # The resident's rating stays: it was given and counts in the rates (see `rate`); a later closing may be
    # rated anew, which then replaces it on the ticket (the history keeps both).
    "reopen": "closed_at = NULL, handled_at = NULL, "
              "reopen_count = reopen_count + 1, dispatched_at = now(), due_at = ticket_due_at(now(), deadline_class), "
              "response_due_at = now() + make_interval(hours => (SELECT response_hours FROM deadline_policy "
              "WHERE deadline_class = t.deadline_class))",
    "merge": "merged_into_id = :merge_into",
}


def state_machine() -> list[dict]:
    """The transitions as data (for the API and the map's buttons)."""
    return [
        {"action": t.action, "title_zh": t.title_zh, "from": list(t.sources), "to": t.target,
         "roles": sorted(t.roles), "needs_note": t.needs_note}
        for t in TRANSITIONS.values()
    ]


async def locked_ticket(conn: AsyncConnection, principal: Principal, ticket_id: int) -> dict:
    """The ticket row, locked for update, or NotFound when it does not exist or lies outside the scope."""
    scope, params = ticket_scope_sql(principal, "t")
    row = (await conn.execute(
        text(f"SELECT t.* FROM ticket t WHERE t.id = :id AND {scope} FOR UPDATE"), {"id": ticket_id, **params}
    )).mappings().first()
    if row is None:
        raise NotFound(f"no ticket {ticket_id}")
    return dict(row)


def check_may_handle(principal: Principal, ticket: dict) -> None:
    """A property company acts only on tickets dispatched to itself."""
    if principal.role == "property_company" and not (
        ticket["assignee_kind"] == "property_company" and ticket["assignee_code"] == str(principal.company_id)
    ):
        raise Forbidden("this ticket is not assigned to your company")


async def transition(
    conn: AsyncConnection,
    principal: Principal,
    ticket_id: int,
    action: str,
    note: str | None = None,
    version: int | None = None,
    merge_into: int | None = None,
    assignee: dict | None = None,
    extra: dict | None = None,
) -> dict:
    """Apply one action to one ticket, in the caller's transaction; returns the new state and version. `extra` is
    added to the data the history records (on both tickets of a merge)."""
    spec = TRANSITIONS.get(action)
    if spec is None:
        raise InvalidInput(f"unknown action {action!r}; actions are {', '.join(TRANSITIONS)}")
    ticket = await locked_ticket(conn, principal, ticket_id)
    if principal.role not in spec.roles:
        raise Forbidden(f"a {principal.role} user may not {action} tickets")
    if action in ("accept", "return", "handle"):
        check_may_handle(principal, ticket)
    if version is not None and version != ticket["version"]:
        raise Conflict(f"ticket {ticket_id} changed (version {ticket['version']}, you had {version}); reload it")
    if ticket["state"] not in spec.sources:
        raise Conflict(
            f"cannot {action} a ticket that is {ticket['state']}; {action} is allowed from "
            f"{', '.join(spec.sources)}"
        )
    note = (note or "").strip() or None
    if spec.needs_note and not note:
        raise InvalidInput(f"{action} needs a note saying why")
    params: dict = {"id": ticket_id, "note": note, "state": spec.target, "merge_into": merge_into,
                    "assignee_kind": None, "assignee_code": None, "department": None}
    data: dict | None = None
    if action == "dispatch":
        if assignee is None:
            raise InvalidInput("dispatch needs an assignee {kind, code, department}")
        assignee = await check_assignee(conn, principal, assignee, [ticket])
        params.update(assignee_kind=assignee["kind"], assignee_code=assignee["code"],
                      department=assignee.get("department"))
        data = {"assignee": assignee}
        from gis.dispatch.store import dispatch_note  # the model version that suggested this complaint's party

        data.update(await dispatch_note(conn, ticket["complaint_id"]))
    if action == "merge":
        data = await _check_merge_target(conn, principal, ticket, merge_into)
    if action == "reopen" and ticket["rating"] is not None:
        data = {"rating_kept": ticket["rating"]}
    if extra:
        data = {**(data or {}), **extra}
    await conn.execute(
        text(f"UPDATE ticket t SET state = :state, version = version + 1, updated_at = now(), {_SETS[action]} "
             "WHERE id = :id"),
        params,
    )
    await record_event(conn, principal, ticket_id, action, ticket["state"], spec.target, note, data)
    if action == "merge":
        # Duplicates already merged into this ticket follow it to the surviving one.
        await conn.execute(
            text("UPDATE ticket SET merged_into_id = :target, version = version + 1 WHERE merged_into_id = :id"),
            {"target": merge_into, "id": ticket_id},
        )
        await record_event(conn, principal, merge_into, "absorb", None, None, note,
                           {"duplicate": ticket_id, **(extra or {})})
    return {"id": ticket_id, "state": spec.target, "version": ticket["version"] + 1}


JOIN_NOTE = "居民附议/重复反映"
"""What both histories say when a new report joins an existing ticket."""


async def join_reported(conn: AsyncConnection, ticket_id: int, into: int, joined_by: str,
                        user_id: int | None = None) -> dict:
    """居民附议/重复反映: the ticket of a report just stored joins the open ticket `into` that it repeats — the merge
    transition (并单) above, made by the intake on the reporter's behalf, so the new complaint stays stored once and
    the surviving ticket's history gets an `absorb` event noting JOIN_NOTE and who joined.

    The caller has checked that the reporter may join `into` (gis.intake.similar.check_joinable: the similarity
    rule lists it and it is open), which is why the merge runs with the intake's own authority rather than the
    reporter's role (a resident or a grid worker may not merge tickets by hand)."""
    intake = Principal(role="admin", username=joined_by, user_id=user_id)
    return await transition(conn, intake, ticket_id, "merge", note=JOIN_NOTE, merge_into=into,
                            extra={"joined": True, "joined_by": joined_by})


async def _check_merge_target(conn: AsyncConnection, principal: Principal, ticket: dict,
                              merge_into: int | None) -> dict:
    if merge_into is None:
        raise InvalidInput("merge needs merge_into: the id of the ticket that survives")
    if merge_into == ticket["id"]:
        raise InvalidInput("a ticket cannot be merged into itself")
    target = await locked_ticket(conn, principal, merge_into)
    if target["state"] not in OPEN_STATES:
        raise Conflict(f"ticket {merge_into} is {target['state']}; duplicates merge only into an open ticket")
    return {"merged_into": merge_into}


async def comment(conn: AsyncConnection, principal: Principal, ticket_id: int, note: str) -> int:
    """A comment in the history; the state does not change."""
    note = (note or "").strip()
    if not note:
        raise InvalidInput("a comment needs text")
    if len(note) > 4000:
        raise InvalidInput("a comment has at most 4000 characters")
    ticket = await locked_ticket(conn, principal, ticket_id)
    if principal.role not in COMMENTERS:
        raise Forbidden(f"a {principal.role} user may not comment")
    return await record_event(conn, principal, ticket_id, "comment", ticket["state"], ticket["state"], note)


PHOTO_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png", b"RIFF": "image/webp"}
MAX_PHOTO_BYTES = 10 * 1024 * 1024


def photo_type(content: bytes) -> str:
    """The image type from the file's own first bytes (a client's declared type is not trusted)."""
    for magic, kind in PHOTO_TYPES.items():
        if content.startswith(magic) and (kind != "image/webp" or content[8:12] == b"WEBP"):
            return kind
    raise InvalidInput("a photo must be a JPEG, PNG or WebP image")


async def add_photo(conn: AsyncConnection, principal: Principal, ticket_id: int, filename: str, content: bytes,
                    note: str | None = None) -> dict:
    """Attach a photo to a ticket as a `photo` event of its history, in the caller's transaction; InvalidInput for an
    empty file, one over MAX_PHOTO_BYTES or not JPEG/PNG/WebP, NotFound outside the scope, Forbidden for a role that may
    not comment."""
    if not content:
        raise InvalidInput("the photo is empty")
    if len(content) > MAX_PHOTO_BYTES:
        raise InvalidInput(f"a photo has at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    kind = photo_type(content)
    ticket = await locked_ticket(conn, principal, ticket_id)
    if principal.role not in COMMENTERS:
        raise Forbidden(f"a {principal.role} user may not add photos")
    filename = (filename or "photo")[:200]
    event_id = await record_event(conn, principal, ticket_id, "photo", ticket["state"], ticket["state"], note,
                                  {"filename": filename, "bytes": len(content)})
    photo_id = (await conn.execute(
        text("""INSERT INTO ticket_photo (ticket_id, event_id, filename, content_type, size_bytes, content)
                VALUES (:t, :e, :f, :k, :n, :c) RETURNING id"""),
        {"t": ticket_id, "e": event_id, "f": filename, "k": kind, "n": len(content), "c": content},
    )).scalar_one()
    return {"id": photo_id, "ticket_id": ticket_id, "event_id": event_id, "content_type": kind,
            "size_bytes": len(content)}


PUBLIC_RATING_REFUSED = "没有可由该号码评价的工单：工单号与来电号码不符，或工单尚未办结，或已经评价过"
"""The public's one answer for a rating that cannot be taken, whatever the reason."""


async def rate(conn: AsyncConnection, principal: Principal, ticket_id: int, score: int, comment_text: str | None,
               reporter_phone: str | None = None) -> dict:
    """考核评价: the resident's rating of a closed ticket — given by the reporter (proved by the phone number
    of the complaint), or recorded by staff from a call-back (回访).

    One rating per closing: a reopened ticket keeps the rating it had (it still counts in the satisfaction
    rate and the evaluations, which read `ticket.rating`), and once closed again it may be rated anew; the new
    rating then replaces the old on the ticket while the history keeps every `rate` event."""
    if not 1 <= score <= 5:
        raise InvalidInput("a rating is 1 (very dissatisfied) to 5 (very satisfied)")
    if principal.role == "public":
        if not reporter_phone:
            raise InvalidInput("give the phone number the complaint was made with")
        # One answer for every miss (no such ticket, another phone, not closed, rated already), so the call
        # cannot be used to confirm who reported what.
        row = (await conn.execute(
            text("""SELECT t.* FROM ticket t JOIN complaint c ON c.id = t.complaint_id
                    WHERE t.id = :id AND c.reporter_phone = :phone AND t.state = 'closed' AND t.rating IS NULL
                    FOR UPDATE OF t"""),
            {"id": ticket_id, "phone": reporter_phone.strip()},
        )).mappings().first()
        if row is None:
            raise NotFound(PUBLIC_RATING_REFUSED)
        ticket = dict(row)
    else:
        ticket = await locked_ticket(conn, principal, ticket_id)
        if principal.role not in VERIFIERS:
            raise Forbidden(f"a {principal.role} user may not record ratings")
    if ticket["state"] != "closed":
        raise Conflict(f"only a closed ticket can be rated; this one is {ticket['state']}")
    if ticket["rating"] is not None and (ticket["rated_at"] is None or ticket["closed_at"] is None
                                         or ticket["rated_at"] >= ticket["closed_at"]):
        raise Conflict("this ticket has been rated already")
    await conn.execute(
        text("""UPDATE ticket SET rating = :score, rating_comment = :comment, rated_at = now(),
                version = version + 1, updated_at = now() WHERE id = :id"""),
        {"score": score, "comment": comment_text, "id": ticket_id},
    )
    await record_event(conn, principal, ticket_id, "rate", "closed", "closed", comment_text, {"score": score})
    return {"id": ticket_id, "rating": score, "version": ticket["version"] + 1}
