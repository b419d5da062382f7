"""Reading tickets: list, one ticket with its history, GeoJSON, CSV export and vector tiles — each one SQL
statement with the caller's scope in its WHERE clause, and personal data only for staff."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal
from gis.access.visibility import (
    address_sql,
    place_in_box_sql,
    place_sql,
    text_sql,
    visibility,
)
from gis.errors import InvalidInput, NotFound
from gis.tickets.filters import TicketFilter, where_sql
from gis.tickets.models import overdue_sql
from gis.tickets.scope import ticket_scope_sql
from gis.tickets.supervision import supervision_sql

SORTS = {"due": "t.due_at, t.id", "reported": "t.reported_at, t.id", "-reported": "t.reported_at DESC, t.id DESC",
         "id": "t.id"}
MAX_LIMIT = 1000


_NUMERIC = "'^[0-9]{1,18}$'"


def _person_sql(user_id: str) -> str:
    """A user's name as people read it: the display name (or username), and for a grid worker the grids."""
    return f"""(SELECT coalesce(u.display_name, u.username) || CASE WHEN u.role = 'grid_worker' THEN coalesce(
                    '（网格员，' || (SELECT string_agg(g.name, '、' ORDER BY g.code) FROM grid g
                                   WHERE g.code = ANY(u.scope_codes) AND g.valid_to IS NULL) || '）', '（网格员）')
                    ELSE '' END
                FROM app_user u WHERE u.id = {user_id})"""


def holder_sql(alias: str = "t", people: bool = True) -> str:
    """Who holds the ticket now (承办), in Chinese: the organisation by name — property company, community,
    street department, utility — or the person, and the named person of the organisation when there is one.
    Without `people` (callers who see no staff names) a person reads as 指定人员."""
    code = f"{alias}.assignee_code"
    as_id = f"CASE WHEN {code} ~ {_NUMERIC} THEN CAST({code} AS bigint) END"
    person = _person_sql(as_id) if people else "'指定人员'"
    named = (_person_sql(f"{alias}.assignee_user_id") if people else "'指定人员'")
    return f"""(CASE {alias}.assignee_kind
        WHEN 'property_company' THEN '物业 · ' || coalesce((SELECT pc.name FROM property_company pc
                                                          WHERE pc.id = {as_id}), '企业 ' || {code})
        WHEN 'community' THEN '社区 · ' || coalesce((SELECT u.name FROM community u
                                                  WHERE u.code = {code} AND u.valid_to IS NULL), {code})
        WHEN 'street_department' THEN '街道 · ' || concat_ws(' ', (SELECT u.name FROM street u
                                                  WHERE u.code = {code} AND u.valid_to IS NULL), {alias}.department)
        WHEN 'utility' THEN '专业单位 · ' || coalesce({alias}.department, {code})
        WHEN 'user' THEN '人员 · ' || coalesce({person}, {code})
        ELSE '未派遣' END
        || CASE WHEN {alias}.assignee_user_id IS NOT NULL AND {alias}.assignee_kind IS DISTINCT FROM 'user'
                THEN '（指定 ' || coalesce({named}, '指定人员') || '）' ELSE '' END)"""


def _fields(principal: Principal) -> list[tuple[str, str]]:
    """(name, SQL) of what a ticket shows to this principal, as the visibility policy allows."""
    view = visibility(principal)
    place = place_sql(view, "c.geom")
    fields = [
        ("id", "t.id"), ("state", "t.state"), ("category_code", "t.category_code"), ("category", "cat.name"),
        ("category_zh", "cat.name_zh"), ("reported_at", "t.reported_at"), ("due_at", "t.due_at"),
        ("deadline_class", "t.deadline_class"),
        ("overdue", overdue_sql("t")),
        ("closed_at", "t.closed_at"), ("street_code", "t.street_code"), ("community_code", "t.community_code"),
        ("grid_code", "t.grid_code"), ("compound_code", "t.compound_code"),
        ("address", address_sql(view, "c")),
        ("lon", f"round(ST_X({place})::numeric, 7)::float8"), ("lat", f"round(ST_Y({place})::numeric, 7)::float8"),
    ]
    if view.description != "none":
        fields.append(("description", text_sql(view, "c.description")))
    if view.handling:
        fields += [
            ("version", "t.version"), ("complaint_id", "t.complaint_id"), ("source", "c.source"),
            ("assignee_kind", "t.assignee_kind"), ("assignee_code", "t.assignee_code"),
            ("department", "t.department"), ("rule_id", "t.rule_id"), ("property_company_id", "t.property_company_id"),
            ("registered_at", "t.registered_at"), ("dispatched_at", "t.dispatched_at"),
            ("response_due_at", "t.response_due_at"), ("responded_at", "t.responded_at"),
            ("handled_at", "t.handled_at"), ("merged_into_id", "t.merged_into_id"),
            ("reject_reason", text_sql(view, "t.reject_reason")), ("reopen_count", "t.reopen_count"),
            ("send_back_count", "t.send_back_count"), ("rating", "t.rating"), ("rated_at", "t.rated_at"),
            ("callback_at", "t.callback_at"), ("callback_solved", "t.callback_solved"),
            ("callback_satisfied", "t.callback_satisfied"),
            *supervision_sql("t"),
            ("holder_zh", holder_sql("t", view.history_people)),
        ]
    if view.reporter:
        fields += [("reporter_name", "c.reporter_name"), ("reporter_phone", "c.reporter_phone"),
                   ("informed", "t.informed"), ("rating_comment", "t.rating_comment")]
    return fields


