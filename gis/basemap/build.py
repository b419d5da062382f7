"""The demo's own base map, generated from the city's layers: an MBTiles file of vector tiles made by PostGIS.

Roads run along the boundaries between the layers' units, where streets are: between street offices (主干道),
communities, grids and compounds, never through a compound (a compound's micro-grids are one polygon here); the
city's outer edge is the district outline. Water is a river that follows the city's edge outside it, and ponds in
the parks (公园绿地 micro-grids). Labels: the district, street offices, communities, named main roads and water.

Everything is derived from the city itself: the same city gives the same tiles, whatever the run. The features
are made once into temporary tables in Web Mercator (prepare.sql), then each tile is one statement (tile.sql):
ST_AsMVTGeom and ST_AsMVT per layer, the layers concatenated. Tiles are stored gzipped, as MBTiles readers expect.
The file is written beside its destination and renamed into place, so a server never reads half a file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
import shapely
from shapely import affinity
from shapely.geometry import LineString, Point

from gis.db.engine import libpq_url
from gis.errors import InvalidInput, SetupError

BUILDER_VERSION = 1
"""Part of the city's fingerprint: a new version of the builder rebuilds files made by an older one."""
GENERATOR = "gridgov basemap build"
DEFAULT_MINZOOM, DEFAULT_MAXZOOM = 10, 17
WEB_MERCATOR_HALF = 20037508.342789244
EXTENT = 4096
ATTRIBUTION = "底图：由本市网格图层生成（gridgov 演示底图）"
RIVER_NAMES = ("泮河", "奈河", "梳洗河", "明堂河", "渿河", "芝田河")
LAKE_NAMES = ("天平湖", "南湖", "东湖", "月牙湖", "荷花池", "碧波湖", "镜湖", "莲池", "翠湖", "柳湖")
VECTOR_LAYERS = [
    {"id": "district", "description": "区县范围（浅灰色城区）与名称", "fields": {"code": "String", "name": "String"}},
    {"id": "landuse", "description": "非小区的微网格：公园、广场、学校、医院等（13 级起）",
     "fields": {"kind": "park | plaza | school | hospital | public"}},
    {"id": "water", "description": "河流与湖泊", "fields": {"kind": "river | lake", "name": "String"}},
    {"id": "roads", "description": "道路：沿街道、社区、网格、小区之间的边界",
     "fields": {"class": "primary | secondary | tertiary | minor", "name": "String"}},
    {"id": "labels", "description": "注记：区县、街道、社区、道路、水系名称",
     "fields": {"kind": "district | street | community | road | water", "name": "String",
                "angle": "Number (degrees, clockwise)", "rank": "Number"}},
]

SQL_DIR = Path(__file__).resolve().parent
PREPARE_SQL = (SQL_DIR / "prepare.sql").read_text(encoding="utf-8")
TILE_SQL = (SQL_DIR / "tile.sql").read_text(encoding="utf-8")

FINGERPRINT_SQL = """
SELECT md5(string_agg(part, ',' ORDER BY part)) FROM (
    SELECT layer || ':' || code || ':' || md5(ST_AsBinary(geom)) || ':' || coalesce(name, '') AS part FROM (
        SELECT 'district' AS layer, code, name, geom FROM district WHERE valid_to IS NULL
        UNION ALL SELECT 'street', code, name, geom FROM street WHERE valid_to IS NULL
        UNION ALL SELECT 'community', code, name, geom FROM community WHERE valid_to IS NULL
        UNION ALL SELECT 'grid', code, name, geom FROM grid WHERE valid_to IS NULL
        UNION ALL SELECT 'compound', code, name, geom FROM compound WHERE valid_to IS NULL
        UNION ALL SELECT 'micro_grid', code, name, geom FROM micro_grid WHERE valid_to IS NULL
    ) layers
) parts
"""


@dataclass
class BuildReport:
    """What a build wrote (or why it wrote nothing)."""

    path: Path
    fingerprint: str
    built: bool
    tiles: int = 0
    bytes: int = 0
    seconds: float = 0.0
    tiles_by_zoom: dict[int, int] = field(default_factory=dict)
    own_file: bool = False
    """The file at the path was not made by gridgov (a city's own), so it was left as it is."""


def city_fingerprint(conn: psycopg.Connection, road_names: Sequence[str] = ()) -> str:
    """A digest of the city's current layers (codes, names, shapes), the road names and the builder's version."""
    digest = conn.execute(FINGERPRINT_SQL).fetchone()[0]
    if digest is None:
        raise InvalidInput("数据库中没有区县、街道或社区图层，无法生成底图（请先导入或加载城市）")
    return hashlib.sha256(f"{BUILDER_VERSION}:{digest}:{'|'.join(road_names)}".encode()).hexdigest()[:32]


