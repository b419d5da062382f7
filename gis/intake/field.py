"""Reports from the field (巡查上报): a signed-in grid worker (or other staff) reports an issue at a point.

A report takes the same path as an Open311 request: one statement places the point on its micro-grid, stores
the complaint with its intake facts and the responsible parties, links a possible duplicate, and the intake
trigger opens and routes its ticket (`gis.intake.placement.one_request_sql`). The complaint's source is
`patrol` and its reporter the signed-in person. A client-generated `client_id` (a UUID) is the complaint's
external id, so a retried submission (the phone's offline queue sends again when it is unsure the first one
arrived) is stored exactly once: the second answer names the complaint that exists.

The place's address is composed from the layers (street, community, compound, N号楼), as `place_at` answers it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import SCOPE_TABLE, Principal, complaint_scope_sql
from gis.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.intake import similar
from gis.intake.normalise import LOCAL_ZONE, parse_time
from gis.intake.placement import (
    CLOSED_TICKET_FILTER,
    NO_KEY_SQL,
    STAGE_COLUMN_NAMES,
    degrees_for,
    one_request_sql,
)
from gis.numbers import optional_float
from gis.settings import city_settings
from gis.tickets import workflow
from gis.tickets.roles import COMMENTERS
from gis.tickets.scope import ticket_scope_sql
from gis.times import iso_text, time_problem

SOURCE = "patrol"
"""巡查: the complaint source of every field report."""
REPORTERS = COMMENTERS
"""Who may report from the field: the staff who take part in tickets (not planners, not the public)."""
MAX_PHOTOS = 6
MAX_DESCRIPTION = 4000

_PLACE_SQL = """
WITH pt AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g),
street AS (SELECT s.code, s.name FROM street s, pt
           WHERE s.valid_to IS NULL AND ST_Intersects(s.geom, pt.g) ORDER BY s.code LIMIT 1),
community AS (SELECT c.code, c.name FROM community c, pt
              WHERE c.valid_to IS NULL AND c.street_code = (SELECT code FROM street) AND ST_Intersects(c.geom, pt.g)
              ORDER BY c.code LIMIT 1),
grid AS (SELECT g.code, g.name FROM grid g, pt
         WHERE g.valid_to IS NULL AND g.community_code = (SELECT code FROM community)
           AND ST_Intersects(g.geom, pt.g) ORDER BY g.code LIMIT 1),
micro AS (SELECT m.code, m.compound_code FROM micro_grid m, pt
          WHERE m.valid_to IS NULL AND m.grid_code = (SELECT code FROM grid) AND ST_Intersects(m.geom, pt.g)
          ORDER BY m.code LIMIT 1),
compound AS (SELECT c.code, c.name FROM compound c, pt
             WHERE c.valid_to IS NULL AND c.community_code = (SELECT code FROM community)
               AND (c.code = (SELECT compound_code FROM micro) OR ST_Intersects(c.geom, pt.g))
             ORDER BY (c.code IS NOT DISTINCT FROM (SELECT compound_code FROM micro)) DESC, c.code LIMIT 1),
building AS (SELECT b.code, b.number FROM building b, pt
             WHERE b.valid_to IS NULL AND b.micro_grid_code = (SELECT code FROM micro) AND ST_Intersects(b.geom, pt.g)
             ORDER BY b.code LIMIT 1)
SELECT p.*, ({scope}) AS in_scope FROM (
SELECT (SELECT code FROM street) AS street_code, (SELECT name FROM street) AS street,
       (SELECT code FROM community) AS community_code, (SELECT name FROM community) AS community,
       (SELECT code FROM grid) AS grid_code, (SELECT name FROM grid) AS grid,
       (SELECT code FROM compound) AS compound_code, (SELECT name FROM compound) AS compound,
       (SELECT code FROM building) AS building_code, (SELECT number FROM building) AS building_number) p
