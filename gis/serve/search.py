"""Place search on the map (地名搜索): a query read as an address through the gazetteer, then ranked.

What a query can find: compounds by name, alias or street address; buildings (`东苑3号楼`, `3栋`, `3#`, with a
unit `3号楼2单元`); street offices, communities, grids and micro-grids by name or code; complaints by ticket
number (the hotline's number or gridgov's id, the place as `gis.access.visibility` lets the caller see it); and
whole addresses (`岱岳区粥店街道杜家庄社区机械厂宿舍2期3号楼`), read by the intake's gazetteer
(`gis.intake.gazetteer`, one address-reading rule for the intake and the map), phases in Chinese or Arabic
numerals alike (二期 = 2期).

Results are ranked by tier, then by score:

| tier | what |
|---|---|
| 0 exact | the name (or alias, or code, or ticket number) is the query |
| 1 prefix | the name starts with the query |
| 2 contains | the name or street address contains the query; a compound so found with building N |
| 3 address | the gazetteer read the query as an address and found the place (or its candidates) |
| 4 fuzzy | names within one or two characters of the query (pg_trgm similarity over `gridgov_search_key`, see
  migration 0014, and the gazetteer's misspelt-name candidates) |

Fuzzy results are offered only when no exact, prefix or contains result and no certain address reading was
found: a query that names a place is not answered with its look-alikes. A place found in several tiers is kept
in its best one. Every result has its kind, code, name, detail (its street office and community in Chinese),
lon/lat (a point on it) and bbox (so the map can frame it).

The gazetteer is the intake's, rebuilt at most every few minutes (`gis.intake.open311.gazetteer_for`): a
compound renamed a moment ago is read as an address only after that, but its new name is found at once by the
name tiers, which read the tables.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal
from gis.access.visibility import place_sql, visibility
from gis.errors import InvalidInput
from gis.intake.address import BUILDING_PATTERN, UNIT_PATTERN, chinese_number, parse_address
from gis.intake.gazetteer import canonical
from gis.intake.open311 import gazetteer_for

MAX_QUERY_LENGTH = 100
FUZZY_MIN_SIMILARITY = 0.35
"""Least pg_trgm similarity of search keys for a fuzzy hit: one character wrong in a four-character name leaves
about 0.5, while 99% of pairs of unrelated compound names of the demo city stay under 0.31."""
ADDRESS_CANDIDATES = 5

TIER_EXACT, TIER_PREFIX, TIER_CONTAINS, TIER_ADDRESS, TIER_FUZZY = range(5)

_TICKET_QUERY = re.compile(r"^#?\s*(?P<number>[0-9A-Za-z-]{1,40})$")
_BARE_HOUSE_NUMBER = re.compile(r"(?P<number>\d{1,3})号$")
"""A trailing bare `N号` (东苑3号): taken for building N in a search box, though an address reads it as a house
number on a road."""

_SEARCH_SQL = """
WITH address_read AS (
    SELECT * FROM unnest(CAST(:addr_kinds AS text[]), CAST(:addr_codes AS text[]),
                         CAST(:addr_numbers AS integer[]), CAST(:addr_scores AS float8[]),
                         CAST(:addr_tiers AS integer[])) AS a(kind, code, number, score, tier)
),
named_compound AS (
    -- compounds named by the query (or, for a building query, by its part before N号楼)
    SELECT c.code, c.name, c.community_code, c.geom,
           CASE WHEN c.name IN (:part, :part_n) OR :part = ANY(c.aliases) OR :part_n = ANY(c.aliases) THEN 0
                WHEN c.name ILIKE :part_prefix OR c.name ILIKE :part_n_prefix OR EXISTS (
                    SELECT 1 FROM unnest(c.aliases) alias WHERE alias ILIKE :part_prefix OR alias ILIKE :part_n_prefix)
                THEN 1 ELSE 2 END AS tier
    FROM compound c
    WHERE c.valid_to IS NULL AND length(:part) > 0 AND length(:part_n) > 0
      AND (c.name ILIKE :part_like OR c.name ILIKE :part_n_like
          OR (CAST(:number AS integer) IS NULL AND c.address ILIKE :part_like)
          OR EXISTS (SELECT 1 FROM unnest(c.aliases) alias WHERE alias ILIKE :part_like OR alias ILIKE :part_n_like))
),
fuzzy_compound AS (
    SELECT c.code, c.name, c.community_code, c.geom,
           greatest(similarity(gridgov_search_key(c.name), gridgov_search_key(:part_n)),
                    similarity(gridgov_search_keys(c.aliases), gridgov_search_key(:part_n))) AS score
    FROM compound c
    WHERE c.valid_to IS NULL AND length(:part_n) > 1
      AND (gridgov_search_key(c.name) % gridgov_search_key(:part_n)
           OR gridgov_search_keys(c.aliases) % gridgov_search_key(:part_n))
),
hits AS (
    SELECT 'compound' AS kind, code, name, community_code AS community, geom, tier, 1.0::float8 AS score
    FROM named_compound WHERE CAST(:number AS integer) IS NULL
    UNION ALL
    SELECT 'building', b.code, n.name || b.number || '号楼', n.community_code, b.geom, n.tier, 1.0
    FROM named_compound n JOIN building b ON b.compound_code = n.code AND b.valid_to IS NULL
    WHERE b.number = CAST(:number AS integer)
    UNION ALL
    -- the gazetteer's reading: a compound or its building N, a community or a street office
    SELECT CASE WHEN b.code IS NOT NULL THEN 'building' ELSE 'compound' END, coalesce(b.code, c.code),
           c.name || coalesce(b.number || '号楼', ''), c.community_code, coalesce(b.geom, c.geom), a.tier, a.score
    FROM address_read a JOIN compound c ON c.code = a.code AND c.valid_to IS NULL
    LEFT JOIN building b ON b.compound_code = c.code AND b.valid_to IS NULL AND b.number = a.number
    WHERE a.kind = 'compound'
    UNION ALL
    SELECT 'community', m.code, m.name, m.code, m.geom, a.tier, a.score
    FROM address_read a JOIN community m ON m.code = a.code AND m.valid_to IS NULL WHERE a.kind = 'community'
    UNION ALL
    SELECT 'street', s.code, s.name, NULL, s.geom, a.tier, a.score
    FROM address_read a JOIN street s ON s.code = a.code AND s.valid_to IS NULL WHERE a.kind = 'street'
    UNION ALL
    -- pyramid units by name or code
    SELECT layer, code, name, community, geom,
           CASE WHEN name IN (:q, :qn) OR code = :q THEN 0 WHEN name ILIKE :prefix OR name ILIKE :qn_prefix THEN 1
                ELSE 2 END, 1.0
    FROM (
        SELECT 'street' AS layer, code, name, NULL AS community, geom FROM street
            WHERE valid_to IS NULL AND (name ILIKE :like OR name ILIKE :qn_like OR code = :q)
        UNION ALL SELECT 'community', code, name, code, geom FROM community
            WHERE valid_to IS NULL AND (name ILIKE :like OR name ILIKE :qn_like OR code = :q)
        UNION ALL SELECT 'grid', code, name, community_code, geom FROM grid
            WHERE valid_to IS NULL AND (name ILIKE :like OR name ILIKE :qn_like OR code = :q)
        UNION ALL SELECT 'micro_grid', u.code, u.name, g.community_code, u.geom FROM micro_grid u
            JOIN grid g ON g.code = u.grid_code AND g.valid_to IS NULL
            WHERE u.valid_to IS NULL AND (u.name ILIKE :like OR u.name ILIKE :qn_like OR u.code = :q)
    ) units
    UNION ALL
    SELECT 'complaint', k.id::text, coalesce(k.external_id, '#' || k.id), NULL, {complaint_place}, 0, 1.0
    FROM complaint k
    WHERE CAST(:ticket AS text) IS NOT NULL AND k.geom IS NOT NULL
      AND (k.external_id = CAST(:ticket AS text)
           OR (CAST(:ticket AS text) ~ '^[0-9]{1,18}$' AND k.id = CAST(:ticket_id AS bigint)))
    UNION ALL
    -- fuzzy: compounds (their building N when the query names one), communities and street offices
    SELECT CASE WHEN b.code IS NOT NULL THEN 'building' ELSE 'compound' END, coalesce(b.code, f.code),
           f.name || coalesce(b.number || '号楼', ''), f.community_code, coalesce(b.geom, f.geom), 4, f.score
    FROM fuzzy_compound f
    LEFT JOIN building b ON b.compound_code = f.code AND b.valid_to IS NULL AND b.number = CAST(:number AS integer)
    WHERE f.score >= :min_similarity
    UNION ALL
    SELECT layer, code, name, community, geom, 4, score FROM (
        SELECT 'community' AS layer, code, name, code AS community, geom,
               similarity(gridgov_search_key(name), gridgov_search_key(:part_n)) AS score
        FROM community WHERE valid_to IS NULL AND gridgov_search_key(name) % gridgov_search_key(:part_n)
        UNION ALL
        SELECT 'street', code, name, NULL, geom, similarity(gridgov_search_key(name), gridgov_search_key(:part_n))
        FROM street WHERE valid_to IS NULL AND gridgov_search_key(name) % gridgov_search_key(:part_n)
    ) near WHERE score >= :min_similarity AND CAST(:number AS integer) IS NULL
),
best AS (
    -- each place once, in its best tier; fuzzy ones only when nothing better (nor a certain reading) was found
    SELECT DISTINCT ON (kind, code) * FROM hits
    WHERE tier < 4 OR NOT (:certain OR EXISTS (SELECT 1 FROM hits WHERE tier < 3))
    ORDER BY kind, code, tier, score DESC
),
ranked AS (
    SELECT *, array_position(ARRAY['complaint', 'building', 'compound', 'community', 'street', 'grid',
                                   'micro_grid'], kind) AS kind_rank
    FROM best ORDER BY tier, score DESC, kind_rank, length(name), code LIMIT :limit
)
SELECT coalesce(json_agg(json_build_object(
    'kind', r.kind, 'code', r.code,
    'name', r.name || CASE WHEN r.kind = 'building' AND CAST(:unit AS integer) IS NOT NULL
                           THEN CAST(:unit AS integer) || '单元' ELSE '' END,
    'detail', CASE
        WHEN r.kind = 'complaint' THEN ''
        WHEN r.kind = 'street' THEN coalesce((SELECT d.name FROM street s JOIN district d ON d.code = s.district_code
                                              AND d.valid_to IS NULL WHERE s.code = r.code AND s.valid_to IS NULL), '')
        WHEN r.kind = 'community' THEN coalesce(s.name, '')
        ELSE concat_ws(' ', s.name, m.name) END,
    'lon', round(ST_X(ST_PointOnSurface(r.geom))::numeric, 6),
    'lat', round(ST_Y(ST_PointOnSurface(r.geom))::numeric, 6),
    'bbox', json_build_array(ST_XMin(r.geom), ST_YMin(r.geom), ST_XMax(r.geom), ST_YMax(r.geom))
) ORDER BY r.tier, r.score DESC, r.kind_rank, length(r.name), r.code), '[]'::json)::text
FROM ranked r
LEFT JOIN community m ON m.code = r.community AND m.valid_to IS NULL
LEFT JOIN street s ON s.code = m.street_code AND s.valid_to IS NULL
"""
"""`{complaint_place}` is the complaint's place as the caller may see it (gis.access.visibility.place_sql)."""


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _house_parts(query: str) -> tuple[str, int | None, int | None]:
    """The query less its building and unit (`东苑3号楼2单元` → 东苑, 3, 2), read by the address parser's
    patterns."""
    building = BUILDING_PATTERN.search(query)
    if building is None:
        bare = _BARE_HOUSE_NUMBER.search(query)
        if bare is None or bare.start() == 0:
            return query, None, None
        return query[:bare.start()].strip(), int(bare.group("number")), None
    unit = UNIT_PATTERN.search(query, building.end())
    return (query[:building.start()].strip(), chinese_number(building.group(1)),
            chinese_number(unit.group(1)) if unit else None)


