"""The old-estate subsidy (老旧小区补贴): companies rated excellent in a half-year that manage old estates receive a
monthly subsidy per square metre of the estates' floor area (0.2 yuan/m²/month by default): a preview per estate
or company (`subsidy`) and the ledger per company, month and estate (`build_ledger`, `ledger`)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, text

from gis.analytics.evaluation import (
    EvaluationSettings,
    evaluation,
    evaluation_settings,
    stored_evaluation,
)
from gis.analytics.figures import Figure
from gis.analytics.periods import half_year
from gis.errors import InvalidInput, NotFound
from gis.registry.history import management_as_of


def subsidy(conn: Connection, period_label: str, by: str = "estate",
            settings: EvaluationSettings | None = None) -> Figure:
    """Subsidy per estate (`by="estate"`) or per company (`by="company"`) for the half-year's excellent
    companies, from the stored evaluation of that half-year (or a preview when none is stored)."""
    if by not in ("estate", "company"):
        raise InvalidInput("by 须为 estate 或 company")
    settings = settings or evaluation_settings()
    if settings.subsidy_yuan_per_m2_month < 0:
        raise InvalidInput("补贴标准不能为负数")
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


LEDGER_COLUMNS = ["company_id", "company_name", "month", "compound_code", "compound_name", "basis_period",
                  "floor_area_m2", "rate_yuan_per_m2_month", "amount_yuan"]


def _months(period) -> list[date]:
    months, day = [], period.start
    while day < period.end:
        months.append(day)
        day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return months


def build_ledger(conn: Connection, period_label: str, settings: EvaluationSettings | None = None) -> Figure:
    """Write the subsidy ledger (补贴台账) of a stored half-year: for each month of it, each company rated excellent
    (red-listed, or above the excellent score) and each old estate it managed on the month's first day (as the
    dated management versions say, so an estate taken over mid-half-year counts from the month after), the floor
    area times the monthly rate. Re-running replaces the half-year's rows."""
    settings = settings or evaluation_settings()
    if settings.subsidy_yuan_per_m2_month < 0:
        raise InvalidInput("补贴标准不能为负数")
    period = half_year(period_label)
    stored = stored_evaluation(conn, period.label)
    if stored is None:
        raise NotFound(f"{period.label} 的评价尚未运行保存，不能生成补贴台账")
    excellent = {row["company_id"] for row in stored.rows if row["grade"] == "excellent"}
    estates = {row.code: row for row in conn.execute(text(
        "SELECT code, name, floor_area_m2 FROM compound WHERE valid_to IS NULL AND is_old_estate")).all()}
    conn.execute(text("DELETE FROM subsidy_ledger WHERE basis_period = :p"), {"p": period.label})
    rate = settings.subsidy_yuan_per_m2_month
    for month in _months(period):
        managed = management_as_of(conn, month, sorted(estates))
        for code, management in sorted(managed.items()):
            company = management["property_company_id"]
            if company not in excellent:
                continue
            conn.execute(text("""
                INSERT INTO subsidy_ledger (company_id, month, compound_code, basis_period, floor_area_m2,
                                            rate_yuan_per_m2_month, amount_yuan)
                VALUES (:company, :month, :code, :period, :area, :rate, :amount)
                ON CONFLICT (company_id, month, compound_code) DO UPDATE SET basis_period = EXCLUDED.basis_period,
                    floor_area_m2 = EXCLUDED.floor_area_m2, rate_yuan_per_m2_month = EXCLUDED.rate_yuan_per_m2_month,
                    amount_yuan = EXCLUDED.amount_yuan"""),
                {"company": company, "month": month, "code": code, "period": period.label,
                 "area": estates[code].floor_area_m2, "rate": rate,
                 "amount": round(estates[code].floor_area_m2 * rate, 2)})
    return ledger(conn, period.label)


def ledger(conn: Connection, period_label: str, by: str = "estate") -> Figure:
    """The ledger of a half-year: one row per company, month and estate (`by="estate"`) or per company and month
    (`by="company"`), with its total in the meta."""
    if by not in ("estate", "company"):
        raise InvalidInput("by 须为 estate 或 company")
    period = half_year(period_label)
    rows = [dict(r) for r in conn.execute(text("""
        SELECT l.company_id, pc.name AS company_name, to_char(l.month, 'YYYY-MM') AS month, l.compound_code,
               cp.name AS compound_name, l.basis_period, l.floor_area_m2, l.rate_yuan_per_m2_month,
               l.amount_yuan::float AS amount_yuan
        FROM subsidy_ledger l JOIN property_company pc ON pc.id = l.company_id
        LEFT JOIN compound cp ON cp.code = l.compound_code AND cp.valid_to IS NULL
        WHERE l.basis_period = :period ORDER BY l.company_id, l.month, l.compound_code"""),
        {"period": period.label}).mappings()]
    meta = {"period": period.label, "rows": len(rows), "total_yuan": round(sum(r["amount_yuan"] for r in rows), 2)}
    if by == "estate":
        return Figure(f"subsidy_ledger_{period.label}", LEDGER_COLUMNS, rows, meta)
    grouped: dict[tuple, dict] = {}
    for row in rows:
        key = (row["company_id"], row["month"])
        entry = grouped.setdefault(key, {"company_id": row["company_id"], "company_name": row["company_name"],
                                         "month": row["month"], "old_estates": 0, "floor_area_m2": 0.0,
                                         "amount_yuan": 0.0})
        entry["old_estates"] += 1
        entry["floor_area_m2"] = round(entry["floor_area_m2"] + row["floor_area_m2"], 2)
        entry["amount_yuan"] = round(entry["amount_yuan"] + row["amount_yuan"], 2)
    return Figure(f"subsidy_ledger_companies_{period.label}",
                  ["company_id", "company_name", "month", "old_estates", "floor_area_m2", "amount_yuan"],
                  list(grouped.values()), meta)
