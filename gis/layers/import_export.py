"""Import and export of pyramid layers as GeoJSON, GeoPackage or Shapefile.

Import reads a file with pyogrio, converts its coordinates to EPSG:4326 (the file's own CRS, or the declared one,
which wins: GCJ-02 and BD-09 must be declared since no file format can say so), repairs invalid polygons when the
repair keeps the area, and reports on every feature: imported, repaired or rejected with the reason (in Chinese,
for the people who fix the file). Geometry is read feature by feature from its WKB, so one that GEOS cannot build
(a ring of two points, an unclosed ring, NaN coordinates) is repaired or rejected alone and never stops the
rest; a building whose micro-grid (or compound) does not exist is rejected too. Features go
into PostGIS through COPY into a staging table and a few set-based statements: a code seen for the first time is
inserted; the same geometry and attributes change nothing; new attributes on the same geometry are updated in
place; a changed geometry closes the current version (valid_to = the import's valid-from date) and adds a new one,
so history is kept.
"""

from __future__ import annotations

import json
import math
import re
import struct
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyogrio
import pyproj
import shapely
from sqlalchemy import Boolean, Date, Float, Integer, Numeric, String
from sqlalchemy.dialects.postgresql import ARRAY

from gis import STORAGE_SRID
from gis.db.engine import libpq_url
from gis.errors import InvalidInput
from gis.layers.crs import WGS84, normalise_crs, storage_coordinates_ok, to_storage
from gis.layers.models import Base
from gis.layers.pyramid import Layer, get_layer

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as work advances."""

DRIVERS = {"geojson": "GeoJSON", "json": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}
_DRIVER_NAMES = {"GeoJSON": "geojson", "GPKG": "gpkg", "ESRI Shapefile": "shp"}
_SYSTEM_COLUMNS = ("id", "valid_from", "valid_to", "geom")
_LIST_SEPARATORS = re.compile(r"\s*[;；、|]\s*")
_TRUE = {"true", "t", "yes", "y", "1", "是", "有"}
_FALSE = {"false", "f", "no", "n", "0", "否", "无"}

IMPORTED, REPAIRED, REJECTED = "imported", "repaired", "rejected"
INSERTED, NEW_VERSION, UPDATED, UNCHANGED = "inserted", "new_version", "updated", "unchanged"


@dataclass
class FeatureResult:
    """What became of one feature of the file (index = its position in the file, from 0)."""

    index: int
    code: str | None
    status: str
    action: str | None = None
    reason: str | None = None
    geometry: object = None
    fid: int | None = None
    """The feature's id in the file (GeoJSON `id`, GeoPackage fid; else its position)."""


