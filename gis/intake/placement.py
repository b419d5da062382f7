"""Point to micro-grid (落格): the SQL that places staged complaints on their micro-grid and stores them.

Rules, in order:
- A point inside (or on the boundary of) a micro-grid version valid on the complaint's local date is placed
  `inside`; on a shared boundary the micro-grid with the lowest code wins, so the answer never depends on the
  plan or the order of rows.
- A point outside every micro-grid but within the snap tolerance (metres, `GRIDGOV_CITY_SNAP_TOLERANCE_M`) goes
  to the nearest one (ties: lowest code) and is `snapped`, with its distance recorded.
- Anything else (far outside, or an address that did not resolve to a point) goes to `review` with the reason;
  codes the address did resolve (community, street) are kept so the right office sees it in its queue.
The responsible parties at that moment (grid workers, party organisations of community, grid, compound and
building, property company, owners' committee) are copied into `complaint_party` with the complaint.

A batch runs in steps within its transaction: inside hits, then snapping of the rest, then one statement that
stores. Large batches are joined polygons-outer (`CROSS JOIN LATERAL (... OFFSET 0)` over a GiST index built on
the staged points after the COPY), small ones points-outer through the polygons' GiST index: each is the fast
plan for its size. A single request (Open311) is one statement with index look-ups only (`one_request_sql`).

Each statement is written in the parameter style of the one path that runs it: the batch statements run on
psycopg (bulk work, beside its COPY) and use `%(name)s`; the request statement runs on async SQLAlchemy and
uses `:name`. The two fragments both paths share (`review_reason_sql`, `address_points_sql`) hold no placeholder
of their own: the caller hands in its placeholder, so nothing is ever converted from one style to the other.
"""

from __future__ import annotations

import math

from gis.tickets.models import FINAL_SQL

# Every staged row carries these columns (the batch stage table and the one-row source alike).
STAGE_COLUMNS = (
    ("row_no", "integer"), ("source", "text"), ("external_id", "text"), ("category_code", "text"),
    ("description", "text"), ("address", "text"), ("reported_at", "timestamptz"), ("local_day", "date"),
    ("lon", "double precision"), ("lat", "double precision"),
    ("original_x", "double precision"), ("original_y", "double precision"), ("original_crs", "text"),
    ("match_level", "text"), ("match_score", "double precision"), ("addr_level", "text"),
    ("addr_street", "text"), ("addr_community", "text"), ("addr_compound", "text"), ("building_code", "text"),
    ("reporter_name", "text"), ("reporter_phone", "text"), ("review_reason", "text"), ("batch_id", "bigint"),
    ("token", "text"), ("api_key_id", "bigint"), ("attributes", "jsonb"), ("extra", "jsonb"),
)
STAGE_COLUMN_NAMES = tuple(name for name, _ in STAGE_COLUMNS)
POLYGONS_OUTER_FROM = 2_000
"""From this many staged rows on, the polygons-outer join is the faster plan."""

STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS intake_stage ("
    + ", ".join(f"{name} {kind}" for name, kind in STAGE_COLUMNS)
    + ", geom geometry(Point, 4326) GENERATED ALWAYS AS "
      "(CASE WHEN lon IS NULL OR lat IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END) STORED"
    + ") ON COMMIT DELETE ROWS;"
    " CREATE TEMP TABLE IF NOT EXISTS intake_new (id bigint, category_code text, reported_at timestamptz,"
    " geom geometry(Point, 4326)) ON COMMIT DELETE ROWS;"
    " CREATE TEMP TABLE IF NOT EXISTS intake_placed (row_no integer, micro_grid_id bigint, micro_grid_code text,"
    " grid_code text, compound_code text, placement text, snap_m double precision) ON COMMIT DELETE ROWS;"
    " CREATE TEMP TABLE IF NOT EXISTS intake_unplaced (row_no integer, local_day date,"
    " geom geometry(Point, 4326)) ON COMMIT DELETE ROWS;"
    " CREATE TEMP TABLE IF NOT EXISTS intake_dup_key (id bigint, category_code text, reported_at timestamptz,"
    " geom geometry(Point, 4326), kx bigint, ky bigint, kt bigint) ON COMMIT DELETE ROWS;"
)
"""Session tables of a batch. Their GiST indexes are built after each COPY (a sorted build of the whole chunk is
many times faster than growing the index row by row) and dropped before the next."""

_VALID = "{t}.valid_from <= s.local_day AND ({t}.valid_to IS NULL OR {t}.valid_to > s.local_day)"


