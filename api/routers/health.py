"""Health: does the database answer, and how many features each layer holds."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import Engine
from api.routers.basemap import service as basemap_service
from gis.layers import pyramid

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(engine: Engine, request: Request) -> JSONResponse:
    """Liveness with the database: 200 with the feature count of each layer, or 503 `degraded` when the database cannot
    be reached. `basemap` says whether the configured base-map file opens (`none`, `ok`, or `error` with the
    reason, then `status` is `degraded` but the answer stays 200: everything but the base map works). With read
    replicas configured, `replicas` lists each one in rotation or not with its lag (one out: `degraded`, still
    200)."""
    try:
        async with engine.connect() as conn:
            counts = await pyramid.layer_counts(conn)
    except Exception as error:  # noqa: BLE001 - any failure here means the database is unreachable
        return JSONResponse(
            {"status": "degraded", "database": "unreachable", "error": type(error).__name__}, status_code=503
        )
    base = basemap_service(request).status()
    answer = {"status": "degraded" if base["status"] == "error" else "ok", "database": "ok", "layers": counts,
              "basemap": base}
    router = getattr(request.app.state, "read_router", None)
    if router is not None:
        # Replicas (GRIDGOV_DATABASE_READ_URLS): each in rotation or not, with its lag; reads go on without them.
        answer["replicas"] = router.describe()
        if not all(replica["in_rotation"] for replica in answer["replicas"]):
            answer["status"] = "degraded"
    return JSONResponse(answer)
