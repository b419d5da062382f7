"""Proactive handling (未诉先办): tasks opened where problems are emerging, the month's recurring problems
(每月一题) and a replay that shows how many complaints came where a task was already open, and how early.

A proactive task (主动治理任务) is opened for an area × category that the emerging hot spot analysis
(`gis.analytics.emerging`) classes as a new, consecutive, intensifying or persistent hot spot and that had at
least `GRIDGOV_PROACTIVE_MIN_COMPLAINTS` complaints over the months the run sees (a lone complaint in a quiet
micro-grid is a significant Gi*, a "new hot spot", but not yet a problem to go out for), once per area ×
category: a later run that sees it again records the month and the pattern, it does not open another. The task
names the grid's current grid workers and its party branch (网格党支部). It is a table of its own, not a
ticket: a ticket is a resident's complaint, and the rates (响应率, 解决率 …) and the hotspots count complaints;
counting the office's own tasks in them would let the tasks raise the rates they are judged by.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import Connection, text

from gis.analytics import emerging as em
from gis.analytics.figures import Figure
from gis.analytics.periods import LOCAL_TIME
from gis.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.settings import proactive_settings

TASK_CLASSES = ("new hot spot", "consecutive hot spot", "intensifying hot spot", "persistent hot spot")
"""The space-time classes that open a proactive task."""
HOT_CLASSES = TASK_CLASSES + ("sporadic hot spot", "oscillating hot spot")
"""Hot at the final month: the classes the monthly shortlist counts."""
OPENING_ROLES = ("admin", "street", "community")
"""Who may open proactive tasks: the administrator for the city, a street office or community for its own."""
READING_ROLES = OPENING_ROLES + ("grid_worker",)
"""Who reads and completes them: those who open them, and grid workers for their own grids."""
STATES = ("open", "done")


def _scope_prefixes(role: str, scope: tuple[str, ...],
                    roles: tuple[str, ...] = OPENING_ROLES) -> tuple[str, ...] | None:
    """Code prefixes the caller may open (or read) tasks under (None: the whole city)."""
    if role not in roles:
        raise Forbidden("只有管理员、街道和社区可以发起主动治理任务" if roles == OPENING_ROLES
                        else "只有管理员、街道、社区和网格员可以查看主动治理任务")
    if role == "admin":
        return None
    if not scope:
        raise Forbidden("账号没有管辖范围，不能发起主动治理任务")
    return tuple(scope)


OPEN_TASKS_SQL = """
WITH found AS (
    SELECT v.area_code, v.category_code, v.pattern, v.figures::jsonb AS figures,
           CASE WHEN :level = 'micro_grid' THEN mg.grid_code ELSE v.area_code END AS grid_code
    FROM unnest(CAST(:areas AS text[]), CAST(:categories AS text[]), CAST(:patterns AS text[]),
                CAST(:figures AS text[])) AS v(area_code, category_code, pattern, figures)
    LEFT JOIN micro_grid mg ON :level = 'micro_grid' AND mg.code = v.area_code AND mg.valid_to IS NULL
)
INSERT INTO proactive_task AS t (level, area_code, grid_code, community_code, street_code, category_code, pattern,
                                 opened_month, opened_by, grid_worker_ids, party_organisation_code, figures,
                                 last_month, last_pattern)
SELECT :level, f.area_code, f.grid_code, left(f.grid_code, 12), left(f.grid_code, 9), f.category_code, f.pattern,
       :month, :actor,
       coalesce((SELECT array_agg(w.id ORDER BY w.is_part_time, w.id) FROM grid_worker w
                 WHERE w.grid_code = f.grid_code), '{}'),
       (SELECT p.code FROM party_organisation p WHERE p.kind = 'grid_branch' AND p.unit_code = f.grid_code
        ORDER BY p.code LIMIT 1),
       f.figures, :month, f.pattern
