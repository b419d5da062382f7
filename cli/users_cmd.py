"""`gridgov users add|list|disable|enable`."""

from __future__ import annotations

import asyncio

import typer

users_app = typer.Typer(help="Users, roles and scopes.", no_args_is_help=True)


def _run(work):
    """Run an async core function on a short-lived engine."""
    from gis.db import async_engine, database_url
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
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1)


@users_app.command()
def add(
    username: str,
    role: str = typer.Option(..., help="admin, street, community, grid_worker, property_company or planner"),
    scope: list[str] = typer.Option([], help="Street, community or grid code(s) the user is limited to."),
    company: int | None = typer.Option(None, help="Property company id (property_company users)."),
    name: str | None = typer.Option(None, help="Display name."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 envvar="GRIDGOV_NEW_USER_PASSWORD"),
) -> None:
    """Add a user (the password is asked for, or read from GRIDGOV_NEW_USER_PASSWORD)."""
    from gis import auth

    user = _run(lambda conn: auth.create_user(conn, username, password, role, scope, company, name))
    typer.echo(f"added {user['username']} ({user['role']}) id {user['id']}")


@users_app.command("list")
def list_() -> None:
    """List users with role, scope and whether they are active."""
    from gis import auth

    for user in _run(auth.list_users):
        scope = ",".join(user["scope_codes"]) or (f"company {user['property_company_id']}"
                                                  if user["property_company_id"] else "-")
        state = "active" if user["active"] else "disabled"
        typer.echo(f"{user['id']:>5}  {user['username']:<24} {user['role']:<17} {state:<9} {scope}")


@users_app.command()
def disable(username: str) -> None:
    """Disable a user and revoke its tokens at once."""
    from gis import auth

    _run(lambda conn: auth.set_active(conn, username, False))
    typer.echo(f"disabled {username}; its tokens are revoked")


@users_app.command()
def enable(username: str) -> None:
    from gis import auth

    _run(lambda conn: auth.set_active(conn, username, True))
    typer.echo(f"enabled {username}")
