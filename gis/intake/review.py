"""The review queue (待人工定位) and what people decide on intake: placing a complaint by hand, confirming or
dismissing a possible duplicate, and reading the responsible parties recorded at intake."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal, complaint_scope_sql
from gis.errors import Forbidden, InvalidInput, NotFound
from gis.intake.placement import PARTY_COLUMNS, party_insert
from gis.layers import crs as crs_module
from gis.tickets.routing_sql import REROUTE_SQL

PLACING_ROLES = ("admin", "street", "community", "grid_worker")


def _require(principal: Principal, roles: tuple[str, ...], what: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"{what} is for {', '.join(roles)} users")


async def review_queue(conn: AsyncConnection, principal: Principal, limit: int = 200,
                       community_code: str | None = None) -> list[dict]:
    """Complaints awaiting placement by hand, oldest first, within the caller's scope."""
    _require(principal, PLACING_ROLES, "the review queue")
    scope, params = complaint_scope_sql(principal, "c")
    where = [scope, "c.placement = 'review'"]
    if community_code:
        where.append("c.community_code = :community")
        params["community"] = community_code
    personal = "c.reporter_name, c.reporter_phone" if principal.sees_personal_data else "NULL, NULL"
    rows = (await conn.execute(text(f"""
        SELECT c.id, c.source, c.external_id, c.category_code, c.description, c.address, c.reported_at,
               ST_X(c.geom), ST_Y(c.geom), c.match_level, c.community_code, c.street_code, ci.review_reason,
               ci.match_score, {personal}, ci.extra -> 'geocoding_candidates'
        FROM complaint c LEFT JOIN complaint_intake ci ON ci.complaint_id = c.id
        WHERE {' AND '.join(where)} ORDER BY c.reported_at, c.id LIMIT :limit"""), {**params, "limit": limit})).all()
    keys = ("id", "source", "external_id", "category_code", "description", "address", "reported_at", "lon", "lat",
            "match_level", "community_code", "street_code", "review_reason", "match_score", "reporter_name",
            "reporter_phone", "candidates")
    return [dict(zip(keys, row)) for row in rows]


async def _visible(conn: AsyncConnection, principal: Principal, complaint_id: int) -> dict:
    scope, params = complaint_scope_sql(principal, "c")
    row = (await conn.execute(text(
        f"SELECT c.id, c.placement, c.reported_at FROM complaint c WHERE c.id = :id AND {scope}"),
        {**params, "id": complaint_id})).mappings().first()
    if row is None:
        raise NotFound(f"no complaint {complaint_id}")
    return dict(row)


async def place_by_hand(conn: AsyncConnection, principal: Principal, complaint_id: int, *,
                        lon: float | None = None, lat: float | None = None, crs: str = "EPSG:4326",
                        micro_grid_code: str | None = None) -> dict:
    """Place a complaint on a micro-grid by hand: at a point (its micro-grid found as on intake) or on a named
    micro-grid. Placement becomes `manual`, who and when are recorded, the parties snapshot is taken anew."""
    _require(principal, PLACING_ROLES, "placing complaints")
    await _visible(conn, principal, complaint_id)
    if (lon is None) != (lat is None):
        raise InvalidInput("give lon and lat together")
    if lon is None and not micro_grid_code:
        raise InvalidInput("give a point (lon, lat) or a micro_grid_code")
    point = None
    if lon is not None:
        x, y = crs_module.to_storage(lon, lat, crs)
        point = {"x": x, "y": y}
    micro = (await conn.execute(text("""
        SELECT m.id, m.code, m.grid_code, m.compound_code, g.community_code, cm.street_code,
               ST_X(ST_PointOnSurface(m.geom)) AS px, ST_Y(ST_PointOnSurface(m.geom)) AS py
        FROM micro_grid m
        JOIN complaint c ON c.id = :id
        LEFT JOIN grid g ON g.code = m.grid_code AND g.valid_to IS NULL
        LEFT JOIN community cm ON cm.code = g.community_code AND cm.valid_to IS NULL
        WHERE m.valid_from <= (c.reported_at AT TIME ZONE 'Asia/Shanghai')::date
          AND (m.valid_to IS NULL OR m.valid_to > (c.reported_at AT TIME ZONE 'Asia/Shanghai')::date)
          AND CASE WHEN CAST(:code AS text) IS NOT NULL THEN m.code = CAST(:code AS text)
                   ELSE ST_Intersects(m.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) END
        ORDER BY m.code LIMIT 1"""), {"id": complaint_id, "code": micro_grid_code,
                                      "x": point["x"] if point else None, "y": point["y"] if point else None})
    ).mappings().first()
    if micro is None:
        raise InvalidInput(f"micro-grid {micro_grid_code} does not exist" if micro_grid_code
                           else "the point lies in no micro-grid; give micro_grid_code")
    x, y = (point["x"], point["y"]) if point else (micro["px"], micro["py"])
    await conn.execute(text("""
        UPDATE complaint c SET placement = 'manual',
            geom = ST_SetSRID(ST_MakePoint(CAST(:x AS float8), CAST(:y AS float8)), 4326),
            micro_grid_id = CAST(:mid AS bigint), micro_grid_code = CAST(:mcode AS text),
            grid_code = CAST(:grid AS text), compound_code = CAST(:compound AS text),
            community_code = CAST(:community AS text), street_code = CAST(:street AS text),
            building_code = (SELECT b.code FROM building b
                             WHERE b.micro_grid_code = CAST(:mcode AS text) AND b.valid_to IS NULL
                               AND ST_Intersects(b.geom,
                                                 ST_SetSRID(ST_MakePoint(CAST(:x AS float8), CAST(:y AS float8)), 4326))
                             ORDER BY b.code LIMIT 1),
            original_x = CASE WHEN c.original_x IS NULL AND CAST(:ox AS float8) IS NOT NULL THEN CAST(:ox AS float8)
                              ELSE c.original_x END,
            original_y = CASE WHEN c.original_y IS NULL AND CAST(:oy AS float8) IS NOT NULL THEN CAST(:oy AS float8)
                              ELSE c.original_y END,
            original_crs = CASE WHEN c.original_crs IS NULL AND CAST(:ox AS float8) IS NOT NULL THEN CAST(:ocrs AS text)
                                ELSE c.original_crs END
        WHERE c.id = :id"""), {
        "x": x, "y": y, "mid": micro["id"], "mcode": micro["code"], "grid": micro["grid_code"],
        "compound": micro["compound_code"], "community": micro["community_code"], "street": micro["street_code"],
        "ox": lon, "oy": lat, "ocrs": crs_module.normalise_crs(crs) if lon is not None else None, "id": complaint_id})
    await conn.execute(text("""
        INSERT INTO complaint_intake (complaint_id, placed_by, placed_at) VALUES (:id, :who, now())
        ON CONFLICT (complaint_id) DO UPDATE SET placed_by = excluded.placed_by, placed_at = excluded.placed_at"""),
        {"id": complaint_id, "who": principal.username})
    await conn.execute(text("DELETE FROM complaint_party WHERE complaint_id = :id"), {"id": complaint_id})
    await conn.execute(text(party_insert("(SELECT * FROM complaint WHERE id = :id)")), {"id": complaint_id})
    # its ticket followed the new place (a trigger); one still unregistered is now routed by it
    await conn.execute(text(REROUTE_SQL), {"ids": [complaint_id]})
    await conn.commit()
    return await complaint_placement(conn, principal, complaint_id)


