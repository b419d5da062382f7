"""The printable street report (街道网格治理分析报告): the three rates and the street's rank among its peers,
overdue and supervised tickets, complaints and hotspots, coverage, the seed programmes' figures against their
targets (as of the period's last day, from `gis.analytics.programme`, with a monthly trend), the red/black list
and the subsidy of one street office for a period, as HTML with inline charts and maps, and as PDF through
headless Chromium.

Everything a reader sees is Chinese and every time is Beijing time. The rates come from `gis.tickets.rates` and the
supervision figures from `gis.tickets.supervision`, by the same definitions as the API. The report is a document
handed on (to the district), so what it shows of tickets follows the planner's view of the privacy policy
(`gis.access.visibility`): no residents' names, phones or rooms, whoever asked for it.

`progress(fraction, line)`, when given, hears how far the work has come, with a Chinese line for the reader."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection, text

from gis import METRIC_SRID
from gis.access.auth import Principal
from gis.access.visibility import POLICY, address_sql
from gis.analytics import coverage as coverage_core
from gis.analytics import evaluation as evaluation_core
from gis.analytics import hotspots as hotspots_core
from gis.analytics import programme as programme_core
from gis.analytics import subsidy as subsidy_core
from gis.analytics.periods import LOCAL_TIME, Period, parse_period
from gis.errors import NotFound, SetupError
from gis.registry import history
from gis.tickets import rates as rates_core
from gis.tickets import supervision as supervision_core
from gis.tickets.filters import TicketFilter, where_sql

TEMPLATES = Path(__file__).parent / "templates"
BIN_COLOURS = {3: "#b2182b", 2: "#ef8a62", 1: "#fddbc7", 0: "#f0f0f0", -1: "#d1e5f0", -2: "#67a9cf", -3: "#2166ac"}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
BIN_LABELS_ZH = {3: "热点（99% 置信度）", 2: "热点（95% 置信度）", 1: "热点（90% 置信度）", 0: "不显著",
                 -1: "冷点（90% 置信度）", -2: "冷点（95% 置信度）", -3: "冷点（99% 置信度）"}
PATTERNS_ZH = {"new hot spot": "新增热点", "intensifying hot spot": "加剧热点",
               "persistent hot spot": "持续热点", "diminishing hot spot": "减弱热点", "rising": "显著上升",
               "falling": "显著下降", "no pattern": "无明显变化"}
HOLDER_KINDS_ZH = {"property_company": "物业企业", "community": "社区", "street_department": "街道部门",
                   "utility": "公用事业单位", "user": "个人"}
REPORT_RATES = ("response", "resolution", "satisfaction", "on_time")
OVERDUE_LISTED = 15
SYSTEM = Principal(role="admin", username="street-report")
"""Whose scope the street's peers are ranked in: the whole city (only the street's own rank is shown)."""
REPORT_VIEW = POLICY["planner"]
"""What the report shows of tickets: the planner's view (addresses down to the building, no personal data)."""


def _silent(fraction: float, line: str) -> None:
    pass


def period_zh(period: Period) -> str:
    """A period as a Chinese reader writes it: 2026年上半年, 2026年第一季度, 2026年3月, 2026年1月1日至3月31日."""
    year = period.start.year
    if period.kind == "year":
        return f"{year}年"
    if period.kind == "half":
        return f"{year}年{'上' if period.start.month == 1 else '下'}半年"
    if period.kind == "quarter":
        return f"{year}年第{'一二三四'[(period.start.month - 1) // 3]}季度"
    if period.kind == "month":
        return f"{year}年{period.start.month}月"
    last = date.fromordinal(period.end.toordinal() - 1)
    return f"{_day_zh(period.start)}至{_day_zh(last)}"


