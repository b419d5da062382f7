"""One place for each rule (issue 14): one router list, one command list, one way out of a failed command.

These read the source tree and the wired-up app and command; they need no database."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parent.parent


def _sources(*folders: str) -> dict[str, str]:
    """Path (relative to the checkout) → text of every Python module under `folders` (or of the files named),
    migrations left out."""
    found = {}
    for folder in folders:
        base = ROOT / folder
        for path in [base] if base.is_file() else sorted(base.rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/versions/" not in relative:
                found[relative] = path.read_text(encoding="utf-8")
    return found


def _where(pattern: str, *folders: str) -> list[str]:
    regex = re.compile(pattern)
    return sorted(path for path, source in _sources(*folders).items() if regex.search(source))


# --- one router list ---------------------------------------------------------------------------------------------

def test_every_router_module_is_in_the_one_router_list():
    import api.routers
    from api import main

    modules = sorted(info.name for info in pkgutil.iter_modules(api.routers.__path__))
    listed = [id(router) for router in main.ROUTERS]
    for name in modules:
        module = __import__(f"api.routers.{name}", fromlist=["router"])
        assert id(module.router) in listed, f"api/routers/{name}.py is not in api.main.ROUTERS"
    assert len(listed) == len(set(listed))
    assert not (ROOT / "api" / "extra_routers.py").exists()


def test_routers_are_included_at_the_top_of_a_module_never_inside_a_function():
    # an import inside a function hides what the app serves from whoever reads api/main.py
    assert _where(r"\n[ \t]+(from api(\.\w+)* import|import api)", "api/main.py") == []


def test_the_app_serves_exactly_the_routes_of_the_list():
    from fastapi.routing import iter_route_contexts

    from api import main

    app = main.create_app("postgresql://nobody@127.0.0.1:1/none")
    served = {(context.path_format, method) for context in iter_route_contexts(app.routes)
              for method in (context.methods or ())}
    listed = {(route.path_format, method) for router in main.ROUTERS for route in router.routes
              for method in getattr(route, "methods", None) or ()}
    assert served - {("/openapi.json", "GET"), ("/openapi.json", "HEAD")} == listed and len(listed) > 70


# --- one command list, one way to fail -------------------------------------------------------------------------

EXPECTED_COMMANDS = {"serve", "check", "report", "db", "fixtures", "layers", "complaints", "users", "analytics",
                     "audit"}


def test_every_command_is_registered_in_cli_main():
    from cli import main

    command = typer.main.get_command(main.app)
    assert set(command.commands) == EXPECTED_COMMANDS
    assert not (ROOT / "cli" / "commands.py").exists()
    assert "_register_optional" not in (ROOT / "cli" / "main.py").read_text(encoding="utf-8")


def test_one_fail_for_every_command():
    # the one definition of how a refused command ends, and nobody writes it out again
    assert _where(r"\ndef _?fail\(", "cli") == ["cli/common.py"]
    assert _where(r"secho\(f?\"error:", "cli") == ["cli/common.py"]
    assert _where(r"\ndef _run\(", "cli") == []


def test_a_refused_command_still_ends_with_its_status():
    # layers and check refuse with 2, the rest with 1: the one `fail` keeps each command's status
    result = subprocess.run([sys.executable, "-m", "cli", "fixtures", "load", "huge"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "size must be one of" in result.stderr, result.stderr