def degrees_for(metres: float) -> float:
    """A box half-width in degrees that surely covers `metres` anywhere in China (up to 54°N)."""
    return metres / (111_320.0 * math.cos(math.radians(55.0)))


def _hit_sql(src: str, polygons_outer: bool) -> str:
    if polygons_outer:
        return f"""
    SELECT DISTINCT ON (p.row_no) p.row_no, m.id AS micro_grid_id, m.code AS micro_grid_code, m.grid_code,
           m.compound_code, 'inside'::text AS placement, NULL::float8 AS snap_m
    FROM micro_grid m CROSS JOIN LATERAL (
        SELECT s.row_no FROM {src} s
        WHERE s.geom && m.geom AND ST_Intersects(m.geom, s.geom) AND {_VALID.format(t='m')} OFFSET 0) p
    ORDER BY p.row_no, m.code"""
    return f"""
    SELECT s.row_no, m.micro_grid_id, m.micro_grid_code, m.grid_code, m.compound_code,
           'inside'::text AS placement, NULL::float8 AS snap_m
    FROM {src} s CROSS JOIN LATERAL (
        SELECT m.id AS micro_grid_id, m.code AS micro_grid_code, m.grid_code, m.compound_code FROM micro_grid m
        WHERE ST_Intersects(m.geom, s.geom) AND {_VALID.format(t='m')} ORDER BY m.code LIMIT 1) m"""


def _building_sql(src: str, polygons_outer: bool) -> str:
    if polygons_outer:
        return f"""
    SELECT DISTINCT ON (p.row_no) p.row_no, b.code AS building_code
    FROM building b CROSS JOIN LATERAL (
        SELECT s.row_no FROM {src} s
        WHERE s.building_code IS NULL AND s.geom && b.geom AND ST_Intersects(b.geom, s.geom)
          AND {_VALID.format(t='b')} OFFSET 0) p
    ORDER BY p.row_no, b.code"""
    return f"""
    SELECT s.row_no, b.building_code FROM {src} s CROSS JOIN LATERAL (
        SELECT b.code AS building_code FROM building b
        WHERE s.building_code IS NULL AND ST_Intersects(b.geom, s.geom) AND {_VALID.format(t='b')}
        ORDER BY b.code LIMIT 1) b"""


PLACED_COLUMNS = "row_no, micro_grid_id, micro_grid_code, grid_code, compound_code, placement, snap_m"


def hit_insert_sql(src: str, polygons_outer: bool) -> str:
    """Step 1 of a batch: the rows inside a micro-grid into `intake_placed`."""
    return f"INSERT INTO intake_placed ({PLACED_COLUMNS}) {_hit_sql(src, polygons_outer)}"


UNPLACED_INSERT_SQL = """
INSERT INTO intake_unplaced (row_no, local_day, geom)
SELECT s.row_no, s.local_day, s.geom FROM intake_stage s
WHERE s.geom IS NOT NULL AND NOT EXISTS (SELECT 1 FROM intake_placed p WHERE p.row_no = s.row_no)"""
"""Step 2 of a batch: the points outside every micro-grid, the only ones that may snap."""


def snap_insert_sql(polygons_outer: bool) -> str:
    """Step 3 of a batch: each point of `intake_unplaced` within the tolerance goes to the nearest micro-grid
    (ties: lowest code). Many such points (a file with many points outside) are joined polygons-outer over the
    points' own GiST index: a micro-grid's widened box finds the few points near it, and points far outside cost
    nothing; few points each probe the micro-grids' index. Parameters: snap_m, snap_deg."""
    if polygons_outer:
        return f"""
INSERT INTO intake_placed ({PLACED_COLUMNS})
SELECT DISTINCT ON (c.row_no) c.row_no, c.id, c.code, c.grid_code, c.compound_code, 'snapped', c.snap_m
FROM (SELECT u.row_no, m.id, m.code, m.grid_code, m.compound_code,
             ST_Distance(m.geom::geography, u.geom::geography, false) AS snap_m
      FROM micro_grid m CROSS JOIN LATERAL (
          SELECT u.row_no, u.geom, u.local_day FROM intake_unplaced u
          WHERE u.geom && ST_Expand(m.geom, CAST(%(snap_deg)s AS float8)) OFFSET 0) u
      WHERE m.valid_from <= u.local_day AND (m.valid_to IS NULL OR m.valid_to > u.local_day)) c
WHERE c.snap_m <= CAST(%(snap_m)s AS float8)
ORDER BY c.row_no, c.snap_m, c.code"""
    return f"""
INSERT INTO intake_placed ({PLACED_COLUMNS})
SELECT u.row_no, n.micro_grid_id, n.micro_grid_code, n.grid_code, n.compound_code, 'snapped', n.snap_m
FROM intake_unplaced u CROSS JOIN LATERAL (
    SELECT m.id AS micro_grid_id, m.code AS micro_grid_code, m.grid_code, m.compound_code,
           ST_Distance(m.geom::geography, u.geom::geography, false) AS snap_m
    FROM micro_grid m
    WHERE m.geom && ST_Expand(u.geom, CAST(%(snap_deg)s AS float8))
      AND m.valid_from <= u.local_day AND (m.valid_to IS NULL OR m.valid_to > u.local_day)
    ORDER BY 5, m.code LIMIT 1) n
WHERE n.snap_m <= CAST(%(snap_m)s AS float8)"""