async def complaint_placement(conn: AsyncConnection, principal: Principal, complaint_id: int) -> dict:
    """Where a complaint was placed, how, and who was responsible there at intake."""
    await _visible(conn, principal, complaint_id)
    row = (await conn.execute(text(f"""
        SELECT c.id, c.placement, c.match_level, c.micro_grid_code, c.grid_code, c.community_code, c.street_code,
               c.compound_code, c.building_code, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, c.original_x,
               c.original_y, c.original_crs, ci.match_score, ci.snap_distance_m, ci.review_reason, ci.address_check,
               ci.placed_by, ci.placed_at, {', '.join('p.' + name for name in PARTY_COLUMNS)}
        FROM complaint c LEFT JOIN complaint_intake ci ON ci.complaint_id = c.id
        LEFT JOIN complaint_party p ON p.complaint_id = c.id WHERE c.id = :id"""), {"id": complaint_id})
    ).mappings().first()
    out = dict(row)
    out["parties"] = {name: out.pop(name) for name in PARTY_COLUMNS}
    return out


async def duplicates_of(conn: AsyncConnection, principal: Principal, complaint_id: int) -> list[dict]:
    """Possible duplicate links in either direction of a complaint."""
    await _visible(conn, principal, complaint_id)
    rows = (await conn.execute(text("""
        SELECT id, complaint_id, duplicate_of_id, round(distance_m::numeric, 1)::float8,
               round(hours_apart::numeric, 2)::float8, state, decided_by, decided_at
        FROM complaint_duplicate WHERE complaint_id = :id OR duplicate_of_id = :id ORDER BY id"""),
        {"id": complaint_id})).all()
    keys = ("id", "complaint_id", "duplicate_of_id", "distance_m", "hours_apart", "state", "decided_by",
            "decided_at")
    return [dict(zip(keys, row)) for row in rows]


async def decide_duplicate(conn: AsyncConnection, principal: Principal, link_id: int, state: str) -> dict:
    """Confirm or dismiss a possible duplicate; the complaints themselves stay."""
    _require(principal, PLACING_ROLES, "deciding duplicates")
    if state not in ("confirmed", "dismissed"):
        raise InvalidInput("state must be confirmed or dismissed")
    link = (await conn.execute(text("SELECT complaint_id FROM complaint_duplicate WHERE id = :id"),
                               {"id": link_id})).first()
    if link is None:
        raise NotFound(f"no duplicate link {link_id}")
    await _visible(conn, principal, link[0])
    await conn.execute(text("""
        UPDATE complaint_duplicate SET state = :state, decided_by = :who, decided_at = now() WHERE id = :id"""),
        {"state": state, "who": principal.username, "id": link_id})
    await conn.commit()
    return next(d for d in await duplicates_of(conn, principal, link[0]) if d["id"] == link_id)
