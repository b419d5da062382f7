"""The map page (its static files are mounted beside the routers in api.main) and the small read endpoints only
the map needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.routing import Match

from api.deps import ReadConnection
from api.params import QueryBool, QueryDate
from api.security import CurrentPrincipal
from gis.errors import InvalidInput
from gis.serve import mapdata
from gis.serve import search as place_search
from gis.serve.bbox import parse_bbox
from gis.settings import api_settings
from webmap import TEMPLATES_DIR

router = APIRouter(prefix="/map", tags=["map"])
site = APIRouter(include_in_schema=False)
"""The pages themselves: / and the map page."""


def _codes(value: str | None) -> list[str]:
    return [part for part in (value or "").split(",") if part]


# The API routes the page's tools use, each with a concrete path to probe: a deployment without one of the
# feature areas simply does not offer its tools.
FEATURE_ROUTES = {
    "POST /auth/login": "/auth/login", "POST /auth/logout": "/auth/logout", "GET /auth/me": "/auth/me",
    "GET /tickets": "/tickets", "GET /tickets/{ticket_id}": "/tickets/1", "GET /tickets/workflow": "/tickets/workflow",
    "POST /tickets/{ticket_id}/transitions": "/tickets/1/transitions",
    "POST /tickets/{ticket_id}/photos": "/tickets/1/photos", "POST /tickets/assign": "/tickets/assign",
    "GET /complaints/review": "/complaints/review",
    "POST /complaints/{complaint_id}/placement": "/complaints/1/placement",
    "GET /analytics/hotspots": "/analytics/hotspots",
    "GET /tiles/{layer}/{z}/{x}/{y}.mvt": "/tiles/building/16/0/0.mvt",
    "POST /tickets/{ticket_id}/comments": "/tickets/1/comments",
    "POST /tickets/{ticket_id}/callbacks": "/tickets/1/callbacks",
    # the dispatch suggestion (webmap/static/map/work/suggestion.js)
    "GET /complaints/{complaint_id}/suggestion": "/complaints/1/suggestion",
    "GET /field/me": "/field/me", "GET /field/place": "/field/place", "POST /field/reports": "/field/reports",
    # likely duplicates while reporting (webmap/static/map/field/similar.js)
    "GET /complaints/similar": "/complaints/similar",
    # the registry's edit forms (webmap/static/map/work/registry.js)
    "GET /registry/compounds/{compound_code}/parties": "/registry/compounds/C/parties",
    "POST /registry/compounds/{compound_code}/management": "/registry/compounds/C/management",
    "POST /registry/compounds/{compound_code}/takeover": "/registry/compounds/C/takeover",
    "POST /registry/compounds/{compound_code}/committee-terms": "/registry/compounds/C/committee-terms",
    "POST /registry/grid-workers/joins": "/registry/grid-workers/joins",
    "POST /registry/grid-workers/{worker_id}/leave": "/registry/grid-workers/1/leave",
    "POST /registry/party-organisations/{organisation_code}/secretary": "/registry/party-organisations/P/secretary",
    "POST /registry/party-organisations/{organisation_code}/dissolve": "/registry/party-organisations/P/dissolve",
    "GET /registry/company": "/registry/company", "POST /registry/company/proposals": "/registry/company/proposals",
    "GET /registry/proposals": "/registry/proposals",
    # 未诉先办 in the desk (webmap/static/map/desk/proactive.js)
    "GET /analytics/monthly-problems": "/analytics/monthly-problems",
    "POST /analytics/proactive": "/analytics/proactive",
    "POST /registry/proposals/{proposal_id}/approve": "/registry/proposals/1/approve",
    "POST /registry/proposals/{proposal_id}/reject": "/registry/proposals/1/reject",
}


def _served(app: FastAPI, method: str, path: str) -> bool:
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [], "query_string": b""}
    return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)


@router.get("/config.json")
async def map_config(request: Request) -> dict:
    """What the page needs to start: the base map (none unless configured) and which of the API routes its
    tools use this deployment serves."""
    settings = api_settings()
    routes = getattr(request.app.state, "map_feature_routes", None)
    if routes is None:
        routes = [name for name, path in FEATURE_ROUTES.items() if _served(request.app, name.split()[0], path)]
        request.app.state.map_feature_routes = routes
    return {
        "base_tile_url": settings.base_tile_url or None,
        "base_tile_attribution": settings.base_tile_attribution,
        "routes": routes,
    }


@router.get("/categories.json")
async def category_list(conn: ReadConnection) -> list[dict]:
    """The active complaint categories (code, names, major class) for the map's filter list."""
    return await mapdata.categories(conn)


