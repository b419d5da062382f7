"""The schema: the governance pyramid, the responsible parties and complaints.

Glossary (English name — Chinese term):
district 区县 · street office 街道办事处 · community 社区 · grid 网格 · micro-grid 微网格 ·
residential compound 小区 · building 楼栋 · community party committee 社区党委 · grid party branch 网格党支部 ·
compound party branch 小区党支部 · building party group 楼院党小组 · grid worker 网格员 ·
property company 物业服务企业 · owners' committee 业主委员会 · cross-appointment 交叉任职 ·
old estate 老旧小区 · community-led company 社区领办 · entrusted 代管 · self-managed 自管 ·
red/black list 红黑榜.

Boundaries keep their history: a code is stable, each version of its shape is a row with `valid_from` and
`valid_to` (NULL while current). Parent links go by code, so a new version of a parent does not orphan its
children; complaints point at the micro-grid *version* they fell in, so a past complaint keeps its grid.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from gis import STORAGE_SRID

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


MANAGEMENT_MODES = ("professional", "community_led", "entrusted", "self_managed", "none")
"""Property service modes: professional market company, community-led company 社区领办, entrusted to the
community 代管, self-managed 自管, none."""

PARTY_ORG_KINDS = ("community_committee", "grid_branch", "compound_branch", "building_group", "company_branch")

PYRAMID_LEVELS = ("district", "street", "community", "grid", "micro_grid", "building")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Boundary:
    """Columns every pyramid layer shares: stable code, name, shape and validity period."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False, server_default=text("DATE '2000-01-01'"))
    valid_to: Mapped[date | None] = mapped_column(Date)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=False), nullable=False)

    @declared_attr.directive
    def __table_args__(cls):  # noqa: N805
        name = cls.__tablename__
        return (
            UniqueConstraint("code", "valid_from", name=f"uq_{name}_code_version"),
            Index(f"ix_{name}_current_code", "code", unique=True, postgresql_where=text("valid_to IS NULL")),
            Index(f"ix_{name}_geom", "geom", postgresql_using="gist"),
            CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="validity"),
        )


class District(Boundary, Base):
    """区县: code is the 6-digit administrative division code."""

    __tablename__ = "district"


class Street(Boundary, Base):
    """街道办事处: code = district code + 3 digits."""

    __tablename__ = "street"
    district_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)


class Community(Boundary, Base):
    """社区 with its residents' committee 居委会: code = street code + 3 digits."""

    __tablename__ = "community"
    street_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    office_phone: Mapped[str | None] = mapped_column(Text)


class Grid(Boundary, Base):
    """网格: code = community code + 3-digit serial, numbered west to east, north to south."""

    __tablename__ = "grid"
    community_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    households: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class MicroGrid(Boundary, Base):
    """微网格: usually one residential compound or a part of one. Code = grid code + 3 digits."""

    __tablename__ = "micro_grid"
    grid_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    compound_code: Mapped[str | None] = mapped_column(String(32), index=True)
    households: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class Compound(Boundary, Base):
    """小区: code = community code + 'C' + 4 digits; its shape is the union of its micro-grids."""

    __tablename__ = "compound"
    community_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    grid_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    address: Mapped[str | None] = mapped_column(Text)
    build_year: Mapped[int] = mapped_column(Integer, nullable=False)
    is_old_estate: Mapped[bool] = mapped_column(Boolean, nullable=False)
    floor_area_m2: Mapped[float] = mapped_column(Float, nullable=False)
    households: Mapped[int] = mapped_column(Integer, nullable=False)
    management_mode: Mapped[str] = mapped_column(
        String(16), CheckConstraint(_in("management_mode", MANAGEMENT_MODES), name="management_mode"),
        nullable=False,
    )
    property_company_id: Mapped[int | None] = mapped_column(ForeignKey("property_company.id"), index=True)
    property_fee_yuan_m2: Mapped[float | None] = mapped_column(Numeric(6, 2))


