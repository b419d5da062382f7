"""The evaluation's inputs as registry kinds, so they import and export like every registry record (CSV or XLSX,
UTF-8 or GBK, Chinese headers, natural keys, a row-by-row account): regulator inspections with their items,
street and community ratings, residents' satisfaction surveys and credit-file items. Each is a spec of the
registry's `Kind` (name, title, columns as (header, field, parser, required, compared), key and the four
functions over the registry's import context); gis/registry/kinds.py builds and registers them, so this module
needs nothing of the registry but its value parsers.
"""

from __future__ import annotations

import json

from sqlalchemy import text

from gis.analytics.credit import CATEGORY_NAMES
from gis.analytics.periods import half_year
from gis.errors import InvalidInput
from gis.registry.values import choice, code, parse_credit_code, parse_date, parse_text, real_number, whole_number

LEVEL_LABELS = {"街道": "street", "社区": "community"}
CREDIT_KIND_LABELS = {"基本信息": "basic", "良好信息": "good", "不良信息": "bad"}
CATEGORY_LABELS = {name: key for key, name in CATEGORY_NAMES.items()}


def _rows(ctx, sql: str, params: dict | None = None) -> list[dict]:
    return [dict(row) for row in ctx.conn.execute(text(sql), params or {}).mappings()]


def _period(value: str) -> str:
    return half_year(parse_text(value)).label


def _items(value: str) -> str:
    """检查项 written as `名称:扣分；名称:扣分` (the deduction may be left out, then 0)."""
    parts = []
    for part in parse_text(value).replace(";", "；").split("；"):
        if not part.strip():
            continue
        name, _, deduction = part.replace("：", ":").partition(":")
        if not name.strip():
            raise InvalidInput("检查项须有名称")
        points = real_number(0, 100)(deduction) if deduction.strip() else 0.0
        parts.append(f"{name.strip()}:{points:g}")
    return "；".join(parts)


def _every_company_units(ctx) -> dict[str, dict[str, set[str]]]:
    units: dict[str, dict[str, set[str]]] = {}
    for credit, compound, community, street in ctx.conn.execute(text("""
            SELECT pc.credit_code, cp.code, cp.community_code, cm.street_code FROM compound cp
            JOIN property_company pc ON pc.id = cp.property_company_id
            JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
            WHERE cp.valid_to IS NULL""")):
        mine = units.setdefault(credit, {"compound": set(), "community": set(), "street": set()})
        mine["compound"].add(compound)
        mine["community"].add(community)
        mine["street"].add(street)
    return units


def _company_units(ctx, credit_code: str) -> dict[str, set[str]]:
    """The compounds, communities and streets a company serves now (every company's read once per import)."""
    return ctx.remember("company_units", lambda: _every_company_units(ctx)).get(
        credit_code, {"compound": set(), "community": set(), "street": set()})


# --- regulator inspections 行业主管部门检查 -------------------------------------------------------------------------

_INSPECTION_SELECT = """
    SELECT pc.credit_code AS company_credit_code, i.inspected_on, coalesce(i.compound_code, '') AS compound_code,
           i.score, coalesce((SELECT string_agg(it.item || ':' || it.deduction, '；' ORDER BY it.id)
                              FROM inspection_item it WHERE it.inspection_id = i.id), '') AS items, i.note, i.id
    FROM regulator_inspection i JOIN property_company pc ON pc.id = i.company_id"""


def _inspection_fetch(ctx, keys: list[tuple]) -> dict[tuple, dict]:
    rows = _rows(ctx, f"{_INSPECTION_SELECT} WHERE pc.credit_code = ANY(:codes)",
                 {"codes": sorted({k[0] for k in keys})})
    found = {}
    for row in rows:
        row["items"] = _items(row["items"]) if row["items"] else None
        row["compound_code"] = row["compound_code"] or None
        found[(row["company_credit_code"], row["inspected_on"], row["compound_code"])] = row
    return found


