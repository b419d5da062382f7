"""What the red/black list sets in motion: rectification (整改) of a black-listed company and its exit (清退).

- Storing a half-year's evaluation opens a rectification task for every black-listed company: a deadline
  (`EvaluationSettings.rectification_days` after the half-year), the items (its parts below the ranked companies'
  mean, worst first) and a follow-up result (pending, passed, failed) that the street or the housing department
  records.
- Black in two half-years in a row without a passed rectification of the first flags the company for exit
  (gis/analytics/evaluation.py). Starting the exit hands over each of its compounds as a dated takeover (接管,
  through the registry's `take_over`, the one rule of takeovers): by default to the community-led company
  (社区领办) serving the compound's community, or to the company the street names.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Connection, text

from gis.access.auth import Principal
from gis.analytics.figures import Figure
from gis.analytics.inputs import company_in_scope
from gis.analytics.periods import half_year
from gis.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.registry.history import take_over
from gis.settings import EvaluationSettings

PART_NAMES = {"residents_score": "居民满意度与投诉处理", "regulator_score": "行业主管部门检查发现的问题",
              "street_score": "街道评价反映的问题", "community_score": "社区党组织评价反映的问题"}
RESULTS = ("passed", "failed")
TASK_COLUMNS = ["id", "company_id", "company_name", "period", "deadline", "items", "result", "result_note",
                "followed_up_by", "followed_up_at"]
HANDOVER_COLUMNS = ["exit_id", "company_id", "company_name", "period", "compound_code", "to_company_id",
                    "to_company_name", "handed_over_on", "named_by_street"]


def open_tasks(conn: Connection, figure: Figure, settings: EvaluationSettings) -> int:
    """Open a rectification task for each black-listed company of a stored half-year (kept when one exists);
    returns how many the half-year has."""
    period = half_year(figure.meta["period"])
    ranked = [r for r in figure.rows if not r.get("insufficient_data")]
    means = {part: sum(r[part] for r in ranked) / len(ranked) for part in PART_NAMES
             if ranked and all(r.get(part) is not None for r in ranked)}
    deadline = period.end + timedelta(days=settings.rectification_days)
    for row in figure.rows:
        if row["standing"] != "black":
            continue
        weak = sorted((row[part] - mean, part) for part, mean in means.items() if row[part] < mean)
        items = [f"{PART_NAMES[part]}（{row[part]:.1f} 分，平均 {means[part]:.1f} 分）" for _, part in weak] or [
            "综合评价列入黑榜，全面整改"]
        conn.execute(text("""
            INSERT INTO rectification_task (company_id, period, items, deadline) VALUES (:company, :period, :items,
                :deadline) ON CONFLICT (company_id, period) DO NOTHING"""),
            {"company": row["company_id"], "period": period.label, "items": items, "deadline": deadline})
    # A company no longer black after a re-run of the half-year keeps no task that was never followed up.
    conn.execute(text("""
        DELETE FROM rectification_task t WHERE t.period = :period AND t.result = 'pending'
          AND t.company_id <> ALL(:black)"""),
        {"period": period.label, "black": [r["company_id"] for r in figure.rows if r["standing"] == "black"]})
    return conn.execute(text("SELECT count(*) FROM rectification_task WHERE period = :p"),
                        {"p": period.label}).scalar_one()


def list_tasks(conn: Connection, principal: Principal, period_label: str | None = None) -> Figure:
    """Rectification tasks (of one half-year, or all), for the caller's companies."""
    params: dict = {}
    where = "TRUE"
    if period_label:
        where, params = "t.period = :period", {"period": half_year(period_label).label}
    rows = []
    for row in conn.execute(text(f"""
            SELECT t.id, t.company_id, pc.name AS company_name, t.period, t.deadline,
                   array_to_string(t.items, '；') AS items, t.result, t.result_note, t.followed_up_by,
                   t.followed_up_at
            FROM rectification_task t JOIN property_company pc ON pc.id = t.company_id
            WHERE {where} ORDER BY t.period, t.company_id"""), params).mappings():
        try:
            company_in_scope(conn, principal, row["company_id"])
        except (NotFound, Forbidden):
            continue
        rows.append(dict(row))
    return Figure("rectification_tasks", TASK_COLUMNS, rows, {"period": period_label})


def follow_up(conn: Connection, principal: Principal, task_id: int, result: str, note: str | None) -> dict:
    """Record the follow-up of a rectification task: passed or failed, by the street serving the company or the
    housing department (the administrator)."""
    if principal.role not in ("admin", "street"):
        raise Forbidden("整改复查仅限街道和住建部门（管理员）")
    if result not in RESULTS:
        raise InvalidInput("复查结果须为 passed（通过）或 failed（未通过）")
    task = conn.execute(text("SELECT id, company_id, result FROM rectification_task WHERE id = :id FOR UPDATE"),
                        {"id": task_id}).mappings().first()
    if task is None:
        raise NotFound(f"没有编号为 {task_id} 的整改任务")
    company_in_scope(conn, principal, task["company_id"])
    if task["result"] != "pending":
        raise Conflict(f"整改任务 {task_id} 已复查（{task['result']}），不能重复复查")
    if result == "failed" and not (note or "").strip():
        raise InvalidInput("整改未通过须写明原因")
    conn.execute(text("""
        UPDATE rectification_task SET result = :result, result_note = :note, followed_up_by = :by,
               followed_up_at = now() WHERE id = :id"""),
        {"result": result, "note": (note or "").strip() or None, "by": principal.username, "id": task_id})
    return {"id": task_id, "result": result}


