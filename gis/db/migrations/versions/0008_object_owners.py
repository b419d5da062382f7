"""owners of stored objects: who ran an import, and the area it is visible to

Revision ID: 0008_object_owners
Revises: 0002_intake
Create Date: 2026-12-01

Import batches (and through them their rejected rows, which hold the file's own cells, reporters included) can
be fetched by id; they now record the user who ran them and the scope codes that user had, so other users see
them only inside that scope. Batches imported from the command line have no owner: administrators only.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008_object_owners"
down_revision = "0002_intake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("intake_batch", sa.Column("owner_user_id", sa.BigInteger(), nullable=True))
    op.add_column("intake_batch", sa.Column("owner_scope", postgresql.ARRAY(sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("intake_batch", "owner_scope")
    op.drop_column("intake_batch", "owner_user_id")