class Building(Boundary, Base):
    """楼栋: code = micro-grid code + 3 digits; `number` is the N in N号楼."""

    __tablename__ = "building"
    micro_grid_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    compound_code: Mapped[str | None] = mapped_column(String(32), index=True)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    floors: Mapped[int] = mapped_column(Integer, nullable=False)
    units: Mapped[int] = mapped_column(Integer, nullable=False)
    households: Mapped[int] = mapped_column(Integer, nullable=False)
    leader_name: Mapped[str | None] = mapped_column(Text)
    leader_phone: Mapped[str | None] = mapped_column(Text)
    leader_is_party_member: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")


class PropertyCompany(Base):
    """物业服务企业, identified by its 18-character unified social credit code."""

    __tablename__ = "property_company"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    is_community_led: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    has_party_org: Mapped[bool] = mapped_column(Boolean, nullable=False)
    party_work_only: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    contact_name: Mapped[str | None] = mapped_column(Text)
    contact_phone: Mapped[str | None] = mapped_column(Text)
    founded_year: Mapped[int | None] = mapped_column(Integer)


class CompanyEvaluation(Base):
    """One half-year evaluation of a property company: its credit file is the history of these rows."""

    __tablename__ = "company_evaluation"
    __table_args__ = (UniqueConstraint("company_id", "period", name="uq_company_evaluation_period"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("property_company.id"), nullable=False, index=True)
    period: Mapped[str] = mapped_column(String(8), nullable=False)
    residents_score: Mapped[float] = mapped_column(Float, nullable=False)
    regulator_score: Mapped[float] = mapped_column(Float, nullable=False)
    street_score: Mapped[float] = mapped_column(Float, nullable=False)
    total_score: Mapped[float] = mapped_column(Float, nullable=False)
    standing: Mapped[str] = mapped_column(
        String(8), CheckConstraint("standing IN ('red', 'black', 'none')", name="standing"), nullable=False
    )


class PartyOrganisation(Base):
    """A party organisation attached to the unit it serves (`unit_code`: community, grid, compound, building
    or company credit code)."""

    __tablename__ = "party_organisation"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(
        String(24), CheckConstraint(_in("kind", PARTY_ORG_KINDS), name="kind"), nullable=False
    )
    name: Mapped[str] = mapped_column(Text, nullable=False)
    unit_code: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    secretary_name: Mapped[str] = mapped_column(Text, nullable=False)
    secretary_phone: Mapped[str | None] = mapped_column(Text)
    member_count: Mapped[int] = mapped_column(Integer, nullable=False)
    founded_on: Mapped[date | None] = mapped_column(Date)


class GridWorker(Base):
    """网格员: full-time, or a property project manager serving part-time."""

    __tablename__ = "grid_worker"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    phone: Mapped[str] = mapped_column(Text, nullable=False)
    # the grid of the open assignment; empty once the worker left (gis/registry/history.py, migration 0016)
    grid_code: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    is_party_member: Mapped[bool] = mapped_column(Boolean, nullable=False)
    is_part_time: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    property_company_id: Mapped[int | None] = mapped_column(ForeignKey("property_company.id"))


class OwnersCommittee(Base):
    """业主委员会 of a compound; a compound without one has no row."""

    __tablename__ = "owners_committee"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    compound_code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    formed_on: Mapped[date] = mapped_column(Date, nullable=False)
    term_end: Mapped[date | None] = mapped_column(Date)
    member_count: Mapped[int] = mapped_column(Integer, nullable=False)
    party_member_count: Mapped[int] = mapped_column(Integer, nullable=False)
    chair_name: Mapped[str] = mapped_column(Text, nullable=False)
    chair_is_party_member: Mapped[bool] = mapped_column(Boolean, nullable=False)
    __table_args__ = (
        CheckConstraint("party_member_count BETWEEN 0 AND member_count", name="party_members"),
    )


CROSS_BODIES = ("community_committee", "owners_committee", "property_company")


class CrossAppointment(Base):
    """交叉任职: a person of one body holding a seat on another (e.g. a property manager as a part-time
    community committee member)."""

    __tablename__ = "cross_appointment"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    person_name: Mapped[str] = mapped_column(Text, nullable=False)
    home_kind: Mapped[str] = mapped_column(
        String(24), CheckConstraint(_in("home_kind", CROSS_BODIES), name="home_kind"), nullable=False
    )
    home_ref: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    seat_kind: Mapped[str] = mapped_column(
        String(24), CheckConstraint(_in("seat_kind", CROSS_BODIES), name="seat_kind"), nullable=False
    )
    seat_ref: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    since: Mapped[date] = mapped_column(Date, nullable=False)


CLASS_KINDS = ("component", "event")
RESPONSIBLE_KINDS = ("property_company", "community", "street_department", "utility")
DEADLINE_CLASSES = ("urgent", "utilities", "general", "complex")


class Category(Base):
    """A service code of the complaint catalogue, grouped like the national classes 部件/事件, 大类/小类."""

    __tablename__ = "category"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    name_zh: Mapped[str] = mapped_column(Text, nullable=False)
    class_kind: Mapped[str] = mapped_column(
        String(16), CheckConstraint(_in("class_kind", CLASS_KINDS), name="class_kind"), nullable=False
    )
    major_class: Mapped[str] = mapped_column(Text, nullable=False)
    minor_class: Mapped[str] = mapped_column(Text, nullable=False)
    responsible_kind: Mapped[str] = mapped_column(
        String(24), CheckConstraint(_in("responsible_kind", RESPONSIBLE_KINDS), name="responsible_kind"),
        nullable=False,
    )
    deadline_class: Mapped[str] = mapped_column(
        String(16), CheckConstraint(_in("deadline_class", DEADLINE_CLASSES), name="deadline_class"),
        nullable=False,
    )
    keywords: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")


COMPLAINT_SOURCES = ("hotline", "patrol", "app", "open311")
MATCH_LEVELS = ("coordinates", "building", "compound", "community", "street", "none")
PLACEMENTS = ("inside", "snapped", "review", "manual")


class Complaint(Base):
    """A resident's complaint, geocoded to the micro-grid (version) it fell in and the units above it."""

    __tablename__ = "complaint"
    __table_args__ = (
        Index("uq_complaint_source_external", "source", "external_id", unique=True,
              postgresql_where=text("external_id IS NOT NULL")),
        Index("ix_complaint_geom", "geom", postgresql_using="gist"),
        Index("ix_complaint_reported_at", "reported_at"),
        Index("ix_complaint_grid_reported", "grid_code", "reported_at"),
        # Complaint tiles as index-only range scans of the tile key (gis/serve/tilekey.py, migration 0007).
        Index("ix_complaint_tile_key", text("gridgov_tile_key(geom)"),
              postgresql_include=["reported_at", "id", "category_code", "geom"]),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(
        String(16), CheckConstraint(_in("source", COMPLAINT_SOURCES), name="source"), nullable=False
    )
    external_id: Mapped[str | None] = mapped_column(Text)
    category_code: Mapped[str] = mapped_column(ForeignKey("category.code"), nullable=False, index=True)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    address: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    geom = mapped_column(Geometry("POINT", srid=STORAGE_SRID, spatial_index=False))
    original_x: Mapped[float | None] = mapped_column(Float)
    original_y: Mapped[float | None] = mapped_column(Float)
    original_crs: Mapped[str | None] = mapped_column(String(16))
    match_level: Mapped[str] = mapped_column(
        String(16), CheckConstraint(_in("match_level", MATCH_LEVELS), name="match_level"), nullable=False
    )
    placement: Mapped[str] = mapped_column(
        String(16), CheckConstraint(_in("placement", PLACEMENTS), name="placement"), nullable=False
    )
    micro_grid_id: Mapped[int | None] = mapped_column(ForeignKey("micro_grid.id"), index=True)
    micro_grid_code: Mapped[str | None] = mapped_column(String(32), index=True)
    grid_code: Mapped[str | None] = mapped_column(String(32))
    community_code: Mapped[str | None] = mapped_column(String(32), index=True)
    street_code: Mapped[str | None] = mapped_column(String(32), index=True)
    compound_code: Mapped[str | None] = mapped_column(String(32), index=True)
    building_code: Mapped[str | None] = mapped_column(String(32))
    reporter_name: Mapped[str | None] = mapped_column(Text)
    reporter_phone: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class FixtureInfo(Base):
    """Which generated city the database holds (size, seed, generator version), so loads can be skipped."""

    __tablename__ = "fixture_info"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[str] = mapped_column(Text, nullable=False)
    seed: Mapped[int] = mapped_column(Integer, nullable=False)
    generator_version: Mapped[str] = mapped_column(Text, nullable=False)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
