"""Open311 GeoReport v2 (市民诉求开放接口): services from the category catalogue, requests stored as complaints.

service_code = category.code; service_request_id = complaint.id; status comes from the complaint's ticket
(closed when the ticket is in a final state — rejected, closed or merged — open otherwise). Reads need no key, so
they answer as the public sees (gis.access.visibility): the place snapped, the address to the compound, no description,
no reporter.

GET requests also takes the extensions GeoReport clients added (the Open311 wiki's list and CitySDK): `page` and
`page_size` (newest first, the id breaking ties), `updated_after`/`updated_before`, `lat`/`long`/`radius` (metres,
tested on the snapped place, so no circle narrows a place below its cell), `just_count=true` and `extensions=true`
(`extended_attributes`: the closed loop's state and its Chinese name, and `notes`, the public history: dated state
changes without who acted or what they wrote, as the policy's history rule says). `media_url` stays empty: see
MEDIA_NOTE. The bulk export gives one period as one streamed JSON or CSV file under the same rules.

This module knows no HTTP: it returns the spec's payloads as Python values and refuses with the core's typed
errors (InvalidInput, Forbidden, NotFound; gis.errors). The HTTP layer renders both, in JSON or XML, with the
spec's MIME types and error list (api/open311_format.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import PUBLIC as PUBLIC_PRINCIPAL
from gis.access.visibility import POLICY, address_sql, mask_numbers, place_near_sql, place_sql, text_sql
from gis.errors import Forbidden, InvalidInput, NotFound
from gis.intake import similar
from gis.intake.gazetteer import Gazetteer
from gis.intake.normalise import LOCAL_ZONE, parse_time
from gis.intake.placement import (
    ADDRESS_POINTS_SQL,
    CLOSED_TICKET_FILTER,
    STAGE_COLUMN_NAMES,
    degrees_for,
    one_request_sql,
)
from gis.layers import crs as crs_module
from gis.numbers import optional_float, parse_int
from gis.settings import city_settings
from gis.tickets import workflow
from gis.tickets.models import FINAL_SQL
from gis.tickets.supervision import STATE_ZH
from gis.tickets.workflow import TRANSITIONS
from gis.times import iso_text, time_problem

PUBLIC_VIEW = POLICY["public"]
"""GeoReport v2 reads need no key: every answer is the public's (staff read tickets through /tickets)."""

MAX_RESULTS = 1000
DEFAULT_WINDOW_DAYS = 90

ATTRIBUTES = [
    {"variable": True, "code": "building_unit", "datatype": "string", "required": False,
     "datatype_description": "Building and unit, e.g. 3号楼2单元", "order": 1,
     "description": "楼栋单元 (building and unit) where the problem is", "values": []},
    {"variable": True, "code": "urgency", "datatype": "singlevaluelist", "required": False,
     "datatype_description": None, "order": 2, "description": "How urgent the resident thinks it is",
     "values": [{"key": "normal", "name": "一般 (normal)"}, {"key": "urgent", "name": "紧急 (urgent)"}]},
]
"""Attributes every service accepts (service definitions)."""


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which an Open311 API key is stored (the key itself never is)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


# -- discovery and services ---------------------------------------------------------------------------------------


def discovery(base_url: str) -> dict:
    """The GeoReport v2 discovery document for the endpoint at `base_url`."""
    return {
        "changeset": "2026-01-01T00:00:00+08:00",
        "contact": "The city's grid-governance office (网格化服务管理中心)",
        "key_service": "API keys are issued by the administrator with `gridgov complaints api-key NAME`.",
        "endpoints": [{
            "specification": "http://wiki.open311.org/GeoReport_v2",
            "url": base_url.rstrip("/"),
            "changeset": "2026-01-01T00:00:00+08:00",
            "type": "production",
            "formats": ["application/json", "text/xml"],
        }],
    }


