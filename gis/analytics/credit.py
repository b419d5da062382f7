"""The credit file's items (信用档案, as the county seed describes it): a company reports basic, good and bad
information; the street office serving it (属地街道) or the housing department (住建部门, the administrator)
approves or rejects each item with a reason; approved items score by configurable rules (`CreditSettings`:
points per category, party building among them, capped per category) on a base score, and the grade per company
is published — company names and grades only, never personal data.

Only approved items count: a pending or rejected item changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import Connection, text

from gis.access.auth import Principal
from gis.analytics.figures import Figure
from gis.analytics.inputs import company_in_scope
from gis.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.settings import CreditSettings, credit_settings
from gis.times import BEIJING, check_time

KINDS = {"basic": "基本信息", "good": "良好信息", "bad": "不良信息"}
CATEGORY_NAMES = {"party_building": "党建", "staffing": "人员配备", "service_record": "服务记录", "award": "表彰奖励",
                  "praise": "业主表扬", "owner_complaint": "业主投诉", "penalty": "行政处罚", "bad_credit": "失信记录",
                  "registration": "备案信息"}
GRADE_NAMES = {"A": "优秀", "B": "良好", "C": "合格", "D": "较差"}
ITEM_COLUMNS = ["id", "company_id", "company_name", "kind", "category", "title", "detail", "occurred_on",
                "reported_by", "reported_at", "status", "reviewed_by", "reviewer_level", "reviewed_at", "review_reason"]


def report_item(conn: Connection, principal: Principal, company_id: int | None, kind: str, category: str,
                title: str, occurred_on: date, detail: str | None = None) -> dict:
    """A company reports an item of its own credit file (a street or the administrator may record one for a
    company it serves or any); the item is pending until reviewed."""
    if principal.role not in ("property_company", "street", "admin"):
        raise Forbidden("信用信息仅限物业企业、街道和住建部门（管理员）填报")
    if principal.role == "property_company":
        if company_id is not None and company_id != principal.company_id:
            raise NotFound(f"没有编号为 {company_id} 的物业服务企业")
        company_id = principal.company_id
    if company_id is None:
        raise InvalidInput("须写明物业企业编号 company_id")
    company_in_scope(conn, principal, company_id)
    if kind not in KINDS:
        raise InvalidInput("信息类别须为 basic（基本）、good（良好）或 bad（不良）")
    if category not in CATEGORY_NAMES:
        raise InvalidInput(f"未知的信用事项 {category!r}（可选：{'、'.join(CATEGORY_NAMES)}）")
    if not (title or "").strip():
        raise InvalidInput("信用事项须有标题")
    check_time(datetime.combine(occurred_on, time(12), BEIJING), "发生日期")
    item_id = conn.execute(text("""
        INSERT INTO credit_item (company_id, kind, category, title, detail, occurred_on, reported_by)
        VALUES (:company, :kind, :category, :title, :detail, :on, :by) RETURNING id"""),
        {"company": company_id, "kind": kind, "category": category, "title": title.strip(), "detail": detail,
         "on": occurred_on, "by": principal.username}).scalar_one()
    return {"id": item_id, "company_id": company_id, "status": "pending"}


def review_item(conn: Connection, principal: Principal, item_id: int, decision: str, reason: str) -> dict:
    """Approve or reject an item with a reason: the street serving the company or the housing department."""
    if principal.role not in ("street", "admin"):
        raise Forbidden("信用信息审核仅限街道和住建部门（管理员）")
    if decision not in ("approve", "reject"):
        raise InvalidInput("审核结论须为 approve（通过）或 reject（驳回）")
    if not (reason or "").strip():
        raise InvalidInput("审核须写明理由")
    item = conn.execute(text("SELECT id, company_id, status FROM credit_item WHERE id = :id FOR UPDATE"),
                        {"id": item_id}).mappings().first()
    if item is None:
        raise NotFound(f"没有编号为 {item_id} 的信用事项")
    company_in_scope(conn, principal, item["company_id"])
    if item["status"] != "pending":
        raise Conflict(f"信用事项 {item_id} 已审核，不能重复审核")
    status = "approved" if decision == "approve" else "rejected"
    conn.execute(text("""
        UPDATE credit_item SET status = :status, reviewed_by = :by, reviewer_level = :level, reviewed_at = now(),
               review_reason = :reason WHERE id = :id"""),
        {"status": status, "by": principal.username, "level": "housing" if principal.role == "admin" else "street",
         "reason": reason.strip(), "id": item_id})
    return {"id": item_id, "status": status}


def list_items(conn: Connection, principal: Principal, company_id: int | None = None,
               status: str | None = None) -> Figure:
    """Credit items the caller may see: a company its own, a street those of companies serving it, the
    administrator and planners all."""
    if status is not None and status not in ("pending", "approved", "rejected"):
        raise InvalidInput("status 须为 pending、approved 或 rejected")
    if principal.role == "public":
        raise Forbidden("请先登录")
    if company_id is not None and principal.role != "planner":
        company_in_scope(conn, principal, company_id)
    rows = [dict(r) for r in conn.execute(text("""
        SELECT i.id, i.company_id, pc.name AS company_name, i.kind, i.category, i.title, i.detail, i.occurred_on,
               i.reported_by, i.reported_at, i.status, i.reviewed_by, i.reviewer_level, i.reviewed_at,
               i.review_reason
        FROM credit_item i JOIN property_company pc ON pc.id = i.company_id
        WHERE (CAST(:company AS bigint) IS NULL OR i.company_id = :company)
          AND (CAST(:status AS text) IS NULL OR i.status = :status)
        ORDER BY i.company_id, i.id"""), {"company": company_id, "status": status}).mappings()]
    if principal.role not in ("admin", "planner"):
        allowed: dict[int, bool] = {}
        for row in rows:
            if row["company_id"] not in allowed:
                try:
                    company_in_scope(conn, principal, row["company_id"])
                    allowed[row["company_id"]] = True
                except (NotFound, Forbidden):
                    allowed[row["company_id"]] = False
        rows = [row for row in rows if allowed[row["company_id"]]]
    if principal.role == "planner":
        for row in rows:  # planners see no staff names
            row["reported_by"] = row["reviewed_by"] = None
    return Figure("credit_items", ITEM_COLUMNS, rows, {"company_id": company_id, "status": status})


def grade_of(score: float, settings: CreditSettings) -> str:
    """The grade of a credit score: the first grade whose least score it reaches, else D."""
    for grade, least in sorted(settings.grades.items(), key=lambda item: -item[1]):
        if score >= least:
            return grade
    return "D"


def credit_scores(conn: Connection, settings: CreditSettings | None = None) -> list[dict]:
    """Every company's credit score and grade from its approved items (name, score, grade, items counted)."""
    settings = settings or credit_settings()
    counts: dict[int, dict[str, int]] = {}
    for company_id, category, n in conn.execute(text(
            "SELECT company_id, category, count(*) FROM credit_item WHERE status = 'approved' GROUP BY 1, 2")):
        counts.setdefault(company_id, {})[category] = n
    out = []
    for company_id, name in conn.execute(text("SELECT id, name FROM property_company ORDER BY name, id")):
        score, counted = settings.base_score, 0
        for category, n in counts.get(company_id, {}).items():
            points = settings.points.get(category, 0.0) * n
            score += max(-settings.cap_per_category, min(settings.cap_per_category, points))
            counted += n
        score = max(0.0, min(100.0, score))
        grade = grade_of(score, settings)
        out.append({"company_id": company_id, "company_name": name, "score": round(score, 2), "grade": grade,
                    "grade_zh": GRADE_NAMES[grade], "approved_items": counted})
    return out


def published_grades(conn: Connection) -> Figure:
    """The public credit grades: company names and grades only (为业主选聘、招投标参考)."""
    rows = [{"company_name": r["company_name"], "grade": r["grade"], "grade_zh": r["grade_zh"]}
            for r in credit_scores(conn)]
    return Figure("credit_grades", ["company_name", "grade", "grade_zh"], rows,
                  {"published_on": datetime.now(BEIJING).date().isoformat()})
