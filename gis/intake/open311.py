"""Open311 GeoReport v2 (市民诉求开放接口): services from the category catalogue, requests stored as complaints.

service_code = category.code; service_request_id = complaint.id; status comes from the complaint's ticket
(closed when the ticket is in a final state — rejected, closed or merged — open otherwise). Reads need no key, so
they answer as the public sees (gis.access.visibility): the place snapped, the address to the compound, no description,
no reporter.

This module knows no HTTP: it returns the spec's payloads as Python values and refuses with the core's typed
errors (InvalidInput, Forbidden, NotFound; gis.errors). The HTTP layer renders both, in JSON or XML, with the
spec's MIME types and error list (api/open311_format.py).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.visibility import POLICY, address_sql, mask_numbers, place_sql, text_sql
from gis.errors import Forbidden, InvalidInput, NotFound
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
from gis.numbers import optional_float
from gis.settings import city_settings
from gis.tickets.models import FINAL_SQL
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
    await conn.commit()
    notice = {"inside": "受理成功 (received)",
              "snapped": "受理成功，位置已就近归入网格 (received, placed on the nearest grid)",
              "review": "受理成功，待人工定位 (received, awaiting placement by hand)"}[stored.placement]
    return {"service_request_id": str(stored.id), "service_notice": notice, "account_id": form.get("account_id"),
            "token": row["token"]}


# -- reading requests -----------------------------------------------------------------------------------------------


def _w3c(value: str, name: str) -> datetime:
    parsed = parse_time(value)
    if parsed is None:
        raise InvalidInput(f"{name} must be a W3C date-time such as 2026-01-31T09:00:00+08:00")
    return parsed


def _iso(value: datetime | None) -> str | None:
    return iso_text(value, LOCAL_ZONE)  # None for ±infinity; never an overflow (gis.times)


async def query_requests(conn: AsyncConnection, params: dict[str, str]) -> list[dict]:
    """GET requests: by ids, service codes, time window (default the last 90 days) and status."""
    where, args = ["TRUE"], {}
    ids = [part.strip() for part in (params.get("service_request_id") or "").split(",") if part.strip()]
    if ids:
        if not all(part.isdigit() for part in ids):
            raise InvalidInput("service_request_id must be a comma-separated list of request ids")
        where.append("c.id = ANY(:ids)")
        args["ids"] = [int(part) for part in ids]
    else:
        codes = [part.strip() for part in (params.get("service_code") or "").split(",") if part.strip()]
        if codes:
            where.append("c.category_code = ANY(:codes)")
            args["codes"] = codes
        end = _w3c(params["end_date"], "end_date") if params.get("end_date") else None
        start = _w3c(params["start_date"], "start_date") if params.get("start_date") else None
        if start is None and end is None:
            start = datetime.now(timezone.utc) - timedelta(days=DEFAULT_WINDOW_DAYS)
        if start and end and start > end:
            raise InvalidInput("start_date must not be after end_date")
        if start:
            where.append("c.reported_at >= :start")
            args["start"] = start
        if end:
            where.append("c.reported_at <= :end")
            args["end"] = end
        statuses = {part.strip() for part in (params.get("status") or "").split(",") if part.strip()}
        if statuses - {"open", "closed"}:
            raise InvalidInput("status must be open, closed or both (comma-separated)")
        if statuses == {"open"}:
            where.append("status = 'open'")
        elif statuses == {"closed"}:
            where.append("status = 'closed'")
    return await _select(conn, " AND ".join(where), args)


async def get_request(conn: AsyncConnection, request_id: str) -> list[dict]:
    """One request in the spec's shape (a list of one), in the public view; NotFound for an unknown or non-numeric
    id."""
    if not request_id.isdigit():
        raise NotFound(f"service_request_id {request_id} not found")
    found = await _select(conn, "c.id = :id", {"id": int(request_id)})
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


async def _select(conn: AsyncConnection, where: str, args: dict) -> list[dict]:
    place = place_sql(PUBLIC_VIEW, "c.geom")
    sql = f"""
        SELECT * FROM (
            SELECT c.id, CASE WHEN t.state IN {FINAL_SQL} THEN 'closed' ELSE 'open' END AS status,
                   c.category_code, cat.name_zh, cat.name,
                   {text_sql(PUBLIC_VIEW, "c.description")} AS description, {address_sql(PUBLIC_VIEW, "c")} AS address,
                   c.reported_at, ST_Y({place}) AS lat, ST_X({place}) AS lon, c.placement,
                   CASE WHEN t.state = 'rejected' THEN t.reject_reason
                        WHEN t.state = 'merged' THEN 'merged into another request' END,
                   coalesce(t.updated_at, c.created_at), t.due_at,
                   coalesce(t.department, t.assignee_kind, cat.responsible_kind)
            FROM complaint c JOIN category cat ON cat.code = c.category_code
            LEFT JOIN ticket t ON t.complaint_id = c.id) c
        WHERE {where} ORDER BY c.reported_at DESC, c.id DESC LIMIT {MAX_RESULTS}"""
    rows = (await conn.execute(text(sql), args)).all()
    out = []
    for (rid, status, code, name_zh, name, description, address, reported_at, lat, lon, placement, notes, updated,
         due, agency) in rows:
        out.append({
            "service_request_id": str(rid), "status": status, "status_notes": mask_numbers(notes),
            "service_name": f"{name_zh} ({name})", "service_code": code,
            "description": description, "agency_responsible": agency,
            "service_notice": "待人工定位 (awaiting placement)" if placement == "review" else None,
            "requested_datetime": _iso(reported_at), "updated_datetime": _iso(updated),
            "expected_datetime": _iso(due), "address": address, "address_id": None, "zipcode": None,
            "lat": round(lat, 7) if lat is not None else None, "long": round(lon, 7) if lon is not None else None,
            "media_url": None,
        })
    return out