def _address_reading(gazetteer, query: str, number: int | None) -> tuple[list[tuple[str, str, int | None,
                                                                                  float, int]], bool]:
    """What the gazetteer reads in the query: (kind, code, building number, score, tier) of the places it
    names, and whether the reading is certain (the intake would place a complaint there without a person)."""
    match = gazetteer.match(query)
    found: list[tuple[str, str, int | None, float, int]] = []
    if match.auto and match.compound_code:
        found.append(("compound", match.compound_code, match.building_number, match.score, TIER_ADDRESS))
        return found, True
    for candidate in match.candidates[:ADDRESS_CANDIDATES]:
        tier = TIER_FUZZY if candidate.get("how") in ("typo", "fuzzy") else TIER_ADDRESS
        if candidate.get("compound_code"):
            found.append(("compound", candidate["compound_code"], candidate.get("building_number") or number,
                          float(candidate["score"]), tier))
        elif candidate.get("community_code"):
            found.append(("community", candidate["community_code"], None, float(candidate["score"]), tier))
    if match.level == "community" and match.community_code:
        found.append(("community", match.community_code, None, match.score, TIER_ADDRESS))
    elif match.level == "street" and match.street_code:
        found.append(("street", match.street_code, None, match.score, TIER_ADDRESS))
    certain = match.level in ("community", "street") and not match.review_reason and not match.candidates
    return found, certain


