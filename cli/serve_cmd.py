"""`gridgov serve`: the map and the API under uvicorn."""

from __future__ import annotations

import typer

from cli.common import fail


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes."),
    trusted_proxies: str | None = typer.Option(
        None, help="Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For is believed "
                   "(default: GRIDGOV_TRUSTED_PROXIES, else none)."),
) -> None:
    """Serve the map and the API."""
    import os

    import uvicorn

    from api.security import uvicorn_proxy_options
    from gis.db.engine import database_url
    from gis.errors import SetupError
    from gis.serve.basemap import open_basemap
    from gis.settings import basemap_settings

    try:
        proxy_options = uvicorn_proxy_options(trusted_proxies)
    except SetupError as error:
        fail(error, status=2)
    basemap = basemap_settings().basemap
    if basemap is not None:
        try:  # a configured base map that cannot be read stops the start, not every tile
            open_basemap(basemap).close()
        except SetupError as error:
            fail(error, status=2)
    if trusted_proxies is not None:
        os.environ["GRIDGOV_TRUSTED_PROXIES"] = trusted_proxies
    # Resolve (and start) the database once here so every worker gets the same URL.
    os.environ["GRIDGOV_DATABASE_URL"] = database_url()
    typer.echo(f"gridgov serving on http://{host}:{port}/map")
    uvicorn.run("api.main:app", host=host, port=port, workers=workers, log_level="warning", **proxy_options)
