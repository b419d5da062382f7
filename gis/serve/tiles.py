"""Mapbox vector tiles of the pyramid layers and of complaints, one SQL statement per tile.

Each tile is made by PostGIS: candidate rows are found with the tile envelope transformed to the stored SRID
(so the GiST index on the column serves the search), capped in a stable order, simplified in tile units at low
zooms, clipped and encoded by `ST_AsMVTGeom`, then packed by `ST_AsMVT`. Attributes depend on the zoom: codes
and names when zoomed out, every public property when zoomed in.

Boundary tiles change rarely, so rendered tiles are kept in a small in-process cache whose key carries a data
version read from PostgreSQL's table statistics (one cheap catalogue query every few seconds, never per tile).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gis import STORAGE_SRID
from gis.access.auth import Principal, complaint_scope_sql
from gis.access.visibility import (
    COMPLAINT_PUBLIC_COLUMNS,
    COMPLAINT_REPORTER_COLUMNS,
    POLICY,
    Visibility,
    complaint_column_sql,
    complaint_columns,
    place_sql,
    visibility,
)
from gis.errors import InvalidInput
from gis.layers.pyramid import LAYERS, get_layer
from gis.serve.tilekey import MAX_LATITUDE, tile_key_ranges
from gis.settings import TileSettings, tile_settings

EXTENT = 4096
"""Tile coordinate units across a tile."""
BUFFER = 64
"""Units of buffer around a tile, so strokes at the edges join up."""
MAX_ZOOM = 24

COMPLAINT_FULL_CAP_ZOOM = 14
"""From this zoom on, complaint tiles carry the full feature cap; each zoom below halves it."""

@dataclass(frozen=True)
class TileLayer:
    """How one layer is drawn into tiles."""

    name: str
    table: str
    minzoom: int
    maxzoom: int
    detail_zoom: int
    """From this zoom on, every property; below it only `summary`."""
    summary: tuple[str, ...]
    detail: tuple[str, ...]
    feature_cap: int
    simplify_below: int
    """Below this zoom, geometries are simplified to one tile unit before being projected."""
    is_boundary: bool = True
    description: str = ""

    def columns(self, z: int) -> tuple[str, ...]:
        return self.detail if z >= self.detail_zoom else self.summary


def _boundary(name: str, minzoom: int, detail_zoom: int, cap: int = 4000, simplify_below: int = 15) -> TileLayer:
    layer = LAYERS[name]
    return TileLayer(
        name=name, table=name, minzoom=minzoom, maxzoom=22, detail_zoom=detail_zoom,
        summary=("code", "name"), detail=tuple(dict.fromkeys(("code", "name", *layer.properties))),
        feature_cap=cap, simplify_below=simplify_below,
        description=f"{layer.title} ({layer.title_zh}), current versions",
    )


INDEXED_COMPLAINT_COLUMNS = {"reported_at", "category_code"}
"""Complaint attributes held in the tile-key index beside the point (migration 0007)."""
COMPLAINT_EXPRESSIONS = {
    # RFC 3339 in UTC, since MVT attributes carry no timestamp type ("\\:" keeps SQLAlchemy from binding :MI)
    "reported_at": "to_char(c.reported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24\\:MI\\:SS\"Z\"')",
}

TILE_LAYERS: dict[str, TileLayer] = {
    layer.name: layer
    for layer in (
        _boundary("district", 0, 8, simplify_below=16),
        _boundary("street", 6, 10, simplify_below=16),
        _boundary("community", 8, 12, simplify_below=16),
        _boundary("grid", 10, 14),
        _boundary("micro_grid", 12, 15),
        _boundary("compound", 11, 14),
        _boundary("building", 12, 15, cap=3000, simplify_below=14),
        TileLayer(
            name="complaint", table="complaint", minzoom=10, maxzoom=22, detail_zoom=15,
            summary=("category_code", "reported_at"), detail=COMPLAINT_PUBLIC_COLUMNS,
            feature_cap=3000, simplify_below=0, is_boundary=False,
            description="Complaints (newest first when capped); the public sees coarsened, anonymised points",
        ),
    )
}


def get_tile_layer(name: str) -> TileLayer:
    """The tile layer called `name`; NotFound naming the layers there are."""
    if name not in TILE_LAYERS:
        get_layer(name)  # raises NotFound with the list of layers
    return TILE_LAYERS[name]


def check_tile_address(z: int, x: int, y: int) -> None:
    """Refuse (InvalidInput) a tile address outside the tile matrix: a zoom above MAX_ZOOM, or x or y outside
    [0, 2**z)."""
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"瓦片级别应在 0 到 {MAX_ZOOM} 之间，而不是 {z}")
    side = 1 << z
    if not (0 <= x < side and 0 <= y < side):
        raise InvalidInput(f"第 {z} 级瓦片的 x、y 应在 0 到 {side - 1} 之间")


def _complaint_columns(view: Visibility, z: int, layer: TileLayer) -> tuple[str, ...]:
    if z < layer.detail_zoom:
        return layer.summary
    return complaint_columns(view)


def tile_has_personal_fields(layer_name: str, z: int, principal: Principal) -> bool:
    """Whether a tile of this layer at zoom z carries reporters' names or phones for this caller (to log it)."""
    layer = get_tile_layer(layer_name)
    if layer.is_boundary:
        return False
    shown = _complaint_columns(visibility(principal), z, layer)
    return any(column in shown for column in COMPLAINT_REPORTER_COLUMNS)


