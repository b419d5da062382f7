"""Geometry from users, checked and bounded in the application before any SQL sees it.

A drawn area (绘制区域) arrives as GeoJSON text or an already parsed object. It is read here without recursion,
within fixed caps, into shapely; invalid parts are repaired only while repair is provably cheap, and the result is
one valid (Multi)Polygon in WGS-84 lon/lat. PostGIS then only reads that geometry (no ST_MakeValid in SQL): GEOS
repairing overlapping parts inside the database ran for minutes and could not be cancelled.

Why the caps bound the cost: repairing and merging cost in proportion to the edge crossings they meet, and n
segments cross at most n²/2 times. Repair (make_valid, "structure" method: GEOS's "linework" method took 52 s on
one 151-vertex star) runs only while the invalid parts have at most REPAIR_MAX_VERTICES vertices together;
merging overlapping parts (union) runs only while a bound on their crossings stays within UNION_MAX_CROSSINGS.
Anything larger must already be valid, which GEOS checks in O(n log n) without repairing.
"""

from __future__ import annotations

import json
import math
import re

import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping

from gis.errors import InvalidInput

MAX_TEXT_CHARS = 262_144
"""Longest GeoJSON text read (a drawn area of MAX_VERTICES vertices at 6 decimals takes about 130 KB)."""
MAX_PARTS = 50
MAX_RINGS_PER_PART = 20
MAX_VERTICES = 5_000
"""All positions of all rings together."""
REPAIR_MAX_VERTICES = 64
"""Invalid parts (self-intersecting rings, crossing holes) are repaired in shapely only while they have at most
this many vertices together; otherwise the area is refused."""
UNION_MAX_CROSSINGS = 20_000
"""Overlapping parts are merged only while `_union_cost` (a bound on the crossings met) stays within this."""
MAX_DEPTH = 8
"""Deepest nesting of a GeoJSON Feature holding a MultiPolygon (object, geometry, coordinates, 3 arrays, position)."""


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def _depth_ok(text: str) -> bool:
    """Whether brackets in `text` nest at most MAX_DEPTH deep (strings skipped), without recursion."""
    depth = 0
    for char in _BRACKETS.findall(_STRING.sub("", text)):
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        else:
            depth -= 1
    return True


def _load(value) -> dict:
    if isinstance(value, (bytes, bytearray)):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("多边形必须是 UTF-8 编码的 GeoJSON") from None
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            raise InvalidInput(f"多边形的 GeoJSON 超过 {MAX_TEXT_CHARS} 个字符")
        if not _depth_ok(value):
            raise InvalidInput("多边形的 GeoJSON 嵌套层数过多")
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError) as error:
            reason = getattr(error, "msg", "嵌套层数过多")
            raise InvalidInput(f"多边形不是有效的 JSON：{reason}") from None
    if not isinstance(value, dict):
        raise InvalidInput("多边形必须是 GeoJSON 对象")
    if value.get("type") == "Feature":
        value = value.get("geometry")
        if not isinstance(value, dict):
            raise InvalidInput("GeoJSON 要素（Feature）没有几何")
    if value.get("type") not in ("Polygon", "MultiPolygon"):
        raise InvalidInput("多边形必须是 GeoJSON 的 Polygon 或 MultiPolygon")
    return value


def _position(item) -> tuple[float, float]:
    if not isinstance(item, (list, tuple)) or len(item) not in (2, 3):
        raise InvalidInput("多边形的每个顶点必须是 [经度, 纬度]")
    lon, lat = item[0], item[1]
    for number in (lon, lat):
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise InvalidInput("多边形顶点的经纬度必须是有限的数字")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput("多边形顶点必须是 WGS-84 经纬度（经度 -180 到 180，纬度 -90 到 90）")
    return float(lon), float(lat)


def _ring(item, counter: list[int]) -> list[tuple[float, float]]:
    if not isinstance(item, (list, tuple)):
        raise InvalidInput("多边形的环必须是顶点数组")
    counter[0] += len(item)
    if counter[0] > MAX_VERTICES:
        raise InvalidInput(f"多边形的顶点超过 {MAX_VERTICES} 个")
    points = [_position(p) for p in item]
    # simple repair: drop repeated consecutive vertices, close an open ring
    ring = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    if len(ring) < 4:
        raise InvalidInput("多边形的每个环至少需要三个不同的顶点")
    return ring


