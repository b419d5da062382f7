"""complaint tiles: a covering B-tree on each complaint's tile key

Revision ID: 0007_complaint_tile_key
Revises: 0006_complaint_newest
Create Date: 2026-11-21

A tile's complaints are a few ranges of Z-order keys (gis/tilekey.py), so the newest of them come from an
index-only scan of the rows in view, however dense or sparse the tile. It replaces the newest-first index of
0006, whose walk read most of the table for tiles at the city's edge.
"""
from alembic import op

from gis.tilekey import TILE_KEY_FUNCTION_SQL

revision = "0007_complaint_tile_key"
down_revision = "0006_complaint_newest"
branch_labels = None
depends_on = None


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
