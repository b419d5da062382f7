"""intake: import batches, rejected rows, complaint intake facts, responsible parties, duplicates, Open311 keys

Revision ID: 0002_intake
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_intake"
down_revision = "0001"
branch_labels = None
depends_on = None


def _now():
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "intake_batch",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("mapping", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("crs", sa.String(16), nullable=False),
        sa.Column("state", sa.String(8), server_default="running", nullable=False),
        sa.Column("rows_read", sa.Integer(), server_default="0", nullable=False),
        sa.Column("imported", sa.Integer(), server_default="0", nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("placements", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('running', 'done', 'failed')", name=op.f("ck_intake_batch_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_batch")),
    )
    op.create_index(op.f("ix_intake_batch_file_sha256"), "intake_batch", ["file_sha256"])

    op.create_table(
        "intake_rejected_row",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", postgresql.JSONB(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["intake_batch.id"], ondelete="CASCADE",
                                name=op.f("fk_intake_rejected_row_batch_id_intake_batch")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_rejected_row")),
        sa.UniqueConstraint("batch_id", "row_number", name="uq_intake_rejected_row_batch_row"),
    )

    op.create_table(
        "open311_api_key",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_api_key")),
        sa.UniqueConstraint("name", name=op.f("uq_open311_api_key_name")),
        sa.UniqueConstraint("key_sha256", name=op.f("uq_open311_api_key_key_sha256")),
    )

    op.create_table(
        "complaint_intake",
        sa.Column("complaint_id", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=True),
        sa.Column("row_number", sa.Integer(), nullable=True),
        sa.Column("token", sa.String(40), nullable=True),
        sa.Column("api_key_id", sa.BigInteger(), nullable=True),
        sa.Column("match_score", sa.Float(), nullable=True),
        sa.Column("snap_distance_m", sa.Float(), nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("address_check", sa.String(16), nullable=True),
        sa.Column("attributes", postgresql.JSONB(), nullable=True),
        sa.Column("extra", postgresql.JSONB(), nullable=True),
        sa.Column("placed_by", sa.Text(), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("address_check IN ('agrees', 'disagrees', 'unresolved')",
                           name=op.f("ck_complaint_intake_address_check")),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"], ondelete="CASCADE",
                                name=op.f("fk_complaint_intake_complaint_id_complaint")),
        sa.ForeignKeyConstraint(["batch_id"], ["intake_batch.id"], ondelete="SET NULL",
                                name=op.f("fk_complaint_intake_batch_id_intake_batch")),
        sa.ForeignKeyConstraint(["api_key_id"], ["open311_api_key.id"],
                                name=op.f("fk_complaint_intake_api_key_id_open311_api_key")),
        sa.PrimaryKeyConstraint("complaint_id", name=op.f("pk_complaint_intake")),
        sa.UniqueConstraint("token", name=op.f("uq_complaint_intake_token")),
    )
    op.create_index(op.f("ix_complaint_intake_batch_id"), "complaint_intake", ["batch_id"])

    op.create_table(
        "complaint_party",
        sa.Column("complaint_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_worker_ids", postgresql.ARRAY(sa.BigInteger()), server_default="{}", nullable=False),
        sa.Column("community_party_id", sa.BigInteger(), nullable=True),
        sa.Column("grid_party_id", sa.BigInteger(), nullable=True),
        sa.Column("compound_party_id", sa.BigInteger(), nullable=True),
        sa.Column("building_party_id", sa.BigInteger(), nullable=True),
        sa.Column("property_company_id", sa.BigInteger(), nullable=True),
        sa.Column("owners_committee_id", sa.BigInteger(), nullable=True),
        sa.Column("management_mode", sa.String(16), nullable=True),
        sa.Column("captured_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"], ondelete="CASCADE",
                                name=op.f("fk_complaint_party_complaint_id_complaint")),
        sa.PrimaryKeyConstraint("complaint_id", name=op.f("pk_complaint_party")),
    )

    op.create_table(
        "complaint_duplicate",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("complaint_id", sa.BigInteger(), nullable=False),
        sa.Column("duplicate_of_id", sa.BigInteger(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("hours_apart", sa.Float(), nullable=False),
        sa.Column("state", sa.String(12), server_default="possible", nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint("state IN ('possible', 'confirmed', 'dismissed')",
                           name=op.f("ck_complaint_duplicate_state")),
        sa.CheckConstraint("complaint_id <> duplicate_of_id", name=op.f("ck_complaint_duplicate_not_self")),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"], ondelete="CASCADE",
                                name=op.f("fk_complaint_duplicate_complaint_id_complaint")),
        sa.ForeignKeyConstraint(["duplicate_of_id"], ["complaint.id"], ondelete="CASCADE",
                                name=op.f("fk_complaint_duplicate_duplicate_of_id_complaint")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_duplicate")),
        sa.UniqueConstraint("complaint_id", "duplicate_of_id", name="uq_complaint_duplicate_pair"),
    )
    op.create_index("ix_complaint_duplicate_of", "complaint_duplicate", ["duplicate_of_id"])
    # The review queue is read by placement; a partial index keeps it cheap on a large complaint table.
    op.execute("CREATE INDEX ix_complaint_review_queue ON complaint (reported_at) WHERE placement = 'review'")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_complaint_review_queue")
    for table in ("complaint_duplicate", "complaint_party", "complaint_intake", "open311_api_key",
                  "intake_rejected_row", "intake_batch"):
        op.drop_table(table)
