"""Who is responsible here (这里谁负责): for one point, the units of the pyramid it lies in and the parties
that serve them — street office, community, grid and its grid workers, micro-grid, compound, building,
property company with its latest red/black list standing (红黑榜), owners' committee, party organisations.

One PostGIS statement. Each level is looked up inside the level found above it (by code and shape), so the
answer is one consistent chain even on a shared boundary. Contacts (names and phone numbers of people) are
only in the answer when the caller may see personal data.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal
from gis.access.visibility import contacts_sql, visibility
from gis.errors import InvalidInput, NotFound

_SQL = (
    """
WITH pt AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g),
street AS (
    SELECT s.code, s.name, s.district_code FROM street s, pt
    WHERE s.valid_to IS NULL AND ST_Intersects(s.geom, pt.g) ORDER BY s.code LIMIT 1),
district AS (
    SELECT d.code, d.name FROM district d
    WHERE d.valid_to IS NULL AND d.code = (SELECT district_code FROM street)),
community AS (
    SELECT c.code, c.name, c.office_phone FROM community c, pt
    WHERE c.valid_to IS NULL AND c.street_code = (SELECT code FROM street) AND ST_Intersects(c.geom, pt.g)
    ORDER BY c.code LIMIT 1),
grid AS (
    SELECT g.code, g.name, g.households FROM grid g, pt
    WHERE g.valid_to IS NULL AND g.community_code = (SELECT code FROM community) AND ST_Intersects(g.geom, pt.g)
    ORDER BY g.code LIMIT 1),
micro AS (
    SELECT m.code, m.name, m.households, m.compound_code FROM micro_grid m, pt
    WHERE m.valid_to IS NULL AND m.grid_code = (SELECT code FROM grid) AND ST_Intersects(m.geom, pt.g)
    ORDER BY m.code LIMIT 1),
compound AS (
    -- the micro-grid names its compound; the shape is the fallback where it does not
    SELECT c.* FROM compound c, pt
    WHERE c.valid_to IS NULL AND c.community_code = (SELECT code FROM community)
      AND (c.code = (SELECT compound_code FROM micro) OR ST_Intersects(c.geom, pt.g))
    ORDER BY (c.code IS NOT DISTINCT FROM (SELECT compound_code FROM micro)) DESC, c.code LIMIT 1),
building AS (
    SELECT b.* FROM building b, pt
    WHERE b.valid_to IS NULL AND b.micro_grid_code = (SELECT code FROM micro) AND ST_Intersects(b.geom, pt.g)
    ORDER BY b.code LIMIT 1),
company AS (
    SELECT pc.*, ev.period, ev.standing, ev.total_score
    FROM property_company pc
    LEFT JOIN LATERAL (
        SELECT e.period, e.standing, e.total_score FROM company_evaluation e
        WHERE e.company_id = pc.id ORDER BY e.period DESC LIMIT 1) ev ON TRUE
    WHERE pc.id = (SELECT property_company_id FROM compound)),
parties AS (
    SELECT p.*, CASE p.kind WHEN 'community_committee' THEN 1 WHEN 'grid_branch' THEN 2
        WHEN 'compound_branch' THEN 3 WHEN 'building_group' THEN 4 ELSE 5 END AS level_order
    FROM party_organisation p
    WHERE p.unit_code IN (
        SELECT code FROM community UNION ALL SELECT code FROM grid UNION ALL SELECT code FROM compound
        UNION ALL SELECT code FROM building UNION ALL SELECT credit_code FROM company))
