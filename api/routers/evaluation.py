"""The evaluation's inputs and consequences over HTTP (gis/analytics: inputs, rectification, subsidy, credit).

Inputs: regulator inspections (administrators, as the housing regulator), street and community ratings and
residents' satisfaction surveys (street offices and communities within their area). Consequences: rectification
tasks and their follow-up, exits with their hand-overs, the monthly subsidy ledger (JSON, CSV or XLSX). The
credit file: items reported by companies, reviewed by streets and the housing department; the published grades
(company names and grades only) need no sign-in.
"""

from __future__ import annotations

import html
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Connection, Engine
from api.routers.analytics import TABLE_ANSWERS, TableFormat, _send
from api.security import Admin, SignedIn
from gis.analytics import company_view, credit, inputs, rectification, subsidy

router = APIRouter(prefix="/evaluation", tags=["evaluation"])

PeriodQuery = Annotated[str, Query(description="A half-year, YYYYH1 or YYYYH2", max_length=16)]
Score = Annotated[float, Field(description="0-100; outside it a 400 with the reason")]
NOT_FOUND = {404: {"description": "No such company or compound, or one outside the caller's scope"}}


class InspectionItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: str = Field(min_length=1, max_length=200)
    deduction: Score = 0.0
    note: str | None = Field(default=None, max_length=2000)


class InspectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    company_id: int
    inspected_on: date
    score: Score
    compound_code: str | None = Field(default=None, max_length=32)
    items: list[InspectionItemIn] = Field(default_factory=list, max_length=100)
    note: str | None = Field(default=None, max_length=4000)


@router.post("/inspections", status_code=201, responses=NOT_FOUND)
async def record_inspection(body: InspectionIn, principal: SignedIn, engine: Engine) -> dict:
    """A regulator's inspection (行业主管部门检查) with its items and notes; the administrator records it."""
    async with engine.begin() as conn:
        return await conn.run_sync(inputs.record_inspection, principal, body.company_id, body.inspected_on,
                                   body.score, body.compound_code, [i.model_dump() for i in body.items], body.note)


@router.get("/inspections", responses=TABLE_ANSWERS)
async def list_inspections(conn: Connection, principal: SignedIn, period: PeriodQuery,
                           format: TableFormat = "json") -> Response:
    """The half-year's inspections (a property company sees its own)."""
    return _send(await conn.run_sync(inputs.list_inspections, principal, period), format)


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    company_id: int
    period: str = Field(max_length=16, description="A half-year, YYYYH1 or YYYYH2")
    score: Score
    rater_level: Literal["street", "community"] | None = None
    rater_code: str | None = Field(default=None, max_length=32)


@router.post("/ratings", status_code=201, responses=NOT_FOUND)
async def record_rating(body: RatingIn, principal: SignedIn, engine: Engine) -> dict:
    """A street's or community's rating of a company it serves, for a half-year (replaces its earlier one)."""
    async with engine.begin() as conn:
        return await conn.run_sync(inputs.record_rating, principal, body.company_id, body.period, body.score,
                                   body.rater_level, body.rater_code)


@router.get("/ratings", responses=TABLE_ANSWERS)
async def list_ratings(conn: Connection, principal: SignedIn, period: PeriodQuery,
                       format: TableFormat = "json") -> Response:
    """The half-year's street and community ratings in the caller's area."""
    return _send(await conn.run_sync(inputs.list_ratings, principal, period), format)


class SurveyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    compound_code: str = Field(max_length=32)
    surveyed_on: date
    sample_size: int = Field(description="Residents who answered; a positive whole number")
    score: Score
    note: str | None = Field(default=None, max_length=4000)


@router.post("/surveys", status_code=201, responses=NOT_FOUND)
async def record_survey(body: SurveyIn, principal: SignedIn, engine: Engine) -> dict:
    """A residents' satisfaction survey of a compound in the caller's area (sample size, score 0-100)."""
    async with engine.begin() as conn:
        return await conn.run_sync(inputs.record_survey, principal, body.compound_code, body.surveyed_on,
                                   body.sample_size, body.score, body.note)


@router.get("/surveys", responses=TABLE_ANSWERS)
async def list_surveys(conn: Connection, principal: SignedIn, period: PeriodQuery,
                       format: TableFormat = "json") -> Response:
    """The half-year's satisfaction surveys in the caller's area."""
    return _send(await conn.run_sync(inputs.list_surveys, principal, period), format)


@router.get("/companies")
async def rater_companies(conn: Connection, principal: SignedIn) -> list[dict]:
    """The companies the caller rates and the compounds it surveys, for the desk's pickers (administrators,
    street offices and communities; a street or community gets those serving its area)."""
    return await conn.run_sync(company_view.rater_companies, principal)


@router.get("/rectifications", responses=TABLE_ANSWERS)
async def list_rectifications(conn: Connection, principal: SignedIn,
                              period: Annotated[str | None, Query(max_length=16)] = None,
                              format: TableFormat = "json") -> Response:
    """Rectification tasks (整改) of black-listed companies the caller serves."""
    return _send(await conn.run_sync(rectification.list_tasks, principal, period), format)


class FollowUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: Literal["passed", "failed"]
    note: str | None = Field(default=None, max_length=4000)


@router.post("/rectifications/{task_id}/follow-up")
async def follow_up(task_id: int, body: FollowUpIn, principal: SignedIn, engine: Engine) -> dict:
    """The follow-up of a rectification task: passed or failed (the street serving the company, or the
    housing department)."""
    async with engine.begin() as conn:
        return await conn.run_sync(rectification.follow_up, principal, task_id, body.result, body.note)


class ExitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    company_id: int
    period: str = Field(max_length=16, description="A half-year, YYYYH1 or YYYYH2")
    handed_over_on: date | None = None
    successors: dict[str, int] = Field(default_factory=dict, description="compound code: the company the street "
                                                                         "names to take it over")


@router.post("/exits", status_code=201, responses=NOT_FOUND)
async def start_exit(body: ExitIn, principal: Admin, engine: Engine) -> dict:
    """清退: hand over every compound of a company flagged for exit, as dated takeovers."""
    async with engine.begin() as conn:
        return await conn.run_sync(rectification.start_exit, principal, body.company_id, body.period,
                                   body.successors, body.handed_over_on)


@router.get("/exits", responses=TABLE_ANSWERS)
async def list_exits(conn: Connection, principal: SignedIn, format: TableFormat = "json") -> Response:
    """Every exit and the compounds it handed over."""
    return _send(await conn.run_sync(rectification.list_handovers, principal), format)


@router.post("/subsidy-ledger/{period}", responses=TABLE_ANSWERS)
async def build_ledger(period: str, principal: Admin, engine: Engine, format: TableFormat = "json") -> Response:
    """Write the half-year's subsidy ledger (per company, month and old estate) from its stored evaluation."""
    async with engine.begin() as conn:
        figure = await conn.run_sync(subsidy.build_ledger, period)
    return _send(figure, format)


@router.get("/subsidy-ledger/{period}", responses=TABLE_ANSWERS)
async def read_ledger(conn: Connection, period: str, principal: SignedIn,
                      by: Literal["estate", "company"] = "estate", format: TableFormat = "json") -> Response:
    """The half-year's subsidy ledger, per estate or per company and month; XLSX for the finance office."""
    return _send(await conn.run_sync(subsidy.ledger, period, by), format)


class CreditItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    company_id: int | None = None
    kind: Literal["basic", "good", "bad"]
    category: str = Field(max_length=32)
    title: str = Field(min_length=1, max_length=200)
    detail: str | None = Field(default=None, max_length=4000)
    occurred_on: date


@router.post("/credit-items", status_code=201, responses=NOT_FOUND)
async def report_credit_item(body: CreditItemIn, principal: SignedIn, engine: Engine) -> dict:
    """A company reports an item of its credit file (pending until reviewed)."""
    async with engine.begin() as conn:
        return await conn.run_sync(credit.report_item, principal, body.company_id, body.kind, body.category,
                                   body.title, body.occurred_on, body.detail)


@router.get("/credit-items", responses={**TABLE_ANSWERS, **NOT_FOUND})
async def list_credit_items(conn: Connection, principal: SignedIn, company_id: int | None = None,
                            status: Literal["pending", "approved", "rejected"] | None = None,
                            format: TableFormat = "json") -> Response:
    """Credit items the caller may see, with their review."""
    return _send(await conn.run_sync(credit.list_items, principal, company_id, status), format)


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/credit-items/{item_id}/review")
async def review_credit_item(item_id: int, body: ReviewIn, principal: SignedIn, engine: Engine) -> dict:
    """Approve or reject a credit item with a reason (the street serving the company, or the housing
    department)."""
    async with engine.begin() as conn:
        return await conn.run_sync(credit.review_item, principal, item_id, body.decision, body.reason)


@router.get("/credit-grades", responses=TABLE_ANSWERS)
async def credit_grades(conn: Connection, format: TableFormat = "json") -> Response:
    """The published credit grades: company names and grades only; no sign-in."""
    return _send(await conn.run_sync(credit.published_grades), format)


@router.get("/credit-grades.html", response_class=HTMLResponse)
async def credit_grades_page(conn: Connection) -> HTMLResponse:
    """The public page of the credit grades (物业服务企业信用等级公示)."""
    figure = await conn.run_sync(credit.published_grades)
    rows = "".join(f"<tr><td>{html.escape(r['company_name'])}</td><td>{html.escape(r['grade'])}</td>"
                   f"<td>{html.escape(r['grade_zh'])}</td></tr>" for r in figure.rows)
    page = (f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>物业服务企业信用等级公示"
            f"</title></head><body><h1>物业服务企业信用等级公示</h1><p>公示日期：{figure.meta['published_on']}"
            f"（北京时间）</p><table><thead><tr><th>企业名称</th><th>信用等级</th><th>等级说明</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></body></html>")
    return HTMLResponse(page)
