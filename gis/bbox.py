"""Bounding boxes given as text, `minlon,minlat,maxlon,maxlat` in WGS-84."""

from __future__ import annotations

import math

from gis.errors import InvalidInput

BBox = tuple[float, float, float, float]


def parse_bbox(value: str | None) -> BBox | None:
    """The four numbers of a bbox parameter, checked; None when the parameter is absent."""
    if value is None:
        return None
    try:
        numbers = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise InvalidInput("bbox must be four numbers: minlon,minlat,maxlon,maxlat") from None
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise InvalidInput("bbox must be four numbers: minlon,minlat,maxlon,maxlat")
    minx, miny, maxx, maxy = numbers
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise InvalidInput("bbox must be minlon,minlat,maxlon,maxlat in WGS-84 with min < max")
    return numbers  # type: ignore[return-value]
