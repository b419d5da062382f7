"""`gridgov layers import|export`: pyramid layers in and out as GeoJSON, GeoPackage or Shapefile."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cli.common import fail

layers_app = typer.Typer(help="Import and export pyramid layers (GeoJSON, GeoPackage, Shapefile).",
                         no_args_is_help=True)

_STAGES = {"read": "reading", "geometry": "converting and repairing", "database": "writing to PostGIS",
           "query": "reading PostGIS", "write": "writing the file"}


class _Bar:
    """A rich progress bar driven by the core's progress(stage, done, total) callback."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(_STAGES.get(stage, stage), total=max(total, 1))
        self.progress.update(self.tasks[stage], completed=done if total else 1, total=max(total, 1))


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=False)


def _column_map(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source or not target:
            raise typer.BadParameter(f"--map takes FILE_COLUMN=TABLE_COLUMN, not {pair!r}")
        mapping[source.strip()] = target.strip()
    return mapping


@layers_app.command("import")
def import_command(
    layer: str = typer.Argument(..., help="district, street, community, grid, micro_grid, compound or building"),
    file: Path = typer.Argument(..., help="GeoJSON, GeoPackage or Shapefile"),
    crs: str = typer.Option(None, "--crs", help="Coordinate system of the file (wins over the file's own): "
                                                 "EPSG:NNNN, CGCS2000, a Gauss-Kruger zone, GCJ-02, BD-09."),
    valid_from: datetime = typer.Option(None, "--valid-from", formats=["%Y-%m-%d"],
                                        help="Date new versions take effect (default: today)."),
    report: Path = typer.Option(None, "--report", help="Write the per-feature report here as GeoJSON."),
    rejected_file: Path = typer.Option(None, "--rejected", help="Write the rejected features as read, with their "
                                                                "reasons, here (GeoJSON, GeoPackage or Shapefile)."),
    file_layer: str = typer.Option(None, "--file-layer", help="Layer inside a GeoPackage holding several."),
    column_map: list[str] = typer.Option([], "--map", help="FILE_COLUMN=TABLE_COLUMN (repeatable)."),
) -> None:
    """Import a layer; every feature ends imported, repaired or rejected with a reason. Exits 1 if any was
    rejected."""
    from gis.db.engine import database_url
    from gis.db.migrate import upgrade
    from gis.errors import GridgovError
    from gis.layers.import_export import import_layer

    mapping = _column_map(column_map)
    try:
        url = database_url()
        upgrade(url)
        with _progress() as progress:
            result = import_layer(url, layer, file, crs=crs, column_map=mapping,
                                  valid_from=valid_from.date() if valid_from else None, file_layer=file_layer,
                                  progress=_Bar(progress))
    except GridgovError as error:
        fail(error, status=2)
    if report:
        result.write_geojson(report)
    if rejected_file and result.rejected:
        written = result.write_rejected(rejected_file)
    console = Console()
    counts = result.counts
    console.print(f"{result.layer} from {file.name} ({result.source_crs}, valid from {result.valid_from}): "
                  + ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in counts.items()))
    if result.ignored_columns:
        console.print(f"columns not in the layer, ignored: {', '.join(result.ignored_columns)}")
    rejected = result.rejected
    if rejected:
        table = Table("要素序号", "要素 ID", "编码", "原因", title=f"{len(rejected):,} 个要素被拒")
        for feature in rejected[:50]:
            table.add_row(str(feature.index), "" if feature.fid is None else str(feature.fid), feature.code or "",
                          feature.reason or "")
        console.print(table)
        if rejected_file:
            console.print(f"被拒的 {written:,} 个要素（含原因）已写入 {rejected_file}，修改后可重新导入")
        if len(rejected) > 50:
            console.print(f"… and {len(rejected) - 50:,} more" + (f" (all in {report})" if report else
                                                                  " (write them all with --report)"))
        raise typer.Exit(1)


@layers_app.command("export")
def export_command(
    layer: str = typer.Argument(..., help="district, street, community, grid, micro_grid, compound or building"),
    file: Path = typer.Argument(..., help="Output file"),
    format: str = typer.Option(None, "--format", help="geojson, gpkg or shp (default: from the extension)."),
) -> None:
    """Export a layer's current features with their attributes, in EPSG:4326."""
    from gis.db.engine import database_url
    from gis.errors import GridgovError
    from gis.layers.import_export import export_layer

    try:
        url = database_url()
        with _progress() as progress:
            count = export_layer(url, layer, file, format, progress=_Bar(progress))
    except GridgovError as error:
        fail(error, status=2)
    typer.echo(f"{count:,} {layer} features written to {file}")
