"""Tables of the evaluation inputs and results: regulator inspections with their items, street and community
ratings, residents' satisfaction surveys, the detail behind each half-year evaluation of a property company, its
consequences (rectification tasks, exits with their hand-overs, the subsidy ledger) and the credit file's items
(信用档案). Migration 0013 created the newer tables; these models mirror it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis.layers.models import Base

RATER_LEVELS = ("street", "community")
GRADES = ("excellent", "qualified", "black", "insufficient")
CREDIT_KINDS = ("basic", "good", "bad")
CREDIT_STATUSES = ("pending", "approved", "rejected")
RECTIFICATION_RESULTS = ("pending", "passed", "failed")


class RegulatorInspection(Base):
    """A housing regulator's inspection of a property company (at one of its compounds), scored 0–100."""

    __tablename__ = "regulator_inspection"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("property_company.id"), nullable=False, index=True)
    compound_code: Mapped[str | None] = mapped_column(String(32))
    inspected_on: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    score: Mapped[float] = mapped_column(Float, CheckConstraint("score BETWEEN 0 AND 100", name="score"),
                                         nullable=False)
    findings: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class InspectionItem(Base):
    """One item of a regulator's inspection (e.g. 消防通道, 环境卫生) with the points deducted for it."""

    __tablename__ = "inspection_item"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("regulator_inspection.id", ondelete="CASCADE"),
                                               nullable=False, index=True)
    item: Mapped[str] = mapped_column(Text, nullable=False)
    deduction: Mapped[float] = mapped_column(Float, CheckConstraint("deduction BETWEEN 0 AND 100", name="deduction"),
                                             nullable=False, server_default="0")
    note: Mapped[str | None] = mapped_column(Text)


