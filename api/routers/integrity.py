"""The administrators' integrity layer of the map: the faults `gridgov check` reports, as GeoJSON."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.security import Admin
from gis.numbers import optional_float
from gis.serve.integrity import integrity_geojson

router = APIRouter(prefix="/map", tags=["map"])


@router.get("/integrity.geojson", response_class=Response,
            responses={200: {"content": {"application/geo+json": {}}}})
async def integrity(
    request: Request, _admin: Admin,
    tolerance: Annotated[str | None, Query(max_length=64, description="area in m² below which a sliver is no "
                                                                      "fault (1 by default)")] = None,
) -> Response:
    """Every integrity fault of the current layers (overlaps, gaps, children outside parents, invalid geometry,
    orphan and duplicate codes), each with its kind in Chinese, the features involved and its place; administrators
    only (401 without a sign-in, 403 for any other role)."""
    tolerance_m2 = optional_float(tolerance, "tolerance（面积容差，平方米）", low=0, high=1e9)
    url = request.app.state.engine.url.render_as_string(hide_password=False)
    body = await run_in_threadpool(integrity_geojson, url, 1.0 if tolerance_m2 is None else tolerance_m2)
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json",
                    headers={"Cache-Control": "no-store"})
