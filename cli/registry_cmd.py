"""`gridgov registry template KIND [--xlsx]`, `gridgov registry import KIND FILE [--map theirs=ours ...]` and
`gridgov registry export KIND FILE`: a city's own registry in and out, in the Chinese templates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import fail

registry_app = typer.Typer(help="The registry: property companies, party organisations, owners' committees, grid "
                                "workers, building leaders, cross-appointments, compound attributes.",
                           no_args_is_help=True)

CLI_PRINCIPAL_NAME = "cli"
"""The name the change log records for changes made from the command line (run as the administrator)."""


def _principal():
    from gis.access.auth import Principal

    return Principal(role="admin", username=CLI_PRINCIPAL_NAME)


@registry_app.command("kinds")
def kinds_command() -> None:
    """List the kinds with their titles and natural keys."""
    from gis.registry.export import kinds_listing

    for kind in kinds_listing():
        typer.echo(f"{kind['kind']:<20} {kind['title']}  (key: {' + '.join(kind['key'])})")


@registry_app.command("template")
def template_command(
    kind: Annotated[str, typer.Argument(help="The kind, e.g. property_company (see `gridgov registry kinds`).")],
    xlsx: Annotated[bool, typer.Option("--xlsx", help="Write an XLSX template instead of CSV.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default KIND.csv).")] = None,
) -> None:
    """Write the empty template of KIND (its Chinese headers)."""
    from gis.errors import GridgovError
    from gis.registry.export import template

    fmt = "xlsx" if xlsx else "csv"
    try:
        body = template(kind, fmt)
    except GridgovError as error:
        fail(error)
    path = output or Path(f"{kind}.{fmt}")
    path.write_bytes(body)
    typer.echo(f"template written to {path}")


@registry_app.command("import")
def import_command(
    kind: Annotated[str, typer.Argument(help="The kind of the file's records.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .csv (UTF-8 or GBK) or .xlsx file.")],
    map_: Annotated[list[str] | None, typer.Option("--map", help="A column mapping THEIRS=OURS (repeat it).")] = None,
) -> None:
    """Import FILE as KIND in one transaction: every row imported, updated, unchanged or rejected (with the
    reason)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from gis.db.engine import database_url, sync_engine
    from gis.errors import GridgovError
    from gis.registry.files import parse_mapping, read_table
    from gis.registry.load import load_rows

    try:
        header, rows = read_table(file, parse_mapping(map_ or None))
        rows = list(rows)
        engine = sync_engine(database_url())
        try:
            with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
                task = bar.add_task("rows", total=len(rows))
                with engine.begin() as conn:
                    report = load_rows(conn, _principal(), kind, header, rows, file_name=file.name,
                                       progress=lambda n: bar.advance(task, n))
        finally:
            engine.dispose()
    except GridgovError as error:
        fail(error)
    typer.echo(f"import {report.import_id}: {report.rows_read:,} rows read = {report.imported:,} imported + "
               f"{report.updated:,} updated + {report.unchanged:,} unchanged + {report.rejected:,} rejected")
    for row in report.rows:
        if row.state == "rejected":
            typer.echo(f"  row {row.row}: {row.reason}")
        elif row.state == "updated":
            typer.echo(f"  row {row.row} updated: {'、'.join(row.changed)}")


@registry_app.command("export")
def export_command(
    kind: Annotated[str, typer.Argument(help="The kind to export.")],
    file: Annotated[Path, typer.Argument(dir_okay=False, help="Where to write: .csv (UTF-8 with BOM) or .xlsx.")],
) -> None:
    """Export KIND in its template; importing the file again changes nothing."""
    from gis.db.engine import database_url, sync_engine
    from gis.errors import GridgovError
    from gis.registry.export import export_file

    fmt = "xlsx" if file.suffix.lower() == ".xlsx" else "csv"
    try:
        engine = sync_engine(database_url())
        try:
            with engine.begin() as conn:
                body, count = export_file(conn, _principal(), kind, fmt)
        finally:
            engine.dispose()
    except GridgovError as error:
        fail(error)
    file.write_bytes(body)
    typer.echo(f"{count:,} records written to {file}")


@registry_app.command("takeover")
def takeover_command(
    compound: Annotated[str, typer.Argument(help="The compound's code.")],
    credit_code: Annotated[str, typer.Argument(help="The unified social credit code of the company taking over.")],
    on: Annotated[str, typer.Option("--on", help="The day the takeover takes effect, e.g. 2026-07-01.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the change log).")],
) -> None:
    """接管: the company takes COMPOUND over from --on, in one audited action (the old management version closes,
    the new one opens)."""
    from gis.db.engine import database_url, sync_engine
    from gis.errors import GridgovError
    from gis.registry.history import take_over
    from gis.registry.values import parse_credit_code, parse_date

    try:
        day, credit = parse_date(on), parse_credit_code(credit_code)
        engine = sync_engine(database_url())
        try:
            with engine.begin() as conn:
                result = take_over(conn, _principal(), compound, credit, day, reason)
        finally:
            engine.dispose()
    except GridgovError as error:
        fail(error)
    typer.echo(f"compound {compound} taken over by {credit} from {result['valid_from']} "
               f"(mode {result['management_mode']})")
