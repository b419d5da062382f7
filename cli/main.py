"""`gridgov` console command: every command and command group, registered in this order (read top to bottom).

Each sub-command module imports the core only inside its commands, so `gridgov --help` stays quick."""

from __future__ import annotations

import typer

from cli.analytics_cmd import analytics_app, report
from cli.audit_cmd import audit_app
from cli.basemap_cmd import basemap_app
from cli.check_cmd import check
from cli.complaints_cmd import complaints_app
from cli.db_cmd import db_app
from cli.fixtures_cmd import fixtures_app
from cli.layers_cmd import layers_app
from cli.map_cmd import map_app
from cli.model_cmd import model_app
from cli.registry_cmd import registry_app
from cli.serve_cmd import serve
from cli.users_cmd import users_app

app = typer.Typer(help="gridgov: grid-governance GIS for neighbourhood governance.", no_args_is_help=True)

app.command("serve")(serve)                          # gridgov serve
app.command("check")(check)                          # gridgov check
app.command("report")(report)                        # gridgov report STREET --period
app.add_typer(db_app, name="db")                     # gridgov db up|down|status|url|upgrade
app.add_typer(fixtures_app, name="fixtures")         # gridgov fixtures load
app.add_typer(layers_app, name="layers")             # gridgov layers import|export
app.add_typer(complaints_app, name="complaints")     # gridgov complaints import|api-key
app.add_typer(users_app, name="users")               # gridgov users add|list|disable|enable
app.add_typer(analytics_app, name="analytics")       # gridgov analytics evaluate
app.add_typer(audit_app, name="audit")               # gridgov audit reads
app.add_typer(registry_app, name="registry")         # gridgov registry kinds|template|import|export
app.add_typer(basemap_app, name="basemap")           # gridgov basemap build|info
app.add_typer(map_app, name="map")                   # gridgov map export --street|--district
app.add_typer(model_app, name="model")               # gridgov model train|evaluate

if __name__ == "__main__":
    app(prog_name="gridgov")