def _select(principal: Principal, f: TicketFilter, sort: str, limit: int, offset: int) -> tuple[str, dict, list]:
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be 1 to {MAX_LIMIT}")
    if offset < 0:
        raise InvalidInput("offset must not be negative")
    where, params, _ = where_sql(principal, f)
    fields = _fields(principal)
    columns = ", ".join(f"{sql} AS {name}" for name, sql in fields)
    sql = f"""
        SELECT {columns}, c.geom AS geom
        FROM ticket t JOIN complaint c ON c.id = t.complaint_id JOIN category cat ON cat.code = t.category_code
        WHERE {where} ORDER BY {SORTS[sort]} LIMIT :limit OFFSET :offset"""
    return sql, {**params, "limit": limit, "offset": offset}, [name for name, _ in fields]


class Page(NamedTuple):
    """A page of tickets as the answer's body, and the ids of the tickets in it (for the personal-data log)."""

    body: bytes
    ids: list[int]


async def list_tickets(conn: AsyncConnection, principal: Principal, f: TicketFilter, sort: str = "due",
                       limit: int = 100, offset: int = 0) -> Page:
    """{items: [...], next_offset} as JSON made by PostgreSQL, and the ids of the tickets listed."""
    sql, params, names = _select(principal, f, sort, limit, offset)
    props = ", ".join(f"'{name}', r.{name}" for name in names)
    body, ids = (await conn.execute(text(f"""
        SELECT json_build_object(
            'items', coalesce(json_agg(json_build_object({props})), '[]'::json),
            'next_offset', CASE WHEN count(*) = :limit THEN :offset + :limit END)::text, array_agg(r.id)
        FROM ({sql}) r"""), params)).one()
    return Page(body.encode(), list(ids or ()))


async def tickets_geojson(conn: AsyncConnection, principal: Principal, f: TicketFilter, sort: str = "due",
                          limit: int = 1000, offset: int = 0) -> Page:
    """A GeoJSON FeatureCollection of the tickets, and their ids."""
    sql, params, names = _select(principal, f, sort, limit, offset)
    props = ", ".join(f"'{name}', r.{name}" for name in names if name not in ("lon", "lat"))
    point = place_sql(visibility(principal), "r.geom")
    body, ids = (await conn.execute(text(f"""
        SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
            'type', 'Feature', 'id', r.id, 'geometry', ST_AsGeoJSON({point}, 6)::json,
            'properties', json_build_object({props}))), '[]'::json))::text, array_agg(r.id)
        FROM ({sql}) r"""), params)).one()
    return Page(body.encode(), list(ids or ()))


EXPORT_LIMIT = 200_000
EXPORT_CHUNK_BYTES = 1 << 20
"""About how much CSV one step of a streamed export formats and sends (the rows per step follow the row size)."""
EXPORT_FIRST_ROWS = 200
EXPORT_MAX_ROWS = 5_000