FROM found f
WHERE f.grid_code IS NOT NULL
ON CONFLICT (level, area_code, category_code) DO UPDATE
    SET last_month = greatest(t.last_month, EXCLUDED.last_month),
        last_pattern = CASE WHEN EXCLUDED.last_month >= t.last_month THEN EXCLUDED.last_pattern
                            ELSE t.last_pattern END
RETURNING t.id, t.area_code, t.grid_code, t.category_code, t.pattern, t.opened_month, t.state,
          t.party_organisation_code, cardinality(t.grid_worker_ids) AS grid_workers, (xmax = 0) AS opened
"""

TASK_COLUMNS = ["id", "area_code", "grid_code", "category_code", "category_name", "pattern", "pattern_zh",
                "opened_month", "state", "opened", "grid_workers", "party_organisation_code"]
TASK_LABELS = {"id": "任务编号", "area_code": "区域编码", "grid_code": "网格编码", "category_code": "类别编码",
               "category_name": "类别", "pattern": "pattern", "pattern_zh": "时空模式", "opened_month": "发起月份",
               "state": "状态", "opened": "本次新发起", "grid_workers": "网格员人数",
               "party_organisation_code": "网格党支部"}


def task_pairs(result: em.Emerging, min_complaints: int | None = None) -> np.ndarray:
    """Which area × category pairs of an analysis open a task: a task class, and at least `min_complaints`
    (default GRIDGOV_PROACTIVE_MIN_COMPLAINTS) complaints over the analysis' months."""
    wanted = proactive_settings().min_complaints if min_complaints is None else min_complaints
    return np.isin(result.classes, TASK_CLASSES) & (result.cube.counts.sum(axis=2) >= wanted)


def open_tasks(conn: Connection, role: str, scope: tuple[str, ...], actor: str, month: str | None = None,
               level: str = "micro_grid", steps: int | None = None) -> Figure:
    """Open a proactive task for every area × category of the caller's scope that is a new, consecutive,
    intensifying or persistent hot spot over the `steps` months (default GRIDGOV_PROACTIVE_STEPS) ending with
    `month` (default: the newest month with complaints) with enough complaints (task_pairs); those that already
    have a task keep it (its `last_month` and `last_pattern` move on)."""
    prefixes = _scope_prefixes(role, scope)
    started = time.perf_counter()
    month = month or em.latest_month(conn)
    result = em.analyse(conn, level, month, steps)
    cube = result.cube
    opens = task_pairs(result)
    areas, categories, patterns, figures = [], [], [], []
    for i, code in enumerate(cube.codes):
        if prefixes is not None and not code.startswith(prefixes):
            continue
        for k, category in enumerate(cube.categories):
            pattern = result.classes[i, k]
            if not opens[i, k]:
                continue
            bins = result.spacetime.bins[i, k]
            index = i * len(cube.categories) + k
            areas.append(code)
            categories.append(category)
            patterns.append(pattern)
            figures.append(json.dumps({
                "months": [m.strftime("%Y-%m") for m in cube.months],
                "complaints": [int(v) for v in cube.counts[i, k]],
                "gi_z": [round(float(v), 3) for v in result.spacetime.z[i, k]],
                "hot_steps": int((bins > 0).sum()),
                "trend_z": round(float(result.trend.z[index]), 4),
                "trend_p": round(float(result.trend.p[index]), 6)}))
    last = cube.months[-1]
    rows = [dict(r) for r in conn.execute(text(OPEN_TASKS_SQL), {
        "level": cube.level, "areas": areas, "categories": categories, "patterns": patterns, "figures": figures,
        "month": last, "actor": actor}).mappings()] if areas else []
    names = em.category_names(conn)
    for row in rows:
        row["category_name"] = names.get(row["category_code"])
        row["pattern_zh"] = em.CLASSES_ZH[row["pattern"]]
    rows.sort(key=lambda r: (not r["opened"], r["area_code"], r["category_code"]))
    meta = {"level": cube.level, "month": last.strftime("%Y-%m"), "steps": len(cube.months),
            "scope": list(prefixes) if prefixes else "city", "found": len(areas),
            "opened": sum(r["opened"] for r in rows), "already_open": sum(not r["opened"] for r in rows),
            "classes": list(TASK_CLASSES), "min_complaints": proactive_settings().min_complaints,
            "seconds": round(time.perf_counter() - started, 3)}
    return Figure("proactive_tasks", TASK_COLUMNS, rows, meta, labels=TASK_LABELS)