def store_sql(src: str, polygons_outer: bool, buildings_resolved: bool = False, keyed: bool = False) -> str:
    """Step 4 of a batch: insert the staged rows (unique per (source, external_id); one already held is
    skipped) with their placement from `intake_placed`, their intake facts and responsible parties; record the
    new ids in `intake_new` and return (placement, count). Rows go in micro-grid order, which keeps the
    complaint indexes' inserts local. `buildings_resolved`: the staged rows already carry the building their
    point lies in (the vectorised step found it), so no building join. `keyed`: complaints are partitioned by month
    (gis/db/partitions.py), where the key is held in `complaint_key` and ON CONFLICT has no index on `complaint`
    to arbitrate with; rows already held are skipped by NOT EXISTS instead (the batch's own rows are unique
    already). Parameters: snap_m."""
    buildings = ("SELECT NULL::integer AS row_no, NULL::text AS building_code WHERE false" if buildings_resolved
                 else _building_sql(src, polygons_outer))
    skip_held = ("ORDER BY p.micro_grid_code, s.row_no\n    "
                 "ON CONFLICT (source, external_id) WHERE external_id IS NOT NULL DO NOTHING") if not keyed else (
        "WHERE NOT EXISTS (SELECT 1 FROM complaint_key k WHERE k.source = s.source AND k.external_id = s.external_id)"
        "\n    ORDER BY p.micro_grid_code, s.row_no")
    return f"""
WITH placed AS MATERIALIZED (
    SELECT p.*, g.community_code, c.street_code
    FROM intake_placed p
    LEFT JOIN grid g ON g.code = p.grid_code AND g.valid_to IS NULL
    LEFT JOIN community c ON c.code = g.community_code AND c.valid_to IS NULL),
bld AS MATERIALIZED ({buildings}),
ins AS (
    INSERT INTO complaint (source, external_id, category_code, description, address, reported_at, geom,
        original_x, original_y, original_crs, match_level, placement, micro_grid_id, micro_grid_code, grid_code,
        community_code, street_code, compound_code, building_code, reporter_name, reporter_phone)
    SELECT s.source, s.external_id, s.category_code, s.description, s.address, s.reported_at, s.geom,
        s.original_x, s.original_y, s.original_crs, s.match_level, coalesce(p.placement, 'review'),
        p.micro_grid_id, p.micro_grid_code, p.grid_code,
        CASE WHEN p.row_no IS NULL THEN s.addr_community ELSE p.community_code END,
        CASE WHEN p.row_no IS NULL THEN s.addr_street ELSE p.street_code END,
        p.compound_code,
        CASE WHEN p.placement = 'inside' THEN coalesce(s.building_code, b.building_code) END,
        s.reporter_name, s.reporter_phone
    FROM {src} s LEFT JOIN placed p ON p.row_no = s.row_no LEFT JOIN bld b ON b.row_no = s.row_no
    {skip_held}
    RETURNING id, source, external_id, placement, micro_grid_code, grid_code, community_code, street_code,
              compound_code, building_code, category_code, reported_at, geom),
intake AS ({intake_insert(
    "api_key_id", "%(snap_m)s",
    f"FROM ins i JOIN {src} s ON s.source = i.source AND s.external_id = i.external_id "
    "LEFT JOIN placed p ON p.row_no = s.row_no")}),
party AS ({party_insert("ins")}),
new_ids AS (INSERT INTO intake_new (id, category_code, reported_at, geom)
            SELECT id, category_code, reported_at, geom FROM ins)
SELECT placement, count(*) FROM ins GROUP BY placement
"""