@dataclass
class ImportReport:
    layer: str
    path: str
    source_crs: str
    valid_from: date
    features: list[FeatureResult] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    source: "_Source | None" = field(default=None, repr=False)
    """The features as read (attributes, WKB, the file's CRS): what the rejected file is written from."""

    @property
    def counts(self) -> dict[str, int]:
        """Features by status (imported / repaired / rejected) and by action (inserted, new_version, …)."""
        counts = Counter(feature.status for feature in self.features)
        counts.update(feature.action for feature in self.features if feature.action)
        return {key: counts.get(key, 0) for key in (IMPORTED, REPAIRED, REJECTED, INSERTED, NEW_VERSION,
                                                     UPDATED, UNCHANGED)}

    @property
    def rejected(self) -> list[FeatureResult]:
        return [feature for feature in self.features if feature.status == REJECTED]

    def to_geojson(self) -> dict:
        """The per-feature report as a FeatureCollection (geometry in EPSG:4326 where it could be converted)."""
        features = []
        for feature in self.features:
            geometry = feature.geometry
            ok = geometry is not None and not shapely.is_empty(geometry) and storage_coordinates_ok(
                *shapely.get_coordinates(geometry).T).all()
            features.append({
                "type": "Feature",
                "geometry": json.loads(shapely.to_geojson(geometry)) if ok else None,
                "properties": {"feature": feature.index, "fid": feature.fid, "code": feature.code,
                               "status": feature.status, "action": feature.action, "reason": feature.reason},
            })
        return {"type": "FeatureCollection", "features": features}

    def write_geojson(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_geojson(), ensure_ascii=False), encoding="utf-8")

    def write_rejected(self, path: str | Path, driver: str | None = None) -> int:
        """Write the rejected features as they were read — their own attributes and geometry in the file's
        coordinate system, to fix and import again — with `rejected_feature` (index), `rejected_fid` and
        `rejected_reason` columns. GeoJSON, GeoPackage or Shapefile by the extension; returns how many."""
        import geopandas

        path = Path(path)
        driver = driver_for(path, driver)
        rejected = self.rejected
        indexes = [feature.index for feature in rejected]
        if self.source is not None:
            frame = self.source.frame.iloc[indexes].reset_index(drop=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # unreadable ones are written without geometry
                geometry = shapely.from_wkb(self.source.wkb[indexes], on_invalid="ignore") if indexes else []
            crs = self.source.crs
        else:
            frame, geometry, crs = pd.DataFrame(index=range(len(rejected))), [None] * len(rejected), None
        frame = frame.assign(rejected_feature=indexes, rejected_fid=[feature.fid for feature in rejected],
                             rejected_reason=[feature.reason for feature in rejected])
        unwritable = [column for column in frame.columns
                      if frame[column].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any()]
        for column in unwritable:
            frame[column] = frame[column].map(lambda v: "; ".join(map(str, v))
                                              if isinstance(v, (list, tuple, np.ndarray)) else v)
        data = geopandas.GeoDataFrame(frame, geometry=geopandas.GeoSeries(geometry, crs=crs))
        options: dict = {"encoding": "UTF-8"} if driver == "ESRI Shapefile" else {}
        if driver == "GPKG":
            options["layer"] = f"{self.layer}_rejected"
        elif path.exists():
            path.unlink()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Shapefile field names are shortened, as the file says
            pyogrio.write_dataframe(data, path, driver=driver, **options)
        return len(data)


# --- columns ---------------------------------------------------------------------------------------------

def attribute_columns(layer: Layer) -> dict[str, object]:
    """The table's own attribute columns (name → SQLAlchemy column), without id, validity and geometry."""
    table = Base.metadata.tables[layer.name]
    return {column.name: column for column in table.columns if column.name not in _SYSTEM_COLUMNS}


def required_columns(layer: Layer) -> list[str]:
    """Attributes a new feature must carry: NOT NULL without a default."""
    return [name for name, column in attribute_columns(layer).items()
            if not column.nullable and column.server_default is None]


def shapefile_names(columns: list[str]) -> dict[str, str]:
    """Deterministic ≤10-character field names for Shapefile (which truncates longer ones, colliding)."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        short = column[:10]
        serial = 1
        while short in taken:
            short = f"{column[:8]}{serial:02d}"
            serial += 1
        names[column] = short
        taken.add(short)
    return names


def _column_lookup(layer: Layer, file_columns: list[str], column_map: dict[str, str] | None) -> dict[str, str]:
    """file column → table column, for the file columns gridgov knows."""
    attributes = list(attribute_columns(layer))
    known = {name.lower(): name for name in attributes}
    for name, short in shapefile_names(attributes + ["valid_from"]).items():
        if name in known.values():
            known.setdefault(short.lower(), name)
    if layer.parent_column:
        known.setdefault("parent_code", layer.parent_column)
    mapping: dict[str, str] = {}
    explicit = {source: target for source, target in (column_map or {}).items()}
    for target in explicit.values():
        if target not in attributes:
            raise InvalidInput(f"列映射指向 {target!r}，但图层 {layer.name} 没有这一列")
    for column in file_columns:
        target = explicit.get(column) or (None if column in explicit else known.get(column.lower()))
        if target and target not in mapping.values():
            mapping[column] = target
    return mapping


def _coerce(value, column) -> object:
    """A file value as the column's Python type; ValueError with a reason when it cannot be."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
    kind = column.type
    if isinstance(kind, ARRAY):
        if isinstance(value, (list, tuple, np.ndarray)):
            items = [str(item).strip() for item in value]
        else:
            items = _LIST_SEPARATORS.split(str(value))
        return [item for item in items if item]
    if isinstance(kind, Boolean):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        text = str(value).strip().lower()
        if text.endswith(".0"):
            text = text[:-2]
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{column.name} 应为是或否，而不是 {value!r}")
    if isinstance(kind, Integer):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{column.name} 应为整数，而不是 {value!r}") from None
        if not number.is_integer():
            raise ValueError(f"{column.name} 应为整数，而不是 {value!r}")
        return int(number)
    if isinstance(kind, (Float, Numeric)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{column.name} 应为数字，而不是 {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{column.name} 应为有限的数字")
        return number
    if isinstance(kind, Date):
        try:
            return pd.Timestamp(value).date()
        except (TypeError, ValueError):
            raise ValueError(f"{column.name} 应为日期，而不是 {value!r}") from None
    text = str(value)
    if isinstance(kind, String) and kind.length and len(text) > kind.length:
        raise ValueError(f"{column.name} 超过 {kind.length} 个字符")
    return text


# --- geometry --------------------------------------------------------------------------------------------

_POLYGONAL = {shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON}

_GEOS_REASONS = {
    "Ring Self-intersection": "环自相交", "Self-intersection": "自相交", "Too few points in geometry component":
    "点数不足", "Interior is disconnected": "内部不连通", "Hole lies outside shell": "内环在外环之外",
    "Holes are nested": "内环嵌套", "Nested shells": "外环嵌套", "Duplicate Rings": "环重复",
    "Invalid Coordinate": "坐标无效", "Ring is not closed": "环未闭合",
}


def _why(reason: str) -> str:
    """A GEOS validity reason ('Self-intersection[117.2 36.2]') in Chinese, with its location kept."""
    name, _, where = reason.partition("[")
    return _GEOS_REASONS.get(name.strip(), name.strip()) + (f"（位于 {where.rstrip(']')}）" if where else "")


def _polygonal_part(geometry):
    """The polygons of a make_valid result (which may mix in lines and points) as one geometry, or None."""
    kind = shapely.get_type_id(geometry)
    if kind in _POLYGONAL:
        return geometry
    if kind == shapely.GeometryType.GEOMETRYCOLLECTION:
        parts = [part for part in shapely.get_parts(geometry) if shapely.get_type_id(part) in _POLYGONAL]
        if parts:
            return shapely.union_all(parts)
    return None


def _as_multipolygons(geoms: np.ndarray) -> np.ndarray:
    single = shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON
    out = geoms.copy()
    if single.any():
        out[single] = shapely.multipolygons(geoms[single], indices=np.arange(int(single.sum())))
    return out


DENSIFY_METRES = 50.0
"""Longest edge kept when converting from a projected system (see _densify_if_projected)."""


def _densify_if_projected(geoms: np.ndarray, source_crs: str) -> np.ndarray:
    """Split long edges of projected input before conversion, so straight edges stay where they were drawn.

    Conversion moves vertices only; a straight 4 km edge in Gauss–Krüger bows some 20 cm away from the straight
    lon/lat line between its ends, so a child vertex lying on its parent's edge would end up off it, leaving
    slivers of hundreds of m² between layers drawn together. With 50 m pieces the bow is some micrometres.
    """
    if not source_crs.startswith("EPSG:"):
        return geoms
    crs = pyproj.CRS.from_user_input(source_crs)
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        return geoms
    return shapely.segmentize(geoms, DENSIFY_METRES)


# -- reading WKB that GEOS refuses ------------------------------------------------------------------------------

class _WkbError(ValueError):
    pass


def _wkb_polygons(blob: bytes) -> list[list[np.ndarray]]:
    """The rings (x, y arrays) of each polygon of a Polygon or MultiPolygon WKB (ISO or extended, with or without
    Z and M), read without GEOS: for the geometries GEOS will not build as they are."""
    view = memoryview(blob)
    offset = 0

    def header() -> tuple[str, int, int]:
        nonlocal offset
        if offset + 5 > len(view):
            raise _WkbError("WKB 数据不完整")
        order = "<" if view[offset] == 1 else ">"
        (code,) = struct.unpack_from(order + "I", view, offset + 1)
        offset += 5
        dims = 2 + bool(code & 0x80000000) + bool(code & 0x40000000)
        if code & 0x20000000:  # extended WKB with an SRID
            offset += 4
        code &= 0x0FFFFFFF
        dims += {1: 1, 2: 1, 3: 2}.get(code // 1000, 0)
        return order, code % 1000, dims

    def count(order: str) -> int:
        nonlocal offset
        if offset + 4 > len(view):
            raise _WkbError("WKB 数据不完整")
        (n,) = struct.unpack_from(order + "I", view, offset)
        offset += 4
        return n

    def polygon(order: str, dims: int) -> list[np.ndarray]:
        nonlocal offset
        rings = []
        for _ in range(count(order)):
            points = count(order)
            size = points * dims * 8
            if offset + size > len(view):
                raise _WkbError("WKB 数据不完整")
            values = np.frombuffer(view[offset:offset + size], dtype=order + "f8").reshape(points, dims)
            offset += size
            rings.append(values[:, :2].copy())
        return rings

    order, kind, dims = header()
    if kind == 3:
        return [polygon(order, dims)]
    if kind == 6:
        parts = []
        for _ in range(count(order)):
            part_order, part_kind, part_dims = header()
            if part_kind != 3:
                raise _WkbError("多面中含有非面的部分")
            parts.append(polygon(part_order, part_dims))
        return parts
    raise _WkbError(f"几何类型代码 {kind} 不是面")


def _clean_ring(ring: np.ndarray) -> np.ndarray | None:
    """A ring without repeated consecutive points, closed; None when fewer than three distinct points remain."""
    if len(ring) and not np.isfinite(ring).all():
        raise _WkbError("坐标含非数值（NaN 或无穷大）")
    keep = np.ones(len(ring), dtype=bool)
    keep[1:] = np.any(ring[1:] != ring[:-1], axis=1)
    ring = ring[keep]
    if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
        ring = ring[:-1]
    if len(np.unique(ring, axis=0)) < 3:
        return None
    return np.vstack([ring, ring[:1]])


def _rebuild(blob: bytes) -> tuple[object, list[str]]:
    """Rebuild a polygonal WKB that GEOS refuses: unclosed rings closed, rings of fewer than three distinct points
    dropped (a polygon whose outer ring is dropped goes with it). Returns the geometry (None when nothing is
    left) and what was done, in Chinese."""
    done: list[str] = []
    polygons = []
    for rings in _wkb_polygons(blob):
        if not rings:
            continue
        if any(len(r) > 1 and not np.array_equal(r[0], r[-1]) for r in rings):
            done.append("闭合了未闭合的环")
        shell = _clean_ring(rings[0])
        if shell is None:
            done.append("舍去了点数不足三个的外环")
            continue
        holes = [_clean_ring(ring) for ring in rings[1:]]
        if any(hole is None for hole in holes):
            done.append("舍去了点数不足三个的内环")
        polygons.append(shapely.Polygon(shell, [hole for hole in holes if hole is not None]))
    geometry = (None if not polygons else polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons))
    return geometry, list(dict.fromkeys(done))


def _parse_geometries(wkb: np.ndarray, results: dict[int, "FeatureResult"]) -> np.ndarray:
    """Shapely geometries from the file's WKB, one feature at a time where GEOS refuses one: rebuilt when that
    can be done (the feature is then `repaired`), else rejected with the reason. Unparsed features are None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # each refused one is looked at below
        geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    for index in np.flatnonzero(shapely.is_missing(geoms) & np.array([blob is not None for blob in wkb],
                                                                     dtype=bool)):
        try:
            shapely.from_wkb(wkb[index])
            problem = "GEOS 无法构建该几何"
        except Exception as error:  # noqa: BLE001 - GEOS says why in its message
            problem = str(error).split(":", 1)[-1].strip()
        try:
            geometry, done = _rebuild(bytes(wkb[index]))
        except (_WkbError, shapely.errors.GEOSException, ValueError) as error:
            results[index] = FeatureResult(int(index), None, REJECTED,
                                           reason=f"几何无法读取（{problem}）：{error}")
            continue
        if geometry is None:
            results[index] = FeatureResult(int(index), None, REJECTED,
                                           reason=f"几何无法读取（{problem}），修复后没有剩下任何面："
                                                  + "，".join(done))
            continue
        geoms[index] = geometry
        results[index] = FeatureResult(int(index), None, REPAIRED, reason="已修复：" + "，".join(done))
    return geoms


def _repair(original, repair_tolerance: float) -> tuple[object, str | None]:
    """(repaired geometry, None) or (None, the reason it cannot be repaired) for an invalid polygonal geometry."""
    why = _why(shapely.is_valid_reason(original))
    repaired = _polygonal_part(shapely.make_valid(original))
    before = abs(shapely.area(original))
    after = shapely.area(repaired) if repaired is not None else 0.0
    if repaired is None or shapely.is_empty(repaired):
        return None, f"几何无效（{why}），修复后不再是面"
    change = abs(after - before) / max(before, after) if max(before, after) > 0 else 1.0
    if change > repair_tolerance:
        return None, f"几何无效（{why}），修复会使面积变化 {change:.1%}，超过允许的 {repair_tolerance:.1%}"
    return repaired, why


class _Outcomes:
    """Where geometry checks write their verdicts: `results`, feature index → FeatureResult."""

    def __init__(self, results: dict[int, FeatureResult]):
        self.results = results

    def reject(self, index: int, reason: str, geometry=None) -> None:
        self.results[int(index)] = FeatureResult(int(index), None, REJECTED, geometry=geometry, reason=reason)

    def repaired(self, index: int, reason: str) -> None:
        """A repair, added to one made already on reading."""
        earlier = self.results.get(int(index))
        if earlier is not None and earlier.status == REPAIRED:
            reason = f"{earlier.reason}；{reason}"
        self.results[int(index)] = FeatureResult(int(index), None, REPAIRED, reason=reason)


def _polygonal(geoms: np.ndarray, outcomes: _Outcomes) -> tuple[np.ndarray, np.ndarray]:
    """The features with a polygonal geometry (a collection's polygons taken, Z and M dropped) and their indexes;
    the missing, empty and other kinds rejected."""
    geoms = geoms.copy()
    unread = [i for i in range(len(geoms))
              if outcomes.results.get(i) is not None and outcomes.results[i].status == REJECTED]
    geoms[unread] = None
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for index in np.flatnonzero(missing):
        if index not in unread:
            outcomes.reject(index, "没有几何（为空）")
    kinds = shapely.get_type_id(np.where(missing, None, geoms))
    for index in np.flatnonzero(~missing & (kinds == shapely.GeometryType.GEOMETRYCOLLECTION)):
        # A collection mixing polygons with points or lines: its polygons are the feature.
        part = _polygonal_part(geoms[index])
        if part is not None and not shapely.is_empty(part):
            geoms[index] = part
            kinds[index] = shapely.get_type_id(part)
            outcomes.repaired(index, "已修复：舍去了几何集合中不是面的部分")
    polygonal = np.isin(kinds, list(_POLYGONAL))
    for index in np.flatnonzero(~missing & ~polygonal):
        outcomes.reject(index, f"几何类型为 {geoms[index].geom_type}，不是面（Polygon 或 MultiPolygon）", geoms[index])
    usable = np.flatnonzero(~missing & polygonal)
    return shapely.force_2d(geoms[usable]), usable  # Z and M values are dropped: the layers are flat


def _in_storage_crs(geoms: np.ndarray, usable: np.ndarray, keep: np.ndarray, source_crs: str,
                    outcomes: _Outcomes) -> np.ndarray:
    """The geometries in EPSG:4326; those with non-finite coordinates or outside the earth rejected (`keep`
    cleared)."""
    coordinates, owner = shapely.get_coordinates(geoms, return_index=True)
    for position in np.unique(owner[~np.isfinite(coordinates).all(axis=1)]):
        outcomes.reject(usable[position], "坐标含非数值（NaN 或无穷大）", None)
        keep[position] = False
    geoms[~keep] = shapely.Polygon()  # out of the way of the conversion; never stored
    if source_crs != WGS84:
        geoms = _densify_if_projected(geoms, source_crs)
        coordinates, owner = shapely.get_coordinates(geoms, return_index=True)
        lon, lat = to_storage(coordinates[:, 0], coordinates[:, 1], source_crs, check=False)
        bad_owner = np.unique(owner[~storage_coordinates_ok(lon, lat)])
        geoms = shapely.set_coordinates(geoms.copy(), np.column_stack([lon, lat]))
    else:
        coordinates, owner = shapely.get_coordinates(geoms, return_index=True)
        bad_owner = np.unique(owner[~storage_coordinates_ok(coordinates[:, 0], coordinates[:, 1])])
    for position in bad_owner:
        if keep[position]:
            outcomes.reject(usable[position],
                            f"按 {source_crs} 读取时坐标超出经度 [-180, 180] / 纬度 [-90, 90]；请声明正确的坐标系")
            keep[position] = False
    return geoms


def _repair_invalid(geoms: np.ndarray, usable: np.ndarray, keep: np.ndarray, repair_tolerance: float,
                    outcomes: _Outcomes) -> None:
    """Invalid geometries repaired in place when the repair keeps the area, else rejected (`keep` cleared)."""
    valid = shapely.is_valid(geoms)
    for position in np.flatnonzero(~valid & keep):
        index = usable[position]
        original = geoms[position]
        try:
            geometry, why = _repair(original, repair_tolerance)
        except shapely.errors.GEOSException as error:
            geometry, why = None, f"几何无法修复：{error}"
        if geometry is None:
            outcomes.reject(index, why, original)
            keep[position] = False
        else:
            geoms[position] = geometry
            outcomes.repaired(index, f"已修复：{why}")


def _prepare_geometries(
    geoms: np.ndarray, source_crs: str, results: dict[int, FeatureResult], repair_tolerance: float
) -> np.ndarray:
    """Convert to EPSG:4326, repair or reject, make MULTIPOLYGON. Rejections and repairs go into `results` (a
    feature repaired already on reading stays repaired)."""
    outcomes = _Outcomes(results)
    out = np.empty(len(geoms), dtype=object)
    polygons, usable = _polygonal(geoms, outcomes)
    keep = np.ones(len(polygons), dtype=bool)
    polygons = _in_storage_crs(polygons, usable, keep, source_crs, outcomes)
    _repair_invalid(polygons, usable, keep, repair_tolerance, outcomes)
    out[usable[keep]] = _as_multipolygons(polygons[keep])
    return out


# --- import ----------------------------------------------------------------------------------------------

@dataclass
class _Source:
    """A layer of a file as read: attribute columns, each feature's WKB (None when it has no geometry), its id in
    the file, and the file's coordinate system (None when it says none)."""

    frame: pd.DataFrame
    wkb: np.ndarray
    fids: np.ndarray
    crs: pyproj.CRS | None


def _read(path: Path, file_layer: str | None, layer_name: str) -> _Source:
    if not path.exists():
        raise InvalidInput(f"文件不存在：{path.name}")
    try:
        if file_layer is None:
            names = [str(name) for name, _ in pyogrio.list_layers(path)]
            if len(names) > 1:
                # A GeoPackage may hold the whole pyramid: take the layer named like the target, never a guess.
                if layer_name not in names:
                    raise InvalidInput(f"{path.name} 含有多个图层（{', '.join(names)}），请指明导入哪一个")
                file_layer = layer_name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # unclosed rings: repaired and reported per feature
            meta, fids, wkb, fields = pyogrio.raw.read(path, layer=file_layer, return_fids=True)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError,
            pyogrio.errors.CRSError, ValueError) as error:
        raise InvalidInput(f"无法将 {path.name} 读作 GeoJSON、GeoPackage 或 Shapefile 图层：{error}") from None
    frame = pd.DataFrame({name: values for name, values in zip(meta["fields"], fields)})
    wkb = np.asarray(wkb if wkb is not None else [None] * len(frame), dtype=object)
    crs = None
    if meta.get("crs"):
        try:
            crs = pyproj.CRS.from_user_input(meta["crs"])
        except pyproj.exceptions.CRSError:
            crs = None
    fids = np.asarray(fids) if fids is not None else np.arange(len(frame))
    return _Source(frame, wkb, fids, crs)


def _file_crs(crs: pyproj.CRS | None, declared: str | None, path: Path) -> str:
    if declared:
        return normalise_crs(declared)
    if crs is None:
        raise InvalidInput(f"{path.name} 没有说明坐标系，请声明（例如 --crs EPSG:4548）")
    if crs.to_authority() == ("OGC", "CRS84"):
        return WGS84
    epsg = crs.to_epsg()
    if epsg is None:
        raise InvalidInput(f"{path.name} 的坐标系没有 EPSG 代码，请用 EPSG 代码声明")
    return normalise_crs(f"EPSG:{epsg}")


def import_layer(
    url: str,
    layer_name: str,
    path: str | Path,
    crs: str | None = None,
    column_map: dict[str, str] | None = None,
    valid_from: date | None = None,
    file_layer: str | None = None,
    repair_tolerance: float = 0.01,
    progress: Progress | None = None,
) -> ImportReport:
    """Import features of `layer_name` from a GeoJSON, GeoPackage or Shapefile.

    `crs` declares the file's coordinate system (it wins over what the file says); `column_map` renames file
    columns to table columns (a column called `parent_code` is taken as the layer's parent code column);
    `valid_from` (default: today) dates new versions; a geometry repair is accepted when it changes the area by
    at most `repair_tolerance` (a fraction).
    """
    layer = get_layer(layer_name)
    path = Path(path)
    valid_from = valid_from or date.today()
    step = progress or (lambda stage, done, total: None)

    step("read", 0, 1)
    source = _read(path, file_layer, layer.name)
    frame = source.frame
    source_crs = _file_crs(source.crs, crs, path)
    step("read", 1, 1)

    columns = attribute_columns(layer)
    file_columns = list(frame.columns)
    mapping = _column_lookup(layer, file_columns, column_map)
    report = ImportReport(layer.name, str(path), source_crs, valid_from,
                          ignored_columns=[column for column in file_columns if column not in mapping
                                           and column.lower() not in _SYSTEM_COLUMNS], source=source)
    for needed in ("code", "name"):
        if needed not in mapping.values():
            raise InvalidInput(f"{path.name} 没有 {needed!r} 列（可用列映射指定一列）")
    staged_columns = ["code", "name"] + [c for c in columns if c in mapping.values() and c not in ("code", "name")]
    source_of = {target: source for source, target in mapping.items()}

    total = len(frame)
    step("geometry", 0, total)
    results: dict[int, FeatureResult] = {}
    geoms = _prepare_geometries(_parse_geometries(source.wkb, results), source_crs, results, repair_tolerance)
    step("geometry", total, total)

    values = {column: frame[source_of[column]].tolist() for column in staged_columns}
    rows, missing_for_new = _feature_rows(layer, staged_columns, values, geoms, results)

    step("database", 0, len(rows))
    _apply(url, layer, staged_columns, rows, geoms, valid_from, results, missing_for_new)
    step("database", len(rows), len(rows))
    report.features = [results[index] for index in range(total)]
    for feature, fid in zip(report.features, source.fids.tolist()):
        feature.fid = int(fid)
    return report


def _feature_rows(layer: Layer, staged_columns: list[str], values: dict[str, list], geoms: np.ndarray,
                  results: dict[int, FeatureResult]) -> tuple[dict[int, list], dict[int, list[str]]]:
    """The staged values of each feature that can be imported (index → values in `staged_columns` order) and the
    required columns each one lacks (which rejects it only if it is new); the others rejected in `results`."""
    columns = attribute_columns(layer)
    required = [c for c in required_columns(layer) if c not in ("code", "name")]
    mandatory = ["code", "name"] + ([layer.parent_column] if layer.parent_column else [])
    rows: dict[int, list] = {}
    missing_for_new: dict[int, list[str]] = {}
    first_seen: dict[str, int] = {}
    for index in range(len(geoms)):
        row, problem = _feature_row(layer, staged_columns, columns, values, index, mandatory)
        code = row.get("code") if row else _safe_code(values["code"][index])
        result = results.get(index)
        if result is not None and result.status == REJECTED:
            result.code = code
            continue
        if problem is None and code in first_seen:
            problem = f"编码 {code} 与文件中第 {first_seen[code]} 个要素重复"
        if problem:
            results[index] = FeatureResult(index, code, REJECTED, reason=problem, geometry=geoms[index])
            continue
        first_seen[code] = index
        missing_for_new[index] = [column for column in required if row.get(column) is None]
        if result is None:
            result = results[index] = FeatureResult(index, code, IMPORTED)
        result.code = code
        result.geometry = geoms[index]
        rows[index] = [row[column] for column in staged_columns]
    return rows, missing_for_new


def _safe_code(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


def _default_value(column) -> object:
    """The Python value of a NOT NULL column's simple server default (an empty file cell means the default)."""
    default = getattr(column.server_default, "arg", None)
    text = default if isinstance(default, str) else str(getattr(default, "text", default))
    if isinstance(column.type, ARRAY):
        return []
    return _coerce(text.strip("'"), column)


def _feature_row(
    layer: Layer, staged_columns: list[str], columns: dict, values: dict, index: int, mandatory: list[str]
) -> tuple[dict | None, str | None]:
    """One feature's attributes as table values, or the reason it cannot be imported."""
    try:
        row = {column: _coerce(values[column][index], columns[column]) for column in staged_columns}
    except ValueError as error:
        return None, str(error)
    for column in staged_columns:
        if row[column] is None and not columns[column].nullable and columns[column].server_default is not None:
            row[column] = _default_value(columns[column])
    absent = [column for column in mandatory if row.get(column) is None]
    if absent:
        return row, f"缺少 {', '.join(absent)}"
    code = row["code"]
    if layer.name == "compound":
        if not re.fullmatch(r"\d{12}C\d{4}", code):
            return row, f"编码 {code!r} 应为 12 位社区编码加 'C' 和 4 位数字"
    elif layer.code_length and not re.fullmatch(rf"\d{{{layer.code_length}}}", code):
        return row, f"编码 {code!r} 应为 {layer.code_length} 位数字"
    return row, None


REFERENCES_CHECKED = {
    "building": (("micro_grid_code", "micro_grid", "微网格"), ("compound_code", "compound", "小区")),
}
"""Codes a feature names that must exist (a current feature of that layer) for it to be imported: a building
outside any micro-grid would hold complaints no grid answers for."""


def _orphans(conn: psycopg.Connection, layer: Layer, staged_columns: list[str]) -> dict[int, str]:
    """Staged features (index → reason) naming a micro-grid or compound that does not exist."""
    checks = [(column, table, label) for column, table, label in REFERENCES_CHECKED.get(layer.name, ())
              if column in staged_columns]
    if not checks:
        return {}
    tests = ", ".join(f"s.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {table} r WHERE r.code = s.{column} "
                      f"AND r.valid_to IS NULL), s.{column}" for column, table, _ in checks)
    orphans: dict[int, str] = {}
    for index, *found in conn.execute(f"SELECT s.feature_index, {tests} FROM import_stage s"):
        missing = [f"所属{label} {found[2 * i + 1]} 不存在" for i, (_, _, label) in enumerate(checks)
                   if found[2 * i]]
        if missing:
            orphans[index] = "；".join(missing) + "，请先导入它"
    return orphans


def _stage(conn: psycopg.Connection, table: str, staged_columns: list[str], rows: dict[int, list],
           geoms: np.ndarray) -> None:
    """COPY the accepted rows with their geometry into the session table `import_stage`."""
    indexes = sorted(rows)
    hex_geoms = shapely.to_wkb(shapely.set_srid(geoms[indexes], STORAGE_SRID), hex=True,
                               include_srid=True) if indexes else []
    conn.execute(
        f"CREATE TEMP TABLE import_stage ON COMMIT DROP AS "
        f"SELECT 0 AS feature_index, {', '.join(staged_columns)}, geom, 0::bigint AS current_id, "
        f"''::text AS action FROM {table} WITH NO DATA"
    )
    with conn.cursor().copy(
        f"COPY import_stage (feature_index, {', '.join(staged_columns)}, geom) FROM STDIN"
    ) as copy:
        for index, geometry in zip(indexes, hex_geoms):
            copy.write_row([index, *rows[index], geometry])
    conn.execute("ANALYZE import_stage")


def _action(result: FeatureResult, current_id: int | None, current_from: date | None, same_geometry: bool,
            same_attrs: bool, valid_from: date, missing: list[str], orphan: str | None) -> str | None:
    """What to do with one staged feature against its current version, or None when it is rejected (the
    result then says why)."""
    if orphan is not None:
        result.status, result.reason = REJECTED, orphan
        return None
    if current_id is None:
        if missing:
            result.status, result.reason = REJECTED, f"缺少 {', '.join(missing)}"
            return None
        return INSERTED
    if same_geometry:
        return UNCHANGED if same_attrs else UPDATED
    if valid_from <= current_from:
        result.status = REJECTED
        result.reason = f"几何有变化，但当前版本自 {current_from} 起生效；新版本的生效日期必须晚于它"
        return None
    return NEW_VERSION


def _decide(conn: psycopg.Connection, layer: Layer, staged_columns: list[str], valid_from: date,
            results: dict[int, FeatureResult], missing_for_new: dict[int, list[str]]) -> None:
    """Each staged feature's action, from its current version (same geometry, same attributes) and the codes it
    names, written to the results and to `import_stage`, which then keeps only the features that change."""
    attributes = [column for column in staged_columns if column != "code"]
    same_attributes = " AND ".join(f"s.{c} IS NOT DISTINCT FROM c.{c}" for c in attributes) or "true"
    decisions = conn.execute(f"""
        SELECT s.feature_index, c.id, c.valid_from,
               CASE WHEN c.id IS NULL THEN false
                    WHEN ST_IsValid(c.geom) THEN ST_Equals(c.geom, s.geom)
                    ELSE ST_OrderingEquals(c.geom, s.geom) END,
               c.id IS NOT NULL AND {same_attributes}
        FROM import_stage s LEFT JOIN {layer.name} c ON c.code = s.code AND c.valid_to IS NULL
    """).fetchall()
    orphans = _orphans(conn, layer, staged_columns)
    chosen_index, chosen_action, chosen_current = [], [], []
    for index, current_id, current_from, same_geometry, same_attrs in decisions:
        action = _action(results[index], current_id, current_from, same_geometry, same_attrs, valid_from,
                         missing_for_new[index], orphans.get(index))
        if action is None:
            continue
        results[index].action = action
        chosen_index.append(index)
        chosen_action.append(action)
        chosen_current.append(current_id or 0)
    conn.execute(
        "UPDATE import_stage s SET action = d.action, current_id = d.current_id "
        "FROM unnest(%s::int[], %s::text[], %s::bigint[]) AS d(feature_index, action, current_id) "
        "WHERE s.feature_index = d.feature_index",
        (chosen_index, chosen_action, chosen_current),
    )
    conn.execute(f"DELETE FROM import_stage WHERE action NOT IN ('{INSERTED}', '{NEW_VERSION}', '{UPDATED}')")


def _write_versions(conn: psycopg.Connection, layer: Layer, staged_columns: list[str], valid_from: date) -> None:
    """Apply the staged actions: attributes updated in place, current versions closed, new features inserted, and
    new versions inserted with the attributes the file does not carry taken over from the version they follow."""
    table = layer.name
    attributes = [column for column in staged_columns if column != "code"]
    inherited = [column for column in attribute_columns(layer) if column != "code" and column not in staged_columns]
    if attributes:
        conn.execute(
            f"UPDATE {table} c SET {', '.join(f'{col} = s.{col}' for col in attributes)} "
            f"FROM import_stage s WHERE s.action = '{UPDATED}' AND c.id = s.current_id"
        )
    conn.execute(
        f"UPDATE {table} c SET valid_to = %s FROM import_stage s "
        f"WHERE s.action = '{NEW_VERSION}' AND c.id = s.current_id",
        (valid_from,),
    )
    conn.execute(
        f"INSERT INTO {table} ({', '.join(staged_columns)}, geom, valid_from) "
        f"SELECT {', '.join(staged_columns)}, geom, %s FROM import_stage WHERE action = '{INSERTED}'",
        (valid_from,),
    )
    carried = "".join(f", {column}" for column in inherited)
    carried_from = "".join(f", old.{column}" for column in inherited)
    conn.execute(
        f"INSERT INTO {table} ({', '.join(staged_columns)}{carried}, geom, valid_from) "
        f"SELECT {', '.join(f's.{c}' for c in staged_columns)}{carried_from}, s.geom, %s "
        f"FROM import_stage s JOIN {table} old ON old.id = s.current_id WHERE s.action = '{NEW_VERSION}'",
        (valid_from,),
    )


def _apply(
    url: str,
    layer: Layer,
    staged_columns: list[str],
    rows: dict[int, list],
    geoms: np.ndarray,
    valid_from: date,
    results: dict[int, FeatureResult],
    missing_for_new: dict[int, list[str]],
) -> None:
    """Stage the accepted rows with COPY, decide each feature's action, apply them: one transaction."""
    with psycopg.connect(libpq_url(url)) as conn:
        # Concurrent imports of one layer would race on closing versions; reads go on.
        conn.execute(f"LOCK TABLE {layer.name} IN SHARE ROW EXCLUSIVE MODE")
        _stage(conn, layer.name, staged_columns, rows, geoms)
        _decide(conn, layer, staged_columns, valid_from, results, missing_for_new)
        _write_versions(conn, layer, staged_columns, valid_from)


# --- export ----------------------------------------------------------------------------------------------

def driver_for(path: str | Path, driver: str | None = None) -> str:
    """The OGR driver name for `driver` (geojson, gpkg, shp or an OGR name) or for the file's extension."""
    if driver:
        key = driver.strip().lower()
        if key in DRIVERS:
            return DRIVERS[key]
        if driver in _DRIVER_NAMES:
            return driver
        raise InvalidInput(f"格式应为 geojson、gpkg 或 shp，而不是 {driver!r}")
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in DRIVERS:
        return DRIVERS[suffix]
    raise InvalidInput(f"无法判断 {Path(path).name} 的格式，请指定 geojson、gpkg 或 shp")


def _export_value(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return "; ".join(value)
    return value


def export_layer(url: str, layer_name: str, path: str | Path, driver: str | None = None,
                 progress: Progress | None = None) -> int:
    """Write the current features of a layer, with their attributes, in EPSG:4326. Returns how many."""
    layer = get_layer(layer_name)
    path = Path(path)
    driver = driver_for(path, driver)
    step = progress or (lambda stage, done, total: None)
    columns = ["code"] + [c for c in attribute_columns(layer) if c != "code"] + ["valid_from"]
    step("query", 0, 1)
    with psycopg.connect(libpq_url(url)) as conn:
        records = conn.execute(
            f"SELECT {', '.join(columns)}, ST_AsBinary(geom) FROM {layer.name} "
            "WHERE valid_to IS NULL ORDER BY code"
        ).fetchall()
    step("query", 1, 1)
    frame = pd.DataFrame([[_export_value(v) for v in record[:-1]] for record in records], columns=columns)
    # Shapefile has no date-time type: write the date as ISO text there.
    frame["valid_from"] = (frame["valid_from"].astype(str) if driver == "ESRI Shapefile"
                           else pd.to_datetime(frame["valid_from"]))
    geometry = shapely.from_wkb([record[-1] for record in records]) if records else []
    import geopandas

    data = geopandas.GeoDataFrame(frame, geometry=geopandas.GeoSeries(geometry, crs=f"EPSG:{STORAGE_SRID}"))
    options: dict = {}
    if driver == "ESRI Shapefile":
        data = data.rename(columns=shapefile_names(columns))
        options["encoding"] = "UTF-8"
    if driver == "GPKG":
        options["layer"] = layer.name
    elif path.exists():
        path.unlink()
    step("write", 0, len(data))
    pyogrio.write_dataframe(data, path, driver=driver, promote_to_multi=True, **options)
    step("write", len(data), len(data))
    return len(data)