async def search(conn: AsyncConnection, query: str, principal: Principal, limit: int = 10) -> list[dict]:
    """The places and complaints `query` names, best first (see the module's tiers); the public gets a
    complaint's place snapped to about 50 m and never its text."""
    query = " ".join(query.split())
    if not 1 <= len(query) <= MAX_QUERY_LENGTH:
        raise InvalidInput(f"搜索内容须为 1 到 {MAX_QUERY_LENGTH} 个字符")
    if "\x00" in query:
        raise InvalidInput("搜索内容不能含有空字符（NUL）")
    canonical_query = canonical(query) or query  # punctuation alone reads as nothing: kept as typed
    part, number, unit = _house_parts(canonical_query)
    raw_part = _house_parts(query)[0] if number is not None else query
    if unit is None and number is not None:
        unit = parse_address(query).unit_number
    ticket = _TICKET_QUERY.match(query)
    ticket_number = ticket.group("number") if ticket and any(ch.isdigit() for ch in query) else None
    read, certain = _address_reading(await gazetteer_for(conn), query, number)
    params = {
        "q": query, "qn": canonical_query,
        "like": f"%{_escape_like(query)}%", "prefix": f"{_escape_like(query)}%",
        "qn_like": f"%{_escape_like(canonical_query)}%", "qn_prefix": f"{_escape_like(canonical_query)}%",
        "part": raw_part, "part_n": part,
        "part_like": f"%{_escape_like(raw_part)}%", "part_prefix": f"{_escape_like(raw_part)}%",
        "part_n_like": f"%{_escape_like(part)}%", "part_n_prefix": f"{_escape_like(part)}%",
        "number": number, "unit": unit,
        "ticket": ticket_number,
        "ticket_id": int(ticket_number) if ticket_number and ticket_number.isdigit() and len(ticket_number) < 19
        else 0,
        "addr_kinds": [r[0] for r in read], "addr_codes": [r[1] for r in read],
        "addr_numbers": [r[2] for r in read], "addr_scores": [r[3] for r in read],
        "addr_tiers": [r[4] for r in read],
        "certain": certain, "min_similarity": FUZZY_MIN_SIMILARITY, "limit": limit,
    }
    sql = _SEARCH_SQL.replace("{complaint_place}", place_sql(visibility(principal), "k.geom"))
    return json.loads((await conn.execute(text(sql), params)).scalar_one())
