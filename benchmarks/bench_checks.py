"""Integrity checks and layer export/import on the `city` fixture, each against its physical floor measured in the
same run: one pass reading every current geometry for the checks, pyogrio's own write and read for the files.

Nothing in the database changes: the import re-reads the exported buildings, which all come back unchanged.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import psycopg
import pyogrio

from gis.db.engine import libpq_url
from gis.layers.checks import LAYER_ORDER, run_checks
from gis.layers.import_export import export_layer, import_layer

AREA = "checks"


def _timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def _scan_every_geometry(url: str) -> int:
    """Touch every vertex of every current feature once (the least any whole-pyramid check must do)."""
    total = 0
    with psycopg.connect(libpq_url(url)) as conn:
        for layer in LAYER_ORDER:
            total += conn.execute(f"SELECT coalesce(sum(ST_NPoints(geom)), 0) FROM {layer} "
                                  "WHERE valid_to IS NULL").fetchone()[0]
    return total


def run(city_url: str) -> list[dict]:
    """Rows for the integrity checks of the whole city and the export and re-import of its buildings as GeoPackage, each
    against its floor measured in the same run."""
    rows = []
    with psycopg.connect(libpq_url(city_url)) as conn:
        features = {layer: conn.execute(f"SELECT count(*) FROM {layer} WHERE valid_to IS NULL").fetchone()[0]
                    for layer in LAYER_ORDER}
    _, scan_seconds = _timed(_scan_every_geometry, city_url)
    faults, check_seconds = _timed(run_checks, city_url)
    total_features = sum(features.values())
    rows.append({"area": AREA, "metric": "gridgov check, whole city", "value": round(check_seconds, 2), "unit": "s",
                 "note": f"{total_features:,} features, {len(faults)} faults; "
                         f"{check_seconds / scan_seconds:.1f}× one pass over every geometry ({scan_seconds:.2f} s)"})

    with tempfile.TemporaryDirectory(prefix="gridgov-bench-") as folder:
        path = Path(folder) / "building.gpkg"
        count, export_seconds = _timed(export_layer, city_url, "building", path)
        frame, read_seconds = _timed(pyogrio.read_dataframe, path)
        _, write_seconds = _timed(pyogrio.write_dataframe, frame, Path(folder) / "plain.gpkg", layer="building")
        rows.append({"area": AREA, "metric": "layers export, buildings to GeoPackage",
                     "value": round(count / export_seconds), "unit": "features/s",
                     "note": f"{count:,} in {export_seconds:.1f} s; "
                             f"{export_seconds / write_seconds:.1f}× pyogrio's bare write ({write_seconds:.1f} s)"})
        report, import_seconds = _timed(import_layer, city_url, "building", path)
        unchanged = report.counts["unchanged"]
        rows.append({"area": AREA, "metric": "layers import, buildings re-imported (all unchanged)",
                     "value": round(count / import_seconds), "unit": "features/s",
                     "note": f"{unchanged:,}/{count:,} unchanged in {import_seconds:.1f} s; "
                             f"{import_seconds / read_seconds:.1f}× pyogrio's bare read ({read_seconds:.1f} s)"})
    return rows


if __name__ == "__main__":
    import sys

    for row in run(sys.argv[1]):
        print(row)