class SatisfactionSurvey(Base):
    """A residents' satisfaction survey of one compound: how many residents answered and the score (0–100), with
    the company that managed the compound on the survey's day."""

    __tablename__ = "satisfaction_survey"
    __table_args__ = (UniqueConstraint("compound_code", "surveyed_on", name="uq_satisfaction_survey_compound_day"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    compound_code: Mapped[str] = mapped_column(String(32), nullable=False)
    company_id: Mapped[int] = mapped_column(ForeignKey("property_company.id"), nullable=False, index=True)
    surveyed_on: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    sample_size: Mapped[int] = mapped_column(Integer, CheckConstraint("sample_size > 0", name="sample_size"),
                                             nullable=False)
    score: Mapped[float] = mapped_column(Float, CheckConstraint("score BETWEEN 0 AND 100", name="score"),
                                         nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class CompanyRating(Base):
    """A street office's or community's rating of a property company for a half-year, 0–100."""

    __tablename__ = "company_rating"
    __table_args__ = (
        UniqueConstraint("company_id", "period", "rater_level", "rater_code", name="uq_company_rating_rater"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("property_company.id"), nullable=False, index=True)
    period: Mapped[str] = mapped_column(String(8), nullable=False)
    rater_level: Mapped[str] = mapped_column(
        String(16), CheckConstraint("rater_level IN ('street', 'community')", name="rater_level"), nullable=False
    )
    rater_code: Mapped[str] = mapped_column(String(32), nullable=False)
    score: Mapped[float] = mapped_column(Float, CheckConstraint("score BETWEEN 0 AND 100", name="score"),
                                         nullable=False)
    recorded_by: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class EvaluationDetail(Base):
    """How one `company_evaluation` row came about: the residents' inputs, rank, grade and exit flag."""

    __tablename__ = "evaluation_detail"
    evaluation_id: Mapped[int] = mapped_column(
        ForeignKey("company_evaluation.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int | None] = mapped_column(Integer)
    """None for a company listed as insufficient data (数据不足)."""
    companies_ranked: Mapped[int] = mapped_column(Integer, nullable=False)
    compounds: Mapped[int] = mapped_column(Integer, nullable=False)
    households: Mapped[int] = mapped_column(Integer, nullable=False)
    complaints: Mapped[int] = mapped_column(Integer, nullable=False)
    complaint_rate_per_1000: Mapped[float | None] = mapped_column(Float)
    satisfaction: Mapped[float | None] = mapped_column(Float)
    resolution_rate: Mapped[float | None] = mapped_column(Float)
    inspections: Mapped[int] = mapped_column(Integer, nullable=False)
    ratings: Mapped[int] = mapped_column(Integer, nullable=False)
    grade: Mapped[str] = mapped_column(
        String(12), CheckConstraint("grade IN ('excellent', 'qualified', 'black', 'insufficient')", name="grade"),
        nullable=False,
    )
    flagged_for_exit: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    inputs: Mapped[dict] = mapped_column(JSONB, nullable=False)


class RectificationTask(Base):
    """整改: the task a black-listed company gets for a half-year, with its deadline, items and follow-up."""

    __tablename__ = "rectification_task"
    __table_args__ = (UniqueConstraint("company_id", "period", name="uq_rectification_task_company_period"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("property_company.id"), nullable=False)
    period: Mapped[str] = mapped_column(String(8), nullable=False)
    items: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    deadline: Mapped[date] = mapped_column(Date, nullable=False)
    result: Mapped[str] = mapped_column(
        String(8), CheckConstraint("result IN ('pending', 'passed', 'failed')", name="result"), nullable=False,
        server_default="pending")
    result_note: Mapped[str | None] = mapped_column(Text)
    followed_up_by: Mapped[str | None] = mapped_column(Text)
    followed_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class CompanyExit(Base):
    """清退: a company black-listed twice in a row without a passed rectification leaves its compounds."""

    __tablename__ = "company_exit"
    __table_args__ = (UniqueConstraint("company_id", "period", name="uq_company_exit_company_period"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("property_company.id"), nullable=False)
    period: Mapped[str] = mapped_column(String(8), nullable=False)
    handed_over_on: Mapped[date] = mapped_column(Date, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    started_by: Mapped[str] = mapped_column(Text, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class CompoundHandover(Base):
    """One compound handed over by an exit: from the leaving company to its successor, on a date."""

    __tablename__ = "compound_handover"
    __table_args__ = (UniqueConstraint("exit_id", "compound_code", name="uq_compound_handover_exit_compound"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    exit_id: Mapped[int] = mapped_column(ForeignKey("company_exit.id", ondelete="CASCADE"), nullable=False)
    compound_code: Mapped[str] = mapped_column(String(32), nullable=False)
    from_company_id: Mapped[int] = mapped_column(ForeignKey("property_company.id"), nullable=False)
    to_company_id: Mapped[int] = mapped_column(ForeignKey("property_company.id"), nullable=False)
    handed_over_on: Mapped[date] = mapped_column(Date, nullable=False)
    named_by_street: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")


class SubsidyLedger(Base):
    """The old-estate subsidy of one company, month and estate (老旧小区补贴台账)."""

    __tablename__ = "subsidy_ledger"
    __table_args__ = (UniqueConstraint("company_id", "month", "compound_code",
                                       name="uq_subsidy_ledger_company_month_compound"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("property_company.id"), nullable=False)
    month: Mapped[date] = mapped_column(Date, CheckConstraint("extract(day FROM month) = 1", name="month"),
                                        nullable=False)
    compound_code: Mapped[str] = mapped_column(String(32), nullable=False)
    basis_period: Mapped[str] = mapped_column(String(8), nullable=False)
    floor_area_m2: Mapped[float] = mapped_column(Float, nullable=False)
    rate_yuan_per_m2_month: Mapped[float] = mapped_column(Float, nullable=False)
    amount_yuan: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)


class CreditItem(Base):
    """An item of a company's credit file: basic, good or bad information, pending until reviewed."""

    __tablename__ = "credit_item"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("property_company.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(8), CheckConstraint("kind IN ('basic', 'good', 'bad')", name="kind"),
                                      nullable=False)
    category: Mapped[str] = mapped_column(String(32), nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    detail: Mapped[str | None] = mapped_column(Text)
    occurred_on: Mapped[date] = mapped_column(Date, nullable=False)
    reported_by: Mapped[str] = mapped_column(Text, nullable=False)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    status: Mapped[str] = mapped_column(
        String(8), CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"), nullable=False,
        server_default="pending")
    reviewed_by: Mapped[str | None] = mapped_column(Text)
    reviewer_level: Mapped[str | None] = mapped_column(String(8), CheckConstraint(
        "reviewer_level IN ('street', 'housing')", name="reviewer_level"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_reason: Mapped[str | None] = mapped_column(Text)