def _inspection_check(ctx, row: dict, old: dict | None) -> str | None:
    if ctx.company_id(row["company_credit_code"]) is None:
        return f"物业企业统一社会信用代码 {row['company_credit_code']} 未登记"
    if row["compound_code"] and row["compound_code"] not in _company_units(ctx, row["company_credit_code"])[
            "compound"]:
        return f"小区 {row['compound_code']} 当前不由该企业管理"
    return None


def _inspection_save(ctx, row: dict, old: dict | None) -> None:
    values = {"company": ctx.company_id(row["company_credit_code"]), "on": row["inspected_on"],
              "compound": row["compound_code"], "score": row["score"], "note": row["note"],
              "by": ctx.principal.username}
    items = [part.rsplit(":", 1) for part in (row["items"] or "").split("；") if part]
    values["findings"] = sum(1 for _, deduction in items if float(deduction) > 0)
    if old is None:
        inspection_id = ctx.conn.execute(text("""
            INSERT INTO regulator_inspection (company_id, compound_code, inspected_on, score, findings, note,
                                              recorded_by)
            VALUES (:company, :compound, :on, :score, :findings, :note, :by) RETURNING id"""), values).scalar_one()
    else:
        inspection_id = old["id"]
        ctx.conn.execute(text("UPDATE regulator_inspection SET score = :score, findings = :findings, note = :note, "
                              "recorded_by = :by, recorded_at = now() WHERE id = :id"), {**values, "id": inspection_id})
        ctx.conn.execute(text("DELETE FROM inspection_item WHERE inspection_id = :id"), {"id": inspection_id})
    for name, deduction in items:
        ctx.conn.execute(text("INSERT INTO inspection_item (inspection_id, item, deduction) VALUES (:id, :item, :d)"),
                         {"id": inspection_id, "item": name, "d": float(deduction)})


def _inspection_save_many(ctx, items: list[tuple[dict, dict | None]]) -> None:
    """New inspections and their items in one statement; changed ones one by one."""
    rows, findings = [], []
    for row, old in items:
        if old is not None:
            _inspection_save(ctx, row, old)
            continue
        parts = [part.rsplit(":", 1) for part in (row["items"] or "").split("；") if part]
        rows.append({"at": len(rows), "company_id": ctx.company_id(row["company_credit_code"]),
                     "inspected_on": row["inspected_on"], "compound_code": row["compound_code"],
                     "score": row["score"], "note": row["note"], "recorded_by": ctx.principal.username,
                     "findings": sum(1 for _, deduction in parts if float(deduction) > 0)})
        findings += [{"n": len(findings) + k, "at": len(rows) - 1, "item": name, "deduction": float(deduction)}
                     for k, (name, deduction) in enumerate(parts)]
    if rows:
        ctx.conn.execute(text("""
            WITH given AS (
                SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS r(
                    at int, company_id bigint, inspected_on date, compound_code text, score float, note text,
                    recorded_by text, findings int)),
            added AS (
                INSERT INTO regulator_inspection (company_id, compound_code, inspected_on, score, findings, note,
                                                  recorded_by)
                SELECT company_id, compound_code, inspected_on, score, findings, note, recorded_by FROM given
                ORDER BY at
                RETURNING id, company_id, compound_code, inspected_on)
            INSERT INTO inspection_item (inspection_id, item, deduction)
            SELECT a.id, i.item, i.deduction
            FROM json_to_recordset(CAST(:items AS json)) AS i(n bigint, at int, item text, deduction float)
            JOIN given g ON g.at = i.at
            JOIN added a ON a.company_id = g.company_id AND a.inspected_on = g.inspected_on
                        AND a.compound_code IS NOT DISTINCT FROM g.compound_code
            ORDER BY i.n"""), {"rows": json.dumps(rows, default=str, ensure_ascii=False),
                               "items": json.dumps(findings, ensure_ascii=False)})


def _inspection_export(ctx) -> list[dict]:
    rows = _rows(ctx, f"{_INSPECTION_SELECT} ORDER BY pc.credit_code, i.inspected_on, i.compound_code")
    for row in rows:
        row["items"] = _items(row["items"]) if row["items"] else None
        row["compound_code"] = row["compound_code"] or None
    return rows