def _tile_unit_degrees(z: int) -> float:
    """About one tile unit in degrees at zoom z (longitude span of a unit; latitude spans are smaller)."""
    return 360.0 / (1 << z) / EXTENT


def _degrees_as_tile_share(degrees: float, z: int, y: int) -> tuple[float, float]:
    """The least and the largest share of a tile's width (a tile of row y at zoom z) that `degrees` of longitude
    or latitude span: longitude exactly the least, latitude stretched by Mercator up to the largest."""
    tiles = 1 << z
    edges = [abs(math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / tiles))))) for row in (y, y + 1)]
    least = degrees * tiles / 360.0
    return least, least / math.cos(math.radians(min(max(edges), MAX_LATITUDE)))


ENVELOPE_SQL = f"ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), {STORAGE_SRID})"
"""The tile with its buffer, in the stored SRID (so the GiST index on the column serves the search)."""


def _feature_cap(layer: TileLayer, z: int) -> int:
    if layer.is_boundary:
        return layer.feature_cap
    # Points thin out with the zoom: a zoom-12 tile holds sixteen zoom-14 tiles' complaints, and a few
    # hundred newest points already show where they gather (the map draws counts there anyway).
    return max(layer.feature_cap >> max(0, COMPLAINT_FULL_CAP_ZOOM - z), 1)


def _boundary_from(layer: TileLayer, z: int, params: dict) -> tuple[str, tuple[str, ...]]:
    """The candidate rows of a boundary tile (current versions in view, largest first, capped) and its columns."""
    columns = layer.columns(z)
    geom = "geom"
    if z < layer.simplify_below:
        # Simplify in the stored SRID before projecting: projecting fewer vertices is where time goes.
        geom = "ST_Simplify(geom, :tolerance, true)"
        params["tolerance"] = _tile_unit_degrees(z)
    # Largest first, so a capped tile keeps what is visible at that zoom; id breaks ties stably.
    return (f"SELECT id, {', '.join(columns)}, {geom} AS geom FROM {layer.table} "
            f"WHERE valid_to IS NULL AND geom && {ENVELOPE_SQL} ORDER BY ST_Area(geom) DESC, id LIMIT :cap"), columns


def _newest_by_tile_key(view: Visibility, z: int, x: int, y: int, envelope: str, params: dict) -> str:
    """The newest complaints of the whole city in view, capped: key ranges of the tile (and its buffer) read from
    one covering B-tree. Rows of cells wholly inside need no geometry test. OFFSET 0 keeps PostgreSQL from
    flattening the per-range scans into one plan over the whole index."""
    least, largest = _degrees_as_tile_share(view.place_grid_deg, z, y) if not view.exact_place else (0.0, 0.0)
    ranges = tile_key_ranges(z, x, y, BUFFER / EXTENT + largest, sure_margin=BUFFER / EXTENT + least)
    params.update(key_lows=[r.low for r in ranges], key_highs=[r.high for r in ranges],
                  key_edges=[r.edge for r in ranges])
    return ("SELECT k.id, k.reported_at, k.category_code, k.geom "
            "FROM unnest(CAST(:key_lows AS bigint[]), CAST(:key_highs AS bigint[]), "
            "CAST(:key_edges AS boolean[])) AS r(low, high, edge) CROSS JOIN LATERAL ("
            "SELECT c.id, c.reported_at, c.category_code, c.geom FROM complaint c "
            "WHERE gridgov_tile_key(c.geom) >= r.low AND gridgov_tile_key(c.geom) < r.high OFFSET 0) AS k "
            f"WHERE (NOT r.edge OR k.geom && {envelope}) "
            "ORDER BY k.reported_at DESC, k.id DESC LIMIT :cap")