def _parts(geometry: dict) -> list[list[list[tuple[float, float]]]]:
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, (list, tuple)) or not coordinates:
        raise InvalidInput("多边形没有坐标")
    polygons = [coordinates] if geometry["type"] == "Polygon" else list(coordinates)
    if len(polygons) > MAX_PARTS:
        raise InvalidInput(f"多边形最多可有 {MAX_PARTS} 个部分")
    counter = [0]
    parts = []
    for polygon in polygons:
        if not isinstance(polygon, (list, tuple)) or not polygon:
            raise InvalidInput("多边形的每个部分必须是环的数组")
        if len(polygon) > MAX_RINGS_PER_PART:
            raise InvalidInput(f"多边形的每个部分最多可有 {MAX_RINGS_PER_PART} 个环")
        parts.append([_ring(ring, counter) for ring in polygon])
    return parts


def _polygonal(geometry) -> list[Polygon]:
    """The polygons of a repaired geometry (make_valid may also give lines and points where area collapsed)."""
    if isinstance(geometry, Polygon):
        return [] if geometry.is_empty else [geometry]
    if isinstance(geometry, MultiPolygon) or hasattr(geometry, "geoms"):
        return [p for g in geometry.geoms for p in _polygonal(g)]
    return []


def _union_cost(polygons: list[Polygon]) -> int:
    """An upper bound on the edge crossings a union can meet: the product of the vertex counts of every pair of
    parts whose bounding boxes meet (parts apart cost nothing)."""
    sizes = shapely.get_num_coordinates(polygons)
    tree = shapely.STRtree(polygons)
    left, right = tree.query(polygons)  # bounding boxes only: cheap, and an upper bound all the same
    pairs = left < right
    return int((sizes[left[pairs]].astype("int64") * sizes[right[pairs]]).sum())


def valid_area(value) -> Polygon | MultiPolygon:
    """A drawn area as one valid, non-empty shapely (Multi)Polygon in WGS-84, or InvalidInput with the reason."""
    parts = [Polygon(rings[0], rings[1:]) for rings in _parts(_load(value))]
    valid = shapely.is_valid(parts)
    to_repair = int(sum(shapely.get_num_coordinates(p) for p, ok in zip(parts, valid) if not ok))
    if to_repair > REPAIR_MAX_VERTICES:
        raise InvalidInput(f"多边形自相交或环相互交叉，且需要修复的顶点超过 {REPAIR_MAX_VERTICES} 个，无法自动修复，"
                           "请重新绘制")
    polygons = [q for p, ok in zip(parts, valid)
                for q in ([p] if ok else _polygonal(shapely.make_valid(p, method="structure")))]
    if not polygons:
        raise InvalidInput("多边形的面积为零")
    if len(polygons) == 1:
        return polygons[0]
    area = MultiPolygon(polygons)
    if area.is_valid:
        return area
    if _union_cost(polygons) > UNION_MAX_CROSSINGS:
        raise InvalidInput("多边形的各部分相互重叠，且过于复杂，无法自动合并；请合并为互不重叠的部分后再提交")
    found = _polygonal(shapely.union_all(polygons))
    if not found:
        raise InvalidInput("多边形的面积为零")
    merged = found[0] if len(found) == 1 else MultiPolygon(found)
    if shapely.get_num_coordinates(merged) > MAX_VERTICES:
        # the merged outline is what PostGIS tests every point against: it keeps to the same cap
        raise InvalidInput(f"多边形的各部分相互重叠，合并后的顶点超过 {MAX_VERTICES} 个；请简化后再提交")
    return merged


def valid_area_geojson(value) -> dict:
    """valid_area as a GeoJSON geometry mapping (lists, ready for json.dumps)."""
    return json.loads(json.dumps(mapping(valid_area(value))))


def area_wkb(value) -> bytes:
    """valid_area as WKB, the form sent to PostGIS (read there with ST_GeomFromWKB, never repaired in SQL)."""
    return shapely.to_wkb(valid_area(value))
