"""The map's own read queries: the catalogue for filters, party organisations drawn where they serve, and
complaint points in view (place search is gis.serve.search). Each answer is one PostGIS statement."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal, complaint_scope_sql
from gis.access.visibility import place_in_box_sql, place_sql, visibility
from gis.errors import InvalidInput
from gis.serve.bbox import BBox
from gis.tickets.models import overdue_sql


async def categories(conn: AsyncConnection) -> list[dict]:
    """Active complaint categories, for the filter list."""
    rows = await conn.execute(text(
        "SELECT code, name, name_zh, major_class FROM category WHERE active ORDER BY major_class, code"))
    return [dict(row._mapping) for row in rows]


_PARTY_SQL = text(
    """
WITH units AS (
    -- a unit table is read only when a kind it serves is asked for (compounds are many when zoomed out)
    SELECT code, geom, 'community' AS unit_layer FROM community
        WHERE 'community_committee' = ANY(:kinds) AND valid_to IS NULL AND geom && :env
    UNION ALL SELECT code, geom, 'grid' FROM grid
        WHERE 'grid_branch' = ANY(:kinds) AND valid_to IS NULL AND geom && :env
    UNION ALL SELECT code, geom, 'compound' FROM compound
        WHERE 'compound_branch' = ANY(:kinds) AND valid_to IS NULL AND geom && :env
)
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
    'type', 'Feature', 'id', p.code,
    'geometry', ST_AsGeoJSON(ST_PointOnSurface(u.geom), 6)::json,
    'properties', json_build_object('code', p.code, 'kind', p.kind, 'name', p.name, 'unit_code', p.unit_code,
        'unit_layer', u.unit_layer, 'member_count', p.member_count)
) ORDER BY p.code), '[]'::json))::text
FROM party_organisation p JOIN units u ON u.code = p.unit_code
WHERE p.kind = ANY(:kinds)
"""
)

PARTY_KINDS_BY_ZOOM = {
    "community_committee": 0,
    "grid_branch": 14,
    "compound_branch": 15,
}


async def party_organisations_geojson(conn: AsyncConnection, bbox: BBox, kinds: list[str]) -> bytes:
    """Community party committees, grid branches and compound branches as points inside the unit each
    serves (党组织所在), for the units touching `bbox`."""
    unknown = set(kinds) - set(PARTY_KINDS_BY_ZOOM)
    if unknown:
        raise InvalidInput(f"unknown party organisation kinds {sorted(unknown)}; kinds are "
                           f"{', '.join(PARTY_KINDS_BY_ZOOM)}")
    envelope = text("ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)")
    sql = text(_PARTY_SQL.text.replace(":env", envelope.text))
    minx, miny, maxx, maxy = bbox
    body = (await conn.execute(sql, {"minx": minx, "miny": miny, "maxx": maxx, "maxy": maxy,
                                     "kinds": kinds})).scalar_one()
    return body.encode()


async def complaints_geojson(
    conn: AsyncConnection,
    principal: Principal,
    bbox: BBox,
    categories: list[str] | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    states: list[str] | None = None,
    overdue_only: bool = False,
    limit: int = 20_000,
) -> bytes:
    """Complaint points in view, anonymised (no reporter, no description text), within the caller's scope,
    with the state of their ticket and whether it is overdue."""
    if date_from and date_to and date_from > date_to:
        raise InvalidInput("date_from must not be after date_to")
    scope, params = complaint_scope_sql(principal, "k")
    view = visibility(principal)
    where = [place_in_box_sql(view, "k.geom", "ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)"), scope]
    minx, miny, maxx, maxy = bbox
    params.update(minx=minx, miny=miny, maxx=maxx, maxy=maxy, limit=limit)
    if categories:
        where.append("k.category_code = ANY(:categories)")
        params["categories"] = categories
    if date_from:
        where.append("k.reported_at >= :date_from")
        params["date_from"] = date_from
    if date_to:
        where.append("k.reported_at < CAST(:date_to AS date) + 1")
        params["date_to"] = date_to
    if states:
        where.append("t.state = ANY(:states)")
        params["states"] = states
    if overdue_only:
        where.append(overdue_sql("t"))
    point = place_sql(view, "geom")
    sql = f"""
        WITH rows AS (
            SELECT k.id, k.geom, k.category_code, k.reported_at, k.placement, k.grid_code,
                   t.id AS ticket_id, t.state, {overdue_sql("t")} AS overdue
            FROM complaint k LEFT JOIN ticket t ON t.complaint_id = k.id WHERE {' AND '.join(where)}
            ORDER BY k.reported_at DESC LIMIT :limit
        )
        SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
            'type', 'Feature', 'id', id, 'geometry', ST_AsGeoJSON({point}, 6)::json,
            'properties', json_build_object('id', id, 'category', category_code,
                'reported_at', reported_at, 'placement', placement, 'grid_code', grid_code,
                'ticket_id', ticket_id, 'state', state, 'overdue', overdue)
        )), '[]'::json))::text FROM rows
    """
    body = (await conn.execute(text(sql), params)).scalar_one()
    return body.encode()


async def property_companies(conn: AsyncConnection, ids: list[int]) -> list[dict]:
    """Names and latest red/black standing of property companies (public facts), for assignee lists."""
    rows = await conn.execute(text("""
        SELECT pc.id, pc.name, coalesce(ev.standing, 'unrated') AS standing
        FROM property_company pc
        LEFT JOIN LATERAL (SELECT standing FROM company_evaluation e WHERE e.company_id = pc.id
                           ORDER BY e.period DESC LIMIT 1) ev ON TRUE
        WHERE pc.id = ANY(:ids) ORDER BY pc.name"""), {"ids": ids})
    return [dict(row._mapping) for row in rows]


# Roles whose scope is a code prefix of the micro-grid code (street + 3 = community, + 3 = grid, + 3 = micro-grid),
# so the micro-grids themselves can be limited and the complaint counts read from the index alone.
_PREFIX_SCOPES = {"street", "community", "grid_worker"}

_UNIT_COUNT_TEMPLATE = """
WITH units AS MATERIALIZED (
    SELECT {unit_id} AS id, m.code, m.geom FROM {table} m
    WHERE {current}m.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326) AND {{unit_scope}}
),
counts AS (
    SELECT k.{complaint_key} AS id, count(*) AS complaints FROM complaint k
    WHERE k.{complaint_key} = ANY(ARRAY(SELECT {unit_key} FROM units)) AND {{complaint_scope}}
    GROUP BY 1
),
overdue AS ({{overdue}})
SELECT coalesce(json_agg(json_build_array(
    round(ST_X(u.spot)::numeric, 6), round(ST_Y(u.spot)::numeric, 6), c.complaints, coalesce(o.overdue, 0))
), '[]'::json)::text
FROM (SELECT id, ST_PointOnSurface(geom) AS spot FROM units) u
JOIN counts c USING (id) LEFT JOIN overdue o USING (id)
"""
_UNIT_COUNT_SQL = {
    # micro-grids by version row: complaints placed in a since-redrawn micro-grid still count where they were placed
    "micro_grid": _UNIT_COUNT_TEMPLATE.format(unit_id="m.id", table="micro_grid", current="",
                                              complaint_key="micro_grid_id", unit_key="id"),
    # grids by code, drawn at their current boundary
    "grid": _UNIT_COUNT_TEMPLATE.format(unit_id="m.code", table="grid", current="m.valid_to IS NULL AND ",
                                        complaint_key="grid_code", unit_key="code"),
}
# Open overdue tickets, read through the ticket grid index for the grids in view only.
_OVERDUE_SQL = {
    "micro_grid": """
    SELECT k.micro_grid_id AS id, count(*) AS overdue
    FROM (SELECT complaint_id FROM ticket t
          WHERE {overdue}
            AND t.grid_code = ANY(ARRAY(SELECT DISTINCT left(code, 15) FROM units)) AND {ticket_scope} OFFSET 0) t
    JOIN complaint k ON k.id = t.complaint_id
    WHERE k.micro_grid_id = ANY(ARRAY(SELECT id FROM units))
    GROUP BY 1""",
    "grid": """
    SELECT t.grid_code AS id, count(*) AS overdue FROM ticket t
    WHERE {overdue} AND t.grid_code = ANY(ARRAY(SELECT code FROM units))
      AND {ticket_scope}
    GROUP BY 1""",
}
UNIT_LEVELS = tuple(_UNIT_COUNT_SQL)


async def complaint_unit_counts(conn: AsyncConnection, principal: Principal, bbox: BBox,
                                level: str = "micro_grid") -> bytes:
    """Complaints counted per micro-grid (微网格) or grid (网格) for the units touching `bbox`, each count placed at
    a point inside its unit, with how many have an overdue open ticket: `[[lon, lat, complaints, overdue], ...]`.
    The map clusters these when zoomed out, so a city of complaints costs an index-only count, not a million
    points."""
    if level not in _UNIT_COUNT_SQL:
        raise InvalidInput(f"level must be one of {', '.join(UNIT_LEVELS)}")
    minx, miny, maxx, maxy = bbox
    params: dict = {"minx": minx, "miny": miny, "maxx": maxx, "maxy": maxy}
    unit_scope, complaint_scope = "TRUE", "TRUE"
    ticket_scope, scope_params = complaint_scope_sql(principal, "t")
    params.update(scope_params)
    if principal.role in _PREFIX_SCOPES:
        unit_scope = "EXISTS (SELECT 1 FROM unnest(CAST(:scope_codes AS text[])) s WHERE m.code LIKE s || '%')"
    else:
        complaint_scope, _ = complaint_scope_sql(principal, "k")
    overdue = _OVERDUE_SQL[level].format(ticket_scope=ticket_scope, overdue=overdue_sql("t"))
    sql = _UNIT_COUNT_SQL[level].format(unit_scope=unit_scope, complaint_scope=complaint_scope, overdue=overdue)
    body = (await conn.execute(text(sql), params)).scalar_one()
    return body.encode()


_BUILDING_LABELS_SQL = text(
    """
