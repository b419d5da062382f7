"""`gridgov basemap build|info`: the demo's own base map, generated from the city's layers, and a look at a file."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import fail

basemap_app = typer.Typer(help="The base map (底图): build the demo's own from its layers, or look at a file.",
                          no_args_is_help=True)

DEFAULT_OUT = Path("build") / "basemap" / "demo.mbtiles"


@basemap_app.command("build")
def build(
    out: Path = typer.Option(None, help="The MBTiles file to write (default: GRIDGOV_BASEMAP, else "
                                        f"{DEFAULT_OUT})."),
    min_zoom: int = typer.Option(10, help="Least zoom."),
    max_zoom: int = typer.Option(17, help="Largest zoom (the map draws beyond it by scaling)."),
    if_changed: bool = typer.Option(False, "--if-changed", help="Leave a file made from the same city as it is, "
                                                                "and a city's own file (not made by gridgov)."),
) -> None:
    """Write the base map of the loaded city (roads between compounds, district, water, labels) as vector tiles."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fixtures.names import ROADS
    from gis.basemap.build import build_basemap
    from gis.db.engine import database_url
    from gis.errors import GridgovError
    from gis.settings import basemap_settings

    target = out or basemap_settings().basemap or DEFAULT_OUT
    bar = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with bar:
        task = bar.add_task("base-map tiles", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            report = build_basemap(database_url(), target, minzoom=min_zoom, maxzoom=max_zoom, road_names=ROADS,
                                   if_changed=if_changed, progress=advance)
        except GridgovError as error:
            fail(error)
    if report.own_file:
        typer.echo(f"{report.path} is the city's own base map (not made by gridgov): left as it is")
        return
    if not report.built:
        typer.echo(f"{report.path} is up to date with the city ({report.bytes / 1e6:.1f} MB)")
        return
    zooms = ", ".join(f"z{z}: {count}" for z, count in sorted(report.tiles_by_zoom.items()))
    typer.echo(f"{report.path}: {report.tiles} tiles ({zooms}), {report.bytes / 1e6:.1f} MB, "
               f"{report.seconds:.1f} s")


@basemap_app.command("info")
def info(path: Path = typer.Argument(None, help="An MBTiles or PMTiles file (default: GRIDGOV_BASEMAP).")) -> None:
    """What a base-map file holds (kind, format, zooms, bounds), or why it cannot be served."""
    from gis.errors import SetupError
    from gis.serve.basemap import open_basemap
    from gis.settings import basemap_settings

    path = path or basemap_settings().basemap
    if path is None:
        fail("no file given and GRIDGOV_BASEMAP is not set", status=2)
    try:
        opened = open_basemap(path)
    except SetupError as error:
        fail(error)
    typer.echo(f"{opened.path}: {opened.kind}, {opened.format}, zoom {opened.minzoom}-{opened.maxzoom}, "
               f"bounds {opened.bounds}, attribution {opened.attribution}")
    opened.close()
