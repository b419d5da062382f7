"""Coordinate reference systems met in Chinese city data, and conversion into the storage system (EPSG:4326).

Systems handled:
- WGS-84 (EPSG:4326), the storage system.
- CGCS2000 (国家2000, EPSG:4490) and its Gauss–Krüger projections (EPSG:4491–4554). CGCS2000 and WGS-84 agree
  to a few centimetres at the scale of a city, so CGCS2000 lon/lat is taken as WGS-84 without a shift (the same
  choice PROJ makes); projected zones go through pyproj.
- GCJ-02 (国测局坐标, "Mars coordinates", used by AMap 高德 and Tencent 腾讯): an obfuscating offset of up to about
  700 m applied to WGS-84 inside China. The forward offset is a published formula; its inverse is found by
  iteration, to a residual below 1e-9 degrees (a tenth of a millimetre).
- BD-09 (Baidu 百度): a further offset on top of GCJ-02, inverted by iteration in the same way.

Names are normalised to "EPSG:NNNN", "GCJ-02" or "BD-09".
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pyproj
import shapely

from gis.errors import InvalidInput

WGS84 = "EPSG:4326"
CGCS2000 = "EPSG:4490"
GCJ02 = "GCJ-02"
BD09 = "BD-09"

_GEOGRAPHIC_AS_STORAGE = frozenset({WGS84, CGCS2000})

_ALIASES = {
    "wgs84": WGS84, "wgs-84": WGS84, "wgs 84": WGS84, "wgs_84": WGS84, "epsg:4326": WGS84, "4326": WGS84,
    "crs84": WGS84, "ogc:crs84": WGS84, "urn:ogc:def:crs:ogc:1.3:crs84": WGS84,
    "http://www.opengis.net/def/crs/ogc/1.3/crs84": WGS84, "https://www.opengis.net/def/crs/ogc/1.3/crs84": WGS84,
    "cgcs2000": CGCS2000, "cgcs-2000": CGCS2000, "cgcs 2000": CGCS2000, "epsg:4490": CGCS2000, "4490": CGCS2000,
    "国家2000": CGCS2000,
    "gcj02": GCJ02, "gcj-02": GCJ02, "gcj_02": GCJ02, "gcj": GCJ02, "amap": GCJ02, "autonavi": GCJ02,
    "gaode": GCJ02, "tencent": GCJ02, "qq": GCJ02, "mars": GCJ02, "高德": GCJ02, "腾讯": GCJ02, "火星坐标": GCJ02,
    "bd09": BD09, "bd-09": BD09, "bd_09": BD09, "bd09ll": BD09, "baidu": BD09, "百度": BD09,
}

# EPSG blocks of the CGCS2000 Gauss–Krüger projections: (first code, first zone or central meridian, step).
_GK6_ZONE = (4491, 13, 23)  # 6-degree zones 13–23, easting prefixed with the zone number
_GK6_CM = (4502, 75, 135)  # 6-degree, central meridian 75E–135E, no prefix
_GK3_ZONE = (4513, 25, 45)  # 3-degree zones 25–45, prefixed
_GK3_CM = (4534, 75, 135)  # 3-degree, central meridian 75E–135E, no prefix


def _gauss_kruger_code(text: str) -> int | None:
    """EPSG code of a CGCS2000 Gauss–Krüger name such as 'CGCS2000 3-degree GK zone 39' or 'cgcs2000 gk cm117e'."""
    if not re.search(r"cgcs\s*[-_ ]?\s*2000|国家\s*2000", text):
        return None
    three_degree = re.search(r"3\s*[-_ ]?\s*(degree|deg|度|°)", text) is not None
    zone = re.search(r"(zone|带)\s*[-_ ]?\s*(\d{2})", text)
    meridian = re.search(r"(cm|中央经线|central meridian)\s*[-_ ]?\s*(\d{2,3})\s*e?", text)
    if zone:
        number = int(zone.group(2))
        first, low, high = _GK3_ZONE if three_degree else _GK6_ZONE
        if low <= number <= high:
            return first + number - low
        raise InvalidInput(f"CRS {text!r}: no CGCS2000 {'3' if three_degree else '6'}-degree zone {number}")
    if meridian:
        degrees = int(meridian.group(2))
        first, low, high = _GK3_CM if three_degree else _GK6_CM
        step = 3 if three_degree else 6
        if low <= degrees <= high and (degrees - low) % step == 0:
            return first + (degrees - low) // step
        raise InvalidInput(f"CRS {text!r}: no CGCS2000 {step}-degree projection with central meridian {degrees}E")
    return None


@lru_cache(maxsize=256)
def normalise_crs(name: str) -> str:
    """The canonical name of a coordinate system: 'EPSG:NNNN', 'GCJ-02' or 'BD-09'.

    Accepts common aliases (wgs84, CRS84, cgcs2000, amap, tencent, baidu …), CGCS2000 Gauss–Krüger names, any
    EPSG code and anything else pyproj knows that has an EPSG code. Raises InvalidInput otherwise.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("a coordinate system must be named (e.g. EPSG:4326, CGCS2000, GCJ-02, BD-09)")
    text = " ".join(name.strip().lower().split())
    if text in _ALIASES:
        return _ALIASES[text]
    code = _gauss_kruger_code(text)
    if code is not None:
        return f"EPSG:{code}"
    if text.isdigit():
        text = f"epsg:{text}"
    try:
        crs = pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError:
        raise InvalidInput(
            f"unknown coordinate system {name!r}; use an EPSG code, CGCS2000 (or a Gauss–Krüger zone), "
            "WGS-84, GCJ-02 or BD-09"
        ) from None
    if crs.to_authority() == ("OGC", "CRS84"):
        return WGS84
    epsg = crs.to_epsg()
    if epsg is None:
        raise InvalidInput(f"coordinate system {name!r} has no EPSG code; name it by its EPSG code instead")
    return f"EPSG:{epsg}"


