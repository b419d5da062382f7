"""What every sub-command shares: how a refused command ends, and running an async core function."""

from __future__ import annotations

import asyncio
from typing import NoReturn

import typer


def fail(error: Exception | str, status: int = 1) -> NoReturn:
    """Print `error` in red on stderr and end the command with exit `status`."""
    typer.secho(f"error: {error}", fg="red", err=True)
    raise typer.Exit(status)


def run_async(work):
    """Run an async core function `work(conn)` in one transaction on a short-lived engine; a GridgovError ends the
    command (exit 1)."""
    from gis.db.engine import async_engine, database_url
    from gis.errors import GridgovError

    async def main():
        engine = async_engine(database_url())
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except GridgovError as error:
        fail(error)