def _day_zh(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def beijing_zh(moment: datetime | None) -> str:
    """A moment in Beijing time, written out: 2026年3月1日 08:00."""
    if moment is None:
        return "–"
    local = moment.astimezone(LOCAL_TIME)
    return f"{_day_zh(local.date())} {local:%H:%M}"


@dataclass
class ReportFiles:
    html: Path
    pdf: Path | None


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    cjk = [f.name for f in font_manager.fontManager.ttflist if "CJK SC" in f.name]
    if cjk:
        # Sans first when present: names of streets and companies are Chinese.
        plt.rcParams["font.family"] = sorted(cjk, key=lambda name: "Sans" not in name)[0]
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def evaluation_period_for(period: Period) -> Period:
    """The half-year whose red/black list belongs in a report of `period`: itself, or the last one it ends in."""
    if period.kind == "half":
        return period
    day = date.fromordinal(period.end.toordinal() - 1)
    return parse_period(f"{day.year}H{1 if day.month <= 6 else 2}")


def _street(conn: Connection, street_code: str) -> dict:
    row = conn.execute(text(
        "SELECT s.code, s.name, d.name AS district_name FROM street s LEFT JOIN district d "
        "ON d.code = s.district_code AND d.valid_to IS NULL WHERE s.code = :code AND s.valid_to IS NULL"
    ), {"code": street_code}).mappings().one_or_none()
    if row is None:
        raise NotFound(f"没有编码为 {street_code} 的现行街道（no current street office）")
    return dict(row)


def _significant(figure) -> int:
    return sum(1 for row in figure.rows if (row["confidence_bin"] or 0) != 0)


def _area_frame(conn: Connection, level: str, street_code: str, figure):
    import geopandas as gpd

    frame = gpd.read_postgis(text(
        f"SELECT code, geom FROM {level} WHERE valid_to IS NULL AND code LIKE :prefix ORDER BY code"
    ), conn, geom_col="geom", params={"prefix": street_code + "%"})
    bins = {row["code"]: row["confidence_bin"] or 0 for row in figure.rows}
    frame["bin"] = frame["code"].map(bins).fillna(0).astype(int)
    frame["rate"] = frame["code"].map({row["code"]: row["rate_per_1000"] for row in figure.rows})
    return frame.to_crs(METRIC_SRID)


def _maps(conn: Connection, street_code: str, hotspot_figure, hotspot_level: str, micro_rates) -> dict[str, str]:
    """The hotspot map at the level that has something to say, and the complaint rate per micro-grid."""
    import geopandas as gpd
    from matplotlib import patheffects
    from matplotlib.patches import Patch

    plt = _plt()
    communities = gpd.read_postgis(text(
        "SELECT code, name, geom FROM community WHERE valid_to IS NULL AND street_code = :code"
    ), conn, geom_col="geom", params={"code": street_code}).to_crs(METRIC_SRID)
    areas = _area_frame(conn, hotspot_level, street_code, hotspot_figure)
    micro = _area_frame(conn, "micro_grid", street_code, micro_rates)
    level_zh = "微网格" if hotspot_level == "micro_grid" else "网格"

    maps = {}
    fig, ax = plt.subplots(figsize=(5.4, 4.6))
    significant = bool((areas["bin"] != 0).any())
    if significant:
        areas.plot(ax=ax, color=areas["bin"].map(BIN_COLOURS), edgecolor="#999999", linewidth=0.3)
    else:  # nothing stands out: the rates themselves, so the map still shows where residents complain most
        areas.plot(ax=ax, column="rate", cmap="OrRd", legend=True, edgecolor="#999999", linewidth=0.3,
                   missing_kwds={"color": "#eeeeee", "label": "无住户"},
                   legend_kwds={"shrink": 0.6, "label": "每千户投诉（件）"})
    communities.boundary.plot(ax=ax, color="#333333", linewidth=1.1)
    for row in communities.itertuples():
        point = row.geom.representative_point()
        label = ax.annotate(row.name, (point.x, point.y), ha="center", fontsize=8, color="#222222")
        label.set_path_effects([patheffects.withStroke(linewidth=2.5, foreground="white")])
    if significant:
        present = sorted(set(areas["bin"]), reverse=True)
        ax.legend(handles=[Patch(color=BIN_COLOURS[b], label=BIN_LABELS_ZH[b]) for b in present],
                  loc="lower left", fontsize=7, frameon=True)
        ax.set_title(f"{level_zh}每千户投诉热点与冷点（错误发现率校正）", fontsize=9)
    else:
        ax.set_title(f"各{level_zh}每千户投诉量（无统计显著的热点或冷点）", fontsize=9)
    ax.set_axis_off()
    maps["hotspots"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.4, 4.6))
    micro.plot(ax=ax, column="rate", cmap="OrRd", legend=True, edgecolor="#bbbbbb", linewidth=0.2,
               missing_kwds={"color": "#eeeeee", "label": "无住户"},
               legend_kwds={"shrink": 0.6, "label": "每千户投诉（件）"})
    communities.boundary.plot(ax=ax, color="#333333", linewidth=1.0)
    ax.set_axis_off()
    ax.set_title("各微网格每千户投诉量", fontsize=9)
    maps["rates"] = _png(fig)
    plt.close(fig)
    return maps