@router.get("/search.json")
async def search(
    conn: ReadConnection, principal: CurrentPrincipal, q: Annotated[str, Query(max_length=200)],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[dict]:
    """Compounds, buildings, addresses, units and ticket numbers matching `q`, best first."""
    return await place_search.search(conn, q, principal, limit)


@router.get("/property-companies.json")
async def property_companies(conn: ReadConnection, ids: str) -> list[dict]:
    """Names and red/black standing of the companies with these ids (comma-separated)."""
    try:
        numbers = [int(part) for part in _codes(ids)]
    except ValueError:
        raise InvalidInput("ids must be comma-separated integers") from None
    if not 1 <= len(numbers) <= 500:
        raise InvalidInput("give 1 to 500 ids")
    return await mapdata.property_companies(conn, numbers)


@router.get("/party-organisations.geojson", response_class=Response,
            responses={200: {"content": {"application/geo+json": {}}}})
async def party_organisations(
    conn: ReadConnection,
    bbox: str,
    kinds: Annotated[str, Query()] = "community_committee,grid_branch,compound_branch",
) -> Response:
    """Community party committees, grid branches and compound branches as GeoJSON points inside the units they serve,
    for the units touching the WGS-84 bbox; 400 for a bad bbox or an unknown kind."""
    body = await mapdata.party_organisations_geojson(conn, parse_bbox(bbox), _codes(kinds))
    return Response(body, media_type="application/geo+json")


@router.get("/complaints.geojson", response_class=Response,
            responses={200: {"content": {"application/geo+json": {}}}})
async def complaints(
    conn: ReadConnection,
    principal: CurrentPrincipal,
    bbox: str,
    category: str | None = None,
    date_from: QueryDate | None = None,
    date_to: QueryDate | None = None,
    state: str | None = None,
    overdue: QueryBool = False,
    limit: Annotated[int, Query(ge=1, le=50_000)] = 20_000,
) -> Response:
    """Anonymised complaint points in view (for clusters and the heat layer)."""
    body = await mapdata.complaints_geojson(conn, principal, parse_bbox(bbox), _codes(category), date_from, date_to,
                                            _codes(state), overdue, limit)
    return Response(body, media_type="application/geo+json", headers={"Cache-Control": "no-store"})


@router.get("/complaint-counts.json", response_class=Response,
            responses={200: {"content": {"application/json": {}}}})
async def complaint_counts(
    conn: ReadConnection,
    principal: CurrentPrincipal,
    bbox: str,
    level: Annotated[str, Query(pattern="^(grid|micro_grid)$")] = "micro_grid",
) -> Response:
    """Complaints counted per micro-grid or grid in view, `[[lon, lat, complaints, overdue], ...]`, for the
    clusters of a zoomed-out map."""
    body = await mapdata.complaint_unit_counts(conn, principal, parse_bbox(bbox), level)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/building-labels.json", response_class=Response,
            responses={200: {"content": {"application/json": {}}}})
async def building_labels(
    conn: ReadConnection, bbox: str, limit: Annotated[int, Query(ge=1, le=5000)] = 3000, footprint: QueryBool = False,
) -> Response:
    """A point inside each building in view with its number, `[[lon, lat, number], ...]`, for the labels; with
    `footprint=true` each row also has the footprint's ring as offsets from the point (millionths of a degree)."""
    body = await mapdata.building_labels(conn, parse_bbox(bbox), limit, footprint)
    return Response(body, media_type="application/json")


@site.get("/")
async def root() -> RedirectResponse:
    """Redirect the site's root to the map."""
    return RedirectResponse("/map")


@site.get("/map", response_class=HTMLResponse)
async def map_page() -> HTMLResponse:
    """The map page (HTML; its script and styles come from /static)."""
    return HTMLResponse((TEMPLATES_DIR / "map.html").read_text(encoding="utf-8"))


@site.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page() -> HTMLResponse:
    """The planners' dashboard of the programme figures (HTML; every figure comes from /analytics/programme)."""
    return HTMLResponse((TEMPLATES_DIR / "dashboard.html").read_text(encoding="utf-8"))