LIST_COLUMNS = ["id", "area_code", "grid_code", "category_code", "category_name", "pattern_zh", "last_pattern_zh",
                "opened_month", "last_month", "opened_at", "state", "done_at", "grid_workers",
                "party_organisation_code"]
LIST_LABELS = {**TASK_LABELS, "last_pattern_zh": "最近模式", "last_month": "最近月份",
               "opened_at": "发起时间（北京时间）", "done_at": "完成时间（北京时间）"}
_LIST_SQL = """
SELECT t.id, t.area_code, t.grid_code, t.category_code, c.name_zh AS category_name, t.pattern, t.last_pattern,
       to_char(t.opened_month, 'YYYY-MM') AS opened_month, to_char(t.last_month, 'YYYY-MM') AS last_month,
       to_char(t.opened_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') AS opened_at, t.state,
       to_char(t.done_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') AS done_at,
       cardinality(t.grid_worker_ids) AS grid_workers, t.party_organisation_code
FROM proactive_task t JOIN category c ON c.code = t.category_code
WHERE {where}
ORDER BY t.opened_month DESC, t.area_code, t.category_code
LIMIT :limit
"""


def _scope_where(prefixes: tuple[str, ...] | None, params: dict) -> str:
    if prefixes is None:
        return "TRUE"
    params["prefixes"] = [prefix + "%" for prefix in prefixes]
    return "t.area_code LIKE ANY(:prefixes)"