def review_reason_sql(snap_m: str) -> str:
    """Why a stored row (`i`, from staged row `s`) awaits placement by hand. `snap_m` is the placeholder of the
    snap tolerance in the style of the statement the fragment goes into (`%(snap_m)s` or `:snap_m`)."""
    return f"""CASE WHEN i.placement = 'review' THEN coalesce(s.review_reason, CASE
            WHEN s.geom IS NOT NULL THEN 'outside every micro-grid, beyond the snap tolerance of '
                 || round(CAST({snap_m} AS float8))::text || ' m'
            WHEN s.addr_level IN ('community', 'street') THEN 'the address resolves only to a '
                 || s.addr_level || '; place it by hand'
            WHEN s.address IS NOT NULL THEN 'the address does not resolve to a place'
            ELSE 'no coordinates and no address' END) END"""

ADDRESS_CHECK_SQL = """CASE WHEN s.match_level = 'coordinates' AND s.address IS NOT NULL THEN CASE
            WHEN s.addr_level IS NULL OR s.addr_level = 'none' THEN 'unresolved'
            WHEN s.addr_compound IS NOT NULL THEN
                CASE WHEN s.addr_compound = i.compound_code THEN 'agrees' ELSE 'disagrees' END
            WHEN s.addr_community IS NOT NULL THEN
                CASE WHEN s.addr_community = i.community_code THEN 'agrees' ELSE 'disagrees' END
            ELSE CASE WHEN s.addr_street = i.street_code THEN 'agrees' ELSE 'disagrees' END END END"""
"""Whether the address given beside coordinates names the place the coordinates fell in."""



def intake_insert(key_column: str, snap_m: str, source: str) -> str:
    """INSERT of the intake facts of the stored complaints `i` from their staged rows `s` and placements `p`
    (joined by `source`, a FROM clause): the batch, row and token, the API key (staged as `key_column`), the
    match score and snap distance, why it awaits review, and whether its address agrees with its place."""
    return f"""
    INSERT INTO complaint_intake (complaint_id, batch_id, row_number, token, api_key_id, match_score,
        snap_distance_m, review_reason, address_check, attributes, extra)
    SELECT i.id, s.batch_id, s.row_no, s.token, s.{key_column}, s.match_score, p.snap_m,
        {review_reason_sql(snap_m)},
        {ADDRESS_CHECK_SQL},
        s.attributes, s.extra
    {source}"""


PARTY_COLUMNS = ("grid_worker_ids", "community_party_id", "grid_party_id", "compound_party_id", "building_party_id",
                 "property_company_id", "owners_committee_id", "management_mode")


_FIRST_ORG = ("SELECT unit_code, min(id) AS id FROM party_organisation WHERE kind = '{kind}' GROUP BY unit_code")


def party_insert(rows: str, per_row: bool = False) -> str:
    """INSERT of the responsible parties of the complaints in relation `rows` (id and the codes), as they are
    now: grid workers of the grid (full-time first), the first party organisation of each kind for community,
    grid, compound and building, the compound's property company and owners' committee.

    Batches join whole-table aggregates (one hash join each); `per_row` (a single request) looks each party up
    through its index instead, which is what keeps one POST from reading the party tables whole."""
    if per_row:
        first = ("(SELECT min(o.id) FROM party_organisation o WHERE o.kind = '{kind}' AND o.unit_code = i.{column})")
        return f"""
    INSERT INTO complaint_party (complaint_id, {', '.join(PARTY_COLUMNS)})
    SELECT i.id,
           coalesce((SELECT array_agg(w.id ORDER BY w.is_part_time, w.id) FROM grid_worker w
                     WHERE w.grid_code = i.grid_code), '{{}}'),
           {first.format(kind="community_committee", column="community_code")},
           {first.format(kind="grid_branch", column="grid_code")},
           {first.format(kind="compound_branch", column="compound_code")},
           {first.format(kind="building_group", column="building_code")},
           co.property_company_id, oc.id, co.management_mode
    FROM {rows} i
    LEFT JOIN compound co ON co.code = i.compound_code AND co.valid_to IS NULL
    LEFT JOIN owners_committee oc ON oc.compound_code = i.compound_code
    WHERE i.community_code IS NOT NULL"""
    return f"""
    INSERT INTO complaint_party (complaint_id, {', '.join(PARTY_COLUMNS)})
    SELECT i.id, coalesce(gw.ids, '{{}}'), cp.id, gp.id, kp.id, bp.id, co.property_company_id, oc.id,
           co.management_mode
    FROM {rows} i
    LEFT JOIN (SELECT grid_code, array_agg(id ORDER BY is_part_time, id) AS ids FROM grid_worker
               GROUP BY grid_code) gw ON gw.grid_code = i.grid_code
    LEFT JOIN ({_FIRST_ORG.format(kind="community_committee")}) cp ON cp.unit_code = i.community_code
    LEFT JOIN ({_FIRST_ORG.format(kind="grid_branch")}) gp ON gp.unit_code = i.grid_code
    LEFT JOIN ({_FIRST_ORG.format(kind="compound_branch")}) kp ON kp.unit_code = i.compound_code
    LEFT JOIN ({_FIRST_ORG.format(kind="building_group")}) bp ON bp.unit_code = i.building_code
    LEFT JOIN compound co ON co.code = i.compound_code AND co.valid_to IS NULL
    LEFT JOIN owners_committee oc ON oc.compound_code = i.compound_code
    WHERE i.community_code IS NOT NULL"""