async def services(conn: AsyncConnection) -> list[dict]:
    """The active complaint categories as GeoReport v2 services, by code."""
    rows = (await conn.execute(text(
        "SELECT code, name, name_zh, class_kind, major_class, minor_class, keywords FROM category WHERE active "
        "ORDER BY code"))).all()
    return [{
        "service_code": code, "service_name": f"{name_zh} ({name})",
        "description": f"{major}/{minor} ({'部件 component' if kind == 'component' else '事件 event'})",
        "metadata": True, "type": "realtime", "keywords": ",".join(keywords or []), "group": major,
    } for code, name, name_zh, kind, major, minor, keywords in rows]


async def service_definition(conn: AsyncConnection, code: str) -> dict:
    """The attributes a request of service `code` may carry; NotFound for an unknown or inactive code."""
    found = (await conn.execute(text("SELECT 1 FROM category WHERE code = :code AND active"),
                                {"code": code})).first()
    if not found:
        raise NotFound(f"service_code {code} not found")
    return {"service_code": code, "attributes": ATTRIBUTES}


# -- API keys -------------------------------------------------------------------------------------------------------


def new_api_key(url: str, name: str) -> str:
    """Create a key called `name` and return it (only its hash is stored, so it is shown once)."""
    import psycopg

    from gis.db.engine import libpq_url

    key = secrets.token_urlsafe(24)
    with psycopg.connect(libpq_url(url)) as conn:
        try:
            conn.execute("INSERT INTO open311_api_key (name, key_sha256) VALUES (%s, %s)", (name, hash_key(key)))
        except psycopg.errors.UniqueViolation:
            raise InvalidInput(f"an API key called {name!r} exists already") from None
    return key


def revoke_api_key(url: str, name: str) -> None:
    """Revoke the active API key called `name` at once; NotFound when there is none."""
    import psycopg

    from gis.db.engine import libpq_url

    with psycopg.connect(libpq_url(url)) as conn:
        if conn.execute("UPDATE open311_api_key SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL",
                        (name,)).rowcount == 0:
            raise NotFound(f"no active API key called {name!r}")


# -- creating requests ----------------------------------------------------------------------------------------------


@dataclass
class _Cached:
    value: object
    at: float


_GAZETTEERS: dict[str, _Cached] = {}
GAZETTEER_TTL_S = 300.0


async def gazetteer_for(conn: AsyncConnection) -> Gazetteer:
    """The gazetteer of this database, rebuilt at most every few minutes."""
    key = str(conn.engine.url)
    cached = _GAZETTEERS.get(key)
    if cached is None or time.monotonic() - cached.at > GAZETTEER_TTL_S:
        cached = _Cached(await Gazetteer.load_async(conn), time.monotonic())
        _GAZETTEERS[key] = cached
    return cached.value  # type: ignore[return-value]


def _float(form: dict, name: str) -> float | None:
    return optional_float(form.get(name), name)  # strict: no '1_0', no Arabic-Indic digits, finite


async def _key_and_category(conn: AsyncConnection, key: str, code: str) -> tuple[bool, bool]:
    """Whether the key is valid and the category active (one round trip; used when a request has errors)."""
    row = (await conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM open311_api_key WHERE key_sha256 = :hash AND revoked_at IS NULL), "
        "EXISTS (SELECT 1 FROM category WHERE code = :code AND active)"), {"hash": hash_key(key), "code": code})).one()
    return bool(row[0]), bool(row[1])


def _check_attributes(code: str, attributes: dict[str, str]) -> None:
    for attribute in ATTRIBUTES:
        value = attributes.get(attribute["code"])
        if attribute["required"] and not value:
            raise InvalidInput(f"attribute[{attribute['code']}] is required")
        if value and attribute["values"] and value not in {v["key"] for v in attribute["values"]}:
            raise InvalidInput(f"attribute[{attribute['code']}] must be one of "
                                    f"{', '.join(v['key'] for v in attribute['values'])}")
    unknown = set(attributes) - {a["code"] for a in ATTRIBUTES}
    if unknown:
        raise InvalidInput(f"unknown attribute {', '.join(sorted(unknown))} for service {code}")