def _complaint_from(layer: TileLayer, z: int, x: int, y: int, principal: Principal, params: dict
                    ) -> tuple[str, tuple[str, ...]]:
    """The candidate rows of a complaint tile (newest in view within the caller's scope, capped, each place and
    attribute as the caller may see it) and its columns."""
    view = visibility(principal)
    columns = _complaint_columns(view, z, layer)
    scope, scope_params = complaint_scope_sql(principal, alias="c")
    params.update(scope_params)
    envelope, geom = ENVELOPE_SQL, "c.geom"
    if not view.exact_place:
        params["grid"] = view.place_grid_deg
        geom = place_sql(view, "c.geom")
        # Search a little wider so points snapped into the tile are not missed; ST_AsMVTGeom clips the rest.
        envelope = f"ST_Expand({ENVELOPE_SQL}, :grid)"
    # Attributes are formatted after the cap, not for every row in view.
    select_cols = ", ".join(COMPLAINT_EXPRESSIONS.get(column, complaint_column_sql(view, column, "c"))
                            + f" AS {column}" for column in columns)
    if scope != "TRUE":
        # A role's own area: the scope's index and the GiST index together find its few rows.
        needed = ", ".join(f"c.{column}" for column in dict.fromkeys(("reported_at", *columns)))
        scoped = (f"SELECT c.id, {needed}, c.geom FROM complaint c WHERE c.geom && {envelope} AND {scope} "
                  "ORDER BY c.reported_at DESC, c.id DESC LIMIT :cap")
        return f"SELECT c.id, {select_cols}, {geom} AS geom FROM ({scoped}) AS c", columns
    newest = _newest_by_tile_key(view, z, x, y, envelope, params)
    if set(columns) <= INDEXED_COMPLAINT_COLUMNS:
        return f"SELECT c.id, {select_cols}, {geom} AS geom FROM ({newest}) AS c", columns
    # Only the kept rows are read from the table, for the attributes the index does not hold.
    return (f"SELECT c.id, {select_cols}, {geom} AS geom FROM ({newest}) AS k "
            "JOIN complaint c ON c.id = k.id"), columns


def _select_mvt(candidates: str, columns: tuple[str, ...]) -> str:
    """The candidates projected, clipped and encoded by ST_AsMVTGeom, then packed into one tile by ST_AsMVT."""
    return f"""
        WITH candidates AS ({candidates}),
        features AS (
            SELECT id, {", ".join(columns)},
                   ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true)
                       AS geom
            FROM candidates
        )
        SELECT ST_AsMVT(features.*, :layer, {EXTENT}, 'geom', 'id') FROM features WHERE geom IS NOT NULL
    """


def tile_sql(layer: TileLayer, z: int, x: int, y: int, principal: Principal) -> tuple[str, dict]:
    """The one statement that renders tile z/x/y of `layer`, and its parameters."""
    params: dict = {"margin": BUFFER / EXTENT, "cap": _feature_cap(layer, z), "layer": layer.name, "z": z, "x": x,
                    "y": y}
    candidates, columns = (_boundary_from(layer, z, params) if layer.is_boundary
                           else _complaint_from(layer, z, x, y, principal, params))
    return _select_mvt(candidates, columns), params


@dataclass
class Tile:
    body: bytes
    etag: str
    max_age: int
    private: bool


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class DataVersions:
    """Per-table change counters from `pg_stat_user_tables`, re-read at most every few seconds.

    They move on every insert, update or delete (statistics reach the catalogue within about a second of a
    commit, at worst some seconds for a backend that goes idle), so a cache keyed on them forgets stale tiles
    without a query per tile. A statistics reset only changes the version, which merely empties the cache.
    """

    def __init__(self, check_seconds: float):
        self.check_seconds = check_seconds
        self.versions: dict[str, int] = {}
        self.position: str | None = None
        """The primary's WAL position when the versions were read: a replica that has replayed past it holds at
        least these versions' data (a replica's own statistics do not move with replay)."""
        self.checked_at = float("-inf")
        self._lock = asyncio.Lock()

    async def current(self, engine: AsyncEngine) -> dict[str, int]:
        if time.monotonic() - self.checked_at < self.check_seconds:
            return self.versions
        async with self._lock:
            if time.monotonic() - self.checked_at >= self.check_seconds:
                async with engine.connect() as conn:
                    rows = (await conn.execute(text(
                        "SELECT relname::text, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
                    ))).all()
                    self.position = (await conn.execute(text(
                        "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END"
                    ))).scalar_one()
                self.versions = {name: int(changes) for name, changes in rows}
                self.checked_at = time.monotonic()
        return self.versions


@dataclass
class TileCache:
    """Least-recently-used tiles within a byte budget."""

    budget_bytes: int
    entries: OrderedDict = field(default_factory=OrderedDict)
    size: int = 0
    hits: int = 0
    misses: int = 0

    def get(self, key) -> Tile | None:
        tile = self.entries.get(key)
        if tile is None:
            self.misses += 1
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        return tile

    def put(self, key, tile: Tile) -> None:
        if len(tile.body) > self.budget_bytes // 8:
            return
        old = self.entries.pop(key, None)
        if old is not None:
            self.size -= len(old.body)
        self.entries[key] = tile
        self.size += len(tile.body)
        while self.size > self.budget_bytes and self.entries:
            _, evicted = self.entries.popitem(last=False)
            self.size -= len(evicted.body)