def _charts(community_counts, monthly: list[dict], coverage_rows: list[dict],
            rate_months: list[dict]) -> dict[str, str]:
    plt = _plt()
    charts = {}
    names = [row["name"] for row in community_counts.rows]
    fig, ax = plt.subplots(figsize=(7.2, 3.2))
    ax.bar(names, [row["complaints"] for row in community_counts.rows], color="#c0392b", label="投诉件数")
    ax2 = ax.twinx()
    ax2.plot(names, [row["rate_per_1000"] or 0 for row in community_counts.rows], color="#2c3e50", marker="o",
             label="每千户投诉")
    ax.set_ylabel("投诉（件）")
    ax2.set_ylabel("每千户投诉（件）")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.set_title("各社区投诉件数与每千户投诉量", fontsize=10)
    charts["communities"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.2, 2.6))
    ax.plot([_month_zh(m["month"]) for m in monthly], [m["complaints"] for m in monthly], color="#c0392b",
            marker="o")
    ax.set_ylabel("投诉（件）")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.set_title("逐月投诉件数", fontsize=10)
    charts["monthly"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.2, 2.8))
    months = [_month_zh(row["month"]) for row in rate_months]
    for key, label, colour in (("response_rate", "响应率", "#2166ac"), ("resolution_rate", "解决率", "#1b7837"),
                               ("satisfaction_rate", "满意率", "#b2182b")):
        ax.plot(months, [100 * row[key] if row[key] is not None else None for row in rate_months], marker="o",
                label=label, color=colour)
    ax.set_ylabel("百分比（%）")
    ax.set_ylim(0, 105)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.legend(fontsize=7, ncol=3, loc="lower right")
    ax.set_title("三项考核率逐月走势", fontsize=10)
    charts["rates"] = _png(fig)
    plt.close(fig)

    rows = [row for row in coverage_rows if row["code"] != "total"]
    measures = [("professional_share_households", "专业物业覆盖"),
                ("old_served_share_households", "老旧小区有服务"),
                ("committee_share_households", "已组建业委会"),
                ("committee_party_half_share_households", "业委会党员过半")]
    fig, ax = plt.subplots(figsize=(7.2, 3.2))
    width = 0.8 / len(measures)
    for index, (column, label) in enumerate(measures):
        ax.bar([i + index * width for i in range(len(rows))], [100 * (row[column] or 0) for row in rows],
               width=width, label=label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], [row["name"] for row in rows], fontsize=8,
                  rotation=30)
    ax.set_ylabel("占住户的百分比（%）")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    ax.set_title("各社区覆盖率（按住户）", fontsize=10)
    charts["coverage"] = _png(fig)
    plt.close(fig)
    return charts


def _month_zh(month: str) -> str:
    return f"{int(month[:4])}年{int(month[5:7])}月"


def _monthly(conn: Connection, street_code: str, period: Period) -> list[dict]:
    return [dict(r) for r in conn.execute(text("""
        SELECT to_char(date_trunc('month', reported_at AT TIME ZONE 'Asia/Shanghai'), 'YYYY-MM') AS month,
               count(*) AS complaints
        FROM complaint WHERE street_code = :street AND reported_at >= :start_at AND reported_at < :end_at
        GROUP BY 1 ORDER BY 1
    """), {"street": street_code, "start_at": period.start_at, "end_at": period.end_at}).mappings()]