INSPECTION = dict(
    name="regulator_inspection", title="行业主管部门检查",
    columns=(
        ("物业企业信用代码", "company_credit_code", parse_credit_code, True, True),
        ("检查日期", "inspected_on", parse_date, True, True),
        ("小区编码", "compound_code", code, False, True),
        ("检查得分", "score", real_number(0, 100), True, True),
        ("检查项（名称:扣分；…）", "items", _items, False, True),
        ("备注", "note", parse_text, False, True),
    ),
    key=("company_credit_code", "inspected_on", "compound_code"), fetch=_inspection_fetch,
    check=_inspection_check, save=_inspection_save, export=_inspection_export, roles=("admin",),
    save_many=_inspection_save_many,
)


# --- street and community ratings 街道、社区评分 ---------------------------------------------------------------

_RATING_SELECT = """
    SELECT pc.credit_code AS company_credit_code, r.period, r.rater_level, r.rater_code, r.score
    FROM company_rating r JOIN property_company pc ON pc.id = r.company_id"""
_RATING_KEY = ("company_credit_code", "period", "rater_level", "rater_code")


def _rater_in_scope(ctx, level: str, rater: str) -> bool:
    if ctx.scope.whole_city:
        return True
    if level == "street":
        return ctx.principal.role == "street" and rater in ctx.principal.scope
    return rater in ctx.scope.codes("community")


def _rating_fetch(ctx, keys: list[tuple]) -> dict[tuple, dict]:
    rows = _rows(ctx, f"{_RATING_SELECT} WHERE pc.credit_code = ANY(:codes)", {"codes": sorted({k[0] for k in keys})})
    return {tuple(row[name] for name in _RATING_KEY): row for row in rows}


def _rating_check(ctx, row: dict, old: dict | None) -> str | None:
    if ctx.company_id(row["company_credit_code"]) is None:
        return f"物业企业统一社会信用代码 {row['company_credit_code']} 未登记"
    if not _rater_in_scope(ctx, row["rater_level"], row["rater_code"]):
        return f"评分单位 {row['rater_code']} 不存在或不在您的管辖范围内"
    if row["rater_code"] not in _company_units(ctx, row["company_credit_code"])[row["rater_level"]]:
        return f"该企业不在 {row['rater_code']} 服务，不能由其评分"
    return None


def _rating_save(ctx, row: dict, old: dict | None) -> None:
    ctx.conn.execute(text("""
        INSERT INTO company_rating (company_id, period, rater_level, rater_code, score, recorded_by)
        VALUES (:company, :period, :rater_level, :rater_code, :score, :by)
        ON CONFLICT (company_id, period, rater_level, rater_code)
        DO UPDATE SET score = EXCLUDED.score, recorded_by = EXCLUDED.recorded_by, recorded_at = now()"""),
        {**row, "company": ctx.company_id(row["company_credit_code"]), "by": ctx.principal.username})


def _rating_save_many(ctx, items: list[tuple[dict, dict | None]]) -> None:
    """Every rating of the file in one upsert (what `_rating_save` does row by row)."""
    rows = [{"company_id": ctx.company_id(row["company_credit_code"]), "period": row["period"],
             "rater_level": row["rater_level"], "rater_code": row["rater_code"], "score": row["score"],
             "recorded_by": ctx.principal.username} for row, _ in items]
    ctx.conn.execute(text("""
        INSERT INTO company_rating (company_id, period, rater_level, rater_code, score, recorded_by)
        SELECT company_id, period, rater_level, rater_code, score, recorded_by
        FROM json_populate_recordset(NULL::company_rating, CAST(:rows AS json))
        ON CONFLICT (company_id, period, rater_level, rater_code)
        DO UPDATE SET score = EXCLUDED.score, recorded_by = EXCLUDED.recorded_by, recorded_at = now()"""),
        {"rows": json.dumps(rows, ensure_ascii=False)})


def _rating_export(ctx) -> list[dict]:
    rows = _rows(ctx, f"{_RATING_SELECT} ORDER BY pc.credit_code, r.period, r.rater_level, r.rater_code")
    return [row for row in rows if _rater_in_scope(ctx, row["rater_level"], row["rater_code"])]


