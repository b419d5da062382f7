"""GeoJSON of the pyramid layers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import ReadConnection
from gis.layers import pyramid
from gis.serve.bbox import parse_bbox

router = APIRouter(prefix="/layers", tags=["layers"])


@router.get("")
async def list_layers() -> list[dict]:
    """The layers of the pyramid, top down, with their parent links."""
    return [
        {"name": layer.name, "title": layer.title, "title_zh": layer.title_zh, "parent": layer.parent}
        for layer in pyramid.LAYERS.values()
    ]


@router.get("/{layer}.geojson", response_class=Response, responses={200: {"content": {"application/geo+json": {}}}})
async def layer_geojson(
    layer: str,
    conn: ReadConnection,
    parent: Annotated[str | None, Query(description="Only children of this parent code")] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS-84)")] = None,
    limit: Annotated[int, Query(ge=1, le=50_000)] = 10_000,
) -> Response:
    """A layer's current features as GeoJSON, optionally only the children of one parent and only those touching a
    WGS-84 bbox; 400 for a bad bbox or a parent on a layer without parents, 404 for an unknown layer."""
    body = await pyramid.layer_geojson(conn, layer, parent, parse_bbox(bbox), limit)
    return Response(body, media_type="application/geo+json")
