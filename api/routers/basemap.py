"""The city's own base map (底图) from its local file: a TileJSON and the tiles, public (it holds no personal
data). The routes are plain functions, so FastAPI runs the file reads in its thread pool."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gis.serve import basemap
from gis.settings import basemap_settings

router = APIRouter(tags=["basemap"])


def service(request: Request) -> basemap.BasemapService:
    """The app's base-map service (one per app, made on first use from GRIDGOV_BASEMAP)."""
    found = getattr(request.app.state, "basemap_service", None)
    if found is None:
        settings = basemap_settings()
        found = request.app.state.basemap_service = basemap.BasemapService(settings.basemap,
                                                                          settings.basemap_attribution)
    return found


@router.get("/basemap.json", responses={204: {"description": "No base map is configured: the map has none"}})
def basemap_tilejson(request: Request) -> Response:
    """TileJSON 3.0 of the configured base map (format, bounds, zooms, attribution); 204 when none is configured,
    503 with the reason when its file cannot be read."""
    found = service(request)
    if not found.configured:
        return Response(status_code=204)
    document = basemap.tilejson(found.current(), str(request.base_url).rstrip("/"))
    return JSONResponse(document, headers={"Cache-Control": "no-cache"})


@router.get(
    "/basemap/{z}/{x}/{y}",
    response_class=Response,
    responses={200: {"content": {media: {} for media in basemap.MEDIA_TYPES.values()}},
               204: {"description": "The file holds no tile here (Leaflet and VectorGrid draw nothing)"},
               304: {"description": "Not modified (If-None-Match)"}},
)
def basemap_tile(z: str, x: str, y: str, request: Request, v: str | None = None) -> Response:
    """One tile exactly as the file stores it (`y` may carry the format's extension, e.g. `12.pbf`). Gzipped
    vector tiles go out with Content-Encoding gzip (decompressed for a client that does not accept it). 204 when
    the file has no tile there; 400 for a bad address; 404 when no base map is configured; 503 when its file
    cannot be read."""
    found = service(request).current()
    z_, x_, y_ = basemap.parse_tile_address(z, x, y, found)
    tile = found.tile(z_, x_, y_)
    headers = {"Cache-Control": basemap.cache_control(found, v)}
    if tile is None:
        return Response(status_code=204, headers=headers)
    headers["ETag"] = basemap.etag(tile.body)
    if tile.gzipped:
        headers["Vary"] = "Accept-Encoding"
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    body = tile.body
    if tile.gzipped:
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            headers["Content-Encoding"] = "gzip"
        else:
            body = tile.decoded()
    return Response(body, media_type=found.media_type, headers=headers)
