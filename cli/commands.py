"""Sub-commands of the feature areas, each in its own module."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from cli.fixtures_cmd import fixtures_app

    app.add_typer(fixtures_app, name="fixtures")
