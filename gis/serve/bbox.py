"""Bounding boxes given as text, `minlon,minlat,maxlon,maxlat` in WGS-84: the one parser of every bbox parameter
(layers, tickets, the map's reads, OGC API – Features).

Numbers are read by the one number rule (gis.numbers: ASCII decimals, finite). OGC API – Features asks for two
extras, each an option: six numbers (corners with heights, the heights ignored) and a box crossing the
antimeridian (minlon > maxlon, as the standard allows; such a box may also be flat, min == max)."""

from __future__ import annotations

from gis.errors import InvalidInput
from gis.numbers import parse_float

BBox = tuple[float, float, float, float]

_FOUR = "bbox 必须是四个用逗号分隔的数字：最小经度,最小纬度,最大经度,最大纬度（WGS-84）"
_FOUR_OR_SIX = "bbox 必须是四个（或六个，含高度）用逗号分隔的数字：最小经度,最小纬度,最大经度,最大纬度"
_ORDER = "bbox 的经度须在 -180 到 180 之间、纬度须在 -90 到 90 之间，且最小值小于最大值"
_ORDER_OGC = "bbox 的经度须在 -180 到 180 之间、纬度须在 -90 到 90 之间，且最小纬度不大于最大纬度"


def parse_bbox(value: str | None, *, heights: bool = False, antimeridian: bool = False) -> BBox | None:
    """The four numbers of a bbox parameter, checked; None when the parameter is absent.

    `heights`: six numbers (minlon,minlat,minh,maxlon,maxlat,maxh) are accepted too, the heights dropped.
    `antimeridian`: minlon > maxlon means the box crosses 180°, and a flat box (min == max) is a box; without
    it both pairs must be strictly ordered."""
    if value is None:
        return None
    parts = value.split(",")
    if len(parts) not in ((4, 6) if heights else (4,)):
        raise InvalidInput(_FOUR_OR_SIX if heights else _FOUR)
    numbers = [parse_float(part, "bbox") for part in parts]
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    minx, miny, maxx, maxy = numbers
    if antimeridian:
        ordered = -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90
    else:
        ordered = -180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90
    if not ordered:
        raise InvalidInput(_ORDER_OGC if antimeridian else _ORDER)
    return minx, miny, maxx, maxy
