"""the tile key function finds PostGIS whatever the caller's search path

Revision ID: 0022_tile_key_search_path
Revises: 0007_complaint_tile_key
Create Date: 2026-12-02

Autovacuum analyses a table with an empty search path; evaluating the tile-key index's expression then could not
find ST_X and ST_Y, so `complaint` never had statistics from autovacuum (only from explicit ANALYZE). The
function now keeps the search path it was created with (where PostGIS was found), in whatever schema PostGIS is;
it costs about 0.75 µs a call.
"""
from alembic import op

revision = "0022_tile_key_search_path"
down_revision = "0007_complaint_tile_key"
branch_labels = None
depends_on = None

# gridgov_tile_key as this revision installs it (pasted, not imported: a later change is a new migration).
TILE_KEY_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION gridgov_tile_key(point geometry) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path FROM CURRENT AS $$
DECLARE
    lat float8 := radians(least(greatest(ST_Y(point), -85.0511287798), 85.0511287798));
    x bigint := least(greatest(floor((ST_X(point) + 180.0) / 360.0 * 1048576.0), 0), 1048575);
    y bigint := least(greatest(floor((1.0 - ln(tan(lat) + 1.0 / cos(lat)) / pi()) / 2.0 * 1048576.0), 0),
                      1048575);
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
"""

# as 0007 installed it
PREVIOUS_TILE_KEY_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION gridgov_tile_key(point geometry) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    lat float8 := radians(least(greatest(ST_Y(point), -85.0511287798), 85.0511287798));
    x bigint := least(greatest(floor((ST_X(point) + 180.0) / 360.0 * 1048576.0), 0), 1048575);
    y bigint := least(greatest(floor((1.0 - ln(tan(lat) + 1.0 / cos(lat)) / pi()) / 2.0 * 1048576.0), 0),
                      1048575);
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
"""


def upgrade() -> None:
    op.execute(TILE_KEY_FUNCTION_SQL)


def downgrade() -> None:
    op.execute(PREVIOUS_TILE_KEY_FUNCTION_SQL)