def one_row_source() -> str:
    """A one-row relation `s`-compatible with the stage table, from named parameters (for a single POST)."""
    casts = ", ".join(f"CAST(:{name} AS {kind}) AS {name}" for name, kind in STAGE_COLUMNS)
    return (f"(SELECT *, CASE WHEN lon IS NULL OR lat IS NULL THEN NULL "
            f"ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END AS geom FROM (SELECT {casts}) r)")


def duplicates_sql(new_ids: str, open_filter: str) -> str:
    """Link each new complaint to the earliest open complaint of the same category within the radius and the
    time window before it. Parameters: radius_m, radius_deg, window_days."""
    return f"""
INSERT INTO complaint_duplicate (complaint_id, duplicate_of_id, distance_m, hours_apart)
SELECT n.id, d.id, d.distance_m, extract(epoch FROM n.reported_at - d.reported_at) / 3600.0
FROM complaint n CROSS JOIN LATERAL (
    SELECT c.id, c.reported_at, ST_Distance(c.geom::geography, n.geom::geography, false) AS distance_m
    -- The box alone picks the candidates through the GiST index (OFFSET 0 keeps the other conditions out of
    -- that scan, where a bitmap AND with the time index would read thousands of entries per complaint).
    FROM (SELECT c.id, c.category_code, c.reported_at, c.geom FROM complaint c
          WHERE c.geom && ST_Expand(n.geom, CAST(%(radius_deg)s AS float8)) OFFSET 0) c
    WHERE c.category_code = n.category_code AND c.id <> n.id
      AND c.reported_at BETWEEN n.reported_at - make_interval(days => CAST(%(window_days)s AS int))
                        AND n.reported_at
      AND ST_DWithin(c.geom::geography, n.geom::geography, CAST(%(radius_m)s AS float8), false)
      AND (c.reported_at < n.reported_at OR c.id < n.id)
      {open_filter}
    ORDER BY c.reported_at, c.id LIMIT 1) d
WHERE n.id IN ({new_ids}) AND n.geom IS NOT NULL
ON CONFLICT DO NOTHING
"""


DUPLICATE_KEYS_SQL = """
INSERT INTO intake_dup_key (id, category_code, reported_at, geom, kx, ky, kt)
SELECT n.id, n.category_code, n.reported_at, n.geom, n.cx + dx, n.cy + dy, n.ct + dt
FROM (SELECT c.id, c.category_code, c.reported_at, c.geom,
             floor((ST_X(c.geom) - CAST(%(radius_deg)s AS float8))
                   / (2 * CAST(%(radius_deg)s AS float8)))::bigint AS cx,
             floor((ST_Y(c.geom) - CAST(%(radius_deg)s AS float8))
                   / (2 * CAST(%(radius_deg)s AS float8)))::bigint AS cy,
             floor(extract(epoch FROM c.reported_at)::float8 / 86400.0
                   / CAST(%(window_days)s AS int))::bigint AS ct
      FROM intake_new c WHERE c.geom IS NOT NULL) n,
     -- The box is exactly one cell wide, so it spans the cell of its low end and the next one.
     (VALUES (0), (1)) x(dx), (VALUES (0), (1)) y(dy), (VALUES (-1), (0)) t(dt)"""
"""Keys of the new complaints (`intake_new`, which holds what the keys need, so no complaint is read again) for
`duplicates_batch_sql`: the cells (as wide as the search box)
its box overlaps, 2 x 2 at most, and the two time buckets (as long as the window) its window overlaps."""