def desk_figures(conn: Connection, street_code: str, period: Period, principal: Principal) -> dict:
    """The street's rates (as the API gives them to `principal`), its rank among all streets, its monthly
    trend, its overdue tickets and the supervision figures of the period."""
    own = rates_core.rates_sync(conn, principal, "street", period.start_at, period.end_at, unit=street_code)
    peers = rates_core.rates_sync(conn, SYSTEM, "street", period.start_at, period.end_at)
    ranked = {row["unit"]: row for row in peers}.get(street_code)
    row = own[0] if own else None
    rates = []
    for name in REPORT_RATES:
        spec = rates_core.RATES[name]
        rates.append({
            "name": name, "title": spec.title_zh, "value": row[f"{name}_rate"] if row else None,
            "numerator": row[spec.numerator_count] if row else 0,
            "denominator": row[spec.denominator_count] if row else 0,
            "rank": ranked[f"{name}_rank"] if ranked else None,
            "ranked_units": ranked[f"{name}_ranked_units"] if ranked else 0, "peers": len(peers),
        })
    months = rates_core.rates_sync(conn, principal, "street", period.start_at, period.end_at, unit=street_code,
                                   by="month")
    where, params, _ = where_sql(principal, TicketFilter(overdue=True, street=street_code))
    overdue_rows = [dict(r) for r in conn.execute(text(f"""
        SELECT t.id, cat.name_zh AS category, t.due_at, t.supervision_count,
               extract(epoch FROM now() - t.due_at) / 86400.0 AS overdue_days,
               (SELECT name FROM community WHERE code = t.community_code AND valid_to IS NULL) AS community,
               (SELECT name FROM grid WHERE code = t.grid_code AND valid_to IS NULL) AS grid,
               {address_sql(REPORT_VIEW, 'c')} AS address,
               t.assignee_kind, t.department,
               (SELECT name FROM property_company WHERE id::text = t.assignee_code
                  AND t.assignee_kind = 'property_company') AS company,
               (SELECT name FROM community WHERE code = t.assignee_code AND valid_to IS NULL
                  AND t.assignee_kind = 'community') AS holder_community,
               count(*) OVER () AS total
        FROM ticket t JOIN complaint c ON c.id = t.complaint_id JOIN category cat ON cat.code = t.category_code
        WHERE {where} ORDER BY t.due_at, t.id LIMIT {OVERDUE_LISTED}"""), params).mappings()]
    for item in overdue_rows:
        kind = item["assignee_kind"]
        holder = item["company"] or item["holder_community"] or item["department"]
        item["holder"] = f"{HOLDER_KINDS_ZH.get(kind, '')} {holder or ''}".strip() if kind else "待派遣"
    supervised = supervision_core.stats_sync(conn, principal, "street", period.start_at, period.end_at)
    supervised = next((r for r in supervised if r["unit"] == street_code), None)
    by_grid = supervision_core.stats_sync(conn, principal, "grid", period.start_at, period.end_at)
    return {
        "rates": rates, "rate_row": row, "rate_months": months,
        "min_sample": rates_core.default_min_sample(),
        "overdue_total": overdue_rows[0]["total"] if overdue_rows else 0, "overdue": overdue_rows,
        "supervised": supervised, "supervised_grids": [r for r in by_grid if r["unit"].startswith(street_code)][:10],
    }