RATING = dict(
    name="company_rating", title="街道、社区评分",
    columns=(
        ("物业企业信用代码", "company_credit_code", parse_credit_code, True, True),
        ("评价期间（如2026H1）", "period", _period, True, True),
        ("评分单位层级", "rater_level", choice(LEVEL_LABELS), True, True),
        ("评分单位编码", "rater_code", code, True, True),
        ("得分", "score", real_number(0, 100), True, True),
    ),
    key=_RATING_KEY, fetch=_rating_fetch, check=_rating_check, save=_rating_save, export=_rating_export,
    save_many=_rating_save_many,
)


# --- residents' satisfaction surveys 居民满意度调查 -------------------------------------------------------------

_SURVEY_SELECT = "SELECT compound_code, surveyed_on, sample_size, score, note FROM satisfaction_survey"


def _survey_fetch(ctx, keys: list[tuple]) -> dict[tuple, dict]:
    rows = _rows(ctx, f"{_SURVEY_SELECT} WHERE compound_code = ANY(:codes)", {"codes": sorted({k[0] for k in keys})})
    return {(row["compound_code"], row["surveyed_on"]): row for row in rows}


def _survey_check(ctx, row: dict, old: dict | None) -> str | None:
    if row["compound_code"] not in ctx.scope.codes("compound"):
        return f"小区 {row['compound_code']} 不存在或不在您的管辖范围内"
    company = ctx.remember("compound_companies", lambda: dict(ctx.conn.execute(text(
        "SELECT code, property_company_id FROM compound WHERE valid_to IS NULL")).all())).get(row["compound_code"])
    if company is None and old is None:
        return f"小区 {row['compound_code']} 当前没有物业服务企业，满意度调查无从计入"
    return None


def _survey_save(ctx, row: dict, old: dict | None) -> None:
    ctx.conn.execute(text("""
        INSERT INTO satisfaction_survey (compound_code, company_id, surveyed_on, sample_size, score, note, recorded_by)
        SELECT :compound_code, property_company_id, :surveyed_on, :sample_size, :score, :note, :by
        FROM compound WHERE code = :compound_code AND valid_to IS NULL
        ON CONFLICT (compound_code, surveyed_on) DO UPDATE SET sample_size = EXCLUDED.sample_size,
            score = EXCLUDED.score, note = EXCLUDED.note, recorded_by = EXCLUDED.recorded_by, recorded_at = now()"""),
        {**row, "by": ctx.principal.username})


def _survey_save_many(ctx, items: list[tuple[dict, dict | None]]) -> None:
    """Every survey of the file in one upsert (what `_survey_save` does row by row)."""
    rows = [{**{name: row[name] for name in ("compound_code", "surveyed_on", "sample_size", "score", "note")},
             "recorded_by": ctx.principal.username} for row, _ in items]
    ctx.conn.execute(text("""
        INSERT INTO satisfaction_survey (compound_code, company_id, surveyed_on, sample_size, score, note, recorded_by)
        SELECT r.compound_code, c.property_company_id, r.surveyed_on, r.sample_size, r.score, r.note, r.recorded_by
        FROM json_populate_recordset(NULL::satisfaction_survey, CAST(:rows AS json)) WITH ORDINALITY AS r
        JOIN compound c ON c.code = r.compound_code AND c.valid_to IS NULL
        ORDER BY r.ordinality
        ON CONFLICT (compound_code, surveyed_on) DO UPDATE SET sample_size = EXCLUDED.sample_size,
            score = EXCLUDED.score, note = EXCLUDED.note, recorded_by = EXCLUDED.recorded_by, recorded_at = now()"""),
        {"rows": json.dumps(rows, default=str, ensure_ascii=False)})


def _survey_export(ctx) -> list[dict]:
    return _rows(ctx, f"{_SURVEY_SELECT} WHERE compound_code = ANY(:codes) ORDER BY compound_code, surveyed_on",
                 {"codes": sorted(ctx.scope.codes("compound"))})


