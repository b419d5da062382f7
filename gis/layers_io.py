"""Import and export of pyramid layers as GeoJSON, GeoPackage or Shapefile.

Import reads a file with pyogrio, converts its coordinates to EPSG:4326 (the file's own CRS, or the declared one,
which wins: GCJ-02 and BD-09 must be declared since no file format can say so), repairs invalid polygons when the
repair keeps the area, and reports on every feature: imported, repaired or rejected with the reason. Features go
into PostGIS through COPY into a staging table and a few set-based statements: a code seen for the first time is
inserted; the same geometry and attributes change nothing; new attributes on the same geometry are updated in
place; a changed geometry closes the current version (valid_to = the import's valid-from date) and adds a new one,
so history is kept.
"""

from __future__ import annotations

import json
import math
import re
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
from gis.crs import WGS84, normalise_crs, storage_coordinates_ok, to_storage
from gis.db import libpq_url
from gis.errors import InvalidInput
from gis.models import Base
from gis.pyramid import Layer, get_layer

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


@dataclass
class ImportReport:
    layer: str
    path: str
    source_crs: str
    valid_from: date
    features: list[FeatureResult] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

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
                "properties": {"feature": feature.index, "code": feature.code, "status": feature.status,
                               "action": feature.action, "reason": feature.reason},
            })
        return {"type": "FeatureCollection", "features": features}

    def write_geojson(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_geojson(), ensure_ascii=False), encoding="utf-8")


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
            raise InvalidInput(f"column map names {target!r}, which layer {layer.name} does not have")
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
        raise ValueError(f"{column.name} must be yes or no, not {value!r}")
    if isinstance(kind, Integer):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{column.name} must be a whole number, not {value!r}") from None
        if not number.is_integer():
            raise ValueError(f"{column.name} must be a whole number, not {value!r}")
        return int(number)
    if isinstance(kind, (Float, Numeric)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{column.name} must be a number, not {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{column.name} must be a finite number")
        return number
    if isinstance(kind, Date):
        try:
            return pd.Timestamp(value).date()
        except (TypeError, ValueError):
            raise ValueError(f"{column.name} must be a date, not {value!r}") from None
    text = str(value)
    if isinstance(kind, String) and kind.length and len(text) > kind.length:
        raise ValueError(f"{column.name} is longer than {kind.length} characters")
    return text


# --- geometry --------------------------------------------------------------------------------------------

_POLYGONAL = {shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON}


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


def _prepare_geometries(
    geoms: np.ndarray, source_crs: str, results: dict[int, FeatureResult], repair_tolerance: float
) -> np.ndarray:
    """Convert to EPSG:4326, repair or reject, make MULTIPOLYGON. Rejections go into `results`."""
    out = np.empty(len(geoms), dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for index in np.flatnonzero(missing):
        results[index] = FeatureResult(int(index), None, REJECTED, reason="no geometry")
    kinds = shapely.get_type_id(np.where(missing, None, geoms))
    polygonal = np.isin(kinds, list(_POLYGONAL))
    for index in np.flatnonzero(~missing & ~polygonal):
        results[index] = FeatureResult(int(index), None, REJECTED, geometry=geoms[index],
                                       reason=f"geometry is a {geoms[index].geom_type}, not a polygon")
    usable = np.flatnonzero(~missing & polygonal)
    geoms = shapely.force_2d(geoms[usable])

    if source_crs != WGS84:
        geoms = _densify_if_projected(geoms, source_crs)
        coordinates, owner = shapely.get_coordinates(geoms, return_index=True)
        lon, lat = to_storage(coordinates[:, 0], coordinates[:, 1], source_crs, check=False)
        bad_owner = np.unique(owner[~storage_coordinates_ok(lon, lat)])
        geoms = shapely.set_coordinates(geoms.copy(), np.column_stack([lon, lat]))
    else:
        coordinates, owner = shapely.get_coordinates(geoms, return_index=True)
        bad_owner = np.unique(owner[~storage_coordinates_ok(coordinates[:, 0], coordinates[:, 1])])
    keep = np.ones(len(geoms), dtype=bool)
    for position in bad_owner:
        index = usable[position]
        results[index] = FeatureResult(
            int(index), None, REJECTED,
            reason=f"coordinates fall outside lon [-180, 180] / lat [-90, 90] when read as {source_crs}; "
                   "declare the right coordinate system",
        )
        keep[position] = False

    valid = shapely.is_valid(geoms)
    for position in np.flatnonzero(~valid & keep):
        index = usable[position]
        original = geoms[position]
        why = shapely.is_valid_reason(original)
        repaired = _polygonal_part(shapely.make_valid(original))
        before = abs(shapely.area(original))
        after = shapely.area(repaired) if repaired is not None else 0.0
        change = abs(after - before) / max(before, after) if max(before, after) > 0 else 1.0
        if repaired is None or shapely.is_empty(repaired) or change > repair_tolerance:
            results[index] = FeatureResult(
                int(index), None, REJECTED, geometry=original,
                reason=f"invalid geometry ({why}); repair would change the area by {change:.1%}, "
                       f"more than {repair_tolerance:.1%}",
            )
            keep[position] = False
        else:
            geoms[position] = repaired
            results[index] = FeatureResult(int(index), None, REPAIRED, reason=f"repaired: {why}")
    out[usable[keep]] = _as_multipolygons(geoms[keep])
    return out


# --- import ----------------------------------------------------------------------------------------------

def _read(path: Path, file_layer: str | None, layer_name: str) -> pd.DataFrame:
    if not path.exists():
        raise InvalidInput(f"no such file: {path}")
    try:
        if file_layer is None:
            names = [str(name) for name, _ in pyogrio.list_layers(path)]
            if len(names) > 1:
                # A GeoPackage may hold the whole pyramid: take the layer named like the target, never a guess.
                if layer_name not in names:
                    raise InvalidInput(f"{path.name} holds layers {', '.join(names)}; say which to import")
                file_layer = layer_name
        return pyogrio.read_dataframe(path, layer=file_layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as error:
        raise InvalidInput(f"cannot read {path.name} as a GeoJSON, GeoPackage or Shapefile layer: {error}") from None


def _file_crs(frame, declared: str | None, path: Path) -> str:
    if declared:
        return normalise_crs(declared)
    if frame.crs is None:
        raise InvalidInput(f"{path.name} does not say its coordinate system; declare it (e.g. --crs EPSG:4548)")
    if frame.crs.to_authority() == ("OGC", "CRS84"):
        return WGS84
    epsg = frame.crs.to_epsg()
    if epsg is None:
        raise InvalidInput(f"the coordinate system of {path.name} has no EPSG code; declare it with its EPSG code")
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
    frame = _read(path, file_layer, layer.name)
    source_crs = _file_crs(frame, crs, path)
    step("read", 1, 1)

    columns = attribute_columns(layer)
    file_columns = [column for column in frame.columns if column != frame.geometry.name]
    mapping = _column_lookup(layer, file_columns, column_map)
    report = ImportReport(layer.name, str(path), source_crs, valid_from,
                          ignored_columns=[column for column in file_columns if column not in mapping
                                           and column.lower() not in _SYSTEM_COLUMNS])
    for needed in ("code", "name"):
        if needed not in mapping.values():
            raise InvalidInput(f"{path.name} has no {needed!r} column (map one with a column map)")
    staged_columns = ["code", "name"] + [c for c in columns if c in mapping.values() and c not in ("code", "name")]
    source_of = {target: source for source, target in mapping.items()}

    total = len(frame)
    step("geometry", 0, total)
    results: dict[int, FeatureResult] = {}
    geoms = _prepare_geometries(np.asarray(frame.geometry.values, dtype=object), source_crs, results,
                                repair_tolerance)
    step("geometry", total, total)

    required = [c for c in required_columns(layer) if c not in ("code", "name")]
    mandatory = ["code", "name"] + ([layer.parent_column] if layer.parent_column else [])
    rows: dict[int, list] = {}
    missing_for_new: dict[int, list[str]] = {}
    first_seen: dict[str, int] = {}
    values = {column: frame[source_of[column]].tolist() for column in staged_columns}
    for index in range(total):
        row, problem = _feature_row(layer, staged_columns, columns, values, index, mandatory)
        code = row.get("code") if row else _safe_code(values["code"][index])
        result = results.get(index)
        if result is not None and result.status == REJECTED:
            result.code = code
            continue
        if problem is None and code in first_seen:
            problem = f"code {code} repeats feature {first_seen[code]} of the file"
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

    step("database", 0, len(rows))
    _apply(url, layer, staged_columns, rows, geoms, valid_from, results, missing_for_new)
    step("database", len(rows), len(rows))
    report.features = [results[index] for index in range(total)]
    return report


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
        return row, f"missing {', '.join(absent)}"
    code = row["code"]
    if layer.name == "compound":
        if not re.fullmatch(r"\d{12}C\d{4}", code):
            return row, f"code {code!r} should be the 12-digit community code, 'C' and 4 digits"
    elif layer.code_length and not re.fullmatch(rf"\d{{{layer.code_length}}}", code):
        return row, f"code {code!r} should be {layer.code_length} digits"
    return row, None


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
    table = layer.name
    attributes = [column for column in staged_columns if column != "code"]
    all_attributes = [column for column in attribute_columns(layer) if column != "code"]
    inherited = [column for column in all_attributes if column not in staged_columns]
    same_attributes = " AND ".join(f"s.{c} IS NOT DISTINCT FROM c.{c}" for c in attributes) or "true"
    indexes = sorted(rows)
    hex_geoms = shapely.to_wkb(shapely.set_srid(geoms[indexes], STORAGE_SRID), hex=True,
                               include_srid=True) if indexes else []
    with psycopg.connect(libpq_url(url)) as conn:
        # Concurrent imports of one layer would race on closing versions; reads go on.
        conn.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
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
        decisions = conn.execute(f"""
            SELECT s.feature_index, c.id, c.valid_from,
                   CASE WHEN c.id IS NULL THEN false
                        WHEN ST_IsValid(c.geom) THEN ST_Equals(c.geom, s.geom)
                        ELSE ST_OrderingEquals(c.geom, s.geom) END,
                   c.id IS NOT NULL AND {same_attributes}
            FROM import_stage s LEFT JOIN {table} c ON c.code = s.code AND c.valid_to IS NULL
        """).fetchall()
        chosen_index, chosen_action, chosen_current = [], [], []
        for index, current_id, current_from, same_geometry, same_attrs in decisions:
            result = results[index]
            if current_id is None:
                if missing_for_new[index]:
                    result.status, result.reason = REJECTED, f"missing {', '.join(missing_for_new[index])}"
                    continue
                action = INSERTED
            elif same_geometry:
                action = UNCHANGED if same_attrs else UPDATED
            elif valid_from <= current_from:
                result.status = REJECTED
                result.reason = (f"the geometry changed but the current version is valid from {current_from}; "
                                 "the new version's valid-from date must be later")
                continue
            else:
                action = NEW_VERSION
            result.action = action
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


# --- export ----------------------------------------------------------------------------------------------

def driver_for(path: str | Path, driver: str | None = None) -> str:
    """The OGR driver name for `driver` (geojson, gpkg, shp or an OGR name) or for the file's extension."""
    if driver:
        key = driver.strip().lower()
        if key in DRIVERS:
            return DRIVERS[key]
        if driver in _DRIVER_NAMES:
            return driver
        raise InvalidInput(f"format must be geojson, gpkg or shp, not {driver!r}")
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in DRIVERS:
        return DRIVERS[suffix]
    raise InvalidInput(f"cannot tell the format of {Path(path).name}; give one of geojson, gpkg, shp")


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