def report_context(conn: Connection, street_code: str, period_label: str, progress=None,
                   principal: Principal | None = None) -> dict:
    """Every figure of the report, computed (the evaluation is taken as stored, else previewed)."""
    progress = progress or _silent
    principal = principal or SYSTEM
    period = parse_period(period_label)
    street = _street(conn, street_code)
    progress(0.05, "正在统计三项考核率和街道排名")
    desk = desk_figures(conn, street_code, period, principal)
    progress(0.2, "正在统计投诉数量")
    community_counts = hotspots_core.complaint_counts(conn, "community", period, within=street_code)
    street_counts = hotspots_core.complaint_counts(conn, "street", period, within=street_code)
    progress(0.3, "正在进行微网格热点分析")
    # Rates per 1,000 households on micro-grids: where residents complain more than their numbers explain.
    micro_hotspots = hotspots_core.hotspots(conn, "micro_grid", period, within=street_code, value="rate")
    hotspot_level, hotspot_figure = "micro_grid", micro_hotspots
    if not _significant(micro_hotspots):
        progress(0.4, "微网格层级无显著热点，正在进行网格层级热点分析")
        hotspot_level = "grid"
        hotspot_figure = hotspots_core.hotspots(conn, "grid", period, within=street_code, value="rate")
    progress(0.5, "正在分析新兴热点")
    emerging = hotspots_core.emerging_hotspots(conn, "grid", period, within=street_code)
    progress(0.6, "正在统计覆盖情况、红黑榜和补贴")
    coverage = coverage_core.coverage(conn, "community", within=street_code)
    evaluation_period = evaluation_period_for(period)
    ranking = evaluation_core.evaluation(conn, evaluation_period.label)
    serving = set(conn.execute(text(
        "SELECT DISTINCT property_company_id FROM compound WHERE valid_to IS NULL AND property_company_id IS NOT "
        "NULL AND community_code LIKE :prefix"), {"prefix": street_code + "%"}).scalars())
    estates = subsidy_core.subsidy(conn, evaluation_period.label, by="estate")
    street_estates = [row for row in estates.rows if row["street_code"] == street_code]
    monthly = _monthly(conn, street_code, period)
    totals = street_counts.rows[0] if street_counts.rows else {"complaints": 0, "households": 0,
                                                                  "rate_per_1000": None}
    progress(0.65, "正在统计规划指标完成情况")
    planner = planner_figures(conn, street_code, period)
    progress(0.7, "正在绘制地图和图表")
    maps = _maps(conn, street_code, hotspot_figure, hotspot_level, micro_hotspots)
    charts = _charts(community_counts, monthly, coverage.rows, desk["rate_months"])
    charts["programme"] = _programme_chart(planner)
    hot = [r for r in hotspot_figure.rows if r["gi_z"] is not None]
    for row in hot:
        row["result_zh"] = BIN_LABELS_ZH.get(row["confidence_bin"], "无住户")
    emerging_rows = [{**r, "pattern_zh": PATTERNS_ZH[r["pattern"]]} for r in emerging.rows
                     if r["pattern"] != "no pattern"]
    return {
        "street": street, "period": period, "period_zh": period_zh(period),
        "period_range_zh": f"{_day_zh(period.start)}至{_day_zh(date.fromordinal(period.end.toordinal() - 1))}",
        "evaluation_period": evaluation_period, "evaluation_period_zh": period_zh(evaluation_period),
        "baseline_zh": period_zh(parse_period(emerging.meta["baseline"])),
        "generated": beijing_zh(datetime.now(LOCAL_TIME)),
        "totals": totals, "desk": desk,
        "hotspot_level": hotspot_level, "micro_significant": _significant(micro_hotspots),
        "hot_spots": sum((r["confidence_bin"] or 0) > 0 for r in hotspot_figure.rows),
        "cold_spots": sum((r["confidence_bin"] or 0) < 0 for r in hotspot_figure.rows),
        "community_counts": community_counts.rows,
        "hotspot_rows": sorted(hot, key=lambda r: -r["gi_z"])[:10],
        "emerging": emerging_rows,
        "coverage": coverage.rows, "coverage_total": coverage.rows[-1],
        "ranking": [r for r in ranking.rows if r["company_id"] in serving],
        "ranking_meta": ranking.meta, "companies_total": len(ranking.rows),
        "subsidy": street_estates,
        "subsidy_monthly": round(sum(r["monthly_yuan"] for r in street_estates), 2),
        "subsidy_rate": estates.meta["rate_yuan_per_m2_month"],
        "planner": planner, "maps": maps, "charts": charts,
        "beijing": beijing_zh, "holder_kinds": HOLDER_KINDS_ZH,
    }


# --- the seed programmes' figures (one rule: gis.analytics.programme) -------------------------------------

TREND_MONTHS = (6, 12)
"""The fewest and the most months in the planner figures' trend (a period of its own months, within these)."""


def programme_day(period: Period) -> date:
    """The day the programme figures are taken for a report of `period`: its last day, or today (Beijing) when the
    period has not ended yet."""
    return min(period.end - timedelta(days=1), history.today())


def _trend_months(period: Period, day: date) -> int:
    months = (day.year - period.start.year) * 12 + day.month - period.start.month + 1
    return max(TREND_MONTHS[0], min(TREND_MONTHS[1], months))


def programme_value_zh(row: dict, value=None) -> str:
    """A programme figure's value (or `value` in its unit) as the report writes it: a share in percent with one
    decimal, a count with its unit; 无数据 without one."""
    value = row["value"] if value is None else value
    if value is None:
        return "无数据"
    if row["kind"] == "share":
        return f"{100 * value:.1f}%"
    return f"{value:,} {row['unit_label']}" if isinstance(value, int) else f"{value:,.2f} {row['unit_label']}"


def programme_gap_zh(row: dict) -> str:
    """How far a figure is from its target, in Chinese: 差 / 超出 so many points (or units), – without a target."""
    if row["target"] is None or row["value"] is None:
        return "–"
    gap = row["gap"]
    if gap == 0:
        return "恰好达到目标"
    amount = f"{100 * abs(gap):.1f} 个百分点" if row["kind"] == "share" else f"{abs(gap):,.0f} {row['unit_label']}"
    return f"差 {amount}" if gap > 0 else f"超出 {amount}"


def programme_state_zh(row: dict) -> str:
    """Whether a figure meets its target: 已达标, 未达标, 未设目标 or 无数据."""
    if row["target"] is None:
        return "未设目标"
    if row["met"] is None:
        return "无数据"
    return "已达标" if row["met"] else "未达标"


