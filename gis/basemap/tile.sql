-- One base-map tile, one statement: each layer's features in view (found by the GiST index on the Web Mercator
-- geometry), simplified to about a tile unit, clipped and encoded by ST_AsMVTGeom, packed by ST_AsMVT and the
-- layers concatenated in drawing order: district, landuse, water, roads (minor first), labels.
-- Labels carry a wide buffer, so a name near a tile's edge is in both tiles and each draws its half.
WITH env AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS tile,
           ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 0.015625) AS near,
           ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 0.25) AS wide,
           %(tolerance)s::float8 AS tolerance
)
SELECT
    coalesce((SELECT ST_AsMVT(f, 'district', 4096, 'geom') FROM (
        SELECT code, name, ST_AsMVTGeom(ST_Simplify(d.geom, env.tolerance), env.tile, 4096, 64, true) AS geom
        FROM bm_district d, env WHERE d.geom && env.near) f WHERE f.geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(f, 'landuse', 4096, 'geom') FROM (
        SELECT kind, ST_AsMVTGeom(ST_Simplify(l.geom, env.tolerance), env.tile, 4096, 64, true) AS geom
        FROM bm_landuse l, env WHERE %(z)s >= 13 AND l.geom && env.near) f WHERE f.geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(f, 'water', 4096, 'geom') FROM (
        SELECT kind, name, ST_AsMVTGeom(ST_Simplify(w.geom, env.tolerance), env.tile, 4096, 64, true) AS geom
        FROM bm_water w, env WHERE w.geom && env.near) f WHERE f.geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(f, 'roads', 4096, 'geom') FROM (
        SELECT class, name, ST_AsMVTGeom(ST_Simplify(r.geom, env.tolerance), env.tile, 4096, 64, true) AS geom
        FROM bm_road r, env WHERE r.minzoom <= %(z)s AND r.geom && env.near
        ORDER BY r.rank DESC, r.id) f WHERE f.geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(f, 'labels', 4096, 'geom') FROM (
        SELECT kind, name, angle, rank, ST_AsMVTGeom(b.geom, env.tile, 4096, 1024, false) AS geom
        FROM bm_label b, env WHERE b.minzoom <= %(z)s AND b.name IS NOT NULL AND b.geom && env.wide
        ORDER BY b.rank, b.name) f WHERE f.geom IS NOT NULL), ''::bytea)
