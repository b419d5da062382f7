"""`gridgov db up|down|status|url|upgrade`."""

from __future__ import annotations

import typer

from cli.common import fail
from gis.db import migrate
from gis.db.engine import database_url, embedded_cluster
from gis.errors import SetupError
from gis.settings import database_settings

db_app = typer.Typer(help="The database: the embedded PostGIS cluster, or GRIDGOV_DATABASE_URL.", no_args_is_help=True)


@db_app.command()
def up() -> None:
    """Create and start the embedded cluster (nothing to do when GRIDGOV_DATABASE_URL is set)."""
    try:
        url = database_url()
    except SetupError as error:
        fail(error)
    typer.echo(url)


@db_app.command()
def down() -> None:
    """Stop the embedded cluster."""
    if database_settings().database_url:
        typer.echo("GRIDGOV_DATABASE_URL is set: that server is not gridgov's to stop")
        return
    embedded_cluster().stop()
    typer.echo("stopped")


@db_app.command()
def status() -> None:
    """Say whether the database answers."""
    settings = database_settings()
    if settings.database_url:
        typer.echo(f"external: {settings.database_url}")
        return
    cluster = embedded_cluster()
    state = "running" if cluster.running() else ("stopped" if cluster.initialised() else "not created")
    typer.echo(f"embedded cluster in {cluster.data_dir}: {state}")
    if state == "running":
        typer.echo(cluster.url())
    else:
        raise typer.Exit(3)


@db_app.command()
def url() -> None:
    """Print the database URL (starting the embedded cluster if needed)."""
    up()


@db_app.command()
def upgrade() -> None:
    """Apply schema migrations (idempotent) and seed the category catalogue where it is empty."""
    from gis.layers.catalogue import seed_categories

    try:
        target = database_url()
        migrate.upgrade(target)
        added = seed_categories(target)
    except SetupError as error:
        fail(error)
    typer.echo(f"schema at {', '.join(migrate.current(target))}; {added} categories added")