async def _staged_row(conn: AsyncConnection, form: dict[str, str], attributes: dict[str, str], code: str) -> dict:
    """The request as one staged row (every check that needs no database; geocoding if there is an address)."""
    _check_attributes(code, attributes)
    lat, lon = _float(form, "lat"), _float(form, "long")
    address = (form.get("address_string") or "").strip() or None
    if form.get("address_id") and not address and lat is None:
        raise InvalidInput("address_id is not supported here; give lat and long or address_string")
    if (lat is None) != (lon is None):
        raise InvalidInput("lat and long must be given together")
    if lat is None and address is None:
        raise InvalidInput("a location is required: lat and long, or address_string")
    description = (form.get("description") or "").strip() or None  # the category's name when empty
    if description and len(description) > 4000:
        raise InvalidInput("description is longer than 4000 characters")

    row = {name: None for name in STAGE_COLUMN_NAMES}
    now = datetime.now(timezone.utc)
    requested = (form.get("requested_datetime") or "").strip()
    reported_at = parse_time(requested) if requested else now
    if reported_at is None:
        raise InvalidInput(f"requested_datetime {requested!r} is not a usable time")
    if problem := time_problem(reported_at, "requested_datetime", now):
        raise InvalidInput(problem)
    row.update(row_no=1, source="open311", category_code=code, description=description, address=address,
               reported_at=reported_at, local_day=reported_at.astimezone(LOCAL_ZONE).date(),
               token=secrets.token_urlsafe(12))
    if lat is not None:
        system = crs_module.normalise_crs(form.get("crs") or "EPSG:4326")
        x_lon, y_lat = crs_module.to_storage(lon, lat, system)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) and system in ("EPSG:4326", "EPSG:4490"):
            raise InvalidInput("lat must lie within [-90, 90] and long within [-180, 180]")
        row.update(lon=x_lon, lat=y_lat, original_x=lon, original_y=lat, original_crs=system,
                   match_level="coordinates", match_score=1.0)
    geocode_text = " ".join(filter(None, [address, attributes.get("building_unit")])) or None
    if geocode_text:
        match = (await gazetteer_for(conn)).match(geocode_text)
        row.update(addr_level=match.level, addr_street=match.street_code, addr_community=match.community_code,
                   addr_compound=match.compound_code)
        if lat is None:
            row.update(match_level=match.level, match_score=match.score, review_reason=match.review_reason)
            if match.compound_code is not None:
                point = (await conn.execute(text(ADDRESS_POINTS_SQL), {
                    "compounds": [match.compound_code],
                    "numbers": [match.building_number if match.level == "building" else None]})).first()
                if point is not None and point.lon is not None:
                    row.update(lon=point.lon, lat=point.lat, building_code=point.building_code)
                    if point.building_code is None and match.level == "building":
                        row["match_level"] = "compound"
    first, last = (form.get("first_name") or "").strip(), (form.get("last_name") or "").strip()
    row["reporter_name"] = (last + first) or None  # Chinese order: family name first
    row["reporter_phone"] = (form.get("phone") or "").strip() or None
    extra = {k: form[k] for k in ("email", "device_id", "account_id", "media_url") if form.get(k)}
    if lat is None and geocode_text and not match.auto and match.candidates:
        extra["geocoding_candidates"] = match.candidates  # ranked, for the person who places it
    row["extra"] = json.dumps(extra, ensure_ascii=False) if extra else None
    row["attributes"] = json.dumps(attributes, ensure_ascii=False) if attributes else None
    return row