SELECT json_build_object(
    'point', json_build_object('lon', :lon, 'lat', :lat),
    'contacts_shown', CAST(:personal AS boolean),
    'district', (SELECT json_build_object('code', code, 'name', name) FROM district),
    'street', (SELECT json_build_object('code', code, 'name', name) FROM street),
    'community', (SELECT json_build_object('code', code, 'name', name,
        'office_phone', CASE WHEN {contact:code} THEN office_phone END) FROM community),
    'grid', (SELECT json_build_object('code', code, 'name', name, 'households', households) FROM grid),
    'grid_workers', (SELECT coalesce(json_agg(json_build_object(
            'is_party_member', w.is_party_member, 'is_part_time', w.is_part_time,
            'property_company', (SELECT name FROM property_company WHERE id = w.property_company_id),
            'contact', CASE WHEN {contact:w.grid_code} THEN json_build_object('name', w.name, 'phone', w.phone) END)
            ORDER BY w.is_part_time, w.id), '[]'::json)
        FROM grid_worker w WHERE w.grid_code = (SELECT code FROM grid)),
    'micro_grid', (SELECT json_build_object('code', code, 'name', name, 'households', households) FROM micro),
    'compound', (SELECT json_build_object('code', code, 'name', name, 'aliases', aliases, 'address', address,
        'management_mode', management_mode, 'is_old_estate', is_old_estate, 'build_year', build_year,
        'households', households, 'floor_area_m2', floor_area_m2) FROM compound),
    'building', (SELECT json_build_object('code', code, 'name', name, 'number', number, 'floors', floors,
        'units', units, 'households', households, 'leader_is_party_member', leader_is_party_member,
        'leader', CASE WHEN {contact:code} AND leader_name IS NOT NULL
            THEN json_build_object('name', leader_name, 'phone', leader_phone) END) FROM building),
    'property_company', (SELECT json_build_object('id', id, 'name', name, 'credit_code', credit_code,
        'is_community_led', is_community_led, 'has_party_org', has_party_org,
        'standing', coalesce(standing, 'unrated'), 'evaluation_period', period, 'total_score', total_score,
        'contact', CASE WHEN {contact:(SELECT code FROM compound)}
                        THEN json_build_object('name', contact_name, 'phone', contact_phone) END)
        FROM company),
    'owners_committee', (SELECT json_build_object('formed_on', o.formed_on, 'term_end', o.term_end,
        'member_count', o.member_count, 'party_member_count', o.party_member_count,
        'chair_is_party_member', o.chair_is_party_member,
        'chair', CASE WHEN {contact:o.compound_code} THEN json_build_object('name', o.chair_name) END)
        FROM owners_committee o WHERE o.compound_code = (SELECT code FROM compound)),
    'party_organisations', (SELECT coalesce(json_agg(json_build_object('code', code, 'kind', kind,
        'name', name, 'unit_code', unit_code, 'member_count', member_count,
        'secretary', CASE WHEN {contact:unit_code}
            THEN json_build_object('name', secretary_name, 'phone', secretary_phone) END)
        ORDER BY level_order, code), '[]'::json) FROM parties)
)::text
"""
)
_CONTACT = re.compile(r"\{contact:((?:[^{}()]|\([^()]*\))+)\}")


def check_point(lon: float, lat: float) -> None:
    """Refuse (InvalidInput) a point outside WGS-84's range of longitude and latitude, in degrees."""
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise InvalidInput("lon must lie in [-180, 180] and lat in [-90, 90] (WGS-84 degrees)")


async def responsible_parties(conn: AsyncConnection, lon: float, lat: float, principal: Principal) -> dict:
    """The chain of units and parties responsible at (lon, lat) in WGS-84; NotFound outside every street."""
    check_point(lon, lat)
    view = visibility(principal)
    params: dict = {"lon": lon, "lat": lat, "personal": view.contacts != "none"}

    def contact_test(match: re.Match) -> str:
        # each contact is shown only where its unit lies in the caller's own chain (gis.access.visibility)
        expression, extra = contacts_sql(view, principal, match.group(1), "(SELECT code FROM micro)")
        params.update(extra)
        return f"({expression})"

    body = (await conn.execute(text(_CONTACT.sub(contact_test, _SQL)), params)).scalar_one()
    answer = json.loads(body)
    if answer["street"] is None:
        raise NotFound(f"no street office governs the point ({lon:.6f}, {lat:.6f})")
    return answer