def planner_figures(conn: Connection, street_code: str, period: Period) -> dict:
    """The street's programme figures as of the period's last day (`programme_day`) as the API gives them, each
    with its value, target, gap and state in Chinese, and the monthly trend up to that day."""
    day = programme_day(period)
    figure = programme_core.programme(conn, "street", street_code, as_of=day)
    rows = [{**row, "value_zh": programme_value_zh(row), "state_zh": programme_state_zh(row),
             "gap_zh": programme_gap_zh(row),
             "target_zh": "–" if row["target"] is None else programme_value_zh(row, row["target"])}
            for row in figure.rows]
    months = programme_core.trend(conn, "street", street_code, until=day, months=_trend_months(period, day))
    targeted = [row for row in rows if row["target"] is not None]
    return {"as_of": day, "as_of_zh": _day_zh(day), "rows": rows, "months": months.rows,
            "targeted": targeted, "met": [row for row in targeted if row["met"]],
            "short": [row for row in targeted if row["met"] is False],
            "undated": [row for row in rows if not row["dated"]]}


def _programme_chart(planner: dict) -> str | None:
    """Small multiples: each figure with a target, month by month, against its target (a dashed line)."""
    rows, months = planner["targeted"], planner["months"]
    if not rows or not months:
        return None
    plt = _plt()
    columns = 3
    lines = -(-len(rows) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(7.2, 1.9 * lines + 0.4), squeeze=False)
    labels = [f"{int(m['month'][5:7])}月" for m in months]
    positions = list(range(len(months)))
    for ax, row in zip(axes.flat, rows):
        scale = 100 if row["kind"] == "share" else 1
        values = [None if m[row["key"]] is None else scale * m[row["key"]] for m in months]
        ax.plot(positions, values, color="#2166ac", marker="o", markersize=3, linewidth=1.2)
        ax.axhline(scale * row["target"], color="#b2182b", linestyle="--", linewidth=1)
        if row["kind"] == "share":
            ax.set_ylim(0, 105)
        ax.set_title(row["title"], fontsize=7.5)
        ax.set_xticks(positions, labels, fontsize=6)
        ax.tick_params(axis="y", labelsize=6)
    for ax in list(axes.flat)[len(rows):]:
        ax.set_axis_off()
    first, last = months[0]["month"], months[-1]["month"]
    fig.suptitle(f"有目标值的指标逐月走势（{_month_zh(first)}至{_month_zh(last)}，各月末；虚线为目标值，纵轴为百分比）",
                 fontsize=9)
    fig.tight_layout()
    image = _png(fig)
    plt.close(fig)
    return image


def render_html(context: dict) -> str:
    """The street report's HTML from its template and `context`, with the percentage and number filters."""
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    environment.filters["pct"] = lambda v: "–" if v is None else f"{100 * v:.1f}%"
    environment.filters["num"] = lambda v, d=0: "–" if v is None else f"{v:,.{d}f}"
    return environment.get_template("report.html").render(**context)


def chromium() -> str:
    """The path of the Chromium that prints the PDF, or SetupError saying which package to install."""
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    raise SetupError("生成 PDF 需要 Chromium：请安装 Debian 软件包 chromium（scripts/system-deps.sh 会安装）")


def html_to_pdf(html_path: Path, pdf_path: Path, timeout: float = 120) -> Path:
    """Print an HTML file to PDF with headless Chromium (A4, no header or footer)."""
    with tempfile.TemporaryDirectory(prefix="gridgov-chromium-") as profile:
        result = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", "--no-pdf-header-footer", f"--print-to-pdf={pdf_path}",
             html_path.resolve().as_uri()],
            capture_output=True, text=True, timeout=timeout,
        )
    if result.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise SetupError(f"Chromium 未能生成报告的 PDF：{result.stderr.strip()[-500:]}")
    return pdf_path


def build_report(conn: Connection, street_code: str, period_label: str, out_dir: Path, pdf: bool = True,
                 progress=None, principal: Principal | None = None) -> ReportFiles:
    """Write `report-<street>-<period>.html` (self-contained) and its PDF into `out_dir`."""
    progress = progress or _silent
    context = report_context(conn, street_code, period_label, progress, principal)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"report-{street_code}-{context['period'].label}"
    html_path = out_dir / f"{stem}.html"
    progress(0.8, "正在排版报告")
    html_path.write_text(render_html(context), encoding="utf-8")
    if pdf:
        progress(0.85, "正在生成 PDF 文件")
    pdf_path = html_to_pdf(html_path, out_dir / f"{stem}.pdf") if pdf else None
    progress(1.0, "报告已生成")
    return ReportFiles(html_path, pdf_path)
