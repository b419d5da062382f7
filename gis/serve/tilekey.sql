CREATE OR REPLACE FUNCTION gridgov_tile_key(point geometry) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path FROM CURRENT AS $$
DECLARE
    lat float8 := radians(least(greatest(ST_Y(point), -{max_latitude}), {max_latitude}));
    x bigint := least(greatest(floor((ST_X(point) + 180.0) / 360.0 * {side}.0), 0), {last});
    y bigint := least(greatest(floor((1.0 - ln(tan(lat) + 1.0 / cos(lat)) / pi()) / 2.0 * {side}.0), 0),
                      {last});
BEGIN
    -- spread each coordinate's bits apart, then interleave: x on even bits, y on odd bits
    x := (x | (x << 16)) & x'0000FFFF0000FFFF'::bigint;
    x := (x | (x << 8)) & x'00FF00FF00FF00FF'::bigint;
    x := (x | (x << 4)) & x'0F0F0F0F0F0F0F0F'::bigint;
    x := (x | (x << 2)) & x'3333333333333333'::bigint;
    x := (x | (x << 1)) & x'5555555555555555'::bigint;
    y := (y | (y << 16)) & x'0000FFFF0000FFFF'::bigint;
    y := (y | (y << 8)) & x'00FF00FF00FF00FF'::bigint;
    y := (y | (y << 4)) & x'0F0F0F0F0F0F0F0F'::bigint;
    y := (y | (y << 2)) & x'3333333333333333'::bigint;
    y := (y | (y << 1)) & x'5555555555555555'::bigint;
    RETURN x | (y << 1);
END $$