SURVEY = dict(
    name="satisfaction_survey", title="居民满意度调查",
    columns=(
        ("小区编码", "compound_code", code, True, True),
        ("调查日期", "surveyed_on", parse_date, True, True),
        ("样本量（人）", "sample_size", whole_number(1, 1_000_000), True, True),
        ("满意度得分", "score", real_number(0, 100), True, True),
        ("备注", "note", parse_text, False, True),
    ),
    key=("compound_code", "surveyed_on"), fetch=_survey_fetch, check=_survey_check, save=_survey_save,
    export=_survey_export, save_many=_survey_save_many,
)


# --- credit-file items 信用信息 ---------------------------------------------------------------------------------

_CREDIT_SELECT = """
    SELECT pc.credit_code AS company_credit_code, i.kind, i.category, i.title, i.occurred_on, i.detail, i.status,
           i.review_reason
    FROM credit_item i JOIN property_company pc ON pc.id = i.company_id"""
_CREDIT_KEY = ("company_credit_code", "kind", "category", "title", "occurred_on")


def _credit_fetch(ctx, keys: list[tuple]) -> dict[tuple, dict]:
    rows = _rows(ctx, f"{_CREDIT_SELECT} WHERE pc.credit_code = ANY(:codes)", {"codes": sorted({k[0] for k in keys})})
    return {tuple(row[name] for name in _CREDIT_KEY): row for row in rows}


def _serves_scope(ctx, credit_code: str) -> bool:
    return ctx.scope.whole_city or bool(_company_units(ctx, credit_code)["compound"] & ctx.scope.codes("compound"))


def _credit_check(ctx, row: dict, old: dict | None) -> str | None:
    if ctx.company_id(row["company_credit_code"]) is None:
        return f"物业企业统一社会信用代码 {row['company_credit_code']} 未登记"
    if not _serves_scope(ctx, row["company_credit_code"]):
        return f"物业企业 {row['company_credit_code']} 不在您的管辖范围内服务"
    if old is not None and old["status"] != "pending" and row["detail"] != old["detail"]:
        return "已审核的信用事项不能修改，请另行填报"
    return None


def _credit_save(ctx, row: dict, old: dict | None) -> None:
    if old is None:
        ctx.conn.execute(text("""
            INSERT INTO credit_item (company_id, kind, category, title, detail, occurred_on, reported_by)
            VALUES (:company, :kind, :category, :title, :detail, :occurred_on, :by)"""),
            {**row, "company": ctx.company_id(row["company_credit_code"]), "by": ctx.principal.username})
    else:
        ctx.conn.execute(text("""
            UPDATE credit_item i SET detail = :detail FROM property_company pc
            WHERE pc.id = i.company_id AND pc.credit_code = :company_credit_code AND i.kind = :kind
              AND i.category = :category AND i.title = :title AND i.occurred_on = :occurred_on"""), row)


def _credit_export(ctx) -> list[dict]:
    rows = _rows(ctx, f"{_CREDIT_SELECT} ORDER BY pc.credit_code, i.occurred_on, i.kind, i.category, i.title")
    serves = {code: _serves_scope(ctx, code) for code in {row["company_credit_code"] for row in rows}}
    return [row for row in rows if serves[row["company_credit_code"]]]


CREDIT_ITEM = dict(
    name="credit_item", title="物业企业信用信息",
    columns=(
        ("物业企业信用代码", "company_credit_code", parse_credit_code, True, True),
        ("信息类别", "kind", choice(CREDIT_KIND_LABELS), True, True),
        ("信用事项", "category", choice(CATEGORY_LABELS), True, True),
        ("标题", "title", parse_text, True, True),
        ("发生日期", "occurred_on", parse_date, True, True),
        ("详情", "detail", parse_text, False, True),
        ("审核状态（导出）", "status", parse_text, False, False),
        ("审核理由（导出）", "review_reason", parse_text, False, False),
    ),
    key=_CREDIT_KEY, fetch=_credit_fetch, check=_credit_check, save=_credit_save, export=_credit_export,
    roles=("admin", "street"),
)

EVALUATION_KINDS = (INSPECTION, RATING, SURVEY, CREDIT_ITEM)
"""The specs gis/registry/kinds.py builds into kinds and registers for the evaluation."""
