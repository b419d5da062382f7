"""Sub-commands of the feature areas, each in its own module."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from cli.analytics_cmd import analytics_app, report
    from cli.audit_cmd import audit_app
    from cli.check_cmd import check
    from cli.complaints_cmd import complaints_app
    from cli.fixtures_cmd import fixtures_app
    from cli.layers_cmd import layers_app
    from cli.users_cmd import users_app

    app.add_typer(fixtures_app, name="fixtures")
    app.add_typer(layers_app, name="layers")
    app.add_typer(complaints_app, name="complaints")
    app.add_typer(users_app, name="users")
    app.add_typer(analytics_app, name="analytics")
    app.add_typer(audit_app, name="audit")
    app.command("check")(check)
    app.command("report")(report)