async def create_request(conn: AsyncConnection, form: dict[str, str], attributes: dict[str, str]) -> dict:
    """Store one POSTed request as a complaint (placed like any other) and return the spec's answer.

    Errors keep the spec's precedence (key, then service code, then the rest). A valid request costs one
    statement and the commit: the key and category checks ride along in the statement that stores it."""
    key = (form.get("api_key") or "").strip()
    if not key:
        raise Forbidden("api_key is required to submit a request")
    code = (form.get("service_code") or "").strip()
    from gis.dispatch import store as dispatch_store  # a missing service_code is filled when the model is sure

    code, suggestion, filled = await dispatch_store.for_intake(conn, code, form.get("description"))
    code = code or ""
    try:
        if not code:
            raise InvalidInput("service_code is required" if suggestion is None
                               else dispatch_store.choose_message(suggestion))
        row = await _staged_row(conn, form, attributes, code)
    except InvalidInput as error:
        # Only a failing request pays for a separate look-up, to report the key or the category first.
        key_ok, category_ok = await _key_and_category(conn, key, code)
        if not key_ok:
            raise Forbidden("api_key is not valid") from None
        if code and not category_ok:
            raise InvalidInput(f"service_code {code} not found") from None
        raise error

    join = await _join_target(conn, form, row)
    settings = city_settings()
    params = {**row, "key_hash": hash_key(key), "snap_m": settings.snap_tolerance_m,
              "snap_deg": degrees_for(settings.snap_tolerance_m), "radius_m": settings.duplicate_radius_m,
              "radius_deg": degrees_for(settings.duplicate_radius_m),
              "window_days": settings.duplicate_window_days}
    sql = one_request_sql(CLOSED_TICKET_FILTER)
    stored = (await conn.execute(text(sql), params)).one()
    if stored.key_id is None:
        await conn.rollback()
        raise Forbidden("api_key is not valid")
    if stored.category_name is None:
        await conn.rollback()
        raise InvalidInput(f"service_code {code} not found")
    if suggestion is not None:
        await dispatch_store.record(conn, stored.id, suggestion, filled)
    if join is not None:
        await _join(conn, stored.id, join)
    await conn.commit()
    notice = {"inside": "受理成功 (received)",
              "snapped": "受理成功，位置已就近归入网格 (received, placed on the nearest grid)",
              "review": "受理成功，待人工定位 (received, awaiting placement by hand)"}[stored.placement]
    if join is not None:
        notice = f"受理成功，已加入工单 #{join} ({workflow.JOIN_NOTE}; joined an existing request)"
    created = {"service_request_id": str(stored.id), "service_notice": notice, "account_id": form.get("account_id"),
               "token": row["token"]}
    if parse_flag(form, "extensions") and row["lon"] is not None:
        found = await similar.likely_duplicates(conn, PUBLIC_PRINCIPAL, _as_new(row, stored.id))
        created["extended_attributes"] = {"similar_requests": found["similar"],
                                          "joined_ticket_id": join, "similar_rule": found["rule"]}
    return created


def _as_new(row: dict, exclude: int | None = None) -> similar.NewReport:
    """A staged request as the similarity rule reads it."""
    return similar.NewReport(lon=row["lon"], lat=row["lat"], at=row["reported_at"], text=row["description"],
                             category_code=row["category_code"], exclude_complaint_id=exclude)


async def _join_target(conn: AsyncConnection, form: dict[str, str], row: dict) -> int | None:
    """The ticket a request joins (`join_service_request_id`, an extension: the request it repeats), checked by
    the similarity rule as the public sees it; None when none is asked."""
    wanted = (form.get("join_service_request_id") or "").strip()
    if not wanted:
        return None
    if not wanted.isdigit() or len(wanted) > 18:
        raise InvalidInput("join_service_request_id 须为要加入的诉求编号（service_request_id）")
    if row["lon"] is None:
        raise InvalidInput("加入已有诉求需要位置（lat 和 long）")
    ticket = (await conn.execute(text("SELECT id FROM ticket WHERE complaint_id = :id"),
                                 {"id": int(wanted)})).scalar_one_or_none()
    if ticket is None:
        raise InvalidInput(f"没有诉求 {wanted}，无法加入")
    await similar.check_joinable(conn, PUBLIC_PRINCIPAL, _as_new(row), ticket)
    return ticket


async def _join(conn: AsyncConnection, complaint_id: int, into: int) -> None:
    """The stored request's ticket joins ticket `into` (居民附议/重复反映), in the request's transaction."""
    ticket = (await conn.execute(text("SELECT id FROM ticket WHERE complaint_id = :id"),
                                 {"id": complaint_id})).scalar_one()
    await workflow.join_reported(conn, ticket, into, "open311")


# -- reading requests -----------------------------------------------------------------------------------------------
#
# GET requests takes the spec's filters (service_request_id, service_code, start_date, end_date, status) and the
# extensions its clients added: `page`/`page_size`, `updated_after`/`updated_before`, `lat`/`long`/`radius`,
# `just_count` and `extensions`. Every place filter tests the place the public sees (gis.access.visibility), and
# every answer is the public's.