class TileService:
    """Renders and caches tiles; one per app (it holds the cache)."""

    def __init__(self, settings: TileSettings | None = None):
        self.settings = settings or tile_settings()
        self.versions = DataVersions(self.settings.version_check_seconds)
        self.cache = TileCache(self.settings.cache_megabytes * 1024 * 1024)
        self._bounds: dict[str, tuple[int, tuple | None]] = {}

    async def bounds(self, engine: AsyncEngine, layer_name: str) -> tuple[float, float, float, float] | None:
        """The layer's extent, recomputed only when its table changed."""
        layer = get_tile_layer(layer_name)
        version = (await self.versions.current(engine)).get(layer.table, 0)
        known = self._bounds.get(layer.name)
        if known is not None and known[0] == version:
            return known[1]
        async with engine.connect() as conn:
            extent = await layer_bounds(conn, layer.name)
        self._bounds[layer.name] = (version, extent)
        return extent

    async def render(self, conn: AsyncConnection, layer: TileLayer, z: int, x: int, y: int,
                     principal: Principal) -> bytes:
        sql, params = tile_sql(layer, z, x, y, principal)
        body = (await conn.execute(text(sql), params)).scalar_one()
        return bytes(body) if body else b""

    async def tile(self, engine: AsyncEngine, layer_name: str, z: int, x: int, y: int,
                   principal: Principal, read_engine: AsyncEngine | None = None) -> Tile:
        """The tile at z/x/y (an empty body when there is nothing to draw), with its caching metadata. Live tiles
        are rendered on `read_engine` (a read replica) when given; cached ones always on `engine`, the primary,
        whose statistics version the cache key (a replica's statistics do not move with replay)."""
        layer = get_tile_layer(layer_name)
        check_tile_address(z, x, y)
        if not layer.minzoom <= z <= layer.maxzoom:
            return Tile(b"", _etag(b""), self.settings.boundary_max_age, private=False)
        if not layer.is_boundary:
            # Complaints are live and depend on the caller: rendered every time, cached only briefly by clients.
            async with (read_engine or engine).connect() as conn:
                body = await self.render(conn, layer, z, x, y, principal)
            return Tile(body, _etag(body), self.settings.complaint_max_age, private=principal.role != "public")
        version = (await self.versions.current(engine)).get(layer.table, 0)
        key = (layer.name, version, z, x, y)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        async with engine.connect() as conn:
            body = await self.render(conn, layer, z, x, y, principal)
        tile = Tile(body, _etag(body), self.settings.boundary_max_age, private=False)
        self.cache.put(key, tile)
        return tile


def tilejson(layer_name: str, base_url: str, bounds: tuple[float, float, float, float] | None) -> dict:
    """TileJSON 3.0 for one layer."""
    layer = get_tile_layer(layer_name)
    fields = {column: column for column in layer.detail}
    if not layer.is_boundary:
        # every attribute some role may see; which of them a caller gets is gis.access.visibility's to say
        fields = {column: column for column in complaint_columns(POLICY["admin"])}
    document = {
        "tilejson": "3.0.0",
        "name": layer.name,
        "description": layer.description,
        "scheme": "xyz",
        "tiles": [f"{base_url}/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.mvt"],
        "minzoom": layer.minzoom,
        "maxzoom": layer.maxzoom,
        "vector_layers": [{
            "id": layer.name,
            "description": (f"{layer.description}. Below zoom {layer.detail_zoom} only "
                            f"{', '.join(layer.summary)}; at most {layer.feature_cap} features per tile"
                            + ("" if layer.is_boundary else ", halved for each zoom below 14") + "."),
            "minzoom": layer.minzoom,
            "maxzoom": layer.maxzoom,
            "fields": fields,
        }],
    }
    if bounds is not None:
        document["bounds"] = list(bounds)
        document["center"] = [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2,
                              max(layer.minzoom, 12)]
    return document


async def layer_bounds(conn: AsyncConnection, layer_name: str) -> tuple[float, float, float, float] | None:
    """The WGS-84 extent of a layer's data (current versions of boundaries), or None when empty."""
    layer = get_tile_layer(layer_name)
    # Complaints are bounded by the streets they lie in: the extent of the points would name the outermost
    # complaints' exact places to anyone.
    table = layer.table if layer.is_boundary else "street"
    row = (await conn.execute(text(
        f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e "
        f"FROM {table} WHERE valid_to IS NULL) s"
    ))).one()
    return None if row[0] is None else tuple(float(v) for v in row)