DUPLICATE_BOUNDS_SQL = """
SELECT min(s.reported_at) - make_interval(days => CAST(%(window_days)s AS int)), max(s.reported_at),
       array_agg(DISTINCT s.category_code), ST_XMin(e.box), ST_YMin(e.box), ST_XMax(e.box), ST_YMax(e.box)
FROM intake_stage s, (SELECT ST_Expand(ST_Extent(geom)::geometry, CAST(%(radius_deg)s AS float8)) AS box
                      FROM intake_stage) e
WHERE s.geom IS NOT NULL
GROUP BY e.box"""
"""What a chunk's duplicates can reach (from its staged rows, a superset of the stored ones): its time span with the
window before it, its categories, and its points' box widened by the search box. No row: nothing to link.
Parameters: window_days, radius_deg."""


DUPLICATE_REACH_ROWS_SQL = """
SELECT CASE WHEN t.total <= 0 THEN 0 ELSE t.total
    * least(1.0, extract(epoch FROM (CAST(%(high)s AS timestamptz) - CAST(%(low)s AS timestamptz)))
                 / greatest(extract(epoch FROM (a.high - a.low)), 1))
    * least(1.0, (CAST(%(xmax)s AS float8) - CAST(%(xmin)s AS float8))
                 * (CAST(%(ymax)s AS float8) - CAST(%(ymin)s AS float8))
                 / greatest(ST_Area(coalesce(x.extent, ST_MakeEnvelope(-180, -90, 180, 90))), 1e-12)) END
FROM (SELECT sum(greatest(c.reltuples, 0)) AS total,
             ST_Extent(ST_EstimatedExtent(n.nspname, c.relname, 'geom')::geometry) AS extent
      FROM pg_partition_tree('complaint') tree
      JOIN pg_class c ON c.oid = tree.relid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE tree.isleaf) t
CROSS JOIN LATERAL (SELECT t.extent::geometry AS extent) x,
     (SELECT min(reported_at) AS low, max(reported_at) AS high FROM complaint) a"""
"""About how many complaints lie within a chunk's reach: the table's rows times the reach's share of the table's
time span and of its area (from the planner's statistics, so it reads no rows). Rows and extent are summed over
the table's leaves, so the estimate holds on a database converted to monthly partitions (a partitioned parent
has neither statistics nor a file of its own)."""


def duplicates_batch_sql(open_filter: str) -> str:
    """The same links as `duplicates_sql` for a large batch, set-based: the complaints within the chunk's reach
    (`DUPLICATE_BOUNDS_SQL`: its time span and window, its categories, its area, given as values so the planner
    sees them) get their key (category, cell x, cell y, time bucket), one hash join on equal keys with
    `intake_dup_key` (filled by DUPLICATE_KEYS_SQL and analysed) finds every candidate pair, and the exact
    distance, window and openness are checked on the pairs. One pass over the reach's complaints replaces one
    index probe per new complaint. Parameters: radius_m, radius_deg, window_days, low, high, categories, xmin,
    ymin, xmax, ymax."""
    return f"""
WITH old AS (
    SELECT c.id, c.category_code, c.reported_at, c.geom,
           floor(ST_X(c.geom) / (2 * CAST(%(radius_deg)s AS float8)))::bigint AS kx,
           floor(ST_Y(c.geom) / (2 * CAST(%(radius_deg)s AS float8)))::bigint AS ky,
           floor(extract(epoch FROM c.reported_at)::float8 / 86400.0 / CAST(%(window_days)s AS int))::bigint AS kt
    FROM complaint c
    WHERE c.reported_at BETWEEN CAST(%(low)s AS timestamptz) AND CAST(%(high)s AS timestamptz)
      AND c.category_code = ANY(CAST(%(categories)s AS text[]))
      AND c.geom && ST_MakeEnvelope(CAST(%(xmin)s AS float8), CAST(%(ymin)s AS float8), CAST(%(xmax)s AS float8),
                                    CAST(%(ymax)s AS float8), 4326)),
-- The pairs first, then openness on those few: left to itself the planner checks the tickets of every complaint
-- within the reach (a pass over the whole ticket table) before the join on keys that leaves a few hundred.
pairs AS MATERIALIZED (
    SELECT n.id AS new_id, n.reported_at AS new_at, c.id, c.reported_at,
           ST_Distance(c.geom::geography, n.geom::geography, false) AS distance_m
    FROM intake_dup_key n
    JOIN old c ON c.category_code = n.category_code AND c.kx = n.kx AND c.ky = n.ky AND c.kt = n.kt
    WHERE c.id <> n.id
      AND c.reported_at BETWEEN n.reported_at - make_interval(days => CAST(%(window_days)s AS int))
                            AND n.reported_at
      AND (c.reported_at < n.reported_at OR c.id < n.id)
      AND ST_DWithin(c.geom::geography, n.geom::geography, CAST(%(radius_m)s AS float8), false))
INSERT INTO complaint_duplicate (complaint_id, duplicate_of_id, distance_m, hours_apart)
SELECT DISTINCT ON (c.new_id) c.new_id, c.id, c.distance_m, extract(epoch FROM c.new_at - c.reported_at) / 3600.0
FROM pairs c
WHERE true {open_filter}
ORDER BY c.new_id, c.reported_at, c.id
ON CONFLICT DO NOTHING
"""