PAGE_SIZE_MAX = MAX_RESULTS
"""page_size is 1 to 1000 (the spec's cap); without it a page holds 1000 requests."""
PAGE_MAX = 100_000
"""page is 1 to 100000 (1 is the first)."""
DEFAULT_RADIUS_M = 500.0
RADIUS_MIN_M, RADIUS_MAX_M = 1.0, 20_000.0
"""radius (metres around lat/long) is 1 to 20000, 500 when not given."""
EXPORT_MAX_DAYS = 366
"""The bulk export covers one period of at most 366 days, given by start_date and end_date."""
EXPORT_FORMATS = ("json", "csv")
EXPORT_CHUNK_ROWS = 2_000
ORDER_SQL = "c.reported_at DESC, c.id DESC"
"""The one order of GET requests: newest first, the id breaking ties, so pages neither overlap nor skip."""

STATE_NAMES = {**STATE_ZH, "reported": "已上报"}
"""The closed loop's states in Chinese, as the detailed status (详细状态)."""
ACTION_NAMES = {**{t.action: t.title_zh for t in TRANSITIONS.values()},
                "report": "上报", "auto_dispatch": "派遣", "reassign": "改派"}
"""The actions of the history in Chinese, for the public history's notes."""
MEDIA_NOTE = (
    "The public sees no photos: the policy's public view has photos=False; ticket photos are staff's pictures of a "
    "scene or a door (they would undo the snapped place) and carry no public flag, and a resident's own media_url "
    "is resident content, shown as the description is: not to the public.")
"""Why media_url is always empty in GeoReport answers (the README quotes this decision)."""

CSV_COLUMNS = ("service_request_id", "status", "detailed_status", "detailed_status_name", "service_code",
               "service_name", "agency_responsible", "requested_datetime", "updated_datetime", "expected_datetime",
               "address", "lat", "long", "status_notes")
"""The bulk export's CSV columns (JSON carries the same fields as GET requests)."""


def _w3c(value: str, name: str) -> datetime:
    parsed = parse_time(value)
    if parsed is None:
        raise InvalidInput(f"{name} must be a W3C date-time such as 2026-01-31T09:00:00+08:00")
    return parsed


def _iso(value: datetime | None) -> str | None:
    return iso_text(value, LOCAL_ZONE)  # None for ±infinity; never an overflow (gis.times)


def parse_flag(params: dict[str, str], name: str) -> bool:
    """A true/false parameter: absent or blank is false; anything but true or false is a 400."""
    value = (params.get(name) or "").strip().lower()
    if value not in ("", "true", "false"):
        raise InvalidInput(f"{name} 只能是 true 或 false，而不是 {value[:40]!r}")
    return value == "true"


@dataclass(frozen=True)
class Selection:
    """A parsed GET requests query: the WHERE clause and its arguments over the public rows `c`, the page, and
    what the answer carries."""

    where: str
    args: dict
    page: int
    page_size: int
    extensions: bool
    just_count: bool


def _time_pair(params: dict[str, str], low: str, high: str) -> tuple[datetime | None, datetime | None]:
    start = _w3c(params[low], low) if params.get(low) else None
    end = _w3c(params[high], high) if params.get(high) else None
    if start and end and start > end:
        raise InvalidInput(f"{low} must not be after {high}" if low == "start_date"
                           else f"{low} 不能晚于 {high}")
    return start, end


def _near(params: dict[str, str], where: list[str], args: dict) -> None:
    """lat/long/radius: the requests whose public (snapped) place lies within radius metres of the point."""
    lat = optional_float(params.get("lat"), "lat", low=-90, high=90)
    lon = optional_float(params.get("long"), "long", low=-180, high=180)
    radius = optional_float(params.get("radius"), "radius", low=RADIUS_MIN_M, high=RADIUS_MAX_M)
    if (lat is None) != (lon is None):
        raise InvalidInput("lat 和 long 必须同时给出")
    if lat is None:
        if radius is not None:
            raise InvalidInput("radius 需要与 lat 和 long 一起给出")
        return
    where.append(place_near_sql(PUBLIC_VIEW, "c.geom", "CAST(:near_lon AS float8)", "CAST(:near_lat AS float8)",
                                "CAST(:near_m AS float8)"))
    args.update(near_lon=lon, near_lat=lat, near_m=DEFAULT_RADIUS_M if radius is None else radius)


