"""The evaluation's inputs and their way in: regulator inspections (行业主管部门检查) with items and notes, street
and community ratings, and residents' satisfaction surveys per compound (sample size, score).

Who may record what: the housing regulator is the administrator here (no regulator role exists); a street office
rates the companies serving its street and surveys the compounds in it; a community rates the companies serving
it and surveys its own compounds. A company or compound outside the caller's scope is the same NotFound as one
that does not exist. Every list is the same table the import and export of these kinds read and write.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time

from sqlalchemy import Connection, text

from gis.access.auth import Principal
from gis.analytics.figures import Figure
from gis.analytics.periods import half_year
from gis.errors import Forbidden, InvalidInput, NotFound
from gis.registry.history import management_as_of
from gis.times import BEIJING, check_time

RATER_ROLES = ("admin", "street", "community")

INSPECTION_COLUMNS = ["id", "company_id", "company_name", "compound_code", "inspected_on", "score", "findings",
                      "items", "note", "recorded_by"]
RATING_COLUMNS = ["id", "company_id", "company_name", "period", "rater_level", "rater_code", "score", "recorded_by"]
SURVEY_COLUMNS = ["id", "compound_code", "company_id", "company_name", "surveyed_on", "sample_size", "score",
                  "note", "recorded_by"]


def check_plausible_date(day: date, field: str) -> date:
    """A day of something that happened: within the plausible window of gis/times.py (noon, Beijing time)."""
    check_time(datetime.combine(day, time(12), BEIJING), field)
    return day


def _score(value: float, what: str) -> float:
    if value is None or not math.isfinite(value) or not 0 <= value <= 100:
        raise InvalidInput(f"{what}须在 0 到 100 之间")
    return float(value)


def _company(conn: Connection, company_id: int) -> dict:
    row = conn.execute(text("SELECT id, name FROM property_company WHERE id = :id"), {"id": company_id}).first()
    if row is None:
        raise NotFound(f"没有编号为 {company_id} 的物业服务企业")
    return {"id": row.id, "name": row.name}


def company_units(conn: Connection, company_id: int) -> dict[str, set[str]]:
    """The streets, communities and compounds a company serves now (its current compounds)."""
    rows = conn.execute(text("""
        SELECT cp.code, cp.community_code, cm.street_code FROM compound cp
        JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
        WHERE cp.valid_to IS NULL AND cp.property_company_id = :id"""), {"id": company_id}).all()
    return {"compound": {r[0] for r in rows}, "community": {r[1] for r in rows}, "street": {r[2] for r in rows}}


def companies_serving(conn: Connection, codes: list[str]) -> set[int]:
    """The companies managing a current compound in any of these streets or communities: the scope rule of a
    street or community over companies (company_in_scope, the red/black list within an area)."""
    return set(conn.execute(text("""
        SELECT DISTINCT cp.property_company_id FROM compound cp
        JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
        WHERE cp.valid_to IS NULL AND cp.property_company_id IS NOT NULL
          AND (cm.street_code = ANY(:codes) OR cp.community_code = ANY(:codes))"""), {"codes": codes}).scalars())


def company_in_scope(conn: Connection, principal: Principal, company_id: int) -> dict:
    """The company when the caller may act on it: the administrator any, a street or community one serving a
    compound in its area, a property company itself; otherwise NotFound (existence does not leak)."""
    company = _company(conn, company_id)
    if principal.role == "admin":
        return company
    if principal.role == "property_company":
        if principal.company_id == company_id:
            return company
        raise NotFound(f"没有编号为 {company_id} 的物业服务企业")
    level = {"street": "street", "community": "community"}.get(principal.role)
    if level is None:
        raise Forbidden("仅限管理员、街道和社区用户")
    if company_id not in companies_serving(conn, list(principal.scope)):
        raise NotFound(f"没有编号为 {company_id} 的物业服务企业")
    return company


def _compound_in_scope(conn: Connection, principal: Principal, code: str) -> dict:
    row = conn.execute(text("""
        SELECT cp.code, cp.community_code, cm.street_code, cp.property_company_id FROM compound cp
        JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
        WHERE cp.code = :code AND cp.valid_to IS NULL"""), {"code": code}).mappings().first()
    allowed = row is not None and (
        principal.role == "admin"
        or (principal.role == "street" and row["street_code"] in principal.scope)
        or (principal.role == "community" and row["community_code"] in principal.scope))
    if not allowed:
        raise NotFound(f"小区 {code} 不存在或不在您的管辖范围内")
    return dict(row)


ROLE_NAMES = {"admin": "管理员（住建部门）", "street": "街道", "community": "社区"}


def _require(principal: Principal, roles: tuple[str, ...], what: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"{what}仅限{'、'.join(ROLE_NAMES[r] for r in roles)}")


def record_inspection(conn: Connection, principal: Principal, company_id: int, inspected_on: date, score: float,
                      compound_code: str | None = None, items: list[dict] | None = None,
                      note: str | None = None) -> dict:
    """Record a regulator's inspection with its items (each `{item, deduction, note}`); administrators only."""
    _require(principal, ("admin",), "行业主管部门检查")
    _company(conn, company_id)
    check_plausible_date(inspected_on, "检查日期")
    score = _score(score, "检查得分")
    items = items or []
    for item in items:
        if not str(item.get("item") or "").strip():
            raise InvalidInput("每个检查项须写明名称")
        _score(item.get("deduction", 0.0), f"检查项“{item['item']}”的扣分")
    if compound_code is not None:
        compound = _compound_in_scope(conn, principal, compound_code)
        if compound["property_company_id"] != company_id:
            raise InvalidInput(f"小区 {compound_code} 当前不由该企业管理")
    inspection_id = conn.execute(text("""
        INSERT INTO regulator_inspection (company_id, compound_code, inspected_on, score, findings, note, recorded_by)
        VALUES (:company, :compound, :on, :score, :findings, :note, :by) RETURNING id"""),
        {"company": company_id, "compound": compound_code, "on": inspected_on, "score": score,
         "findings": sum(1 for item in items if item.get("deduction", 0) > 0), "note": note,
         "by": principal.username}).scalar_one()
    for item in items:
        conn.execute(text("INSERT INTO inspection_item (inspection_id, item, deduction, note) "
                          "VALUES (:id, :item, :deduction, :note)"),
                     {"id": inspection_id, "item": str(item["item"]).strip(),
                      "deduction": float(item.get("deduction", 0.0)), "note": item.get("note")})
    return {"id": inspection_id, "company_id": company_id, "inspected_on": inspected_on.isoformat(),
            "score": score, "items": len(items)}


