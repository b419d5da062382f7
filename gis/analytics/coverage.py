"""Coverage per street office and community, by count of compounds, floor area and households: professional
property service, old estates (老旧小区) covered and not (the gaps), party organisation of the property
companies, owners' committees (业主委员会) formed and those with at least half party members, and
cross-appointments (交叉任职) between community committees, owners' committees and property companies.

The current registry only (for figures as of a date, per district or city, against targets, see
gis/analytics/programme.py); the mode sets, the gap rule and the party rules are programme's, so both tables
count alike."""

from __future__ import annotations

from sqlalchemy import Connection, text

from gis.analytics.figures import Figure
from gis.analytics.programme import (
    OLD_ESTATE_SERVED_MODES,
    SERVICE_MODES,
    committee_party_half_sql,
    company_party_org_sql,
    company_party_work_rule,
    gap_sql,
)
from gis.errors import InvalidInput

COVERAGE_LEVELS = {"street": "cm.street_code", "community": "cp.community_code"}

TODAY = "CAST(now() AT TIME ZONE 'Asia/Shanghai' AS date)"
"""Today in Beijing, in SQL: the day the company party rule is taken."""


def _modes(modes: tuple[str, ...]) -> str:
    return ", ".join(f"'{mode}'" for mode in modes)


MEASURES = {
    "all": "TRUE",
    "professional": f"cp.management_mode IN ({_modes(SERVICE_MODES)})",
    "old": "cp.is_old_estate",
    "old_served": f"cp.is_old_estate AND cp.management_mode IN ({_modes(OLD_ESTATE_SERVED_MODES)})",
    "old_unserved": f"cp.is_old_estate AND {gap_sql('cp.management_mode', 'cp.is_old_estate')}",
    "party_covered": company_party_work_rule(company_party_org_sql("pc", TODAY), "pc.party_work_only"),
    "committee": "oc.id IS NOT NULL",
    "committee_party_half": "oc.id IS NOT NULL AND " + committee_party_half_sql("oc.party_member_count",
                                                                             "oc.member_count"),
}
"""Compound sets counted, by programme's rules. Professional service: a property company serves, market or
community-led (社区领办). Old estates served: a company serves or the community manages (代管); self-managed (自管)
old estates and those with none are the gaps (old_unserved). Party covered: served by a company with a party
organisation today or party work. Committee party half: party-member share ≥ 50 %."""

SHARES = {
    "professional_share": ("professional", "all"),
    "old_served_share": ("old_served", "old"),
    "party_covered_share": ("party_covered", "professional"),
    "committee_share": ("committee", "all"),
    "committee_party_half_share": ("committee_party_half", "committee"),
}
"""Share = numerator set / denominator set, each by count, floor area and households."""

UNITS = {"count": "1", "floor_area_m2": "cp.floor_area_m2", "households": "cp.households"}

CROSS_PAIRS = [
    (home, seat)
    for home in ("community_committee", "owners_committee", "property_company")
    for seat in ("community_committee", "owners_committee", "property_company")
    if home != seat
]


def coverage_columns() -> list[str]:
    """The columns of a coverage table (code, name, parent, each measure per unit, each share), in export order."""
    columns = ["code", "name", "parent_code"]
    for measure in MEASURES:
        columns += [f"{measure}_{unit}" for unit in UNITS]
    for share in SHARES:
        columns += [f"{share}_{unit}" for unit in UNITS]
    columns += ["companies", "companies_with_party_org", "companies_with_party_work_only", "company_party_coverage"]
    columns += [f"cross_{home}_to_{seat}" for home, seat in CROSS_PAIRS] + ["cross_appointments"]
    return columns


def _compounds_sql(level: str) -> str:
    """Per area and property company, the compound sets of MEASURES summed in each unit."""
    sums = ",\n".join(
        f"sum({expr}) FILTER (WHERE {condition}) AS {measure}_{unit}"
        for measure, condition in MEASURES.items() for unit, expr in UNITS.items()
    )
    return f"""
            SELECT {COVERAGE_LEVELS[level]} AS area_code, cp.property_company_id,
                   {company_party_org_sql("pc", TODAY)} AS has_party_org, pc.party_work_only, {sums}
            FROM compound cp
            JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
            LEFT JOIN property_company pc ON pc.id = cp.property_company_id
            LEFT JOIN owners_committee oc ON oc.compound_code = cp.code
            WHERE cp.valid_to IS NULL
            GROUP BY 1, 2, 3, 4"""


PER_AREA_SQL = f"""
            SELECT area_code,
                   {', '.join(f'sum({m}_{u}) AS {m}_{u}' for m in MEASURES for u in UNITS)},
                   count(DISTINCT property_company_id) AS companies,
                   count(DISTINCT property_company_id) FILTER (WHERE has_party_org) AS companies_with_party_org,
                   count(DISTINCT property_company_id) FILTER (WHERE party_work_only AND NOT has_party_org)
                       AS companies_with_party_work_only
            FROM compounds GROUP BY area_code"""
"""The compound sets per area, and its distinct companies with and without party organisations."""