def list_tasks(conn: Connection, role: str, scope: tuple[str, ...], state: str | None = None,
               limit: int = 500) -> Figure:
    """The proactive tasks in the caller's scope (newest first), of one state or all."""
    prefixes = _scope_prefixes(role, scope, READING_ROLES)
    if state is not None and state not in STATES:
        raise InvalidInput(f"state（状态）只能是 {'、'.join(STATES)}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 5000:
        raise InvalidInput("limit（条数）必须是 1 到 5000 之间的整数")
    params: dict = {"limit": limit}
    where = _scope_where(prefixes, params)
    if state:
        where += " AND t.state = :state"
        params["state"] = state
    rows = [dict(r) for r in conn.execute(text(_LIST_SQL.format(where=where)), params).mappings()]
    for row in rows:
        row["pattern_zh"] = em.CLASSES_ZH.get(row.pop("pattern"))
        row["last_pattern_zh"] = em.CLASSES_ZH.get(row.pop("last_pattern"))
    return Figure("proactive_task_list", LIST_COLUMNS, rows, {"state": state or "all", "listed": len(rows),
                                                               "limit": limit}, labels=LIST_LABELS)


def complete_task(conn: Connection, role: str, scope: tuple[str, ...], task_id: int) -> dict:
    """Mark a proactive task done (已完成); a task outside the caller's scope is not found, a done one a
    conflict."""
    prefixes = _scope_prefixes(role, scope, READING_ROLES)
    if not 1 <= task_id < 2**63:
        raise NotFound(f"没有编号为 {task_id} 的主动治理任务")
    params: dict = {"id": task_id}
    where = _scope_where(prefixes, params)
    state = conn.execute(text(f"SELECT t.state FROM proactive_task t WHERE t.id = :id AND {where} FOR UPDATE"),
                         params).scalar()
    if state is None:
        raise NotFound(f"没有编号为 {task_id} 的主动治理任务")
    if state == "done":
        raise Conflict(f"主动治理任务 {task_id} 已经完成")
    conn.execute(text("UPDATE proactive_task SET state = 'done', done_at = now() WHERE id = :id"), {"id": task_id})
    return _task(conn, task_id)


def _task(conn: Connection, task_id: int) -> dict:
    """One task as `list_tasks` lists it."""
    row = dict(conn.execute(text(_LIST_SQL.format(where="t.id = :id")), {"id": task_id, "limit": 1}).mappings().one())
    row["pattern_zh"] = em.CLASSES_ZH.get(row.pop("pattern"))
    row["last_pattern_zh"] = em.CLASSES_ZH.get(row.pop("last_pattern"))
    return row


# --- 每月一题: the month's recurring problems ----------------------------------------------------------------

PROBLEM_COLUMNS = ["rank", "community_code", "community_name", "street_name", "category_code", "category_name",
                   "hot_micro_grids", "patterns_zh", "complaints_month", "complaints_previous_month",
                   "complaints_window", "months_with_complaints", "trend_tau", "trend_p", "proactive_tasks"]
PROBLEM_LABELS = {"rank": "序号", "community_code": "社区编码", "community_name": "社区", "street_name": "街道",
                  "category_code": "类别编码", "category_name": "问题类别", "hot_micro_grids": "热点微网格数",
                  "patterns_zh": "时空模式", "complaints_month": "本月投诉", "complaints_previous_month": "上月投诉",
                  "complaints_window": "近期投诉合计", "months_with_complaints": "有投诉的月数",
                  "trend_tau": "趋势 τ", "trend_p": "趋势 p 值", "proactive_tasks": "主动治理任务数"}


def monthly_problems(conn: Connection, month: str | None = None, limit: int = 10,
                     steps: int | None = None) -> Figure:
    """每月一题: the city's recurring problems of a month — community × category pairs with complaints in the
    month and a micro-grid that is a hot spot at the month (new, consecutive, intensifying, persistent, sporadic
    or oscillating), ranked by the months with complaints in the window, then the window's complaints, then the
    hot micro-grids; with the month's and the window's counts, the Mann–Kendall trend of the community's
    monthly counts and the proactive tasks already opened."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise InvalidInput("limit（条数）必须是 1 到 100 之间的整数")
    result = em.analyse(conn, "micro_grid", month, steps)
    cube = result.cube
    community_of = np.array([code[:12] for code in cube.codes])
    communities = sorted(set(community_of.tolist()))
    c_index = {code: i for i, code in enumerate(communities)}
    member = np.array([c_index[c] for c in community_of])
    per_community = np.zeros((len(communities), *cube.counts.shape[1:]))
    np.add.at(per_community, member, cube.counts)
    hot = np.isin(result.classes, HOT_CLASSES)
    hot_count = np.zeros((len(communities), len(cube.categories)), dtype=int)
    np.add.at(hot_count, member, hot.astype(int))
    # A problem of the month: complaints this month and a hot micro-grid; recurring first (the months with
    # complaints), then by the complaints of the window and the hot micro-grids.
    candidates = [(c, k) for c, k in zip(*np.nonzero(hot_count)) if per_community[c, k, -1] > 0]
    candidates.sort(key=lambda ck: (-(per_community[ck] > 0).sum(), -per_community[ck].sum(), -hot_count[ck],
                                    communities[ck[0]], cube.categories[ck[1]]))
    chosen = candidates[:limit]
    trend = em.mann_kendall(np.array([per_community[c, k] for c, k in chosen])) if chosen else None
    names = em.category_names(conn)
    community_names = dict(conn.execute(text(
        "SELECT c.code, c.name FROM community c WHERE c.valid_to IS NULL AND c.code = ANY(:codes)"),
        {"codes": [communities[c] for c, _ in chosen]}).all())
    street_names = dict(conn.execute(text(
        "SELECT s.code, s.name FROM street s WHERE s.valid_to IS NULL AND s.code = ANY(:codes)"),
        {"codes": [communities[c][:9] for c, _ in chosen]}).all())
    tasks = {(r[0], r[1]): r[2] for r in conn.execute(text(
        "SELECT community_code, category_code, count(*) FROM proactive_task WHERE level = 'micro_grid' "
        "AND opened_month <= :month GROUP BY 1, 2"), {"month": cube.months[-1]}).all()}
    rows = []
    for rank, (c, k) in enumerate(chosen, start=1):
        code, category = communities[c], cube.categories[k]
        in_community = result.classes[member == c, k]
        kinds = [kind for kind in HOT_CLASSES if (in_community == kind).any()]
        series = per_community[c, k]
        rows.append({
            "rank": rank, "community_code": code, "community_name": community_names.get(code),
            "street_name": street_names.get(code[:9]), "category_code": category,
            "category_name": names.get(category), "hot_micro_grids": int(hot_count[c, k]),
            "patterns_zh": "、".join(f"{em.CLASSES_ZH[kind]} {int((in_community == kind).sum())}" for kind in kinds),
            "complaints_month": int(series[-1]), "complaints_previous_month": int(series[-2]),
            "complaints_window": int(series.sum()), "months_with_complaints": int((series > 0).sum()),
            "trend_tau": round(float(trend.tau[rank - 1]), 4), "trend_p": round(float(trend.p[rank - 1]), 6),
            "proactive_tasks": int(tasks.get((code, category), 0)),
        })
    meta = {"month": cube.months[-1].strftime("%Y-%m"), "steps": len(cube.months), "limit": limit,
            "candidates": len(candidates), "classes": list(HOT_CLASSES),
            "title": f"{cube.months[-1].year}年{cube.months[-1].month}月 每月一题"}
    return Figure("monthly_problems", PROBLEM_COLUMNS, rows, meta, labels=PROBLEM_LABELS)


# --- the replay -----------------------------------------------------------------------------------------------

@dataclass
class Replay:
    """Month by month: the tasks a monthly run would have opened, and the complaints that came afterwards in an
    area × category that already had a task (with how many days after the task was opened)."""

    figure: Figure
    lead_days: np.ndarray
    tasks: dict[tuple[str, str], datetime]  # (area code, category) → when the task would have been opened


def _month_after(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def replay(conn: Connection, level: str = "micro_grid", first: str | None = None, last: str | None = None,
           steps: int | None = None, min_steps: int = em.MIN_STEPS,
           min_complaints: int | None = None) -> Replay:
    """Replay the complaints month by month: at the close of each month (from the `min_steps`-th on) the
    analysis runs over the months so far (at most `steps`, default GRIDGOV_PROACTIVE_STEPS) and opens a task for
    every new area × category that task_pairs picks (`min_complaints` as there), dated the first day of the
    next month; each later complaint in such a pair is counted, with its lead time (days from the task's opening
    to the complaint). Nothing is written."""
    started = time.perf_counter()
    steps = em.default_steps(steps)
    min_complaints = proactive_settings().min_complaints if min_complaints is None else min_complaints
    last = last or em.latest_month(conn)
    first = first or em.first_month(conn)
    first_month = em.month_steps(first, em.MIN_STEPS)[-1]
    last_month = em.month_steps(last, em.MIN_STEPS)[-1]
    total = (last_month.year - first_month.year) * 12 + last_month.month - first_month.month + 1
    if total < min_steps + 1:
        raise InvalidInput(f"回放至少需要 {min_steps + 1} 个月的投诉，{first}..{last} 只有 {total} 个月")
    if total > em.MAX_STEPS:
        raise InvalidInput(f"回放最多 {em.MAX_STEPS} 个月")
    months = em.month_steps(last, total)
    cube = em.build_cube(conn, level, months)
    opened_at: dict[tuple[int, int], datetime] = {}
    opened_per_month = [0] * total
    for t in range(min_steps - 1, total - 1):
        seen = em.window(cube, t, steps)  # only the months a run at the close of month t had
        result = em.classify_cube(seen, em.space_time_gi(seen))
        for i, k in zip(*np.nonzero(task_pairs(result, min_complaints))):
            if (i, k) not in opened_at:
                opened_at[(int(i), int(k))] = datetime.combine(_month_after(months[t]), datetime.min.time(),
                                                               LOCAL_TIME)
                opened_per_month[t + 1] += 1
    level_column = em.hs.LEVELS[cube.level].complaint_column
    area_index = {code: i for i, code in enumerate(cube.codes)}
    category_index = {code: k for k, code in enumerate(cube.categories)}
    rows_sql = text(f"""
        SELECT c.{level_column}, c.category_code, c.reported_at FROM complaint c
        WHERE c.reported_at >= :start AND c.reported_at < :end AND c.{level_column} IS NOT NULL""")
    by_month = {m: {"complaints": 0, "in_task_pairs": 0, "lead": []} for m in range(total)}
    month_index = {(m.year, m.month): n for n, m in enumerate(months)}
    start = datetime.combine(months[0], datetime.min.time(), LOCAL_TIME)
    end = datetime.combine(_month_after(months[-1]), datetime.min.time(), LOCAL_TIME)
    followed: set[tuple] = set()
    for code, category, reported in conn.execute(rows_sql, {"start": start, "end": end}):
        local = reported.astimezone(LOCAL_TIME)
        bucket = by_month[month_index[(local.year, local.month)]]
        bucket["complaints"] += 1
        key = (area_index.get(code), category_index.get(category))
        task = opened_at.get(key)
        if task is not None and task <= reported:
            bucket["in_task_pairs"] += 1
            followed.add(key)
            bucket["lead"].append((reported - task) / timedelta(days=1))
    rows, cumulative, leads = [], 0, []
    for n, month in enumerate(months):
        bucket = by_month[n]
        cumulative += opened_per_month[n]
        lead = np.array(bucket["lead"])
        leads.extend(bucket["lead"])
        rows.append({
            "month": month.strftime("%Y-%m"), "tasks_opened": opened_per_month[n], "tasks_open": cumulative,
            "complaints": bucket["complaints"], "in_task_pairs": bucket["in_task_pairs"],
            "share": round(bucket["in_task_pairs"] / bucket["complaints"], 4) if bucket["complaints"] else None,
            "median_lead_days": round(float(np.median(lead)), 1) if len(lead) else None,
            "mean_lead_days": round(float(lead.mean()), 1) if len(lead) else None,
        })
    lead_days = np.array(leads)
    after_first = sum(r["complaints"] for r in rows[min_steps:])
    meta = {"level": cube.level, "months": total, "steps": steps, "min_steps": min_steps,
            "min_complaints": min_complaints,
            "tasks": len(opened_at), "tasks_followed_by_a_complaint": len(followed),
            "complaints": sum(r["complaints"] for r in rows),
            "complaints_after_first_run": after_first,
            "in_task_pairs": int(len(lead_days)),
            "share_after_first_run": round(len(lead_days) / after_first, 4) if after_first else None,
            "median_lead_days": round(float(np.median(lead_days)), 1) if len(lead_days) else None,
            "p25_lead_days": round(float(np.percentile(lead_days, 25)), 1) if len(lead_days) else None,
            "p75_lead_days": round(float(np.percentile(lead_days, 75)), 1) if len(lead_days) else None,
            "seconds": round(time.perf_counter() - started, 3)}
    figure = Figure(f"proactive_replay_{cube.level}", ["month", "tasks_opened", "tasks_open", "complaints",
                                                       "in_task_pairs", "share", "median_lead_days",
                                                       "mean_lead_days"], rows, meta)
    tasks = {(cube.codes[i], cube.categories[k]): at for (i, k), at in opened_at.items()}
    return Replay(figure, lead_days, tasks)
