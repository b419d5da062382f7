"""audit: the append-only log of personal-data reads, and failed sign-ins for login rate limiting

Revision ID: 0005_audit
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_audit"
down_revision = "0001"
branch_labels = None
depends_on = None

# The append-only rule as this revision installed it (pasted, not imported: a later change is a new migration).
APPEND_ONLY_SQL = """
CREATE FUNCTION audit_personal_read_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'the personal-data access log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$fn$;
CREATE TRIGGER audit_personal_read_append_only BEFORE UPDATE OR DELETE ON audit_personal_read
    FOR EACH ROW EXECUTE FUNCTION audit_personal_read_append_only();
CREATE TRIGGER audit_personal_read_no_truncate BEFORE TRUNCATE ON audit_personal_read
    FOR EACH STATEMENT EXECUTE FUNCTION audit_personal_read_append_only();
"""

DROP_APPEND_ONLY_SQL = """
DROP TRIGGER IF EXISTS audit_personal_read_no_truncate ON audit_personal_read;
DROP TRIGGER IF EXISTS audit_personal_read_append_only ON audit_personal_read;
DROP FUNCTION IF EXISTS audit_personal_read_append_only();
"""


def upgrade() -> None:
    op.create_table(
        "audit_personal_read",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("record_ids", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("record_count", sa.Integer(), nullable=True),
        sa.Column("client_address", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_personal_read")),
    )
    op.create_index("ix_audit_personal_read_at", "audit_personal_read", ["at"])
    op.create_index("ix_audit_personal_read_user_at", "audit_personal_read", ["username", "at"])
    op.create_index("ix_audit_personal_read_record_ids", "audit_personal_read", ["record_ids"],
                    postgresql_using="gin")
    op.create_table(
        "login_failure",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("client_address", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failure")),
    )
    op.create_index("ix_login_failure_username_at", "login_failure", ["username", "at"])
    op.create_index("ix_login_failure_client_address_at", "login_failure", ["client_address", "at"])
    op.create_index("ix_login_failure_at", "login_failure", ["at"])
    op.execute(APPEND_ONLY_SQL)


def downgrade() -> None:
    op.execute(DROP_APPEND_ONLY_SQL)
    op.drop_table("login_failure")
    op.drop_table("audit_personal_read")
