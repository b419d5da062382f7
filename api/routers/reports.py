"""The street report as an HTTP job (gis/reports/jobs.py): ask for it, watch its progress, download the PDF."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Connection
from api.security import SignedIn
from gis.reports import map_export
from gis.reports.jobs import JobStore, resolve_street

router = APIRouter(prefix="/reports", tags=["reports"])


def _store(request: Request) -> JobStore:
    store = getattr(request.app.state, "report_jobs", None)
    if store is None:
        url = request.app.state.engine.url.render_as_string(hide_password=False)
        store = request.app.state.report_jobs = JobStore(url)
    return store


class StreetReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    street: str = Field(description="the street office's name or its 9-digit code")
    period: str | None = Field(None, description="2026H1, 2026, 2026Q1, 2026-03 or a date range; "
                                                 "the current half-year by default")


@router.post("/street", status_code=202,
             responses={404: {"description": "No such street office, or one outside the caller's scope"}})
async def street_report(body: StreetReportIn, request: Request, principal: SignedIn, conn: Connection) -> dict:
    """Start the street report; answers the job at once, the report is built off the event loop."""
    street = await resolve_street(conn, principal, body.street)
    return _store(request).submit(principal, street, body.period).public()


@router.get("/jobs/{job_id}")
async def report_job(job_id: str, request: Request, principal: SignedIn) -> dict:
    """The job's state and progress (a fraction and a line in Chinese)."""
    return _store(request).get(principal, job_id).public()


@router.get("/jobs/{job_id}/report.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
async def report_pdf(job_id: str, request: Request, principal: SignedIn) -> Response:
    """Download the finished street report as a PDF attachment; 404 for an unknown job or one another user asked for
    (admins see all), 409 while it is still being built or when it failed."""
    job, pdf = _store(request).pdf(principal, job_id)
    name = f"report-{job.street_code}-{job.period}.pdf"
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _build_map(database_url: str, level: str, code: str, period: str | None) -> map_export.MapExport:
    from gis.db.engine import sync_engine

    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            return map_export.build_map(conn, level, code, period)
    finally:
        engine.dispose()


@router.get("/map.html", response_class=Response,
            responses={200: {"content": {"text/html": {}}},
                       404: {"description": "No such street or district, or one outside the caller's scope"}})
async def map_html(
    request: Request, principal: SignedIn,
    street: Annotated[str | None, Query(max_length=20, description="a street office's 9-digit code")] = None,
    district: Annotated[str | None, Query(max_length=20, description="a district's 6-digit code")] = None,
    period: Annotated[str | None, Query(max_length=40, description="the hotspots' period; the last year by "
                                                                   "default")] = None,
) -> Response:
    """Download the interactive map of a street or a district as one HTML file that opens offline (hotspots,
    coverage by management mode, gaps, party organisations); planners and admins anywhere, a street office its
    own street."""
    level, code = map_export.authorise(principal, street, district)
    url = request.app.state.engine.url.render_as_string(hide_password=False)
    made = await run_in_threadpool(_build_map, url, level, code, period)
    return Response(made.html, media_type="text/html; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{made.filename}"',
                             "Cache-Control": "no-store"})
