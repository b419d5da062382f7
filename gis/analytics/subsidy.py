"""The old-estate subsidy (老旧小区补贴): companies rated excellent in a half-year that manage old estates receive a
monthly subsidy per square metre of the estates' floor area (0.2 yuan/m²/month by default)."""

from __future__ import annotations

from sqlalchemy import Connection, text

from gis.analytics.evaluation import EvaluationSettings, evaluation, evaluation_settings
from gis.analytics.figures import Figure
from gis.analytics.periods import half_year
from gis.errors import InvalidInput


def subsidy(conn: Connection, period_label: str, by: str = "estate",
            settings: EvaluationSettings | None = None) -> Figure:
    """Subsidy per estate (`by="estate"`) or per company (`by="company"`) for the half-year's excellent
    companies, from the stored evaluation of that half-year (or a preview when none is stored)."""
    if by not in ("estate", "company"):
        raise InvalidInput("by must be estate or company")
    settings = settings or evaluation_settings()
    if settings.subsidy_yuan_per_m2_month < 0:
        raise InvalidInput("the subsidy rate cannot be negative")
    period = half_year(period_label)
    ranking = evaluation(conn, period.label)
    excellent = {row["company_id"]: row for row in ranking.rows if row["grade"] == "excellent"}
    rate = settings.subsidy_yuan_per_m2_month
    estates = [dict(r) for r in conn.execute(text("""
        SELECT cp.property_company_id AS company_id, pc.name AS company_name, cp.code AS compound_code,
               cp.name AS compound_name, cp.community_code, cm.street_code, cp.floor_area_m2, cp.households
        FROM compound cp JOIN property_company pc ON pc.id = cp.property_company_id
        JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
        WHERE cp.valid_to IS NULL AND cp.is_old_estate AND cp.property_company_id = ANY(:companies)
        ORDER BY cp.property_company_id, cp.code
    """), {"companies": list(excellent)}).mappings()]
    for estate in estates:
        estate["rate_yuan_per_m2_month"] = rate
        estate["monthly_yuan"] = round(estate["floor_area_m2"] * rate, 2)
        estate["months"] = period.months
        estate["period_yuan"] = round(estate["monthly_yuan"] * period.months, 2)
    meta = {"period": period.label, "rate_yuan_per_m2_month": rate, "months": period.months,
            "evaluation_stored": ranking.meta.get("stored", True),
            "excellent_companies": len(excellent),
            "monthly_yuan_total": round(sum(e["monthly_yuan"] for e in estates), 2),
            "period_yuan_total": round(sum(e["period_yuan"] for e in estates), 2)}
    if by == "estate":
        return Figure(f"subsidy_estates_{period.label}",
                      ["company_id", "company_name", "compound_code", "compound_name", "community_code",
                       "street_code", "floor_area_m2", "households", "rate_yuan_per_m2_month", "monthly_yuan",
                       "months", "period_yuan"], estates, meta)
    companies: dict[int, dict] = {}
    for estate in estates:
        company = companies.setdefault(estate["company_id"], {
            "company_id": estate["company_id"], "company_name": estate["company_name"],
            "total_score": excellent[estate["company_id"]]["total_score"],
            "standing": excellent[estate["company_id"]]["standing"],
            "old_estates": 0, "floor_area_m2": 0.0, "monthly_yuan": 0.0, "period_yuan": 0.0})
        company["old_estates"] += 1
        company["floor_area_m2"] = round(company["floor_area_m2"] + estate["floor_area_m2"], 2)
        company["monthly_yuan"] = round(company["monthly_yuan"] + estate["monthly_yuan"], 2)
        company["period_yuan"] = round(company["period_yuan"] + estate["period_yuan"], 2)
    return Figure(f"subsidy_companies_{period.label}",
                  ["company_id", "company_name", "total_score", "standing", "old_estates", "floor_area_m2",
                   "monthly_yuan", "period_yuan"], list(companies.values()), meta)