# --- GCJ-02 and BD-09 ------------------------------------------------------------------------------------

_KRASOVSKY_A = 6378245.0
_KRASOVSKY_E2 = 0.00669342162296594323
_BD_FACTOR = np.pi * 3000.0 / 180.0
_RESIDUAL_DEGREES = 1e-9
_MAX_ITERATIONS = 40


def _inside_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The rough rectangle where GCJ-02 applies its offset (outside it GCJ-02 equals WGS-84)."""
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _gcj_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The GCJ-02 offset (degrees) to add to a WGS-84 point."""
    x = lon - 105.0
    y = lat - 35.0
    root = np.sqrt(np.abs(x))
    waves = (20.0 * np.sin(6.0 * np.pi * x) + 20.0 * np.sin(2.0 * np.pi * x)) * 2.0 / 3.0
    north = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * root + waves
             + (20.0 * np.sin(np.pi * y) + 40.0 * np.sin(np.pi * y / 3.0)) * 2.0 / 3.0
             + (160.0 * np.sin(np.pi * y / 12.0) + 320.0 * np.sin(np.pi * y / 30.0)) * 2.0 / 3.0)
    east = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * root + waves
            + (20.0 * np.sin(np.pi * x) + 40.0 * np.sin(np.pi * x / 3.0)) * 2.0 / 3.0
            + (150.0 * np.sin(np.pi * x / 12.0) + 300.0 * np.sin(np.pi * x / 30.0)) * 2.0 / 3.0)
    phi = np.radians(lat)
    w = 1.0 - _KRASOVSKY_E2 * np.sin(phi) ** 2
    dlat = north * 180.0 / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_E2)) / (w * np.sqrt(w)) * np.pi)
    dlon = east * 180.0 / (_KRASOVSKY_A / np.sqrt(w) * np.cos(phi) * np.pi)
    inside = _inside_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def _wgs_to_gcj(lon, lat):
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _gcj_to_bd(lon, lat):
    radius = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _BD_FACTOR)
    angle = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_FACTOR)
    return radius * np.cos(angle) + 0.0065, radius * np.sin(angle) + 0.006


def _bd_to_gcj_first_guess(lon, lat):
    x = lon - 0.0065
    y = lat - 0.006
    radius = np.hypot(x, y) - 0.00002 * np.sin(y * _BD_FACTOR)
    angle = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_FACTOR)
    return radius * np.cos(angle), radius * np.sin(angle)


def _invert(forward, target_lon, target_lat, guess_lon, guess_lat):
    """Solve forward(p) = target by fixed-point steps (the offsets change slowly, so each step gains digits)."""
    lon, lat = guess_lon.copy(), guess_lat.copy()
    for _ in range(_MAX_ITERATIONS):
        got_lon, got_lat = forward(lon, lat)
        error_lon, error_lat = got_lon - target_lon, got_lat - target_lat
        lon = lon - error_lon
        lat = lat - error_lat
        residual = np.nanmax(np.abs(np.concatenate([error_lon.ravel(), error_lat.ravel()])), initial=0.0)
        if residual < _RESIDUAL_DEGREES:
            break
    return lon, lat


def _gcj_to_wgs(lon, lat):
    return _invert(_wgs_to_gcj, lon, lat, lon, lat)


