"""The printable street report: complaints and hotspots, coverage, the red/black list and the subsidy of one
street office for a period, as HTML with inline charts and maps, and as PDF through headless Chromium."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection, text

from gis.analytics import coverage as coverage_core
from gis.analytics import evaluation as evaluation_core
from gis.analytics import hotspots as hotspots_core
from gis.analytics import subsidy as subsidy_core
from gis import METRIC_SRID
from gis.analytics.periods import LOCAL_TIME, Period, parse_period
from gis.errors import NotFound, SetupError

TEMPLATES = Path(__file__).parent / "templates"
BIN_COLOURS = {3: "#b2182b", 2: "#ef8a62", 1: "#fddbc7", 0: "#f0f0f0", -1: "#d1e5f0", -2: "#67a9cf", -3: "#2166ac"}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


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
        raise NotFound(f"no current street office with code {street_code!r}")
    return dict(row)


def _maps(conn: Connection, street_code: str, micro_hotspots) -> dict[str, str]:
    import geopandas as gpd

    plt = _plt()
    communities = gpd.read_postgis(text(
        "SELECT code, name, geom FROM community WHERE valid_to IS NULL AND street_code = :code"
    ), conn, geom_col="geom", params={"code": street_code})
    micro = gpd.read_postgis(text(
        "SELECT code, geom FROM micro_grid WHERE valid_to IS NULL AND code LIKE :prefix ORDER BY code"
    ), conn, geom_col="geom", params={"prefix": street_code + "%"})
    bins = {row["code"]: row["confidence_bin"] or 0 for row in micro_hotspots.rows}
    micro["bin"] = micro["code"].map(bins).fillna(0).astype(int)
    rates = {row["code"]: row["rate_per_1000"] for row in micro_hotspots.rows}
    micro["rate"] = micro["code"].map(rates)
    communities, micro = communities.to_crs(METRIC_SRID), micro.to_crs(METRIC_SRID)

    maps = {}
    fig, ax = plt.subplots(figsize=(5.4, 4.6))
    micro.plot(ax=ax, color=micro["bin"].map(BIN_COLOURS), edgecolor="#999999", linewidth=0.3)
    communities.boundary.plot(ax=ax, color="#333333", linewidth=1.1)
    for row in communities.itertuples():
        point = row.geom.representative_point()
        ax.annotate(row.name, (point.x, point.y), ha="center", fontsize=8, color="#222222")
    from matplotlib.patches import Patch

    present = sorted(set(micro["bin"]), reverse=True)
    ax.legend(handles=[Patch(color=BIN_COLOURS[b], label=hotspots_core.BIN_LABELS[b]) for b in present],
              loc="lower left", fontsize=7, frameon=True)
    ax.set_axis_off()
    ax.set_title("微网格 Gi* 热点/冷点 Hot and cold spots of the rate (FDR)", fontsize=9)
    maps["hotspots"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.4, 4.6))
    micro.plot(ax=ax, column="rate", cmap="OrRd", legend=True, edgecolor="#bbbbbb", linewidth=0.2,
               missing_kwds={"color": "#eeeeee", "label": "no households"},
               legend_kwds={"shrink": 0.6, "label": "complaints per 1,000 households"})
    communities.boundary.plot(ax=ax, color="#333333", linewidth=1.0)
    ax.set_axis_off()
    ax.set_title("微网格投诉率 Complaint rate per micro-grid", fontsize=9)
    maps["rates"] = _png(fig)
    plt.close(fig)
    return maps


def _charts(community_counts, monthly: list[dict], coverage_rows: list[dict]) -> dict[str, str]:
    plt = _plt()
    charts = {}
    names = [row["name"] for row in community_counts.rows]
    fig, ax = plt.subplots(figsize=(7.2, 3.2))
    ax.bar(names, [row["complaints"] for row in community_counts.rows], color="#c0392b")
    ax2 = ax.twinx()
    ax2.plot(names, [row["rate_per_1000"] or 0 for row in community_counts.rows], color="#2c3e50", marker="o")
    ax.set_ylabel("complaints")
    ax2.set_ylabel("per 1,000 households")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.set_title("各社区投诉 Complaints per community", fontsize=10)
    charts["communities"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.2, 2.6))
    ax.plot([m["month"] for m in monthly], [m["complaints"] for m in monthly], color="#c0392b", marker="o")
    ax.set_ylabel("complaints")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.set_title("月度投诉 Complaints per month", fontsize=10)
    charts["monthly"] = _png(fig)
    plt.close(fig)

    rows = [row for row in coverage_rows if row["code"] != "total"]
    measures = [("professional_share_households", "物业覆盖 property service"),
                ("old_served_share_households", "老旧小区有服务 old estates served"),
                ("committee_share_households", "业委会 owners' committees"),
                ("committee_party_half_share_households", "党员过半 party ≥ 50%")]
    fig, ax = plt.subplots(figsize=(7.2, 3.2))
    width = 0.8 / len(measures)
    for index, (column, label) in enumerate(measures):
        ax.bar([i + index * width for i in range(len(rows))], [100 * (row[column] or 0) for row in rows],
               width=width, label=label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], [row["name"] for row in rows], fontsize=8,
                  rotation=30)
    ax.set_ylabel("% of households")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    ax.set_title("覆盖率 Coverage by households", fontsize=10)
    charts["coverage"] = _png(fig)
    plt.close(fig)
    return charts


def _monthly(conn: Connection, street_code: str, period: Period) -> list[dict]:
    return [dict(r) for r in conn.execute(text("""
        SELECT to_char(date_trunc('month', reported_at AT TIME ZONE 'Asia/Shanghai'), 'YYYY-MM') AS month,
               count(*) AS complaints
        FROM complaint WHERE street_code = :street AND reported_at >= :start_at AND reported_at < :end_at
        GROUP BY 1 ORDER BY 1
    """), {"street": street_code, "start_at": period.start_at, "end_at": period.end_at}).mappings()]


def report_context(conn: Connection, street_code: str, period_label: str) -> dict:
    """Every figure of the report, computed (the evaluation is taken as stored, else previewed)."""
    period = parse_period(period_label)
    street = _street(conn, street_code)
    community_counts = hotspots_core.complaint_counts(conn, "community", period, within=street_code)
    street_counts = hotspots_core.complaint_counts(conn, "street", period, within=street_code)
    # Rates per 1,000 households on micro-grids: where residents complain more than their numbers explain.
    micro_hotspots = hotspots_core.hotspots(conn, "micro_grid", period, within=street_code, value="rate")
    emerging = hotspots_core.emerging_hotspots(conn, "grid", period, within=street_code)
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
    coverage_total = coverage.rows[-1]
    return {
        "street": street, "period": period, "evaluation_period": evaluation_period,
        "generated": datetime.now(LOCAL_TIME).strftime("%Y-%m-%d %H:%M"),
        "totals": totals,
        "hot_spots": sum((r["confidence_bin"] or 0) > 0 for r in micro_hotspots.rows),
        "cold_spots": sum((r["confidence_bin"] or 0) < 0 for r in micro_hotspots.rows),
        "community_counts": community_counts.rows,
        "micro_hotspots": sorted((r for r in micro_hotspots.rows if r["gi_z"] is not None),
                                 key=lambda r: -r["gi_z"])[:10],
        "emerging": [r for r in emerging.rows if r["pattern"] != "no pattern"],
        "baseline": emerging.meta["baseline"],
        "coverage": coverage.rows, "coverage_total": coverage_total,
        "ranking": [r for r in ranking.rows if r["company_id"] in serving],
        "ranking_meta": ranking.meta, "companies_total": len(ranking.rows),
        "subsidy": street_estates,
        "subsidy_monthly": round(sum(r["monthly_yuan"] for r in street_estates), 2),
        "subsidy_rate": estates.meta["rate_yuan_per_m2_month"],
        "maps": _maps(conn, street_code, micro_hotspots),
        "charts": _charts(community_counts, monthly, coverage.rows),
    }


def render_html(context: dict) -> str:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    environment.filters["pct"] = lambda v: "–" if v is None else f"{100 * v:.1f}%"
    environment.filters["num"] = lambda v, d=0: "–" if v is None else f"{v:,.{d}f}"
    return environment.get_template("report.html").render(**context)


def chromium() -> str:
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    raise SetupError("Chromium is needed for the PDF: install the Debian package chromium "
                     "(scripts/system-deps.sh does)")


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
        raise SetupError(f"Chromium could not print the report: {result.stderr.strip()[-500:]}")
    return pdf_path


def build_report(conn: Connection, street_code: str, period_label: str, out_dir: Path,
                 pdf: bool = True) -> ReportFiles:
    """Write `report-<street>-<period>.html` (self-contained) and its PDF into `out_dir`."""
    context = report_context(conn, street_code, period_label)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"report-{street_code}-{context['period'].label}"
    html_path = out_dir / f"{stem}.html"
    html_path.write_text(render_html(context), encoding="utf-8")
    pdf_path = html_to_pdf(html_path, out_dir / f"{stem}.pdf") if pdf else None
    return ReportFiles(html_path, pdf_path)
