"""callbacks (回访) after closing, and an index for repeat complaints (重复投诉)

Revision ID: 0017_ticket_callbacks
Revises: 0011_supervision
Create Date: 2026-12-02

A callback is recorded on the ticket as well as in its history: `callback_at`, `callback_solved` (the problem
is solved, in the resident's words) and `callback_satisfied` (the resident is satisfied; empty when the resident
did not say). The rates read these columns (gis/tickets/rates.py), as they read `rating`.

A closing does not hold when a complaint of the same category at the same compound follows it within the repeat
window: `ix_ticket_repeat` makes that test one index range probe per closing.

The SQL is written out here: a migration must not import project code, which moves on after it.
"""
from alembic import op

revision = "0017_ticket_callbacks"
down_revision = "0011_supervision"
branch_labels = None
depends_on = None


UPGRADE = """
ALTER TABLE ticket ADD COLUMN callback_at timestamptz;
ALTER TABLE ticket ADD COLUMN callback_solved boolean;
ALTER TABLE ticket ADD COLUMN callback_satisfied boolean;
ALTER TABLE ticket ADD CONSTRAINT ck_ticket_callback_complete
    CHECK ((callback_at IS NULL) = (callback_solved IS NULL));
CREATE INDEX ix_ticket_repeat ON ticket (compound_code, category_code, reported_at);
"""

DOWNGRADE = """
DROP INDEX IF EXISTS ix_ticket_repeat;
ALTER TABLE ticket DROP CONSTRAINT IF EXISTS ck_ticket_callback_complete;
ALTER TABLE ticket DROP COLUMN IF EXISTS callback_satisfied;
ALTER TABLE ticket DROP COLUMN IF EXISTS callback_solved;
ALTER TABLE ticket DROP COLUMN IF EXISTS callback_at;
"""


def upgrade() -> None:
    """Add the callback columns to tickets and the repeat-complaint index."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop the repeat-complaint index and the callback columns."""
    op.execute(DOWNGRADE)