def record_rating(conn: Connection, principal: Principal, company_id: int, period_label: str, score: float,
                  rater_level: str | None = None, rater_code: str | None = None) -> dict:
    """A street's or community's rating of a company for a half-year (replacing the rater's earlier one). A
    street or community rates as itself; the administrator names the rater."""
    _require(principal, RATER_ROLES, "企业评分")
    period = half_year(period_label)
    score = _score(score, "评分")
    company_in_scope(conn, principal, company_id)
    if principal.role in ("street", "community"):
        rater_level = principal.role
        units = company_units(conn, company_id)[rater_level] & set(principal.scope)
        if rater_code is None:
            rater_code = min(units)
        elif rater_code not in units:
            raise NotFound(f"{rater_code} 不在您的管辖范围内，或该企业不在此服务")
    else:
        if rater_level not in ("street", "community") or not rater_code:
            raise InvalidInput("管理员录入评分须写明评分单位层级（street 或 community）和单位代码")
        if rater_code not in company_units(conn, company_id)[rater_level]:
            raise InvalidInput(f"该企业不在 {rater_code} 服务，不能由其评分")
    rating_id = conn.execute(text("""
        INSERT INTO company_rating (company_id, period, rater_level, rater_code, score, recorded_by)
        VALUES (:company, :period, :level, :code, :score, :by)
        ON CONFLICT (company_id, period, rater_level, rater_code)
        DO UPDATE SET score = EXCLUDED.score, recorded_by = EXCLUDED.recorded_by, recorded_at = now()
        RETURNING id"""), {"company": company_id, "period": period.label, "level": rater_level, "code": rater_code,
                           "score": score, "by": principal.username}).scalar_one()
    return {"id": rating_id, "company_id": company_id, "period": period.label, "rater_level": rater_level,
            "rater_code": rater_code, "score": score}


def record_survey(conn: Connection, principal: Principal, compound_code: str, surveyed_on: date,
                  sample_size: int, score: float, note: str | None = None) -> dict:
    """A residents' satisfaction survey of a compound, counted for the company managing it on that day (the
    dated management versions)."""
    _require(principal, RATER_ROLES, "满意度调查")
    _compound_in_scope(conn, principal, compound_code)
    check_plausible_date(surveyed_on, "调查日期")
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size <= 0:
        raise InvalidInput("调查样本量须为正整数")
    score = _score(score, "满意度得分")
    managed = management_as_of(conn, surveyed_on, [compound_code]).get(compound_code) or {}
    company_id = managed.get("property_company_id")
    if company_id is None:
        raise InvalidInput(f"小区 {compound_code} 在 {surveyed_on.isoformat()} 没有物业服务企业，满意度调查无从计入")
    survey_id = conn.execute(text("""
        INSERT INTO satisfaction_survey (compound_code, company_id, surveyed_on, sample_size, score, note, recorded_by)
        VALUES (:code, :company, :on, :n, :score, :note, :by)
        ON CONFLICT (compound_code, surveyed_on) DO UPDATE SET sample_size = EXCLUDED.sample_size,
            score = EXCLUDED.score, note = EXCLUDED.note, recorded_by = EXCLUDED.recorded_by, recorded_at = now()
        RETURNING id"""), {"code": compound_code, "company": company_id, "on": surveyed_on,
                           "n": sample_size, "score": score, "note": note, "by": principal.username}).scalar_one()
    return {"id": survey_id, "compound_code": compound_code, "company_id": company_id,
            "surveyed_on": surveyed_on.isoformat(), "sample_size": sample_size, "score": score}


