"""Writing the personal-data access log from the routers: one INSERT per response that carries personal data,
committed before the response is sent."""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gis.access import audit
from gis.access.auth import Principal

_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def request_facts(request: Request) -> audit.RequestFacts:
    """What the personal-data log records about a request: method, route template (as the OpenAPI document names it),
    path, query, client address and request id."""
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    return audit.RequestFacts(
        method=request.method,
        # the route as the OpenAPI document names it ("{ticket_id}", not "{ticket_id:int}")
        endpoint=_CONVERTER.sub(r"{\1}", template) if template else request.url.path,
        path=request.url.path,
        query=request.url.query or None,
        client_address=request.client.host if request.client else None,
        request_id=getattr(request.state, "request_id", None),
    )


async def log_personal_read(
    request: Request,
    target: AsyncConnection | AsyncEngine,
    principal: Principal,
    resource: str,
    record_ids: Iterable | None = None,
    record_count: int | None = None,
) -> None:
    """Log the read when `principal` is shown personal data (staff); a no-op for planners and the public."""
    if principal.sees_personal_data:
        await audit.record_personal_read(target, principal, request_facts(request), resource,
                                         None if record_ids is None else list(record_ids), record_count)