def file_metadata(path: Path) -> dict[str, str] | None:
    """The metadata of an MBTiles file, or None when the path is no readable MBTiles file."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return dict(conn.execute("SELECT name, value FROM metadata").fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def _seeded(fingerprint: str, salt: str) -> int:
    return int(hashlib.sha256(f"{fingerprint}:{salt}".encode()).hexdigest()[:12], 16)


def _river(outline, fingerprint: str):
    """A river arc following the city's edge about 350 m outside it, meandering gently, its ends carried on
    straight away from the city; a polygon about 50 m wide that stays clear of the city."""
    parts = getattr(outline, "geoms", [outline])
    ring = max(parts, key=lambda part: part.area).buffer(350.0).exterior
    length = ring.length
    start = (_seeded(fingerprint, "river-start") % 1000) / 1000.0 * length
    span = 0.38 * length
    distances = start + np.linspace(0.0, span, 240)
    points = np.array([ring.interpolate(d % length).coords[0] for d in distances])
    tangents = np.gradient(points, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1)[:, None]
    normals = np.column_stack([tangents[:, 1], -tangents[:, 0]])
    wave = 55.0 * np.sin((distances - start) / 420.0)
    points = points + normals * wave[:, None]
    head = points[0] - tangents[0] * 2500.0
    tail = points[-1] + tangents[-1] * 2500.0
    line = LineString(np.vstack([head, points, tail]))
    river = line.buffer(26.0, cap_style="flat").simplify(2.0)
    return river.difference(outline.buffer(120.0)), line


def _lakes(parks: list[tuple[str, object]], fingerprint: str) -> list:
    """Ponds in about two of three parks: an ellipse about the park's middle, inside its shrunk shape."""
    lakes = []
    for code, cell in parks:
        choice = _seeded(fingerprint, code)
        if choice % 3 == 0:
            continue
        inner = cell.buffer(-35.0)
        if inner.is_empty or inner.area < 1500.0:
            continue
        centre = inner.point_on_surface()
        radius = math.sqrt(inner.area / math.pi)
        ellipse = affinity.rotate(affinity.scale(Point(centre).buffer(radius, 32), 1.25, 0.75),
                                  choice % 180, origin=centre)
        lake = ellipse.intersection(inner).buffer(-12.0).buffer(12.0)
        if not lake.is_empty and lake.area >= 800.0:
            lakes.append(max(getattr(lake, "geoms", [lake]), key=lambda part: part.area))
    return lakes


def _add_water(conn: psycopg.Connection, fingerprint: str) -> None:
    outline = shapely.from_wkb(bytes(conn.execute(
        "SELECT ST_AsBinary(ST_Transform(ST_Union(geom), 4548)) FROM district WHERE valid_to IS NULL").fetchone()[0]))
    parks = [(code, shapely.from_wkb(bytes(wkb))) for code, wkb in conn.execute(
        "SELECT code, ST_AsBinary(ST_Transform(geom, 4548)) FROM micro_grid WHERE valid_to IS NULL "
        "AND compound_code IS NULL AND (name LIKE '%公园%' OR name LIKE '%绿地%') ORDER BY code")]
    conn.execute("CREATE TEMP TABLE bm_water (kind text, name text, geom geometry(Geometry, 3857)) ON COMMIT DROP")
    river, course = _river(outline, fingerprint)
    river_name = RIVER_NAMES[_seeded(fingerprint, "river-name") % len(RIVER_NAMES)]
    rows = [("river", river_name, river)]
    rows += [("lake", LAKE_NAMES[i % len(LAKE_NAMES)], lake) for i, lake in enumerate(_lakes(parks, fingerprint))]
    with conn.cursor() as cursor:
        for kind, name, geom in rows:
            cursor.execute("INSERT INTO bm_water VALUES (%s, %s, ST_Transform(ST_GeomFromWKB(%s, 4548), 3857))",
                           (kind, name, shapely.to_wkb(geom)))
        label_at = course.interpolate(0.5, normalized=True)
        cursor.execute("INSERT INTO bm_label VALUES ('water', %s, 13, 2, 0.0, "
                       "ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4548), 3857))",
                       (river_name, label_at.x, label_at.y))
        cursor.execute("INSERT INTO bm_label SELECT 'water', name, 15, 4, 0.0, ST_PointOnSurface(geom) "
                       "FROM bm_water WHERE kind = 'lake'")
    conn.execute("CREATE INDEX ON bm_water USING gist (geom)")


