"""`gridgov check`: integrity checks of the pyramid, as a table and as GeoJSON of the faulty places."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.common import fail


def check(
    geojson: Path = typer.Option(None, "--geojson", help="Write the faulty places here as GeoJSON."),
    tolerance: float = typer.Option(1.0, "--tolerance", help="Area in m² below which a sliver is no fault."),
) -> None:
    """Check the current layers: children outside parents, overlaps, gaps, invalid geometry, orphan and
    duplicate codes. Exits 1 when there is any fault."""
    from gis.db.engine import database_url
    from gis.errors import GridgovError
    from gis.layers.checks import faults_geojson, run_checks

    console = Console()
    started = time.perf_counter()
    try:
        with console.status("checking the layers in PostGIS…"):
            faults = run_checks(database_url(), tolerance_m2=tolerance)
    except GridgovError as error:
        fail(error, status=2)
    elapsed = time.perf_counter() - started
    if geojson:
        geojson.write_text(json.dumps(faults_geojson(faults), ensure_ascii=False), encoding="utf-8")
    if not faults:
        console.print(f"no fault found ({elapsed:.1f} s)")
        return
    table = Table("layer", "code", "kind", "message", title=f"{len(faults):,} faults ({elapsed:.1f} s)")
    for fault in faults:
        table.add_row(fault.layer, fault.code, fault.kind, fault.message)
    console.print(table)
    raise typer.Exit(1)