APPOINTMENT_COMMUNITY_SQL = """
            -- An appointment belongs to the community it links: the community committee's own code, or the
            -- community of the owners' committee's compound.
            SELECT ca.home_kind, ca.seat_kind,
                   coalesce(CASE WHEN ca.home_kind = 'community_committee' THEN ca.home_ref END,
                            CASE WHEN ca.seat_kind = 'community_committee' THEN ca.seat_ref END,
                            (SELECT cp.community_code FROM compound cp WHERE cp.valid_to IS NULL AND cp.code =
                                CASE WHEN ca.home_kind = 'owners_committee' THEN ca.home_ref ELSE ca.seat_ref END))
                       AS community_code
            FROM cross_appointment ca"""


def _appointments_sql(level: str) -> str:
    """Cross-appointments per area, by pair of kinds and in all."""
    cross = ",\n".join(
        f"count(*) FILTER (WHERE home_kind = '{home}' AND seat_kind = '{seat}') AS cross_{home}_to_{seat}"
        for home, seat in CROSS_PAIRS
    )
    return f"""
            SELECT {'cm.street_code' if level == 'street' else 'ac.community_code'} AS area_code, {cross},
                   count(*) AS cross_appointments
            FROM appointment_community ac
            JOIN community cm ON cm.code = ac.community_code AND cm.valid_to IS NULL
            GROUP BY 1"""


def _coverage_sql(level: str, area_filter: str) -> str:
    """One row per current area of `level` with its counts (shares are computed afterwards)."""
    parent = "district_code" if level == "street" else "street_code"
    return f"""
        WITH compounds AS ({_compounds_sql(level)}
        ),
        per_area AS ({PER_AREA_SQL}
        ),
        appointment_community AS ({APPOINTMENT_COMMUNITY_SQL}
        ),
        appointments AS ({_appointments_sql(level)}
        )
        SELECT a.code, a.name, a.{parent} AS parent_code, per_area.*, appointments.*
        FROM {level} a
        LEFT JOIN per_area ON per_area.area_code = a.code
        LEFT JOIN appointments ON appointments.area_code = a.code
        WHERE a.valid_to IS NULL {area_filter}
        ORDER BY a.code
    """


def _count_columns() -> list[str]:
    return [c for c in coverage_columns() if c not in ("code", "name", "parent_code")
            and not c.endswith("_share_count") and "share" not in c and c != "company_party_coverage"]


def _total_row(conn: Connection, rows: list[dict], within: str | None) -> dict:
    """The `total` row over the areas listed; distinct companies are counted again for the whole set, since they
    cannot be summed across areas."""
    total = {"code": "total", "name": "合计 total", "parent_code": within}
    for column in _count_columns():
        total[column] = sum(row[column] for row in rows)
        if "floor_area" in column:
            total[column] = round(total[column], 2)
    total.update(_distinct_companies(conn, within))
    return total


def _add_shares(row: dict) -> None:
    """A row's SHARES in each unit and its company party coverage (None where the denominator is 0)."""
    for share, (numerator, denominator) in SHARES.items():
        for unit in UNITS:
            top, bottom = row[f"{numerator}_{unit}"], row[f"{denominator}_{unit}"]
            row[f"{share}_{unit}"] = round(top / bottom, 6) if bottom else None
    covered = row["companies_with_party_org"] + row["companies_with_party_work_only"]
    row["company_party_coverage"] = round(covered / row["companies"], 6) if row["companies"] else None


def coverage(conn: Connection, level: str, within: str | None = None) -> Figure:
    """Coverage figures per current street or community (and a `total` row for all areas listed)."""
    if level not in COVERAGE_LEVELS:
        raise InvalidInput(f"coverage level must be street or community, not {level!r}")
    params: dict = {}
    area_filter = ""
    if within:
        area_filter = "AND a.code LIKE :within"
        params["within"] = within + "%"
    rows = [dict(r) for r in conn.execute(text(_coverage_sql(level, area_filter)), params).mappings()]
    for row in rows:
        for column in _count_columns():
            row[column] = round(float(row.get(column) or 0), 2) if "floor_area" in column else int(row.get(column) or 0)
    rows.append(_total_row(conn, rows, within))
    for row in rows:
        _add_shares(row)
    meta = {"level": level, "within": within, "areas": len(rows) - 1,
            "definitions": {"measures": {k: v for k, v in MEASURES.items()},
                            "shares": {k: f"{a} / {b}" for k, (a, b) in SHARES.items()}}}
    return Figure(f"coverage_{level}", coverage_columns(), rows, meta)


def _distinct_companies(conn: Connection, within: str | None) -> dict:
    has_org = company_party_org_sql("pc", TODAY)
    row = conn.execute(text(f"""
        SELECT count(DISTINCT pc.id) AS companies,
               count(DISTINCT pc.id) FILTER (WHERE {has_org}) AS companies_with_party_org,
               count(DISTINCT pc.id) FILTER (WHERE pc.party_work_only AND NOT {has_org})
                   AS companies_with_party_work_only
        FROM compound cp JOIN property_company pc ON pc.id = cp.property_company_id
        JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
        WHERE cp.valid_to IS NULL AND (CAST(:within AS text) IS NULL OR cp.community_code LIKE :within || '%')
    """), {"within": within}).mappings().one()
    return dict(row)