def _filters(params: dict[str, str], where: list[str], args: dict, *, default_window: bool) -> None:
    """The filters other than ids: service codes, the time windows, status and the circle."""
    codes = [part.strip() for part in (params.get("service_code") or "").split(",") if part.strip()]
    if codes:
        where.append("c.category_code = ANY(:codes)")
        args["codes"] = codes
    start, end = _time_pair(params, "start_date", "end_date")
    after, before = _time_pair(params, "updated_after", "updated_before")
    if default_window and not (start or end or after or before):
        start = datetime.now(timezone.utc) - timedelta(days=DEFAULT_WINDOW_DAYS)
    for value, name, test in ((start, "start", "c.reported_at >= :start"), (end, "end", "c.reported_at <= :end"),
                              (after, "after", "c.updated >= :after"), (before, "before", "c.updated <= :before")):
        if value is not None:
            where.append(test)
            args[name] = value
    statuses = {part.strip() for part in (params.get("status") or "").split(",") if part.strip()}
    if statuses - {"open", "closed"}:
        raise InvalidInput("status must be open, closed or both (comma-separated)")
    if len(statuses) == 1:
        where.append("c.open_closed = :status")
        args["status"] = statuses.pop()
    _near(params, where, args)


def parse_selection(params: dict[str, str]) -> Selection:
    """GET requests' parameters, checked (InvalidInput in Chinese for the extensions' parameters): by ids (the
    other filters are then ignored, as the spec says), or by service codes, time window (default the last 90 days
    when no requested or updated time is given), status and circle; then the page and what the answer carries."""
    where, args = ["TRUE"], {}
    ids = [part.strip() for part in (params.get("service_request_id") or "").split(",") if part.strip()]
    if ids:
        if not all(part.isdigit() and len(part) <= 18 for part in ids):
            raise InvalidInput("service_request_id must be a comma-separated list of request ids")
        where.append("c.id = ANY(:ids)")
        args["ids"] = [int(part) for part in ids]
    else:
        _filters(params, where, args, default_window=True)
    page = parse_int(params.get("page") or "1", "page", low=1, high=PAGE_MAX)
    page_size = parse_int(params.get("page_size") or str(PAGE_SIZE_MAX), "page_size", low=1, high=PAGE_SIZE_MAX)
    return Selection(" AND ".join(where), args, page, page_size, parse_flag(params, "extensions"),
                     parse_flag(params, "just_count"))


def _public_rows_sql() -> str:
    """Every request as the public sees it, one row each (`c` over complaint, its category and its ticket)."""
    place = place_sql(PUBLIC_VIEW, "c.geom")
    return f"""
        SELECT c.id, CASE WHEN t.state IN {FINAL_SQL} THEN 'closed' ELSE 'open' END AS open_closed, t.id AS ticket_id,
               t.state, c.category_code, cat.name_zh, cat.name,
               {text_sql(PUBLIC_VIEW, "c.description")} AS description, {address_sql(PUBLIC_VIEW, "c")} AS address,
               c.reported_at, ST_Y({place}) AS lat, ST_X({place}) AS lon, c.placement,
               CASE WHEN t.state = 'rejected' THEN t.reject_reason
                    WHEN t.state = 'merged' THEN 'merged into another request' END AS status_notes,
               coalesce(t.updated_at, c.created_at) AS updated, t.due_at,
               coalesce(t.department, t.assignee_kind, cat.responsible_kind) AS agency, c.geom
        FROM complaint c JOIN category cat ON cat.code = c.category_code
        LEFT JOIN ticket t ON t.complaint_id = c.id"""