SELECT coalesce(json_agg(json_build_array(round(ST_X(spot)::numeric, 6), round(ST_Y(spot)::numeric, 6), number)),
                '[]'::json)::text
FROM (SELECT ST_PointOnSurface(geom) AS spot, number FROM building
      WHERE valid_to IS NULL AND geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)
      ORDER BY code LIMIT :limit) labelled
"""
)


# The footprint's outer ring, simplified to about half a metre, as offsets from the label's point in millionths of a
# degree (about 0.1 m): [dx1, dy1, dx2, dy2, ...] without the closing vertex, small enough for a phone's view.
_BUILDING_FOOTPRINTS_SQL = text(
    """
SELECT coalesce(json_agg(json_build_array(round(ST_X(spot)::numeric, 6), round(ST_Y(spot)::numeric, 6), number,
                                          ring) ORDER BY code), '[]'::json)::text
FROM (SELECT b.code, b.number, s.spot,
             (SELECT json_agg(v ORDER BY i) FROM (
                 SELECT p.path[1] * 2 AS i, round((ST_X(p.geom) - ST_X(s.spot)) * 1e6)::int AS v
                 FROM ST_DumpPoints(s.outline) p WHERE p.path[1] < ST_NPoints(s.outline)
                 UNION ALL
                 SELECT p.path[1] * 2 + 1, round((ST_Y(p.geom) - ST_Y(s.spot)) * 1e6)::int
                 FROM ST_DumpPoints(s.outline) p WHERE p.path[1] < ST_NPoints(s.outline)) coords) AS ring
      FROM building b
      CROSS JOIN LATERAL (SELECT ST_PointOnSurface(b.geom) AS spot,
                                 ST_ExteriorRing(ST_GeometryN(ST_SimplifyPreserveTopology(b.geom, 0.000005), 1))
                                     AS outline) s
      WHERE b.valid_to IS NULL AND b.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)
      ORDER BY b.code LIMIT :limit) labelled
"""
)


async def building_labels(conn: AsyncConnection, bbox: BBox, limit: int = 3000, footprint: bool = False) -> bytes:
    """Where to write each building's number (楼号) in `bbox`: `[[lon, lat, number], ...]`, a point inside each
    building. The buildings themselves come as vector tiles; the map only needs these for its labels. With
    `footprint`, each row also has the footprint's outer ring as offsets from the point in millionths of a degree
    (`[lon, lat, number, [dx1, dy1, ...]]`), so labels can be placed where they hide no other building."""
    minx, miny, maxx, maxy = bbox
    statement = _BUILDING_FOOTPRINTS_SQL if footprint else _BUILDING_LABELS_SQL
    body = (await conn.execute(statement, {"minx": minx, "miny": miny, "maxx": maxx, "maxy": maxy,
                                           "limit": limit})).scalar_one()
    return body.encode()