"""


def check_reporter(principal: Principal) -> None:
    """Only signed-in staff who take part in tickets report from the field."""
    if principal.role not in REPORTERS or principal.user_id is None:
        raise Forbidden("只有登录的网格员和工作人员可以上报问题")


def check_point(lon: float | None, lat: float | None) -> tuple[float, float]:
    """A WGS-84 point (as a phone's GPS gives it), both coordinates present and in range."""
    if lon is None or lat is None:
        raise InvalidInput("请给出上报位置：经度 lon 和纬度 lat（GPS 定位或在地图上点选）")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise InvalidInput("经度须在 -180 到 180 之间，纬度须在 -90 到 90 之间（WGS-84 度）")
    return lon, lat


def _address(place: dict) -> str | None:
    """The address composed from the layers: 街道 社区 小区 N号楼 (the building only inside a compound)."""
    parts = [place.get("street"), place.get("community"), place.get("compound")]
    if place.get("compound") and place.get("building_number") is not None:
        parts.append(f"{place['building_number']}号楼")
    text_value = "".join(part for part in parts if part)
    return text_value or None


async def place_at(conn: AsyncConnection, principal: Principal, lon: float | None, lat: float | None) -> dict:
    """The units at a point (street, community, grid, compound, building) and the address they compose, for
    the report form; `in_scope` says whether a ticket there falls in the caller's own scope."""
    check_reporter(principal)
    lon, lat = check_point(lon, lat)
    # the place is in scope as a complaint there would be: the one rule of gis.access.auth
    scope, params = complaint_scope_sql(principal, "p")
    statement = text(_PLACE_SQL.format(scope=scope))
    row = (await conn.execute(statement, {"lon": lon, "lat": lat, **params})).mappings().one()
    place = dict(row)
    if place["street_code"] is None:
        raise NotFound(f"位置（{lon:.6f}, {lat:.6f}）不在本市任何街道的范围内")
    place["address"] = _address(place)
    place["in_scope"] = bool(place["in_scope"])
    place["lon"], place["lat"] = lon, lat
    return place


@dataclass
class Photo:
    """A photo sent with a report."""

    filename: str
    content: bytes


@dataclass
class Report:
    """One field report as the phone sends it."""

    client_id: str
    category_code: str
    lon: float | None
    lat: float | None
    description: str | None = None
    address: str | None = None
    reported_at: str | None = None
    photos: list[Photo] = field(default_factory=list)
    join_ticket_id: int | None = None
    """An open ticket this report repeats (居民附议): the report is stored and joins it (gis.intake.similar)."""


def parse_report(values: dict) -> Report:
    """A report from the JSON body or the form fields of the request (strings or numbers), checked."""
    client_id = str(values.get("client_id") or "").strip()
    try:
        client_id = str(uuid.UUID(client_id))
    except ValueError:
        raise InvalidInput("client_id 须为客户端生成的 UUID（用于防止重复提交）") from None
    category = str(values.get("category_code") or "").strip()  # empty: the dispatch model may fill it
    description = str(values.get("description") or "").strip() or None
    if description and len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"问题描述最多 {MAX_DESCRIPTION} 个字")
    lon = optional_float(values.get("lon"), "lon")
    lat = optional_float(values.get("lat"), "lat")
    address = str(values.get("address") or "").strip()[:300] or None
    reported_at = str(values.get("reported_at") or "").strip() or None
    join = values.get("join_ticket_id")
    join_ticket_id = None
    if join not in (None, ""):
        if isinstance(join, bool) or not str(join).isdigit() or len(str(join)) > 18:
            raise InvalidInput("join_ticket_id 须为要加入的工单编号（正整数）")
        join_ticket_id = int(join)
    return Report(client_id, category, lon, lat, description, address, reported_at, join_ticket_id=join_ticket_id)


async def _existing(conn: AsyncConnection, client_id: str) -> dict | None:
    row = (await conn.execute(text("""
        SELECT c.id AS complaint_id, t.id AS ticket_id, c.placement, c.grid_code, i.extra,
               t.merged_into_id AS joined_ticket_id
        FROM complaint c LEFT JOIN ticket t ON t.complaint_id = c.id
        LEFT JOIN complaint_intake i ON i.complaint_id = c.id
        WHERE c.source = :source AND c.external_id = :client_id"""),
        {"source": SOURCE, "client_id": client_id})).mappings().first()
    return dict(row) if row else None