def _record(row, extensions: bool) -> dict:
    """One public row in the spec's shape; with `extensions`, its detailed status (the notes are added after)."""
    record = {
        "service_request_id": str(row.id), "status": row.open_closed, "status_notes": mask_numbers(row.status_notes),
        "service_name": f"{row.name_zh} ({row.name})", "service_code": row.category_code,
        "description": row.description, "agency_responsible": row.agency,
        "service_notice": "待人工定位 (awaiting placement)" if row.placement == "review" else None,
        "requested_datetime": _iso(row.reported_at), "updated_datetime": _iso(row.updated),
        "expected_datetime": _iso(row.due_at), "address": row.address, "address_id": None, "zipcode": None,
        "lat": round(row.lat, 7) if row.lat is not None else None,
        "long": round(row.lon, 7) if row.lon is not None else None,
        "media_url": None,  # MEDIA_NOTE
    }
    if extensions:
        record["extended_attributes"] = {"detailed_status": row.state,
                                         "detailed_status_name": STATE_NAMES.get(row.state),
                                         "notes": [], "media_urls": []}
    return record


async def public_notes(conn: AsyncConnection, ticket_ids: list[int]) -> dict[int, list[dict]]:
    """The public history of each ticket (`notes`): its dated state changes, oldest first, with the action and the
    state reached in Chinese. Who acted and what they wrote appear only where the policy's history rule lets the
    public see staff in histories (`history_people`), and the events' data only with `handling`."""
    if not ticket_ids:
        return {}
    view = PUBLIC_VIEW
    rows = (await conn.execute(text(f"""
        SELECT e.ticket_id, e.at, e.action, e.to_state,
               {'e.actor' if view.history_people else 'NULL'} AS actor,
               {'e.note' if view.history_people else 'NULL'} AS note
        FROM ticket_event e
        WHERE e.ticket_id = ANY(:ids) AND e.to_state IS NOT NULL AND e.from_state IS DISTINCT FROM e.to_state
        ORDER BY e.ticket_id, e.at, e.id"""), {"ids": ticket_ids})).all()
    notes: dict[int, list[dict]] = {}
    for row in rows:
        note = {"datetime": _iso(row.at), "status": row.to_state, "status_name": STATE_NAMES.get(row.to_state),
                "action": ACTION_NAMES.get(row.action, STATE_NAMES.get(row.to_state))}
        if view.history_people:
            note.update(actor=row.actor, note=row.note)
        notes.setdefault(row.ticket_id, []).append(note)
    return notes


async def _select(conn: AsyncConnection, where: str, args: dict, *, extensions: bool = False,
                  limit: int = MAX_RESULTS, offset: int = 0) -> list[dict]:
    sql = f"""SELECT * FROM ({_public_rows_sql()}) c WHERE {where} ORDER BY {ORDER_SQL}
              LIMIT :page_limit OFFSET :page_offset"""
    rows = (await conn.execute(text(sql), {**args, "page_limit": limit, "page_offset": offset})).all()
    out = [_record(row, extensions) for row in rows]
    if extensions:
        notes = await public_notes(conn, [row.ticket_id for row in rows if row.ticket_id is not None])
        for row, record in zip(rows, out):
            record["extended_attributes"]["notes"] = notes.get(row.ticket_id, [])
    return out


async def query_requests(conn: AsyncConnection, params: dict[str, str]) -> list[dict] | dict:
    """GET requests (see `parse_selection`): one page of the selection, newest first; with just_count=true only
    `{"count": N}`, the size of the whole selection."""
    selection = parse_selection(params)
    if selection.just_count:
        count = (await conn.execute(text(f"SELECT count(*) FROM ({_public_rows_sql()}) c WHERE {selection.where}"),
                                    selection.args)).scalar_one()
        return {"count": count}
    return await _select(conn, selection.where, selection.args, extensions=selection.extensions,
                         limit=selection.page_size, offset=(selection.page - 1) * selection.page_size)


