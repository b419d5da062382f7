"""`gridgov fixtures load small|demo|city|province --seed N` (province: five cities, for benchmarks only)."""

from __future__ import annotations

import typer

from cli.common import fail

fixtures_app = typer.Typer(help="The generated demo city.", no_args_is_help=True)


@fixtures_app.command()
def load(
    size: str = typer.Argument(..., help="small, demo, city or province (benchmarks only)"),
    seed: int = typer.Option(7, help="Seed of the deterministic generator."),
    if_changed: bool = typer.Option(False, "--if-changed", help="Skip when this size and seed are loaded."),
) -> None:
    """Generate the demo city and load it (replacing what the database holds)."""
    import time

    from fixtures.loader import SIZES, load_city, loaded_fixture
    from fixtures.province import PROVINCE
    from fixtures.province_load import load_province
    from gis.db.engine import database_url
    from gis.db.migrate import upgrade
    from gis.errors import GridgovError

    if size not in (*SIZES, PROVINCE):
        fail(f"size must be one of {', '.join((*SIZES, PROVINCE))}", status=2)
    started = time.perf_counter()
    try:
        url = database_url()
        upgrade(url)
        if if_changed and loaded_fixture(url) == (size, seed):
            typer.echo(f"the {size} city (seed {seed}) is loaded already")
            return
        if size == PROVINCE:
            summary = load_province(url, seed=seed, progress=True)
        else:
            summary = load_city(url, size, seed=seed, progress=True)
    except GridgovError as error:
        fail(error)
    for layer, count in summary.items():
        typer.echo(f"{layer:>20}: {count:,}")
    typer.echo(f"{'seconds':>20}: {time.perf_counter() - started:,.1f}")