def _csv_chunk(rows, width: int, header: list[str] | None = None) -> bytes:
    """CSV lines of `rows` (their first `width` values); with `header`, the UTF-8 BOM and the header line first."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header is not None:
        out.write("\ufeff")
        writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row[:width]])
    return out.getvalue().encode()


@dataclass
class Export:
    """A CSV export under way: the ids of every ticket it carries, fixed before any row is sent, and its chunks
    (closing them ends the export's transaction)."""

    ids: list[int]
    chunks: AsyncIterator[bytes]
    conn: AsyncConnection

    async def aclose(self) -> None:
        """End the export, whether or not its chunks were read."""
        await self.chunks.aclose()
        await _end_snapshot(self.conn)


async def _end_snapshot(conn: AsyncConnection) -> None:
    if conn.in_transaction():
        try:
            await conn.rollback()
        except DBAPIError:
            pass  # the connection is lost; its teardown discards it


async def tickets_csv(conn: AsyncConnection, principal: Principal, f: TicketFilter) -> Export:
    """CSV export (UTF-8 with BOM so spreadsheet programs read the Chinese text), streamed from the database.

    The export runs over `conn` in one repeatable-read transaction, so every step sees the same tickets. The
    selection is fixed and its ids read before this returns, so the caller can log the read before any row
    leaves. The chunks (BOM and header first) follow through a server-side cursor, about EXPORT_CHUNK_BYTES of CSV
    at a time, each formatted in a worker thread: the event loop only moves bytes, and other requests are
    answered meanwhile. A client that reads slowly holds the next step back (the server's send buffer is full),
    so memory stays bounded; closing the chunks ends the transaction."""
    sql, params, names = _select(principal, f, "id", 1, 0)
    params["limit"] = EXPORT_LIMIT
    if conn.in_transaction():
        await conn.commit()  # a read route holds nothing to keep; the export needs a snapshot of its own
    try:
        await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        ids = (await conn.execute(text(f"SELECT array_agg(r.id) FROM ({sql}) r"), params)).scalar_one()
    except BaseException:
        await _end_snapshot(conn)
        raise
    return Export(list(ids or ()), _csv_chunks(conn, sql, params, names), conn)


async def _csv_chunks(conn: AsyncConnection, sql: str, params: dict, names: list[str]) -> AsyncIterator[bytes]:
    try:
        yield _csv_chunk((), len(names), names)
        result = await conn.stream(text(sql), params)
        size = EXPORT_FIRST_ROWS
        while rows := await result.fetchmany(size):
            chunk = await asyncio.to_thread(_csv_chunk, rows, len(names))
            yield chunk
            size = max(1, min(EXPORT_MAX_ROWS, len(rows) * EXPORT_CHUNK_BYTES // max(len(chunk), 1)))
    finally:
        await _end_snapshot(conn)


async def tickets_tile(conn: AsyncConnection, principal: Principal, z: int, x: int, y: int,
                       f: TicketFilter | None = None) -> bytes:
    """A Mapbox vector tile of ticket points (layer `tickets`), scoped like every other read."""
    if not (0 <= z <= 22 and 0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInput("tile z/x/y out of range")
    where, params, _ = where_sql(principal, f or TicketFilter())
    view = visibility(principal)
    point = place_sql(view, "c.geom")
    # the place the caller sees decides which tile a ticket is in (a snapped point may cross a tile's edge)
    in_tile = place_in_box_sql(view, "c.geom", "ST_Transform(bounds.env3857, 4326)")
    sql = f"""
        WITH bounds AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env3857),
        rows AS (
            SELECT t.id, t.state, t.category_code, {overdue_sql("t")} AS overdue,
                   ST_AsMVTGeom(ST_Transform({point}, 3857), bounds.env3857, 4096, 16, true) AS geom
            FROM ticket t JOIN complaint c ON c.id = t.complaint_id, bounds
            WHERE {where} AND {in_tile}
            LIMIT 50000)
        SELECT ST_AsMVT(rows, 'tickets', 4096, 'geom') FROM rows WHERE geom IS NOT NULL"""
    return bytes((await conn.execute(text(sql), {**params, "z": z, "x": x, "y": y})).scalar_one() or b"")


async def get_ticket(conn: AsyncConnection, principal: Principal, ticket_id: int) -> dict:
    """One ticket, its history (append-only events) and its photos' metadata; NotFound outside the scope."""
    sql, params, names = _select(principal, TicketFilter(ids=[ticket_id]), "id", 1, 0)
    row = (await conn.execute(text(sql), params)).first()
    if row is None:
        raise NotFound(f"no ticket {ticket_id}")
    ticket = dict(zip(names, row[: len(names)]))
    view = visibility(principal)
    people = view.history_people
    events = (await conn.execute(text(f"""
        SELECT e.id, e.at, {'e.actor' if people else 'NULL'} AS actor, e.action, e.from_state, e.to_state,
               {'e.note' if people else 'NULL'} AS note, {'e.data' if view.handling else 'NULL'} AS data
        FROM ticket_event e WHERE e.ticket_id = :id ORDER BY e.at, e.id"""), {"id": ticket_id})).mappings()
    ticket["history"] = [dict(event) for event in events]
    if view.photos:
        photos = (await conn.execute(text("""
            SELECT id, event_id, filename, content_type, size_bytes, uploaded_at
            FROM ticket_photo WHERE ticket_id = :id ORDER BY id"""), {"id": ticket_id})).mappings()
        ticket["photos"] = [dict(photo) for photo in photos]
    if view.handling:
        merged = (await conn.execute(text("SELECT array_agg(id ORDER BY id) FROM ticket WHERE merged_into_id = :id"),
                                     {"id": ticket_id})).scalar_one()
        ticket["duplicates"] = merged or []
    return ticket


async def get_photo(conn: AsyncConnection, principal: Principal, ticket_id: int, photo_id: int) -> tuple[str, bytes]:
    """A ticket photo as (content type, bytes); NotFound for an unknown photo, one of another ticket, outside the
    caller's scope, or when the caller's view shows no photos."""
    if not visibility(principal).photos:
        raise NotFound(f"no photo {photo_id}")
    scope, params = ticket_scope_sql(principal, "t")
    row = (await conn.execute(text(f"""
        SELECT p.content_type, p.content FROM ticket_photo p JOIN ticket t ON t.id = p.ticket_id
        WHERE p.id = :photo AND t.id = :ticket AND {scope}"""),
        {"photo": photo_id, "ticket": ticket_id, **params})).first()
    if row is None:
        raise NotFound(f"no photo {photo_id}")
    return row[0], bytes(row[1])