async def get_request(conn: AsyncConnection, request_id: str, extensions: bool = False) -> list[dict]:
    """One request in the spec's shape (a list of one), in the public view; NotFound for an unknown or non-numeric
    id."""
    if not request_id.isdigit() or len(request_id) > 18:
        raise NotFound(f"service_request_id {request_id} not found")
    found = await _select(conn, "c.id = :id", {"id": int(request_id)}, extensions=extensions)
    if not found:
        raise NotFound(f"service_request_id {request_id} not found")
    return found


async def token_lookup(conn: AsyncConnection, token: str) -> list[dict]:
    """The service request id a submission token stands for, in the spec's shape; NotFound for an unknown token."""
    row = (await conn.execute(text("SELECT complaint_id FROM complaint_intake WHERE token = :token"),
                              {"token": token})).first()
    if row is None:
        raise NotFound(f"token {token} not found")
    return [{"service_request_id": str(row[0]), "token": token}]


# -- the bulk export ------------------------------------------------------------------------------------------------


def parse_export(params: dict[str, str], fmt: str) -> Selection:
    """The bulk export's parameters: one period (start_date and end_date, both required, at most 366 days apart)
    and the same filters as GET requests (service_code, status, updated_after/updated_before, lat/long/radius);
    no paging (the file holds the whole period) and no ids."""
    if fmt not in EXPORT_FORMATS:
        raise NotFound("导出格式只能是 .json 或 .csv")
    unsupported = sorted({"service_request_id", "page", "page_size", "just_count"} & {
        name for name, value in params.items() if value})
    if unsupported:
        raise InvalidInput(f"批量导出不接受参数 {', '.join(unsupported)}：导出包含整个时段")
    if not params.get("start_date") or not params.get("end_date"):
        raise InvalidInput("批量导出需要 start_date 和 end_date（一个时段，最长 366 天）")
    where, args = ["TRUE"], {}
    _filters(params, where, args, default_window=False)
    if args["end"] - args["start"] > timedelta(days=EXPORT_MAX_DAYS):
        raise InvalidInput(f"批量导出的时段最长 {EXPORT_MAX_DAYS} 天")
    return Selection(" AND ".join(where), args, 1, 0, parse_flag(params, "extensions"), False)


def _csv_lines(records: list[dict], header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        out.write("\ufeff")  # so spreadsheet programs read the Chinese text
        writer.writerow(CSV_COLUMNS)
    for record in records:
        extended = record.get("extended_attributes") or {}
        writer.writerow(["" if value is None else value for value in (
            record.get(name, extended.get(name)) for name in CSV_COLUMNS)])
    return out.getvalue().encode("utf-8")


async def export_requests(conn: AsyncConnection, selection: Selection, fmt: str) -> AsyncIterator[bytes]:
    """The period's requests as one file, oldest first, streamed in chunks through a server-side cursor in one
    read-only repeatable-read transaction (every chunk sees the same requests); the same public rows and rules as
    GET requests. JSON is one array (with `extensions` in its records when asked); CSV has a BOM, a header and
    the columns of `CSV_COLUMNS` (the detailed status always). Closing the iterator ends the transaction."""
    if conn.in_transaction():
        await conn.commit()  # a read route holds nothing to keep; the export needs a snapshot of its own
    sql = f"SELECT * FROM ({_public_rows_sql()}) c WHERE {selection.where} ORDER BY c.reported_at, c.id"
    try:
        await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        yield b"[" if fmt == "json" else _csv_lines([], header=True)
        result = await conn.stream(text(sql), selection.args)
        first = True
        while rows := await result.fetchmany(EXPORT_CHUNK_ROWS):
            records = [_record(row, selection.extensions or fmt == "csv") for row in rows]
            if selection.extensions and fmt == "json":
                notes = await public_notes(conn, [row.ticket_id for row in rows if row.ticket_id is not None])
                for row, record in zip(rows, records):
                    record["extended_attributes"]["notes"] = notes.get(row.ticket_id, [])
            if fmt == "csv":
                yield _csv_lines(records, header=False)
                continue
            body = ",".join(json.dumps(record, ensure_ascii=False, separators=(",", ":")) for record in records)
            yield (body if first else "," + body).encode("utf-8")
            first = False
        if fmt == "json":
            yield b"]"
    finally:
        if conn.in_transaction():
            await conn.rollback()
