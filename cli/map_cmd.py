"""`gridgov map export --street CODE | --district CODE [--out FILE]`: the offline HTML map to hand on."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import fail

map_app = typer.Typer(help="Maps to hand on: one HTML file that opens offline.", no_args_is_help=True)


@map_app.command("export")
def export(
    street: str = typer.Option(None, "--street", help="Street office code (9 digits)."),
    district: str = typer.Option(None, "--district", help="District code (6 digits)."),
    out: Path = typer.Option(None, "--out", help="The HTML file to write (map-CODE-DATE.html by default)."),
    period: str = typer.Option(None, "--period", help="Period of the hotspots (the year up to today by default)."),
) -> None:
    """Write the interactive map of a street or a district (hotspots, coverage by management mode, gaps, party
    organisations, with legends) as one HTML file with Leaflet inlined: it opens offline from a file."""
    from gis.db.engine import database_url, sync_engine
    from gis.errors import GridgovError
    from gis.reports.map_export import build_map

    if bool(street) == bool(district):
        fail("give exactly one of --street CODE or --district CODE", status=2)
    level, code = ("street", street) if street else ("district", district)
    try:
        engine = sync_engine(database_url())
        try:
            with engine.connect() as conn:
                made = build_map(conn, level, code, period)
        finally:
            engine.dispose()
    except GridgovError as error:
        fail(error)
    target = out or Path(made.filename)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(made.html, encoding="utf-8")
    counts = made.counts
    typer.echo(f"{target}: {made.area['name']} ({made.area['code']}), {counts['compounds']} compounds, "
               f"{counts['gaps']} gaps, {counts['party']} party organisations, {counts['micro_grids']} micro-grids "
               f"({counts['hot_spots']} hot, {counts['cold_spots']} cold); {len(made.html.encode()) / 1e6:.2f} MB "
               f"in {made.seconds:.1f} s")