_REQUEST_PLACE_CTES = f"""hit AS MATERIALIZED (
    SELECT m.id AS micro_grid_id, m.code AS micro_grid_code, m.grid_code, m.compound_code,
           'inside'::text AS placement, NULL::float8 AS snap_m
    FROM s JOIN micro_grid m ON ST_Intersects(m.geom, s.geom) AND {_VALID.format(t='m')}
    ORDER BY m.code LIMIT 1),
snap AS (
    SELECT n.* FROM s CROSS JOIN LATERAL (
        SELECT m.id AS micro_grid_id, m.code AS micro_grid_code, m.grid_code, m.compound_code,
               'snapped'::text AS placement, ST_Distance(m.geom::geography, s.geom::geography, false) AS snap_m
        FROM micro_grid m
        WHERE m.geom && ST_Expand(s.geom, CAST(:snap_deg AS float8)) AND {_VALID.format(t='m')}
        ORDER BY 6, m.code LIMIT 1) n
    WHERE s.geom IS NOT NULL AND n.snap_m <= CAST(:snap_m AS float8) AND NOT EXISTS (SELECT 1 FROM hit)),
placed AS MATERIALIZED (
    SELECT p.*, g.community_code, c.street_code
    FROM (SELECT * FROM hit UNION ALL SELECT * FROM snap) p
    LEFT JOIN grid g ON g.code = p.grid_code AND g.valid_to IS NULL
    LEFT JOIN community c ON c.code = g.community_code AND c.valid_to IS NULL),
bld AS MATERIALIZED (
    SELECT b.code AS building_code FROM s JOIN building b
        ON s.building_code IS NULL AND ST_Intersects(b.geom, s.geom) AND {_VALID.format(t='b')}
    ORDER BY b.code LIMIT 1),"""
"""The request's placement: inside its micro-grid, else snapped to the nearest one within the tolerance,
and the building it lies in."""


def _request_duplicate_ctes(open_filter: str) -> str:
    """The request's link to the earliest open complaint of its category within the radius and the window."""
    return f"""near AS MATERIALIZED (
    -- The box alone picks the candidates through the GiST index; category and time are checked on those few
    -- rows (a bitmap AND with the category or time index would read thousands of index entries instead).
    SELECT c.id, c.category_code, c.reported_at, c.geom FROM ins i JOIN complaint c
        ON c.geom && ST_Expand(i.geom, CAST(:radius_deg AS float8))),
dup AS (
    INSERT INTO complaint_duplicate (complaint_id, duplicate_of_id, distance_m, hours_apart)
    SELECT i.id, d.id, d.distance_m, extract(epoch FROM i.reported_at - d.reported_at) / 3600.0
    FROM ins i CROSS JOIN LATERAL (
        SELECT c.id, c.reported_at, ST_Distance(c.geom::geography, i.geom::geography, false) AS distance_m
        FROM near c
        WHERE c.category_code = i.category_code AND c.id <> i.id
          AND c.reported_at BETWEEN i.reported_at - make_interval(days => CAST(:window_days AS int))
                                AND i.reported_at
          AND (c.reported_at < i.reported_at OR c.id < i.id)
          AND ST_DWithin(c.geom::geography, i.geom::geography, CAST(:radius_m AS float8), false)
          {open_filter}
        ORDER BY c.reported_at, c.id LIMIT 1) d
    ON CONFLICT DO NOTHING)"""


OPEN311_KEY_SQL = "SELECT id FROM open311_api_key WHERE key_sha256 = CAST(:key_hash AS text) AND revoked_at IS NULL"
"""The API key of an Open311 request (no row: the key is not valid)."""
NO_KEY_SQL = "SELECT CAST(NULL AS bigint) AS id"
"""A request from a signed-in person (a field report): no API key, one row so the request is stored."""


