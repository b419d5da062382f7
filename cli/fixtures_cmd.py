"""`gridgov fixtures load small|demo|city --seed N`."""

from __future__ import annotations

import typer

from cli.common import fail

fixtures_app = typer.Typer(help="The generated demo city.", no_args_is_help=True)


@fixtures_app.command()
def load(
    size: str = typer.Argument(..., help="small, demo or city"),
    seed: int = typer.Option(7, help="Seed of the deterministic generator."),
    if_changed: bool = typer.Option(False, "--if-changed", help="Skip when this size and seed are loaded."),
) -> None:
    """Generate the demo city and load it (replacing what the database holds)."""
    from fixtures.loader import SIZES, load_city, loaded_fixture
    from gis.db.engine import database_url
    from gis.db.migrate import upgrade
    from gis.errors import GridgovError

    if size not in SIZES:
        fail(f"size must be one of {', '.join(SIZES)}", status=2)
    try:
        url = database_url()
        upgrade(url)
        if if_changed and loaded_fixture(url) == (size, seed):
            typer.echo(f"the {size} city (seed {seed}) is loaded already")
            return
        summary = load_city(url, size, seed=seed, progress=True)
    except GridgovError as error:
        fail(error)
    for layer, count in summary.items():
        typer.echo(f"{layer:>20}: {count:,}")
