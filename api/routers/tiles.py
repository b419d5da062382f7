"""Vector tiles (Mapbox Vector Tile) and TileJSON of every layer."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.audit import log_personal_read
from api.deps import Engine, ReadEngine
from api.security import CurrentPrincipal
from gis.errors import InvalidInput
from gis.serve import tiles

router = APIRouter(prefix="/tiles", tags=["tiles"])

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"


def _service(request: Request) -> tiles.TileService:
    # One per app: it holds the tile cache, so it lives on app.state and is made on first use.
    service = getattr(request.app.state, "tile_service", None)
    if service is None:
        service = request.app.state.tile_service = tiles.TileService()
    return service


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("")
async def list_tile_layers(request: Request) -> list[dict]:
    """Every tile layer with its TileJSON address."""
    base = _base_url(request)
    return [{"name": name, "tilejson": f"{base}/tiles/{name}.json", "minzoom": layer.minzoom,
             "maxzoom": layer.maxzoom} for name, layer in tiles.TILE_LAYERS.items()]


@router.get("/{layer}.json")
async def tilejson(layer: str, request: Request, engine: Engine) -> dict:
    """TileJSON 3.0 of one layer (bounds from the data)."""
    tiles.get_tile_layer(layer)
    bounds = await _service(request).bounds(engine, layer)
    return tiles.tilejson(layer, _base_url(request), bounds)


@router.get("/{layer}/tilejson.json", include_in_schema=False)
async def tilejson_alias(layer: str, request: Request, engine: Engine) -> dict:
    """The same TileJSON as /tiles/{layer}.json, at the address some clients expect; 404 for an unknown layer."""
    return await tilejson(layer, request, engine)


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {value!r}") from None


@router.get(
    "/{layer}/{z}/{x}/{y}.mvt",
    response_class=Response,
    responses={200: {"content": {MVT_MEDIA_TYPE: {}}}, 204: {"description": "Nothing to draw in this tile"},
               304: {"description": "Not modified (If-None-Match)"}},
)
async def tile(layer: str, z: str, x: str, y: str, request: Request, engine: Engine,
               principal: CurrentPrincipal, read: ReadEngine) -> Response:
    """One tile. Boundaries may be cached for long (ETag to revalidate); complaints briefly."""
    found = await _service(request).tile(engine, layer, _int(z, "z"), _int(x, "x"), _int(y, "y"), principal,
                                         read_engine=read)
    cache_control = f"{'private' if found.private else 'public'}, max-age={found.max_age}"
    headers = {"ETag": found.etag, "Cache-Control": cache_control, "Vary": "Authorization"}
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    if not found.body:
        return Response(status_code=204, headers=headers)
    if tiles.tile_has_personal_fields(layer, int(z), principal):
        # How many features a tile holds is not known without decoding it: the count stays empty.
        await log_personal_read(request, engine, principal, "complaint")
    return Response(found.body, media_type=MVT_MEDIA_TYPE, headers=headers)
