"""Tables of the registry's history and imports (migration 0012_registry_history holds their SQL)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis.layers.models import MANAGEMENT_MODES, Base


class CompoundManagementVersion(Base):
    """A compound's management mode and managing company over one period (`valid_to` NULL while open)."""

    __tablename__ = "compound_management_version"
    __table_args__ = (
        UniqueConstraint("compound_code", "valid_from", name="uq_compound_management_version_code_from"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="validity"),
        CheckConstraint("management_mode IN ({})".format(", ".join(repr(m) for m in MANAGEMENT_MODES)),
                        name="mode"),
        Index("ix_compound_management_version_open", "compound_code", unique=True,
              postgresql_where=text("valid_to IS NULL")),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    compound_code: Mapped[str] = mapped_column(String(32), nullable=False)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    valid_to: Mapped[date | None] = mapped_column(Date)
    management_mode: Mapped[str] = mapped_column(String(16), nullable=False)
    property_company_id: Mapped[int | None] = mapped_column(ForeignKey("property_company.id"))
    reason: Mapped[str | None] = mapped_column(Text)


class OwnersCommitteeTerm(Base):
    """One term (届) of a compound's owners' committee, from `term_start` until `term_end` (exclusive)."""

    __tablename__ = "owners_committee_term"
    __table_args__ = (
        UniqueConstraint("compound_code", "term_start", name="uq_owners_committee_term_code_start"),
        CheckConstraint("term_end IS NULL OR term_end > term_start", name="validity"),
        CheckConstraint("party_member_count BETWEEN 0 AND member_count", name="party_members"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    compound_code: Mapped[str] = mapped_column(String(32), nullable=False)
    term_start: Mapped[date] = mapped_column(Date, nullable=False)
    term_end: Mapped[date | None] = mapped_column(Date)
    member_count: Mapped[int] = mapped_column(Integer, nullable=False)
    party_member_count: Mapped[int] = mapped_column(Integer, nullable=False)
    chair_name: Mapped[str] = mapped_column(Text, nullable=False)
    chair_is_party_member: Mapped[bool] = mapped_column(Boolean, nullable=False)
    members: Mapped[str | None] = mapped_column(Text)


class GridWorkerAssignment(Base):
    """Which grid a grid worker served over one period."""

    __tablename__ = "grid_worker_assignment"
    __table_args__ = (
        UniqueConstraint("grid_worker_id", "valid_from", name="uq_grid_worker_assignment_worker_from"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="validity"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    grid_worker_id: Mapped[int] = mapped_column(ForeignKey("grid_worker.id", ondelete="CASCADE"), nullable=False)
    grid_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    valid_to: Mapped[date | None] = mapped_column(Date)


class PartyOrganisationPeriod(Base):
    """A period in which a party organisation existed."""

    __tablename__ = "party_organisation_period"
    __table_args__ = (
        UniqueConstraint("organisation_code", "valid_from", name="uq_party_organisation_period_code_from"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="validity"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    organisation_code: Mapped[str] = mapped_column(String(40), nullable=False)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    valid_to: Mapped[date | None] = mapped_column(Date)


class CompoundFee(Base):
    """A compound's property fees due and collected, in yuan."""

    __tablename__ = "compound_fee"
    compound_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    fees_due_yuan = mapped_column(Numeric(14, 2))
    fees_collected_yuan = mapped_column(Numeric(14, 2))


class RegistryImport(Base):
    """One registry import: who ran it, the counts and every row's account."""

    __tablename__ = "registry_import"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    file_name: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    username: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    scope_codes: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    rows_read: Mapped[int] = mapped_column(Integer, nullable=False)
    imported: Mapped[int] = mapped_column(Integer, nullable=False)
    unchanged: Mapped[int] = mapped_column(Integer, nullable=False)
    updated: Mapped[int] = mapped_column(Integer, nullable=False)
    rejected: Mapped[int] = mapped_column(Integer, nullable=False)
    rows = mapped_column(JSONB, nullable=False)