def _statements(sql: str) -> list[str]:
    """The statements of a script (split at semicolons ending a line; comment lines dropped)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";\n") if part.strip().rstrip(";").strip()]


def tile_range(bounds: tuple[float, float, float, float], z: int) -> tuple[range, range]:
    """The columns and rows (XYZ) of the zoom-z tiles that cover Web Mercator `bounds`."""
    west, south, east, north = bounds
    side = 1 << z
    scale = side / (2 * WEB_MERCATOR_HALF)

    def column(mx: float) -> int:
        return min(side - 1, max(0, int((mx + WEB_MERCATOR_HALF) * scale)))

    def row(my: float) -> int:
        return min(side - 1, max(0, int((WEB_MERCATOR_HALF - my) * scale)))

    return range(column(west), column(east) + 1), range(row(north), row(south) + 1)


def _write_mbtiles(path: Path, tiles: dict[tuple[int, int, int], bytes], metadata: dict[str, str]) -> None:
    if path.exists():
        path.unlink()
    conn = sqlite3.connect(path)
    try:
        conn.executescript("""
            CREATE TABLE metadata (name text, value text);
            CREATE UNIQUE INDEX metadata_name ON metadata (name);
            CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);
            CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
        """)
        conn.executemany("INSERT INTO metadata VALUES (?, ?)", sorted(metadata.items()))
        conn.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)",
                         [(z, x, (1 << z) - 1 - y, body) for (z, x, y), body in sorted(tiles.items())])
        conn.commit()
    finally:
        conn.close()


def build_basemap(url: str, out: str | Path, *, minzoom: int = DEFAULT_MINZOOM, maxzoom: int = DEFAULT_MAXZOOM,
                  road_names: Sequence[str] = (), if_changed: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Write the base map of the city in database `url` to the MBTiles file `out` (zooms minzoom..maxzoom).

    With `if_changed`, a file already made by gridgov from the same city is left as it is, and so is a file that
    gridgov did not make (a city's own base map); without it, such a file is never overwritten (SetupError).
    `progress(done, total)` is called per tile."""
    if not 0 <= minzoom <= maxzoom <= 20:
        raise InvalidInput(f"底图级别应满足 0 ≤ 最小级别 ≤ 最大级别 ≤ 20（给出的是 {minzoom} 到 {maxzoom}）")
    out = Path(out)
    started = time.perf_counter()
    existing = file_metadata(out) if out.exists() else None
    if out.exists() and (existing is None or existing.get("generator") != GENERATOR):
        if if_changed:  # a city's own base map is configured: it is the one to serve
            return BuildReport(out, "", built=False, bytes=out.stat().st_size, own_file=True)
        raise SetupError(f"{out} 已存在且不是 gridgov 生成的底图，不会覆盖（请换一个输出路径）")
    with psycopg.connect(libpq_url(url)) as conn:
        fingerprint = city_fingerprint(conn, road_names)
        if if_changed and existing and existing.get("gridgov_fingerprint") == fingerprint \
                and existing.get("minzoom") == str(minzoom) and existing.get("maxzoom") == str(maxzoom):
            return BuildReport(out, fingerprint, built=False, bytes=out.stat().st_size)
        params = {"road_names": list(road_names)}
        for statement in _statements(PREPARE_SQL):
            conn.execute(statement, params)
        _add_water(conn, fingerprint)
        extent = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM "
            "(SELECT geom FROM bm_district UNION ALL SELECT geom FROM bm_water) g) s").fetchone()
        lonlat = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(ST_Transform(geom, 4326))"
            " AS e FROM (SELECT geom FROM bm_district UNION ALL SELECT geom FROM bm_water) g) s").fetchone()
        addresses = []
        for z in range(minzoom, maxzoom + 1):
            columns, rows = tile_range(extent, z)
            addresses += [(z, x, y) for x in columns for y in rows]
        tiles: dict[tuple[int, int, int], bytes] = {}
        by_zoom: dict[int, int] = {}
        with conn.cursor() as cursor:
            for done, (z, x, y) in enumerate(addresses, start=1):
                tolerance = 2 * WEB_MERCATOR_HALF / (1 << z) / EXTENT
                body = cursor.execute(TILE_SQL, {"z": z, "x": x, "y": y, "tolerance": tolerance}).fetchone()[0]
                if body:
                    tiles[(z, x, y)] = gzip.compress(bytes(body), compresslevel=9, mtime=0)
                    by_zoom[z] = by_zoom.get(z, 0) + 1
                if progress:
                    progress(done, len(addresses))
        district_names = [row[0] for row in conn.execute("SELECT name FROM bm_district ORDER BY code")]
        conn.rollback()  # the temporary tables go; nothing in the city was written
    west, south, east, north = lonlat
    metadata = {
        "name": f"{'、'.join(district_names)}底图",
        "description": "由 gridgov 根据本市街道、社区、网格和小区图层生成的演示底图",
        "attribution": ATTRIBUTION,
        "format": "pbf",
        "type": "baselayer",
        "version": str(BUILDER_VERSION),
        "minzoom": str(minzoom),
        "maxzoom": str(maxzoom),
        "bounds": f"{west:.6f},{south:.6f},{east:.6f},{north:.6f}",
        "center": f"{(west + east) / 2:.6f},{(south + north) / 2:.6f},{min(max(minzoom, 13), maxzoom)}",
        "json": json.dumps({"vector_layers": [{**layer, "minzoom": minzoom, "maxzoom": maxzoom}
                                              for layer in VECTOR_LAYERS]}, ensure_ascii=False),
        "generator": GENERATOR,
        "gridgov_fingerprint": fingerprint,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        _write_mbtiles(partial, tiles, metadata)
        os.replace(partial, out)
    finally:
        if partial.exists():
            partial.unlink()
    return BuildReport(out, fingerprint, built=True, tiles=len(tiles), bytes=out.stat().st_size,
                       seconds=time.perf_counter() - started, tiles_by_zoom=by_zoom)
