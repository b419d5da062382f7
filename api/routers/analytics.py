"""Analytics over HTTP: hotspots, coverage, the red/black list, credit files and the old-estate subsidy.

Every figure comes as JSON, CSV or XLSX (`?format=`); result layers also as GeoJSON and GeoPackage. The figures
are aggregates without personal data, so they are open to every caller; running an evaluation is for
administrators."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from api.deps import Connection, ReadConnection
from api.params import QueryBool, QueryDate
from api.security import Admin, SignedIn
from gis.analytics import company_view
from gis.analytics import coverage as coverage_core
from gis.analytics import emerging as emerging_core
from gis.analytics import evaluation as evaluation_core
from gis.analytics import hotspots as hotspots_core
from gis.analytics import proactive as proactive_core
from gis.analytics import programme as programme_core
from gis.analytics import subsidy as subsidy_core
from gis.analytics.figures import MEDIA_TYPES, Figure
from gis.analytics.periods import parse_period
from gis.serve.bbox import parse_bbox

router = APIRouter(prefix="/analytics", tags=["analytics"])

TableFormat = Literal["json", "csv", "xlsx"]
AnyFormat = Literal["json", "csv", "xlsx", "geojson", "gpkg"]
EXTENSIONS = {"json": "json", "csv": "csv", "xlsx": "xlsx", "geojson": "geojson", "gpkg": "gpkg"}


def _answers(formats: tuple[str, ...]) -> dict:
    """The 200 answer in each of the `format` parameter's media types."""
    return {200: {"description": "The figure, in the media type of `format`",
                  "content": {MEDIA_TYPES[fmt].split(";")[0]: {} for fmt in formats}}}


TABLE_ANSWERS = _answers(("json", "csv", "xlsx"))
ANY_ANSWERS = _answers(("json", "csv", "xlsx", "geojson", "gpkg"))
UNKNOWN_AREA = {404: {"description": "No area of that level with that code, or no such figure"}}

PeriodQuery = Annotated[str, Query(description="YYYY, YYYYH1/H2, YYYYQ1-4, YYYY-MM or YYYY-MM-DD..YYYY-MM-DD")]
CategoriesQuery = Annotated[str | None, Query(description="Comma-separated category codes (default: all)")]
WithinQuery = Annotated[str | None, Query(description="Only areas whose code starts with this street or community "
                                                       "code", pattern=r"^\d{6,18}$")]


