"""analytics: regulator inspections, street/community ratings, evaluation detail

Revision ID: 0004_analytics
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_analytics"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "regulator_inspection",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("compound_code", sa.String(length=32), nullable=True),
        sa.Column("inspected_on", sa.Date(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("findings", sa.Integer(), server_default="0", nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("score BETWEEN 0 AND 100", name=op.f("ck_regulator_inspection_score")),
        sa.ForeignKeyConstraint(["company_id"], ["property_company.id"],
                                name=op.f("fk_regulator_inspection_company_id_property_company")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regulator_inspection")),
    )
    op.create_index(op.f("ix_regulator_inspection_company_id"), "regulator_inspection", ["company_id"])
    op.create_index(op.f("ix_regulator_inspection_inspected_on"), "regulator_inspection", ["inspected_on"])
    op.create_table(
        "company_rating",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("rater_level", sa.String(length=16), nullable=False),
        sa.Column("rater_code", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.CheckConstraint("rater_level IN ('street', 'community')", name=op.f("ck_company_rating_rater_level")),
        sa.CheckConstraint("score BETWEEN 0 AND 100", name=op.f("ck_company_rating_score")),
        sa.ForeignKeyConstraint(["company_id"], ["property_company.id"],
                                name=op.f("fk_company_rating_company_id_property_company")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_company_rating")),
        sa.UniqueConstraint("company_id", "period", "rater_level", "rater_code", name="uq_company_rating_rater"),
    )
    op.create_index(op.f("ix_company_rating_company_id"), "company_rating", ["company_id"])
    op.create_table(
        "evaluation_detail",
        sa.Column("evaluation_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("companies_ranked", sa.Integer(), nullable=False),
        sa.Column("compounds", sa.Integer(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("complaints", sa.Integer(), nullable=False),
        sa.Column("complaint_rate_per_1000", sa.Float(), nullable=True),
        sa.Column("satisfaction", sa.Float(), nullable=True),
        sa.Column("resolution_rate", sa.Float(), nullable=True),
        sa.Column("inspections", sa.Integer(), nullable=False),
        sa.Column("ratings", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=12), nullable=False),
        sa.Column("flagged_for_exit", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("inputs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint("grade IN ('excellent', 'qualified', 'black')", name=op.f("ck_evaluation_detail_grade")),
        sa.ForeignKeyConstraint(["evaluation_id"], ["company_evaluation.id"], ondelete="CASCADE",
                                name=op.f("fk_evaluation_detail_evaluation_id_company_evaluation")),
        sa.PrimaryKeyConstraint("evaluation_id", name=op.f("pk_evaluation_detail")),
    )


def downgrade() -> None:
    op.drop_table("evaluation_detail")
    op.drop_index(op.f("ix_company_rating_company_id"), table_name="company_rating")
    op.drop_table("company_rating")
    op.drop_index(op.f("ix_regulator_inspection_inspected_on"), table_name="regulator_inspection")
    op.drop_index(op.f("ix_regulator_inspection_company_id"), table_name="regulator_inspection")
    op.drop_table("regulator_inspection")
