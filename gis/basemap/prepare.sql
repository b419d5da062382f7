-- The demo base map's features, made from the city's current layers into temporary tables (Web Mercator, so
-- each tile's statement needs no transform). Distances are measured in CGCS2000 / 3-degree Gauss-Kruger CM 117E
-- (EPSG:4548, metres). Water is added afterwards by the builder (gis/basemap/build.py).

-- The district: a light grey city with its outline.
CREATE TEMP TABLE bm_district ON COMMIT DROP AS
SELECT code, name, ST_Transform(geom, 3857) AS geom FROM district WHERE valid_to IS NULL;

-- The boundaries the roads run along, one table per rank: 1 between street offices, 2 between communities,
-- 3 between grids, 4 between compounds and the other micro-grids (never through a compound: a compound's own
-- micro-grids are one polygon here). The city's outer edge is the district outline, not a road.
CREATE TEMP TABLE bm_edge_source ON COMMIT DROP AS
SELECT 1 AS rank, code, ST_Transform(ST_Boundary(geom), 4548) AS geom FROM street WHERE valid_to IS NULL
UNION ALL SELECT 2, code, ST_Transform(ST_Boundary(geom), 4548) FROM community WHERE valid_to IS NULL
UNION ALL SELECT 3, code, ST_Transform(ST_Boundary(geom), 4548) FROM grid WHERE valid_to IS NULL
UNION ALL SELECT 4, code, ST_Transform(ST_Boundary(geom), 4548) FROM compound WHERE valid_to IS NULL
UNION ALL SELECT 4, code, ST_Transform(ST_Boundary(geom), 4548) FROM micro_grid
    WHERE valid_to IS NULL AND compound_code IS NULL
UNION ALL SELECT 0, '', ST_Transform(ST_Boundary(ST_Union(geom)), 4548) FROM district WHERE valid_to IS NULL;
CREATE INDEX ON bm_edge_source USING gist (geom);

-- Every boundary noded and merged into ways (from junction to junction), each given the most important rank of
-- the boundaries it runs along (its middle within a metre of one) and the pair of units it separates there.
CREATE TEMP TABLE bm_way ON COMMIT DROP AS
WITH network AS (
    -- on a half-metre grid: neighbours' shared edges differ by fractions of a millimetre, and would be two roads
    -- (each way normalised: the overlay's direction of a line differs from run to run)
    SELECT ST_Normalize((ST_Dump(ST_LineMerge(ST_Union(geom, 0.5)))).geom) AS geom FROM bm_edge_source
    WHERE rank > 0
), ranked AS (
    SELECT n.geom, r.rank, r.pair FROM network n
    CROSS JOIN LATERAL (
        SELECT s.rank, string_agg(s.code, '|' ORDER BY s.code) AS pair FROM bm_edge_source s
        WHERE ST_DWithin(s.geom, ST_LineInterpolatePoint(n.geom, 0.5), 1.0)
        GROUP BY s.rank ORDER BY s.rank LIMIT 1) r
    WHERE ST_Length(n.geom) > 1
)
SELECT row_number() OVER (ORDER BY rank, ST_Length(geom) DESC, ST_XMin(geom), ST_YMin(geom)) AS id, rank, pair,
       geom, ST_Length(geom) AS length_m
FROM ranked WHERE rank > 0;

-- Roads: the ways with their class and the zoom they appear from. Main roads are named (the builder's list, in a
-- fixed order, the longest first): one name for all the ways between the same two street offices or communities.
CREATE TEMP TABLE bm_road ON COMMIT DROP AS
WITH pairs AS (
    SELECT rank, pair, sum(length_m) AS length_m FROM bm_way WHERE rank <= 2 GROUP BY rank, pair
), named AS (
    SELECT rank, pair, row_number() OVER (ORDER BY rank, length_m DESC, pair) AS name_serial
    FROM pairs WHERE length_m >= 250
)
SELECT w.id, CASE w.rank WHEN 1 THEN 'primary' WHEN 2 THEN 'secondary' WHEN 3 THEN 'tertiary' ELSE 'minor' END
           AS class,
       w.rank,
       CASE w.rank WHEN 1 THEN 10 WHEN 2 THEN 12 WHEN 3 THEN 13 ELSE 15 END AS minzoom,
       CASE WHEN n.name_serial IS NOT NULL AND cardinality(%(road_names)s::text[]) > 0 THEN
           (%(road_names)s::text[])[1 + (n.name_serial - 1) %% cardinality(%(road_names)s::text[])]
       END AS name,
       ST_Transform(w.geom, 3857) AS geom,
       w.geom AS geom_m
FROM bm_way w LEFT JOIN named n ON n.rank = w.rank AND n.pair = w.pair;
CREATE INDEX ON bm_road USING gist (geom);

-- Parks, schools, markets and the other places that are not compounds (their micro-grids' names say which).
CREATE TEMP TABLE bm_landuse ON COMMIT DROP AS
SELECT code, name,
       CASE WHEN name LIKE '%%公园%%' OR name LIKE '%%绿地%%' THEN 'park'
            WHEN name LIKE '%%广场%%' THEN 'plaza'
            WHEN name LIKE '%%学校%%' THEN 'school'
            WHEN name LIKE '%%医院%%' THEN 'hospital'
            ELSE 'public' END AS kind,
       ST_Transform(geom, 3857) AS geom
FROM micro_grid WHERE valid_to IS NULL AND compound_code IS NULL;
CREATE INDEX ON bm_landuse USING gist (geom);

-- Labels: the district, street offices, communities (at a point inside each), and one per named road, at its
-- middle, with the road's direction there (degrees clockwise from east, kept within +-90 so text reads upright).
CREATE TEMP TABLE bm_label ON COMMIT DROP AS
SELECT 'district' AS kind, name, 10 AS minzoom, 1 AS rank, 0.0 AS angle,
       ST_Transform(ST_PointOnSurface(geom), 3857) AS geom FROM district WHERE valid_to IS NULL
UNION ALL
SELECT 'street', name, 12, 2, 0.0, ST_Transform(ST_PointOnSurface(geom), 3857) FROM street WHERE valid_to IS NULL
UNION ALL
SELECT 'community', name, 14, 3, 0.0, ST_Transform(ST_PointOnSurface(geom), 3857) FROM community
    WHERE valid_to IS NULL
UNION ALL
SELECT 'road', name, CASE WHEN rank = 1 THEN 14 ELSE 15 END, 3 + rank,
       round(CAST(degrees(atan2(ST_Y(b) - ST_Y(a), ST_X(b) - ST_X(a))) AS numeric), 1)::float8,
       ST_Transform(ST_LineInterpolatePoint(geom, at), 3857)
FROM (
    -- each named road merged, then a label every 1.2 km or so along each of its pieces (once on a short one)
    SELECT name, rank, geom, at,
           ST_LineInterpolatePoint(geom, greatest(0.0, at - 40.0 / length)) AS a,
           ST_LineInterpolatePoint(geom, least(1.0, at + 40.0 / length)) AS b
    FROM (SELECT name, rank, ST_Normalize(part.geom) AS geom, ST_Length(part.geom) AS length
          FROM (SELECT name, min(rank) AS rank, ST_LineMerge(ST_Union(geom_m)) AS merged
                FROM bm_road WHERE name IS NOT NULL GROUP BY name) roads
          CROSS JOIN LATERAL ST_Dump(merged) AS part) pieces
    CROSS JOIN LATERAL (
        SELECT (i + 0.5) / greatest(1, floor(length / 1200.0)) AS at
        FROM generate_series(0, greatest(1, floor(length / 1200.0))::int - 1) AS i) spots
    WHERE length >= 250
) named;
UPDATE bm_label SET angle = CASE WHEN angle > 90 THEN angle - 180 WHEN angle < -90 THEN angle + 180 ELSE angle END;
-- Screen angles turn clockwise while map angles turn anticlockwise.
UPDATE bm_label SET angle = -angle WHERE kind = 'road';
CREATE INDEX ON bm_label USING gist (geom);
