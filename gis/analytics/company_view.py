"""The red/black list as the map shows it: the list within a street or community, the companies a rater may
pick, and a company's compounds with their shapes (to outline them on the map).

Which companies belong to a street or community is the rule of `company_in_scope` (gis/analytics/inputs.py):
a company serves the units where it manages a current compound (`companies_serving`, which every path here
uses).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from gis.access.auth import Principal
from gis.analytics.evaluation import evaluation
from gis.analytics.figures import Figure
from gis.analytics.inputs import RATER_ROLES, ROLE_NAMES, companies_serving
from gis.errors import Forbidden, InvalidInput, NotFound

COMPOUND_COLUMNS = ["code", "name", "community_code", "community_name", "street_code", "management_mode",
                    "is_old_estate", "households", "floor_area_m2"]


def _unit_codes(within: str | None) -> list[str]:
    codes = [part.strip() for part in (within or "").split(",") if part.strip()]
    if len(codes) > 50 or any(not code.isascii() or not code.isdigit() or not 6 <= len(code) <= 18
                              for code in codes):
        raise InvalidInput("within 须为 1 到 50 个街道或社区代码（6 到 18 位数字），以逗号分隔")
    return codes


def evaluation_within(conn: Connection, period_label: str, within: str | None = None) -> Figure:
    """The red/black list of a half-year or year (stored, else a preview), limited to the companies serving the
    streets or communities of `within` (comma-separated codes); ranks stay those of the whole list."""
    figure = evaluation(conn, period_label)
    codes = _unit_codes(within)
    if codes:
        serving = companies_serving(conn, codes)
        figure.rows = [row for row in figure.rows if row["company_id"] in serving]
        figure.meta = {**figure.meta, "within": codes, "companies_within": len(figure.rows)}
    return figure


def rater_companies(conn: Connection, principal: Principal) -> list[dict]:
    """The companies a rater may rate and the compounds it may survey, for the desk's pickers: the administrator
    every company managing a compound, a street or community those serving its area, with the compounds there."""
    if principal.role not in RATER_ROLES:
        raise Forbidden(f"企业评分和满意度调查仅限{'、'.join(ROLE_NAMES[r] for r in RATER_ROLES)}")
    where, params = "TRUE", {}
    if principal.role in ("street", "community"):
        where, params = "(cm.street_code = ANY(:codes) OR cp.community_code = ANY(:codes))", {
            "codes": list(principal.scope)}
    companies: dict[int, dict] = {}
    for row in conn.execute(text(f"""
            SELECT pc.id, pc.name, pc.credit_code, cp.code, cp.name AS compound_name, cp.community_code,
                   cm.name AS community_name
            FROM compound cp JOIN property_company pc ON pc.id = cp.property_company_id
            JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
            WHERE cp.valid_to IS NULL AND {where}
            ORDER BY pc.name, pc.id, cp.code"""), params).mappings():
        company = companies.setdefault(row["id"], {"id": row["id"], "name": row["name"],
                                                   "credit_code": row["credit_code"], "compounds": []})
        company["compounds"].append({"code": row["code"], "name": row["compound_name"],
                                     "community_code": row["community_code"],
                                     "community_name": row["community_name"]})
    return list(companies.values())


def company_compounds(conn: Connection, company_id: int) -> Figure:
    """The compounds a company manages now, with their shapes (GeoJSON, WGS-84): what its credit file outlines
    on the map. Open like the credit file; an unknown company is NotFound."""
    name = conn.execute(text("SELECT name FROM property_company WHERE id = :id"), {"id": company_id}).scalar()
    if name is None:
        raise NotFound(f"没有编号为 {company_id} 的物业服务企业")
    rows = [dict(r) for r in conn.execute(text("""
        SELECT cp.code, cp.name, cp.community_code, cm.name AS community_name, cm.street_code, cp.management_mode,
               cp.is_old_estate, cp.households, cp.floor_area_m2, ST_AsGeoJSON(cp.geom, 7) AS geometry
        FROM compound cp LEFT JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
        WHERE cp.valid_to IS NULL AND cp.property_company_id = :id
        ORDER BY cp.code"""), {"id": company_id}).mappings()]
    geometries = [row.pop("geometry") for row in rows]
    return Figure(f"company_{company_id}_compounds", COMPOUND_COLUMNS, rows,
                  {"company_id": company_id, "company_name": name}, geometries)