def _bd_to_gcj(lon, lat):
    guess_lon, guess_lat = _bd_to_gcj_first_guess(lon, lat)
    return _invert(_gcj_to_bd, lon, lat, guess_lon, guess_lat)


# --- pyproj ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _transformer(source: str, target: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


def _as_arrays(x, y) -> tuple[np.ndarray, np.ndarray, bool]:
    try:
        xs = np.asarray(x, dtype=float)
        ys = np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInput("coordinates must be numbers") from None
    if xs.shape != ys.shape:
        raise InvalidInput(f"x and y differ in shape: {xs.shape} and {ys.shape}")
    scalar = xs.ndim == 0
    return np.atleast_1d(xs), np.atleast_1d(ys), scalar


def storage_coordinates_ok(lon, lat) -> np.ndarray:
    """Where converted coordinates are usable: finite and within lon [-180, 180], lat [-90, 90]."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0)


def _gauss_kruger_zone(crs: str) -> tuple[int, bool] | None:
    """(zone number, easting carries the zone prefix) of a CGCS2000 Gauss–Krüger EPSG code, else None."""
    code = int(crs.split(":")[1]) if crs.startswith("EPSG:") else 0
    if _GK6_ZONE[0] <= code <= _GK6_ZONE[0] + _GK6_ZONE[2] - _GK6_ZONE[1]:
        return _GK6_ZONE[1] + code - _GK6_ZONE[0], True
    if _GK3_ZONE[0] <= code <= _GK3_ZONE[0] + _GK3_ZONE[2] - _GK3_ZONE[1]:
        return _GK3_ZONE[1] + code - _GK3_ZONE[0], True
    if _GK6_CM[0] <= code <= _GK6_CM[0] + (_GK6_CM[2] - _GK6_CM[1]) // 6:
        meridian = _GK6_CM[1] + 6 * (code - _GK6_CM[0])
        return (meridian + 3) // 6, False
    if _GK3_CM[0] <= code <= _GK3_CM[0] + (_GK3_CM[2] - _GK3_CM[1]) // 3:
        meridian = _GK3_CM[1] + 3 * (code - _GK3_CM[0])
        return meridian // 3, False
    return None


def _fix_zone_prefix(xs: np.ndarray, crs: str) -> np.ndarray:
    """Eastings written with the zone prefix for a system without it (or the reverse) are read as meant.

    Gauss–Krüger eastings lie within 0–1,000,000 m of the zone's false origin, so '39500000' in a system without
    prefix, or '500000' in one with it, can only mean the other convention.
    """
    zone = _gauss_kruger_zone(crs)
    if zone is None:
        return xs
    number, prefixed = zone
    if prefixed:
        return np.where((xs >= 0) & (xs < 1_000_000), xs + number * 1_000_000, xs)
    return np.where(np.floor(xs / 1_000_000) == number, xs - number * 1_000_000, xs)


def _to_storage_arrays(xs: np.ndarray, ys: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    xs = _fix_zone_prefix(xs, crs)
    if crs in _GEOGRAPHIC_AS_STORAGE:
        return xs.copy(), ys.copy()
    if crs == GCJ02:
        return _gcj_to_wgs(xs, ys)
    if crs == BD09:
        return _gcj_to_wgs(*_bd_to_gcj(xs, ys))
    return _transformer(crs, WGS84).transform(xs, ys, errcheck=False)


PROJECTED_MARGIN_M = 1_000_000.0
"""How far outside the projected bounds of its area of use a coordinate may lie and still be read."""
ROUND_TRIP_TOLERANCE = {True: 1.0, False: 1e-6}
"""Metres (projected systems) or degrees (geographic ones) a converted point may miss its input by on the way
back: a point that does not come back was outside the system's mathematical domain (1e308 in EPSG:3857 gives
lon -180, lat 90, which maps back to infinity)."""


@lru_cache(maxsize=64)
def _projected_bounds(crs: str) -> tuple[float, float, float, float] | None:
    """Projected bounds of the area of use of a pyproj system, widened by PROJECTED_MARGIN_M (None if unknown)."""
    if crs in _GEOGRAPHIC_AS_STORAGE or crs in (GCJ02, BD09):
        return None
    system = pyproj.CRS.from_user_input(crs)
    if not system.is_projected or system.area_of_use is None:
        return None
    west, south, east, north = _transformer(WGS84, crs).transform_bounds(*system.area_of_use.bounds)
    if not all(np.isfinite((west, south, east, north))):
        return None
    return (west - PROJECTED_MARGIN_M, south - PROJECTED_MARGIN_M, east + PROJECTED_MARGIN_M,
            north + PROJECTED_MARGIN_M)


def _within_domain(xs: np.ndarray, ys: np.ndarray, lon: np.ndarray, lat: np.ndarray, crs: str) -> np.ndarray:
    """Where input coordinates in `crs` lie in the system's domain: inside the (widened) projected bounds of its
    area of use, and converted to lon/lat and back they come home. One rule for every path that converts."""
    ok = np.isfinite(xs) & np.isfinite(ys)
    if crs in _GEOGRAPHIC_AS_STORAGE:
        return ok
    bounds = _projected_bounds(crs)
    if bounds is not None:
        ok &= (xs >= bounds[0]) & (xs <= bounds[2]) & (ys >= bounds[1]) & (ys <= bounds[3])
    usable = ok & storage_coordinates_ok(lon, lat)
    if usable.any():
        back_x, back_y = _from_storage_arrays(lon[usable], lat[usable], crs)
        tolerance = ROUND_TRIP_TOLERANCE[bounds is not None]
        home = (np.abs(back_x - xs[usable]) <= tolerance) & (np.abs(back_y - ys[usable]) <= tolerance)
        ok[np.flatnonzero(usable)[~home]] = False
    return ok


def _from_storage_arrays(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    if crs in _GEOGRAPHIC_AS_STORAGE:
        return lon.copy(), lat.copy()
    if crs == GCJ02:
        return _wgs_to_gcj(lon, lat)
    if crs == BD09:
        return _gcj_to_bd(*_wgs_to_gcj(lon, lat))
    return _transformer(WGS84, crs).transform(lon, lat, errcheck=False)


def _finish(a: np.ndarray, b: np.ndarray, scalar: bool):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return (float(a[0]), float(b[0])) if scalar else (a, b)


def to_storage(x, y, crs: str, *, check: bool = True):
    """Convert coordinates in `crs` to WGS-84 (lon, lat); scalars give floats, arrays give arrays.

    Raises InvalidInput for non-finite input or results outside lon [-180, 180], lat [-90, 90] (with
    check=False such points come back as they are, to be sorted out by the caller with storage_coordinates_ok).
    """
    crs = normalise_crs(crs)
    xs, ys, scalar = _as_arrays(x, y)
    if check and not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise InvalidInput("coordinates must be finite numbers (no NaN or infinity)")
    with np.errstate(invalid="ignore", over="ignore"):
        lon, lat = _to_storage_arrays(xs, ys, crs)
        # out-of-domain input gives no point (NaN), so callers sorting with storage_coordinates_ok drop it too
        outside = ~_within_domain(_fix_zone_prefix(xs, crs), ys, np.asarray(lon, dtype=float),
                                  np.asarray(lat, dtype=float), crs)
    if outside.any():
        if check:
            bad = int(np.flatnonzero(outside)[0])
            raise InvalidInput(f"坐标 ({xs[bad]:g}, {ys[bad]:g}) 超出坐标系 {crs} 的有效范围，请检查坐标系是否正确")
        lon, lat = np.where(outside, np.nan, lon), np.where(outside, np.nan, lat)
    if check:
        ok = storage_coordinates_ok(lon, lat)
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            raise InvalidInput(
                f"坐标 ({xs[bad]}, {ys[bad]})（坐标系 {crs}）不是地球上的点"
                f"（经度须在 [-180, 180]、纬度须在 [-90, 90] 之内），请检查坐标系是否正确"
            )
    return _finish(lon, lat, scalar)


def from_storage(lon, lat, crs: str):
    """Convert WGS-84 (lon, lat) to coordinates in `crs`: the inverse of to_storage."""
    crs = normalise_crs(crs)
    lons, lats, scalar = _as_arrays(lon, lat)
    if not storage_coordinates_ok(lons, lats).all():
        raise InvalidInput("WGS-84 coordinates must be finite, with lon within [-180, 180] and lat within [-90, 90]")
    x, y = _from_storage_arrays(lons, lats, crs)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InvalidInput(f"some points lie outside the area where {crs} is defined")
    return _finish(x, y, scalar)


def transform_geometries(geoms, crs: str, *, inverse: bool = False):
    """Convert an array of shapely geometries from `crs` to WGS-84 (or back, with inverse=True)."""
    crs = normalise_crs(crs)
    geoms = np.asarray(geoms, dtype=object)
    if crs in _GEOGRAPHIC_AS_STORAGE:
        return geoms.copy()
    convert = from_storage if inverse else to_storage

    def points(coords: np.ndarray) -> np.ndarray:
        if len(coords) == 0:
            return coords
        a, b = convert(coords[:, 0], coords[:, 1], crs)
        return np.column_stack([a, b])

    return shapely.transform(geoms, points, include_z=False)
