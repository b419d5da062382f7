"""A computed figure (a table, optionally with a geometry per row) and its export formats: JSON, CSV, XLSX,
GeoJSON and GeoPackage."""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from gis.errors import InvalidInput

TABLE_FORMATS = ("json", "csv", "xlsx")
LAYER_FORMATS = ("geojson", "gpkg")
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
}


def _plain(value):
    """A JSON- and spreadsheet-friendly value: no NaN, no numpy scalars, no Decimals."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


@dataclass
class Figure:
    """Rows of one figure with their column order; `geometries` (GeoJSON text, WGS-84) makes it a layer;
    `labels` (column → Chinese header) head the XLSX sheet people read, the other formats keep the column names."""

    name: str
    columns: list[str]
    rows: list[dict]
    meta: dict = field(default_factory=dict)
    geometries: list[str] | None = None
    labels: dict[str, str] | None = None

    def records(self) -> list[dict]:
        return [{column: _plain(row.get(column)) for column in self.columns} for row in self.rows]

    def to_json(self) -> dict:
        return {"figure": self.name, "meta": {k: _plain(v) if not isinstance(v, (dict, list)) else v
                                              for k, v in self.meta.items()},
                "columns": self.columns, "rows": self.records()}

    def to_csv(self) -> bytes:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.records())
        # A byte-order mark so spreadsheet programs read the Chinese names as UTF-8.
        return ("\ufeff" + buffer.getvalue()).encode("utf-8")

    def to_xlsx(self) -> bytes:
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = self.name[:31]
        sheet.append([(self.labels or {}).get(column, column) for column in self.columns])
        for record in self.records():
            sheet.append([record[column] for column in self.columns])
        info = book.create_sheet("about")
        for key, value in self.meta.items():
            info.append([key, json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else
                         _plain(value)])
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()

    def _require_layer(self) -> list[str]:
        if self.geometries is None:
            raise InvalidInput(f"{self.name} is a table, not a layer: ask for json, csv or xlsx")
        return self.geometries

    def to_geojson(self) -> bytes:
        geometries = self._require_layer()
        features = [
            '{"type":"Feature","geometry":%s,"properties":%s}'
            % (geometry or "null", json.dumps(record, ensure_ascii=False))
            for geometry, record in zip(geometries, self.records())
        ]
        return ('{"type":"FeatureCollection","name":%s,"features":[%s]}'
                % (json.dumps(self.name), ",".join(features))).encode("utf-8")

    def to_geopackage(self) -> bytes:
        import geopandas as gpd
        import shapely

        geometries = self._require_layer()
        frame = gpd.GeoDataFrame(
            self.records(), columns=self.columns,
            geometry=[shapely.from_geojson(g) if g else None for g in geometries],
            crs="EPSG:4326",
        )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{self.name}.gpkg"
            frame.to_file(path, layer=self.name, driver="GPKG", engine="pyogrio")
            return path.read_bytes()

    def render(self, fmt: str) -> bytes:
        """The figure in `fmt` (json, csv, xlsx, geojson, gpkg)."""
        if fmt == "json":
            return json.dumps(self.to_json(), ensure_ascii=False).encode("utf-8")
        if fmt == "csv":
            return self.to_csv()
        if fmt == "xlsx":
            return self.to_xlsx()
        if fmt == "geojson":
            return self.to_geojson()
        if fmt == "gpkg":
            return self.to_geopackage()
        raise InvalidInput(f"format {fmt!r} is not offered; use {', '.join(TABLE_FORMATS + LAYER_FORMATS)}")
