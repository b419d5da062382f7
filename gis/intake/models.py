"""Tables of the intake: import batches and their rejected rows, per-complaint intake facts, the responsible
parties snapshot, possible duplicates and Open311 API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis.layers.models import Base

BATCH_STATES = ("running", "done", "failed")
DUPLICATE_STATES = ("possible", "confirmed", "dismissed")
ADDRESS_CHECKS = ("agrees", "disagrees", "unresolved")


class IntakeBatch(Base):
    """One run of a batch import (批量导入): its file, mapping and the running counts of row outcomes."""

    __tablename__ = "intake_batch"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    file_name: Mapped[str] = mapped_column(Text, nullable=False)
    file_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    mapping: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    crs: Mapped[str] = mapped_column(String(16), nullable=False)
    state: Mapped[str] = mapped_column(
        String(8), CheckConstraint("state IN ('running', 'done', 'failed')", name="state"), nullable=False,
        server_default="running",
    )
    rows_read: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    imported: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    duplicates: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    rejected: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    placements: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owner_user_id: Mapped[int | None] = mapped_column(BigInteger)
    """The user who ran the import (none from the command line: administrators only)."""
    owner_scope: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    """That user's scope codes when the import ran: others see the batch only inside them."""


class IntakeRejectedRow(Base):
    """A row of a batch that could not be imported, with the reason and its original values."""

    __tablename__ = "intake_rejected_row"
    __table_args__ = (UniqueConstraint("batch_id", "row_number", name="uq_intake_rejected_row_batch_row"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("intake_batch.id", ondelete="CASCADE"), nullable=False)
    row_number: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    raw: Mapped[dict] = mapped_column(JSONB, nullable=False)


class Open311ApiKey(Base):
    """An Open311 client's key; only its SHA-256 is kept."""

    __tablename__ = "open311_api_key"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    key_sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ComplaintIntake(Base):
    """How a complaint came in and how it was placed: batch and row, Open311 token and key, geocoding score,
    snap distance, why it awaits review, whether the address agrees with the coordinates, extra source fields."""

    __tablename__ = "complaint_intake"
    complaint_id: Mapped[int] = mapped_column(
        ForeignKey("complaint.id", ondelete="CASCADE"), primary_key=True
    )
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("intake_batch.id", ondelete="SET NULL"), index=True)
    row_number: Mapped[int | None] = mapped_column(Integer)
    token: Mapped[str | None] = mapped_column(String(40), unique=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("open311_api_key.id"))
    match_score: Mapped[float | None] = mapped_column(Float)
    snap_distance_m: Mapped[float | None] = mapped_column(Float)
    review_reason: Mapped[str | None] = mapped_column(Text)
    address_check: Mapped[str | None] = mapped_column(
        String(16), CheckConstraint("address_check IN ('agrees', 'disagrees', 'unresolved')", name="address_check")
    )
    attributes: Mapped[dict | None] = mapped_column(JSONB)
    extra: Mapped[dict | None] = mapped_column(JSONB)
    placed_by: Mapped[str | None] = mapped_column(Text)
    placed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ComplaintParty(Base):
    """The parties responsible for a complaint's place at intake time (a snapshot: later changes of grid workers
    or companies do not rewrite who was responsible then)."""

    __tablename__ = "complaint_party"
    complaint_id: Mapped[int] = mapped_column(
        ForeignKey("complaint.id", ondelete="CASCADE"), primary_key=True
    )
    grid_worker_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False, server_default="{}")
    community_party_id: Mapped[int | None] = mapped_column(BigInteger)
    grid_party_id: Mapped[int | None] = mapped_column(BigInteger)
    compound_party_id: Mapped[int | None] = mapped_column(BigInteger)
    building_party_id: Mapped[int | None] = mapped_column(BigInteger)
    property_company_id: Mapped[int | None] = mapped_column(BigInteger)
    owners_committee_id: Mapped[int | None] = mapped_column(BigInteger)
    management_mode: Mapped[str | None] = mapped_column(String(16))
    captured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class ComplaintDuplicate(Base):
    """A possible duplicate (疑似重复): same category, close in place and time to an earlier open complaint.
    A person confirms or dismisses the link; nothing is deleted."""

    __tablename__ = "complaint_duplicate"
    __table_args__ = (
        UniqueConstraint("complaint_id", "duplicate_of_id", name="uq_complaint_duplicate_pair"),
        Index("ix_complaint_duplicate_of", "duplicate_of_id"),
        CheckConstraint("complaint_id <> duplicate_of_id", name="not_self"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), nullable=False)
    duplicate_of_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), nullable=False)
    distance_m: Mapped[float] = mapped_column(Float, nullable=False)
    hours_apart: Mapped[float] = mapped_column(Float, nullable=False)
    state: Mapped[str] = mapped_column(
        String(12), CheckConstraint("state IN ('possible', 'confirmed', 'dismissed')", name="state"),
        nullable=False, server_default="possible",
    )
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


# The review queue (待人工定位) is read by placement; a partial index keeps it cheap on a large complaint table.
from gis.layers.models import Complaint  # noqa: E402

Index("ix_complaint_review_queue", Complaint.reported_at, postgresql_where=Complaint.placement == "review")
