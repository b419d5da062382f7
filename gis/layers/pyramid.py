"""The governance pyramid as layers: which tables, how they nest, and queries over them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.errors import InvalidInput, NotFound
from gis.serve.bbox import BBox


@dataclass(frozen=True)
class Layer:
    """One level of the pyramid (or the compound layer beside it)."""

    name: str
    title: str
    title_zh: str
    parent: str | None
    parent_column: str | None
    code_length: int | None
    properties: tuple[str, ...]


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer("district", "District", "区县", None, None, 6, ("code", "name")),
        Layer("street", "Street office", "街道", "district", "district_code", 9, ("code", "name", "district_code")),
        Layer("community", "Community", "社区", "street", "street_code", 12, ("code", "name", "street_code")),
        Layer("grid", "Grid", "网格", "community", "community_code", 15,
              ("code", "name", "community_code", "households")),
        Layer("micro_grid", "Micro-grid", "微网格", "grid", "grid_code", 18,
              ("code", "name", "grid_code", "compound_code", "households")),
        Layer("compound", "Residential compound", "小区", "community", "community_code", 17,
              ("code", "name", "community_code", "grid_code", "build_year", "is_old_estate", "floor_area_m2",
               "households", "management_mode", "property_company_id")),
        Layer("building", "Building", "楼栋", "micro_grid", "micro_grid_code", 21,
              ("code", "name", "micro_grid_code", "compound_code", "number", "floors", "units", "households")),
    )
}

PYRAMID = ("district", "street", "community", "grid", "micro_grid", "building")


def get_layer(name: str) -> Layer:
    """The pyramid layer called `name`; NotFound naming the layers there are."""
    try:
        return LAYERS[name]
    except KeyError:
        raise NotFound(f"no layer called {name!r}; layers are {', '.join(LAYERS)}") from None


async def layer_counts(conn: AsyncConnection) -> dict[str, int]:
    """Current features per layer, plus complaints, in one round trip."""
    parts = [f"'{name}', (SELECT count(*) FROM {name} WHERE valid_to IS NULL)" for name in LAYERS]
    parts.append("'complaint', (SELECT count(*) FROM complaint)")
    row = (await conn.execute(text(f"SELECT json_build_object({', '.join(parts)})"))).scalar_one()
    return row


async def layer_geojson(
    conn: AsyncConnection,
    layer_name: str,
    parent_code: str | None = None,
    bbox: BBox | None = None,
    limit: int = 10_000,
) -> bytes:
    """A FeatureCollection of a layer's current features, made by PostGIS in one statement."""
    layer = get_layer(layer_name)
    where = ["valid_to IS NULL"]
    params: dict = {"limit": limit}
    if parent_code is not None:
        if layer.parent_column is None:
            raise InvalidInput(f"layer {layer_name} has no parent")
        where.append(f"{layer.parent_column} = :parent")
        params["parent"] = parent_code
    if bbox is not None:
        minx, miny, maxx, maxy = bbox  # checked where it was read (gis.serve.bbox)
        where.append("geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)")
        params.update(minx=minx, miny=miny, maxx=maxx, maxy=maxy)
    props = ", ".join(f"'{column}', {column}" for column in layer.properties)
    columns = ", ".join(dict.fromkeys(("code", "geom", *layer.properties)))
    sql = f"""
        WITH rows AS (
            SELECT {columns} FROM {layer.name}
            WHERE {' AND '.join(where)} ORDER BY code LIMIT :limit
        )
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'features', coalesce(json_agg(json_build_object(
                'type', 'Feature', 'id', code,
                'geometry', ST_AsGeoJSON(geom, 6)::json,
                'properties', json_build_object({props})
            )), '[]'::json)
        )::text FROM rows
    """
    body = (await conn.execute(text(sql), params)).scalar_one()
    return body.encode()
