"""Tables of the evaluation inputs and results: regulator inspections, street and community ratings, and the
detail behind each half-year evaluation of a property company (the credit file 信用档案)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Identity,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis.layers.models import Base

RATER_LEVELS = ("street", "community")
GRADES = ("excellent", "qualified", "black")


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


class EvaluationDetail(Base):
    """How one `company_evaluation` row came about: the residents' inputs, rank, grade and exit flag."""

    __tablename__ = "evaluation_detail"
    evaluation_id: Mapped[int] = mapped_column(
        ForeignKey("company_evaluation.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
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
        String(12), CheckConstraint("grade IN ('excellent', 'qualified', 'black')", name="grade"), nullable=False
    )
    flagged_for_exit: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    inputs: Mapped[dict] = mapped_column(JSONB, nullable=False)