def _answer_existing(principal: Principal, found: dict) -> dict:
    extra = found.get("extra") or {}
    if isinstance(extra, str):
        extra = json.loads(extra)
    reporter = extra.get("reported_by_user_id")
    if reporter != principal.user_id:
        raise Conflict("该 client_id 已被另一条上报使用；请重新生成后提交")
    return {"created": False, "exists": True, "complaint_id": found["complaint_id"], "ticket_id": found["ticket_id"],
            "placement": found["placement"], "grid_code": found["grid_code"],
            "joined_ticket_id": found["joined_ticket_id"], "message": "该上报已经提交过，未重复保存"}


async def _reporter_name(conn: AsyncConnection, principal: Principal) -> str:
    name = (await conn.execute(text("SELECT display_name FROM app_user WHERE id = :id"),
                               {"id": principal.user_id})).scalar_one_or_none()
    return name or principal.username


def _reported_at(value: str | None, now: datetime) -> datetime:
    """When the worker made the report (the phone's time, when it was queued offline); now when not given."""
    if value is None:
        return now
    moment = parse_time(value)
    if moment is None:
        raise InvalidInput(f"上报时间 reported_at {value[:40]!r} 无法识别；"
                           "请用 ISO 8601 时间，如 2026-12-01T14:05:00+08:00")
    if problem := time_problem(moment, "上报时间 reported_at", now):
        raise InvalidInput(problem)
    return moment


async def _staged_row(conn: AsyncConnection, principal: Principal, report: Report, place: dict) -> dict:
    now = datetime.now(UTC)
    reported_at = _reported_at(report.reported_at, now)
    row = {name: None for name in STAGE_COLUMN_NAMES}
    extra = {"reported_by": principal.username, "reported_by_user_id": principal.user_id,
             "client_id": report.client_id}
    row.update(row_no=1, source=SOURCE, external_id=report.client_id, category_code=report.category_code,
               description=report.description, address=report.address or place["address"],
               reported_at=reported_at, local_day=reported_at.astimezone(LOCAL_ZONE).date(),
               lon=report.lon, lat=report.lat, original_x=report.lon, original_y=report.lat,
               original_crs="EPSG:4326", match_level="coordinates", match_score=1.0,
               addr_level="coordinates", reporter_name=await _reporter_name(conn, principal),
               extra=json.dumps(extra, ensure_ascii=False))
    return row


async def _store(conn: AsyncConnection, row: dict) -> tuple[int, str]:
    settings = city_settings()
    params = {**row, "key_hash": None, "snap_m": settings.snap_tolerance_m,
              "snap_deg": degrees_for(settings.snap_tolerance_m), "radius_m": settings.duplicate_radius_m,
              "radius_deg": degrees_for(settings.duplicate_radius_m), "window_days": settings.duplicate_window_days}
    stored = (await conn.execute(text(one_request_sql(CLOSED_TICKET_FILTER, NO_KEY_SQL)), params)).one()
    if stored.category_name is None or stored.id is None:
        raise InvalidInput(f"没有这个问题类别：{row['category_code']}")
    return stored.id, stored.placement


