"""The personal-data access log (个人信息访问日志), for administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Connection
from api.params import QueryDateTime
from api.security import Admin
from gis.access import audit

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/personal-reads")
async def personal_reads(
    principal: Admin,
    conn: Connection,
    username: str | None = None,
    resource: Annotated[str | None, Query(description="ticket, complaint, contact, party_organisation, ...")] = None,
    record_id: Annotated[str | None, Query(description="Who read this record (a ticket or complaint id, ...)")] = None,
    since: QueryDateTime | None = None,
    until: QueryDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LOG_ROWS)] = 200,
    before_id: Annotated[int | None, Query(ge=1, description="Paging: the smallest id of the previous page")] = None,
) -> list[dict]:
    """Who read personal data, newest first: one row per response that carried reporters' names or phones or
    people's contacts."""
    return await audit.personal_reads(conn, username=username, resource=resource, record_id=record_id, since=since,
                                      until=until, limit=limit, before_id=before_id)
