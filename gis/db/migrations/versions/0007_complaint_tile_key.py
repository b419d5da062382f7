"""complaint tiles: a covering B-tree on each complaint's tile key

Revision ID: 0007_complaint_tile_key
Revises: 0006_complaint_newest
Create Date: 2026-11-21

A tile's complaints are a few ranges of Z-order keys (gis/tilekey.py), so the newest of them come from an
index-only scan of the rows in view, however dense or sparse the tile. It replaces the newest-first index of
0006, whose walk read most of the table for tiles at the city's edge.
"""
from alembic import op

revision = "0007_complaint_tile_key"
down_revision = "0006_complaint_newest"
branch_labels = None
depends_on = None

# gridgov_tile_key as this revision installed it, with the constants of gis/tilekey.py written out (pasted, not
# imported: a later change is a new migration).
TILE_KEY_FUNCTION_SQL = """
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
    op.execute("CREATE INDEX IF NOT EXISTS ix_complaint_tile_key ON complaint (gridgov_tile_key(geom)) "
               "INCLUDE (reported_at, id, category_code, geom)")
    op.execute("DROP INDEX IF EXISTS ix_complaint_newest_covering")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS ix_complaint_newest_covering ON complaint "
               "(reported_at DESC, id DESC) INCLUDE (category_code, geom)")
    op.execute("DROP INDEX IF EXISTS ix_complaint_tile_key")
    op.execute("DROP FUNCTION IF EXISTS gridgov_tile_key(geometry)")
