"""`gridgov complaints import FILE [--mapping ...] [--crs ...] [--rejected out.csv]` and `gridgov complaints
api-key NAME`."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import fail

complaints_app = typer.Typer(help="Complaint intake: hotline imports and Open311 API keys.", no_args_is_help=True)


def _count_rows(path: Path) -> int | None:
    """Rows of a CSV for the progress bar (a quick newline count; spreadsheets report as they go)."""
    if path.suffix.lower() not in (".csv", ".txt", ".tsv"):
        return None
    with path.open("rb") as handle:
        return max(sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")) - 1, 0)


@complaints_app.command("import")
def import_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .csv or .xlsx hotline export."),
    mapping: str = typer.Option(None, help="Column mapping, 'field=column,...' or JSON; fields: external_id, "
                                           "reported_at, category, description, address, x, y, coordinates, crs, "
                                           "reporter_name, reporter_phone. Usual 12345 column names are known."),
    crs: str = typer.Option("EPSG:4326", help="Coordinate system of the file: wgs84, cgcs2000, gcj02, bd09, "
                                              "EPSG:NNNN (a 'crs' column overrides it per row)."),
    rejected: Path = typer.Option(None, help="Write rejected rows with their reasons to this CSV."),
    source: str = typer.Option("hotline", help="hotline, patrol, app or open311."),
    chunk_rows: int = typer.Option(50_000, help="Rows per transaction."),
) -> None:
    """Import a hotline export: every row ends imported, duplicate or rejected (with the reason)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from gis.db.engine import database_url
    from gis.errors import GridgovError
    from gis.intake.importer import import_file

    total = _count_rows(file)
    try:
        url = database_url()
        with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      transient=False) as progress:
            task = progress.add_task("rows", total=total)
            report = import_file(url, file, mapping=mapping, crs=crs, source=source, rejected_path=rejected,
                                 chunk_rows=chunk_rows, progress=lambda n: progress.advance(task, n))
    except GridgovError as error:
        fail(error)
    typer.echo(f"batch {report.batch_id}: {report.rows_read:,} rows read = {report.imported:,} imported + "
               f"{report.duplicates:,} duplicates + {report.rejected:,} rejected")
    for placement, count in sorted(report.placements.items()):
        typer.echo(f"  {placement:>8}: {count:,}")
    typer.echo(f"  possible nearby duplicates linked: {report.duplicates_linked:,}")
    if rejected:
        typer.echo(f"rejected rows written to {rejected}")


@complaints_app.command("api-key")
def api_key(
    name: str = typer.Argument(..., help="Who the key is for (an app, a partner system)."),
    revoke: bool = typer.Option(False, "--revoke", help="Revoke the key of this name instead."),
) -> None:
    """Print a new Open311 API key for NAME (shown once; only its hash is kept)."""
    from gis.db.engine import database_url
    from gis.errors import GridgovError
    from gis.intake.open311 import new_api_key, revoke_api_key

    try:
        if revoke:
            revoke_api_key(database_url(), name)
            typer.echo(f"revoked the key of {name}")
        else:
            typer.echo(new_api_key(database_url(), name))
    except GridgovError as error:
        fail(error)