def _scope_filter(principal: Principal, street_column: str, community_column: str) -> tuple[str, dict]:
    if principal.role == "street":
        return f"{street_column} = ANY(:scope)", {"scope": list(principal.scope)}
    if principal.role == "community":
        return f"{community_column} = ANY(:scope)", {"scope": list(principal.scope)}
    if principal.role == "property_company":
        return "pc.id = :own", {"own": principal.company_id}
    return "TRUE", {}


def _for_planner(principal: Principal, rows: list[dict]) -> list[dict]:
    """Planners see no staff names or notes (the privacy table of gis/access/visibility.py)."""
    if principal.role == "planner":
        for row in rows:
            row["recorded_by"] = None
            if "note" in row:
                row["note"] = None
    return rows


def list_inspections(conn: Connection, principal: Principal, period_label: str) -> Figure:
    """The half-year's inspections with their items; a property company sees its own only."""
    period = half_year(period_label)
    where, params = ("pc.id = :own", {"own": principal.company_id}) if principal.role == "property_company" \
        else ("TRUE", {})
    rows = [dict(r) for r in conn.execute(text(f"""
        SELECT i.id, i.company_id, pc.name AS company_name, i.compound_code, i.inspected_on, i.score, i.findings,
               coalesce((SELECT string_agg(it.item || ':' || it.deduction, '; ' ORDER BY it.id)
                         FROM inspection_item it WHERE it.inspection_id = i.id), '') AS items,
               i.note, i.recorded_by
        FROM regulator_inspection i JOIN property_company pc ON pc.id = i.company_id
        WHERE i.inspected_on >= :start AND i.inspected_on < :end AND {where}
        ORDER BY i.inspected_on, i.id"""), {"start": period.start, "end": period.end, **params}).mappings()]
    return Figure(f"inspections_{period.label}", INSPECTION_COLUMNS, _for_planner(principal, rows),
                  {"period": period.label})


def list_ratings(conn: Connection, principal: Principal, period_label: str) -> Figure:
    """The half-year's street and community ratings (a street sees its own and its communities')."""
    period = half_year(period_label)
    where, params = _scope_filter(principal, "coalesce(cm.street_code, r.rater_code)", "r.rater_code")
    rows = [dict(r) for r in conn.execute(text(f"""
        SELECT r.id, r.company_id, pc.name AS company_name, r.period, r.rater_level, r.rater_code, r.score,
               r.recorded_by
        FROM company_rating r JOIN property_company pc ON pc.id = r.company_id
        LEFT JOIN community cm ON r.rater_level = 'community' AND cm.code = r.rater_code AND cm.valid_to IS NULL
        WHERE r.period = :period AND {where}
        ORDER BY r.company_id, r.rater_level, r.rater_code"""), {"period": period.label, **params}).mappings()]
    return Figure(f"ratings_{period.label}", RATING_COLUMNS, _for_planner(principal, rows), {"period": period.label})


def list_surveys(conn: Connection, principal: Principal, period_label: str) -> Figure:
    """The half-year's satisfaction surveys in the caller's area."""
    period = half_year(period_label)
    where, params = _scope_filter(principal, "cm.street_code", "cp.community_code")
    rows = [dict(r) for r in conn.execute(text(f"""
        SELECT s.id, s.compound_code, s.company_id, pc.name AS company_name, s.surveyed_on, s.sample_size, s.score,
               s.note, s.recorded_by
        FROM satisfaction_survey s JOIN property_company pc ON pc.id = s.company_id
        LEFT JOIN compound cp ON cp.code = s.compound_code AND cp.valid_to IS NULL
        LEFT JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
        WHERE s.surveyed_on >= :start AND s.surveyed_on < :end AND {where}
        ORDER BY s.surveyed_on, s.id"""), {"start": period.start, "end": period.end, **params}).mappings()]
    return Figure(f"surveys_{period.label}", SURVEY_COLUMNS, _for_planner(principal, rows), {"period": period.label})
