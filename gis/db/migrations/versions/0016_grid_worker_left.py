"""a grid worker who left holds no grid: `grid_worker.grid_code` becomes nullable

Revision ID: 0016_grid_worker_left
Revises: 0015_registry_edits
Create Date: 2026-12-08

`grid_worker.grid_code` is the grid of the worker's open assignment (`grid_worker_assignment` with no end), and
empty once the worker has left (the assignment ended and no new one opened). Every list of current grid workers
(the responsibility panel, the parties informed of a ticket, the parties recorded with a complaint, the registry's
lists and exports) reads this column, so a worker who left no longer shows; the assignments keep who served
where and when, for the as-of figures. Workers who had left before this revision lose their stale grid here.

The SQL is written out here: a migration must not import project code, which moves on after it.
"""
from alembic import op

revision = "0016_grid_worker_left"
down_revision = "0015_registry_edits"
branch_labels = None
depends_on = None


UPGRADE = """
ALTER TABLE grid_worker ALTER COLUMN grid_code DROP NOT NULL;
UPDATE grid_worker w SET grid_code = NULL
WHERE EXISTS (SELECT 1 FROM grid_worker_assignment a WHERE a.grid_worker_id = w.id)
  AND NOT EXISTS (SELECT 1 FROM grid_worker_assignment a WHERE a.grid_worker_id = w.id AND a.valid_to IS NULL);
"""

DOWNGRADE = """
UPDATE grid_worker w SET grid_code = (
    SELECT a.grid_code FROM grid_worker_assignment a WHERE a.grid_worker_id = w.id
    ORDER BY a.valid_from DESC LIMIT 1)
WHERE w.grid_code IS NULL;
ALTER TABLE grid_worker ALTER COLUMN grid_code SET NOT NULL;
"""


def upgrade() -> None:
    """Let a grid worker who left hold no grid, and empty the grid of those who left already."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Give every worker their last grid again and make the column required."""
    op.execute(DOWNGRADE)