def _categories(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


class _FigureResponse(Response):
    """A figure rendered as it is sent, in a worker thread: the XLSX or GeoPackage of thousands of areas takes
    seconds to build, and the event loop must not wait on it. A rendering error still comes before the first
    byte, so it is answered by the error handlers like any other."""

    def __init__(self, figure: Figure, fmt: str, headers: dict):
        self.figure, self.fmt = figure, fmt
        super().__init__(media_type=MEDIA_TYPES[fmt], headers=headers)

    async def __call__(self, scope, receive, send) -> None:
        self.body = await run_in_threadpool(self.figure.render, self.fmt)
        self.headers["content-length"] = str(len(self.body))
        await super().__call__(scope, receive, send)


def _send(figure: Figure, fmt: str) -> Response:
    headers = {}
    if fmt in ("csv", "xlsx", "gpkg"):
        headers["Content-Disposition"] = f'attachment; filename="{figure.name}.{EXTENSIONS[fmt]}"'
    return _FigureResponse(figure, fmt, headers)


@router.get("/complaints", responses=TABLE_ANSWERS)
async def complaint_counts(
    conn: ReadConnection,
    period: PeriodQuery,
    level: Literal["micro_grid", "grid", "community", "street"] = "grid",
    categories: CategoriesQuery = None,
    within: WithinQuery = None,
    format: TableFormat = "json",
) -> Response:
    """Complaints and complaints per 1,000 households per area."""
    parsed = parse_period(period)
    figure = await conn.run_sync(hotspots_core.complaint_counts, level, parsed, _categories(categories), within)
    return _send(figure, format)


@router.get("/hotspots", responses=ANY_ANSWERS)
async def hotspots(
    conn: ReadConnection,
    period: PeriodQuery,
    level: Literal["micro_grid", "grid"] = "grid",
    categories: CategoriesQuery = None,
    within: WithinQuery = None,
    value: Literal["count", "rate"] = "count",
    permutations: Annotated[int, Query(ge=0, le=9999)] = 0,
    seed: int = 0,
    format: AnyFormat = "json",
) -> Response:
    """Getis-Ord Gi* hot and cold spots with FDR-corrected confidence bins."""
    parsed = parse_period(period)
    figure = await conn.run_sync(
        lambda sync: hotspots_core.hotspots(sync, level, parsed, _categories(categories), within, value,
                                            permutations, seed, with_geometry=format in ("geojson", "gpkg")))
    return _send(figure, format)


@router.get("/hexagons", responses=ANY_ANSWERS)
async def hexagons(
    conn: ReadConnection,
    period: PeriodQuery,
    resolution: Annotated[int, Query(ge=5, le=11)] = 9,
    categories: CategoriesQuery = None,
    within: WithinQuery = None,
    format: AnyFormat = "json",
) -> Response:
    """Complaint counts per H3 hexagon."""
    parsed = parse_period(period)
    figure = await conn.run_sync(hotspots_core.h3_bins, parsed, _categories(categories), resolution, within)
    return _send(figure, format)


@router.get("/emerging", responses=ANY_ANSWERS)
async def emerging(
    conn: ReadConnection,
    period: PeriodQuery,
    baseline: Annotated[str | None, Query(description="Baseline period (default: the one just before)")] = None,
    level: Literal["micro_grid", "grid"] = "grid",
    categories: CategoriesQuery = None,
    within: WithinQuery = None,
    alpha: Annotated[float, Query(gt=0, lt=0.5)] = 0.05,
    format: AnyFormat = "json",
) -> Response:
    """Emerging hotspots: this period against a baseline."""
    parsed, base = parse_period(period), parse_period(baseline) if baseline else None
    figure = await conn.run_sync(
        lambda sync: hotspots_core.emerging_hotspots(sync, level, parsed, base, _categories(categories), within,
                                                     alpha, with_geometry=format in ("geojson", "gpkg")))
    return _send(figure, format)


MonthQuery = Annotated[str | None, Query(description="Last month YYYY-MM (default: the newest with complaints)")]
StepsQuery = Annotated[int | None, Query(ge=emerging_core.MIN_STEPS, le=emerging_core.MAX_STEPS,
                                         description="Months in the space-time cube (default "
                                                     "GRIDGOV_PROACTIVE_STEPS, 12)")]


@router.get("/emerging-cube", responses=TABLE_ANSWERS)
async def emerging_cube(
    conn: ReadConnection,
    month: MonthQuery = None,
    months: StepsQuery = None,
    level: Literal["micro_grid", "grid"] = "micro_grid",
    categories: CategoriesQuery = None,
    within: WithinQuery = None,
    every: Annotated[QueryBool, Query(alias="all", description="Also the rows without a pattern")] = False,
    format: TableFormat = "json",
) -> Response:
    """Emerging hot spot classes (Esri's space-time classes) per area × category over the months of a cube."""
    figure = await conn.run_sync(emerging_core.emerging_figure, level, month, months, _categories(categories),
                                 within, every)
    return _send(figure, format)


@router.post("/proactive", responses=TABLE_ANSWERS)
async def open_proactive(
    conn: Connection,
    principal: SignedIn,
    month: MonthQuery = None,
    months: StepsQuery = None,
    level: Literal["micro_grid", "grid"] = "micro_grid",
    format: TableFormat = "json",
) -> Response:
    """Open proactive tasks (主动治理任务) where new, consecutive, intensifying or persistent hot spots are, once
    per area × category, in the caller's scope (administrator, street office or community)."""
    figure = await conn.run_sync(proactive_core.open_tasks, principal.role, principal.scope, principal.username,
                                 month, level, months)
    await conn.commit()
    return _send(figure, format)


@router.get("/proactive", responses=TABLE_ANSWERS)
async def proactive_tasks(
    conn: Connection,
    principal: SignedIn,
    state: Literal["open", "done"] | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    format: TableFormat = "json",
) -> Response:
    """The proactive tasks in the caller's scope (administrator, street office, community, grid worker)."""
    figure = await conn.run_sync(proactive_core.list_tasks, principal.role, principal.scope, state, limit)
    return _send(figure, format)


@router.post("/proactive/{task_id}/done")
async def complete_proactive(conn: Connection, principal: SignedIn, task_id: int) -> dict:
    """Mark a proactive task done (已完成); out of scope is 404, a done task 409."""
    task = await conn.run_sync(proactive_core.complete_task, principal.role, principal.scope, task_id)
    await conn.commit()
    return task


@router.get("/monthly-problems", responses=TABLE_ANSWERS)
async def monthly_problems(
    conn: ReadConnection,
    month: MonthQuery = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    months: StepsQuery = None,
    format: TableFormat = "json",
) -> Response:
    """每月一题: the month's recurring problems, community × category, with their figures."""
    figure = await conn.run_sync(proactive_core.monthly_problems, month, limit, months)
    return _send(figure, format)


@router.get("/coverage", responses=TABLE_ANSWERS)
async def coverage(
    conn: ReadConnection,
    level: Literal["street", "community"] = "community",
    within: WithinQuery = None,
    format: TableFormat = "json",
) -> Response:
    """Property service, old-estate, party organisation, owners' committee and cross-appointment coverage."""
    figure = await conn.run_sync(coverage_core.coverage, level, within)
    return _send(figure, format)


@router.get("/evaluations/{period}", responses=TABLE_ANSWERS)
async def evaluation(
    conn: ReadConnection,
    period: str,
    within: Annotated[str | None, Query(max_length=1000, description="Only the companies serving a compound in "
                                        "these streets or communities (comma-separated codes); ranks stay those "
                                        "of the whole list")] = None,
    format: TableFormat = "json",
) -> Response:
    """The red/black list of a half-year or year: stored when it was run, else a preview from the inputs."""
    figure = await conn.run_sync(company_view.evaluation_within, period, within)
    return _send(figure, format)


@router.post("/evaluations/{period}", responses=TABLE_ANSWERS)
async def run_evaluation(conn: Connection, period: str, admin: Admin, format: TableFormat = "json") -> Response:
    """Run and store a half-year's evaluation (2026H1), or a year's year-end overall evaluation from its stored
    half-years (2026), for administrators."""
    figure = await conn.run_sync(evaluation_core.evaluate, period)
    await conn.commit()
    return _send(figure, format)


@router.get("/companies/{company_id}/credit-file", responses=TABLE_ANSWERS)
async def credit_file(
    conn: ReadConnection,
    company_id: int,
    part: Literal["evaluations", "inspections", "ratings", "rectifications", "credit_items"] = "evaluations",
    format: TableFormat = "json",
) -> Response:
    """A property company's credit file: evaluations over time, inspections, ratings, rectification tasks and
    approved credit items (with its credit grade)."""
    figures = await conn.run_sync(evaluation_core.credit_file, company_id)
    return _send(figures[part], format)


@router.get("/companies/{company_id}/compounds.geojson", response_class=Response,
            responses={200: {"content": {"application/geo+json": {}}}, 404: {"description": "No such company"}})
async def company_compounds(conn: ReadConnection, company_id: int) -> Response:
    """The compounds a property company manages now, with their shapes: what its credit file outlines on the
    map."""
    figure = await conn.run_sync(company_view.company_compounds, company_id)
    return _send(figure, "geojson")


@router.get("/subsidy/{period}", responses=TABLE_ANSWERS)
async def subsidy(
    conn: ReadConnection,
    period: str,
    by: Literal["estate", "company"] = "estate",
    format: TableFormat = "json",
) -> Response:
    """The old-estate subsidy of the half-year's excellent companies, per estate or per company."""
    figure = await conn.run_sync(subsidy_core.subsidy, period, by)
    return _send(figure, format)


# --- the seed programmes' figures (one definition: gis/analytics/programme.py) -------------------------------

LevelQuery = Annotated[Literal["city", "district", "street", "community"],
                       Query(description="city (the whole registry), district, street or community")]
AreaCodeQuery = Annotated[str | None, Query(description="The area's code (not for level city)", pattern=r"^\d{6,18}$")]
AsOfQuery = Annotated[QueryDate | None, Query(description="The day the figures are taken (default: today, Beijing)")]
BBoxQuery = Annotated[str | None, Query(description="Only the compounds, grids and communities whose point on "
                                                     "surface is in minlon,minlat,maxlon,maxlat (level city)")]


@router.get("/programme", responses={**TABLE_ANSWERS, **UNKNOWN_AREA})
async def programme(
    conn: ReadConnection,
    level: LevelQuery = "city",
    code: AreaCodeQuery = None,
    as_of: AsOfQuery = None,
    bbox: BBoxQuery = None,
    format: TableFormat = "json",
) -> Response:
    """Every programme figure of one area as of a day: value, numerator, denominator, the modes counted, the
    target and its source, the gap to the target and whether it is met; the compounds per management mode."""
    box = parse_bbox(bbox)
    figure = await conn.run_sync(programme_core.programme, level, code, as_of, box)
    return _send(figure, format)


@router.get("/programme/trend", responses={**TABLE_ANSWERS, **UNKNOWN_AREA})
async def programme_trend(
    conn: ReadConnection,
    level: LevelQuery = "city",
    code: AreaCodeQuery = None,
    until: AsOfQuery = None,
    months: Annotated[int, Query(ge=1, le=120)] = 12,
    format: TableFormat = "json",
) -> Response:
    """Every programme figure of one area as of each month's end (the last `months` months up to `until`)."""
    figure = await conn.run_sync(programme_core.trend, level, code, until, months)
    return _send(figure, format)


@router.get("/programme/{figure}", responses={**TABLE_ANSWERS, **UNKNOWN_AREA})
async def programme_figure(
    conn: ReadConnection,
    figure: str,
    level: LevelQuery = "community",
    within: WithinQuery = None,
    as_of: AsOfQuery = None,
    format: TableFormat = "json",
) -> Response:
    """One programme figure for every area of the level (those within a district, street or community)."""
    result = await conn.run_sync(programme_core.per_area, figure, level, within, as_of)
    return _send(result, format)


@router.get("/gaps", responses={**ANY_ANSWERS, **UNKNOWN_AREA})
async def gaps(
    conn: ReadConnection,
    level: LevelQuery = "city",
    code: AreaCodeQuery = None,
    as_of: AsOfQuery = None,
    bbox: BBoxQuery = None,
    format: AnyFormat = "json",
) -> Response:
    """The coverage gaps (空白点) of one area as of a day, as the programme figures define them, with shapes."""
    figure = await conn.run_sync(programme_core.gaps, level, code, as_of, parse_bbox(bbox))
    return _send(figure, format)


@router.get("/gaps.geojson", response_class=Response,
            responses={200: {"content": {"application/geo+json": {}}}, **UNKNOWN_AREA})
async def gaps_geojson(
    conn: ReadConnection,
    level: LevelQuery = "city",
    code: AreaCodeQuery = None,
    as_of: AsOfQuery = None,
    bbox: BBoxQuery = None,
) -> Response:
    """The coverage gaps as GeoJSON, for the map."""
    figure = await conn.run_sync(programme_core.gaps, level, code, as_of, parse_bbox(bbox))
    return _send(figure, "geojson")
