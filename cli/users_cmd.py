"""`gridgov users add|list|disable|enable`."""

from __future__ import annotations

import typer

from cli.common import run_async

users_app = typer.Typer(help="Users, roles and scopes.", no_args_is_help=True)


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
    from gis.access import auth
    user = run_async(lambda conn: auth.create_user(conn, username, password, role, scope, company, name))
    typer.echo(f"added {user['username']} ({user['role']}) id {user['id']}")


@users_app.command("list")
def list_() -> None:
    """List users with role, scope and whether they are active."""
    from gis.access import auth
    for user in run_async(auth.list_users):
        scope = ",".join(user["scope_codes"]) or (f"company {user['property_company_id']}"
                                                  if user["property_company_id"] else "-")
        state = "active" if user["active"] else "disabled"
        typer.echo(f"{user['id']:>5}  {user['username']:<24} {user['role']:<17} {state:<9} {scope}")


@users_app.command()
def disable(username: str) -> None:
    """Disable a user and revoke its tokens at once."""
    from gis.access import auth
    run_async(lambda conn: auth.set_active(conn, username, False))
    typer.echo(f"disabled {username}; its tokens are revoked")


@users_app.command()
def enable(username: str) -> None:
    """Enable a disabled user again; its old tokens stay revoked, so it signs in anew."""
    from gis.access import auth
    run_async(lambda conn: auth.set_active(conn, username, True))
    typer.echo(f"enabled {username}")