async def submit_report(conn: AsyncConnection, principal: Principal, report: Report) -> dict:
    """Store one field report in the caller's transaction, exactly once per `client_id`; the answer says
    whether it was created now or existed. The place must fall in the caller's own scope (a grid worker's
    grids), so the worker can follow the ticket; photos are added to the ticket as the worker's."""
    check_reporter(principal)
    if len(report.photos) > MAX_PHOTOS:
        raise InvalidInput(f"一次上报最多 {MAX_PHOTOS} 张照片")
    found = await _existing(conn, report.client_id)
    if found is not None:
        return _answer_existing(principal, found)
    place = await place_at(conn, principal, report.lon, report.lat)
    if not place["in_scope"]:
        raise InvalidInput(f"上报位置（{place['address'] or '未知地址'}）不在您负责的范围内；"
                           "请确认定位，或在地图上点选您网格内的位置")
    from gis.dispatch import store as dispatch_store

    code, suggestion, filled = await dispatch_store.for_intake(conn, report.category_code, report.description)
    if not code:
        raise InvalidInput(dispatch_store.choose_message(suggestion))
    report.category_code = code
    row = await _staged_row(conn, principal, report, place)
    if report.join_ticket_id is not None:
        await similar.check_joinable(conn, principal, _as_new(report, row), report.join_ticket_id)
    try:
        async with conn.begin_nested():
            complaint_id, placement = await _store(conn, row)
            if suggestion is not None:
                await dispatch_store.record(conn, complaint_id, suggestion, filled)
    except IntegrityError:
        # the same client_id arrived twice at once: the other submission stored it
        found = await _existing(conn, report.client_id)
        if found is None:
            raise
        return _answer_existing(principal, found)
    scope, params = ticket_scope_sql(principal, "t")
    ticket = (await conn.execute(text(f"""
        SELECT t.id, t.state, t.grid_code, t.due_at FROM ticket t WHERE t.complaint_id = :id AND {scope}"""),
        {"id": complaint_id, **params})).mappings().first()
    if ticket is None:
        raise InvalidInput("上报位置不在您负责的范围内；请确认定位，或在地图上点选您网格内的位置")
    photos = [await workflow.add_photo(conn, principal, ticket["id"], photo.filename, photo.content)
              for photo in report.photos]
    answer = {"created": True, "exists": False, "complaint_id": complaint_id, "ticket_id": ticket["id"],
              "state": ticket["state"], "placement": placement, "grid_code": ticket["grid_code"],
              "address": row["address"], "due_at": iso_text(ticket["due_at"]), "photos": [p["id"] for p in photos],
              "message": "上报成功，已生成工单", "joined_ticket_id": None}
    if report.join_ticket_id is not None:
        joined = await workflow.join_reported(conn, ticket["id"], report.join_ticket_id, principal.username,
                                              principal.user_id)
        answer.update(state=joined["state"], joined_ticket_id=report.join_ticket_id,
                      message=f"上报成功，已加入工单 #{report.join_ticket_id}（{workflow.JOIN_NOTE}）")
    return answer


def _as_new(report: Report, row: dict) -> similar.NewReport:
    """A field report as the similarity rule reads it."""
    return similar.NewReport(lon=report.lon, lat=report.lat, at=row["reported_at"], text=report.description,
                             category_code=report.category_code)


async def field_profile(conn: AsyncConnection, principal: Principal) -> dict:
    """The signed-in person for the field app: name, role, the units of the scope with their names, and the box
    around them (the map fits it after sign-in)."""
    if principal.user_id is None:
        raise Forbidden("请先登录")
    name = await _reporter_name(conn, principal)
    table = SCOPE_TABLE.get(principal.role)
    units, bbox = [], None
    if table is not None and principal.scope:
        rows = (await conn.execute(text(f"""
            SELECT code, name, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM {table}
            WHERE valid_to IS NULL AND code = ANY(:codes) ORDER BY code"""), {"codes": list(principal.scope)})).all()
        units = [{"code": code, "name": unit_name} for code, unit_name, *_ in rows]
        if rows:
            bbox = [min(r[2] for r in rows), min(r[3] for r in rows), max(r[4] for r in rows), max(r[5] for r in rows)]
    elif principal.role == "property_company" and principal.company_id is not None:
        row = (await conn.execute(text("""
            SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
                SELECT ST_Extent(geom) AS e FROM compound WHERE valid_to IS NULL AND property_company_id = :id) x"""),
            {"id": principal.company_id})).one()
        bbox = list(row) if row[0] is not None else None
    return {"username": principal.username, "name": name, "role": principal.role, "level": table,
            "units": units, "bbox": [round(v, 7) for v in bbox] if bbox else None}