def one_request_sql(open_filter: str, key_sql: str = OPEN311_KEY_SQL) -> str:
    """One statement for one request (Open311 POST, or a field report with `NO_KEY_SQL`): check the API key and
    the category, place the point, store the complaint, its intake facts and parties, and link a possible
    duplicate, in a single round trip.

    Nothing is stored unless the key is valid and the category active; the answer row says which failed
    (key_id or category_name NULL). Parameters: the stage columns, key_hash, snap_m, snap_deg, radius_m,
    radius_deg, window_days. Each lookup goes through an index (a few rows read), so the statement costs
    about the same on a city of a million complaints as on an empty one."""
    return f"""
WITH key AS ({key_sql}),
cat AS (SELECT code, name_zh FROM category WHERE code = CAST(:category_code AS text) AND active),
s AS MATERIALIZED (SELECT r.*, key.id AS key_id, cat.name_zh AS category_name
                   FROM {one_row_source()} r CROSS JOIN key CROSS JOIN cat),
{_REQUEST_PLACE_CTES}
ins AS (
    INSERT INTO complaint (source, external_id, category_code, description, address, reported_at, geom,
        original_x, original_y, original_crs, match_level, placement, micro_grid_id, micro_grid_code, grid_code,
        community_code, street_code, compound_code, building_code, reporter_name, reporter_phone)
    SELECT s.source, s.external_id, s.category_code, coalesce(s.description, s.category_name), s.address,
        s.reported_at, s.geom, s.original_x, s.original_y, s.original_crs, s.match_level,
        coalesce(p.placement, 'review'), p.micro_grid_id, p.micro_grid_code, p.grid_code,
        CASE WHEN p.placement IS NULL THEN s.addr_community ELSE p.community_code END,
        CASE WHEN p.placement IS NULL THEN s.addr_street ELSE p.street_code END,
        p.compound_code,
        CASE WHEN p.placement = 'inside' THEN coalesce(s.building_code, (SELECT building_code FROM bld)) END,
        s.reporter_name, s.reporter_phone
    FROM s LEFT JOIN placed p ON true
    RETURNING id, category_code, reported_at, geom, placement, micro_grid_code, grid_code, community_code,
              street_code, compound_code, building_code),
intake AS ({intake_insert("key_id", ":snap_m", "FROM ins i CROSS JOIN s LEFT JOIN placed p ON true")}),
party AS ({party_insert("ins", per_row=True)}),
{_request_duplicate_ctes(open_filter)}
SELECT (SELECT id FROM key) AS key_id, (SELECT name_zh FROM cat) AS category_name, i.id,
       i.placement
FROM (SELECT 1) one LEFT JOIN ins i ON true
"""


CLOSED_TICKET_FILTER = (
    "AND NOT EXISTS (SELECT 1 FROM ticket t WHERE t.complaint_id = c.id "
    f"AND t.state IN {FINAL_SQL})"
)

def address_points_sql(compounds: str, numbers: str) -> str:
    """Representative points of (compound, building number) pairs: the building's point on surface when the
    building exists, else the compound's. `compounds` and `numbers` are the placeholders of the two arrays in the
    caller's style."""
    return f"""
SELECT q.key, coalesce(b.code, NULL) AS building_code,
       ST_X(coalesce(b.pt, c.pt)) AS lon, ST_Y(coalesce(b.pt, c.pt)) AS lat
FROM unnest(CAST({compounds} AS text[]), CAST({numbers} AS int[])) WITH ORDINALITY AS q(compound, number, key)
LEFT JOIN LATERAL (
    SELECT b.code, ST_PointOnSurface(b.geom) AS pt FROM building b
    WHERE q.number IS NOT NULL AND b.compound_code = q.compound AND b.number = q.number AND b.valid_to IS NULL
    ORDER BY b.code LIMIT 1) b ON true
LEFT JOIN LATERAL (
    SELECT ST_PointOnSurface(c.geom) AS pt FROM compound c
    WHERE b.code IS NULL AND c.code = q.compound AND c.valid_to IS NULL LIMIT 1) c ON true
"""


ADDRESS_POINTS_SQL = address_points_sql(":compounds", ":numbers")
"""`address_points_sql` for a single request (async SQLAlchemy)."""
ADDRESS_POINTS_BATCH_SQL = address_points_sql("%(compounds)s", "%(numbers)s")
"""`address_points_sql` for a batch (psycopg)."""