def _flagged(conn: Connection, company_id: int, period: str) -> bool:
    return bool(conn.execute(text("""
        SELECT d.flagged_for_exit FROM company_evaluation e JOIN evaluation_detail d ON d.evaluation_id = e.id
        WHERE e.company_id = :company AND e.period = :period"""),
        {"company": company_id, "period": period}).scalar())


def default_successors(conn: Connection, company_id: int) -> dict[str, int | None]:
    """Each current compound of the company with the community-led company serving its community (the one
    managing most of the community's compounds; None when the community has none)."""
    rows = conn.execute(text("""
        WITH led AS (
            SELECT cp.community_code, cp.property_company_id AS company_id, count(*) AS n
            FROM compound cp JOIN property_company pc ON pc.id = cp.property_company_id AND pc.is_community_led
            WHERE cp.valid_to IS NULL AND cp.property_company_id <> :company GROUP BY 1, 2
        )
        SELECT cp.code, (SELECT led.company_id FROM led WHERE led.community_code = cp.community_code
                         ORDER BY led.n DESC, led.company_id LIMIT 1)
        FROM compound cp WHERE cp.valid_to IS NULL AND cp.property_company_id = :company ORDER BY cp.code"""),
        {"company": company_id}).all()
    return {code: successor for code, successor in rows}


def start_exit(conn: Connection, principal: Principal, company_id: int, period_label: str,
               successors: dict[str, int] | None = None, handed_over_on: date | None = None) -> dict:
    """清退: hand over every current compound of a company flagged for exit in `period_label` (black twice in a row
    without a passed rectification) as dated takeovers. `successors` names a company for some compounds (the
    street's choice); the rest go to their community's community-led company. The administrator starts it."""
    if principal.role != "admin":
        raise Forbidden("清退仅限住建部门（管理员）启动")
    period = half_year(period_label)
    company = company_in_scope(conn, principal, company_id)
    if not _flagged(conn, company_id, period.label):
        raise InvalidInput(f"{company['name']} 在 {period.label} 未被列入清退（需连续两次列入黑榜且整改未通过）")
    if conn.execute(text("SELECT 1 FROM company_exit WHERE company_id = :c AND period = :p"),
                    {"c": company_id, "p": period.label}).first():
        raise Conflict(f"{company['name']} 在 {period.label} 的清退已经启动")
    on = handed_over_on or datetime.now(timezone(timedelta(hours=8))).date()
    plan = default_successors(conn, company_id)
    named = dict(successors or {})
    unknown = sorted(set(named) - set(plan))
    if unknown:
        raise InvalidInput(f"小区 {'、'.join(unknown)} 当前不由该企业管理")
    plan.update(named)
    without = sorted(code for code, successor in plan.items() if successor is None)
    if without:
        raise InvalidInput(f"小区 {'、'.join(without)} 所在社区没有社区领办物业企业：请由街道指定接管企业")
    if not plan:
        raise InvalidInput(f"{company['name']} 当前没有管理的小区，无需移交")
    credit_codes = dict(conn.execute(text("SELECT id, credit_code FROM property_company WHERE id = ANY(:ids)"),
                                     {"ids": sorted(set(plan.values()))}).all())
    missing = sorted({str(s) for s in plan.values() if s not in credit_codes or s == company_id})
    if missing:
        raise InvalidInput(f"接管企业 {'、'.join(missing)} 不存在或就是被清退的企业")
    reason = f"{period.label} 连续两次列入黑榜且整改未通过，清退移交"
    exit_id = conn.execute(text("""
        INSERT INTO company_exit (company_id, period, handed_over_on, reason, started_by)
        VALUES (:company, :period, :on, :reason, :by) RETURNING id"""),
        {"company": company_id, "period": period.label, "on": on, "reason": reason,
         "by": principal.username}).scalar_one()
    for code, successor in sorted(plan.items()):
        take_over(conn, principal, code, credit_codes[successor], on, reason)
        conn.execute(text("""
            INSERT INTO compound_handover (exit_id, compound_code, from_company_id, to_company_id, handed_over_on,
                                           named_by_street)
            VALUES (:exit, :code, :from_company, :to_company, :on, :named)"""),
            {"exit": exit_id, "code": code, "from_company": company_id, "to_company": successor, "on": on,
             "named": code in named})
    return {"exit_id": exit_id, "company_id": company_id, "period": period.label, "handed_over_on": on.isoformat(),
            "compounds": len(plan), "handovers": [{"compound_code": code, "to_company_id": successor}
                                                  for code, successor in sorted(plan.items())]}


def list_handovers(conn: Connection, principal: Principal) -> Figure:
    """Every exit and the compounds it handed over (signed-in staff and planners)."""
    if principal.role == "public":
        raise Forbidden("请先登录")
    rows = [dict(r) for r in conn.execute(text("""
        SELECT x.id AS exit_id, x.company_id, pc.name AS company_name, x.period, h.compound_code, h.to_company_id,
               to_pc.name AS to_company_name, h.handed_over_on, h.named_by_street
        FROM company_exit x JOIN property_company pc ON pc.id = x.company_id
        JOIN compound_handover h ON h.exit_id = x.id JOIN property_company to_pc ON to_pc.id = h.to_company_id
        ORDER BY x.id, h.compound_code""")).mappings()]
    return Figure("exits", HANDOVER_COLUMNS, rows, {})
