"""`gridgov` console command."""

from __future__ import annotations

import typer

from cli.db_cmd import db_app

app = typer.Typer(help="gridgov: grid-governance GIS for neighbourhood governance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Serve the map and the API."""
    import uvicorn

    from gis.db import database_url

    import os

    # Resolve (and start) the database once here so every worker gets the same URL.
    os.environ["GRIDGOV_DATABASE_URL"] = database_url()
    typer.echo(f"gridgov serving on http://{host}:{port}/map")
    uvicorn.run("api.main:app", host=host, port=port, workers=workers, log_level="warning")


def _register_optional() -> None:
    """Feature areas register their own sub-commands here."""
    from cli import commands

    commands.register(app)


_register_optional()

if __name__ == "__main__":
    app(prog_name="gridgov")
