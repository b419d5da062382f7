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
                     "audit", "registry", "basemap", "map", "model"}


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


# --- one bbox parser ---------------------------------------------------------------------------------------------

def test_one_bbox_parser():
    assert _where(r"\ndef (parse_bbox|_bbox|check_bbox)\(", "gis", "api") == ["gis/serve/bbox.py"]
    assert _where(r"bbox must be", "gis", "api") == []


def test_the_bbox_options_of_ogc():
    import pytest

    from gis.errors import InvalidInput
    from gis.serve.bbox import parse_bbox

    assert parse_bbox(None) is None
    assert parse_bbox("117,36,118,37") == (117.0, 36.0, 118.0, 37.0)
    six = "117,36,0,118,37,100"
    assert parse_bbox(six, heights=True) == (117.0, 36.0, 118.0, 37.0)
    across = "179,-10,-179,10"
    assert parse_bbox(across, antimeridian=True) == (179.0, -10.0, -179.0, 10.0)
    assert parse_bbox("117,36,117,36", antimeridian=True) == (117.0, 36.0, 117.0, 36.0)  # a flat box is a box
    for value, options in [(six, {}), (across, {}), ("117,36,117,36", {}), ("117,37,118,36", {"antimeridian": True}),
                           ("117,36,118", {"heights": True}), ("1_17,36,118,37", {}), ("nan,36,118,37", {}),
                           ("１１７,36,118,37", {}), ("117,36,118,95", {"antimeridian": True}), ("", {})]:
        with pytest.raises(InvalidInput) as refused:
            parse_bbox(value, **options)
        assert "bbox" in str(refused.value) and re.search(r"[\u4e00-\u9fff]", str(refused.value)), value


# --- one definition of the open states, no question whether the ticket table exists ------------------------------

def test_the_open_states_are_written_once():
    from gis.tickets.models import (
        FINAL_SQL,
        FINAL_STATES,
        OPEN_SQL,
        OPEN_STATES,
        STATES,
        overdue_sql,
    )

    assert set(OPEN_STATES) | set(FINAL_STATES) == set(STATES) and not set(OPEN_STATES) & set(FINAL_STATES)
    assert OPEN_SQL == "('reported', 'registered', 'dispatched', 'in_progress', 'handled')"
    assert FINAL_SQL == "('rejected', 'closed', 'merged')"
    assert overdue_sql("x") == f"(x.state IN {OPEN_SQL} AND x.due_at < now())"
    # the open states or the final ones written out as a list, anywhere but the one definition
    def written_out(states):
        return r"""['"]""" + r"""['"],\s*['"]""".join(states) + r"""['"]"""

    assert _where(written_out(OPEN_STATES), "gis", "api") == ["gis/tickets/models.py"]
    assert _where(written_out(FINAL_STATES), "gis", "api") == []
    assert _where(r"OPEN_TICKET_STATES|CLOSED_STATES|OPEN_SQL\s*=", "gis", "api") == ["gis/tickets/models.py"]


def test_nobody_asks_whether_the_ticket_table_exists():
    assert _where(r"to_regclass\(\s*'(public\.)?ticket'\)|_has_tickets|ticket_table_exists|has_tickets",
                  "gis", "api") == []


# --- settings in one place, errors in one place ----------------------------------------------------------------

def test_every_settings_class_lives_in_gis_settings_with_one_cached_accessor():
    from pydantic_settings import BaseSettings

    from gis import settings

    assert _where(r"BaseSettings", "gis", "api", "cli") == ["gis/settings.py"]
    classes = [value for value in vars(settings).values()
               if isinstance(value, type) and issubclass(value, BaseSettings) and value is not BaseSettings]
    assert len(classes) >= 11
    accessors = {name: value for name, value in vars(settings).items()
                 if name.endswith("_settings") and callable(value) and hasattr(value, "cache_clear")}
    for cls in classes:
        made = [name for name, accessor in accessors.items() if isinstance(accessor(), cls)]
        assert len(made) == 1, (cls.__name__, made)
        assert accessors[made[0]]() is accessors[made[0]]()  # cached
    prefixes = {cls.model_config["env_prefix"] for cls in classes}
    assert {"GRIDGOV_", "GRIDGOV_API_", "GRIDGOV_AUTH_", "GRIDGOV_AUDIT_", "GRIDGOV_TILES_", "GRIDGOV_EVAL_",
            "GRIDGOV_HARDENING_", "GRIDGOV_CITY_", "GRIDGOV_INPUT_", "GRIDGOV_RATES_", "GRIDGOV_PROACTIVE_",
            "GRIDGOV_DISPATCH_"} <= prefixes


def test_the_existing_variables_still_set_the_moved_settings(monkeypatch):
    from gis import settings

    for variable, accessor, field, value in [
        ("GRIDGOV_AUTH_TOKEN_HOURS", settings.auth_settings, "token_hours", 3.0),
        ("GRIDGOV_AUDIT_ASYNCHRONOUS_COMMIT", settings.audit_settings, "asynchronous_commit", True),
        ("GRIDGOV_TILES_COMPLAINT_MAX_AGE", settings.tile_settings, "complaint_max_age", 99),
        ("GRIDGOV_EVAL_RED_SHARE", settings.evaluation_settings, "red_share", 0.2),
        ("GRIDGOV_HARDENING_MAX_BODY_BYTES", settings.hardening_settings, "max_body_bytes", 4096),
        ("GRIDGOV_TRUSTED_PROXIES", settings.proxy_settings, "trusted_proxies", "10.0.0.1"),
        ("GRIDGOV_RATES_MIN_SAMPLE", settings.rates_settings, "min_sample", 3),
        ("GRIDGOV_PROACTIVE_MIN_COMPLAINTS", settings.proactive_settings, "min_complaints", 5),
        ("GRIDGOV_PROACTIVE_TREND_ALPHA", settings.proactive_settings, "trend_alpha", 0.01),
        ("GRIDGOV_DISPATCH_MIN_CONFIDENCE", settings.dispatch_settings, "min_confidence", 0.75),
    ]:
        monkeypatch.setenv(variable, str(value).lower() if isinstance(value, bool) else str(value))
        accessor.cache_clear()
        try:
            assert getattr(accessor(), field) == value, variable
        finally:
            monkeypatch.delenv(variable)
            accessor.cache_clear()


def test_every_domain_error_is_a_gridgov_error_with_a_status():
    from api.errors import DEFAULT_STATUS_CODES, status_for
    from gis import errors

    public_errors = r"\nclass [A-Z]\w*\((Exception|ValueError|RuntimeError|LookupError)\)"
    assert _where(public_errors, "gis") == ["gis/errors.py"]
    kinds = [value for value in vars(errors).values()
             if isinstance(value, type) and issubclass(value, errors.GridgovError) and value is not errors.GridgovError]
    for kind in kinds:
        error = kind("x", 1) if kind is errors.TooManyAttempts else kind("x")
        assert 400 <= status_for(error) < 600 and status_for(error) != 500, kind
    assert set(DEFAULT_STATUS_CODES) == set(kinds)
    assert _where(r"Open311Error\b", "gis", "api") == []


def test_the_open311_core_knows_no_http():
    # Open311's rendering, MIME types and statuses are the HTTP layer's (api/open311_format.py, api/errors.py)
    core = (ROOT / "gis" / "intake" / "open311.py").read_text(encoding="utf-8")
    assert not re.search(r"xml\.etree|ElementTree|text/xml;|application/json;|status_code|\.status\b|\b[45]\d\d,", core)


def test_open311_errors_in_the_spec_format():
    from api.open311_format import error_answer
    from gis.errors import Forbidden, InvalidInput, NotFound

    for error, status in [(InvalidInput("lat and long must be given together"), 400),
                          (Forbidden("api_key is not valid"), 403), (NotFound("token t not found"), 404)]:
        answer = error_answer(error, "json")
        assert answer.status_code == status and answer.media_type == "application/json; charset=utf-8"
        assert answer.body.decode() == f'[{{"code":{status},"description":"{error}"}}]'
        xml = error_answer(error, "xml")
        assert xml.status_code == status and xml.media_type == "text/xml; charset=utf-8"
        assert xml.body.decode() == ('<?xml version="1.0" encoding="utf-8"?><errors><error>'
                                     f"<code>{status}</code><description>{error}</description></error></errors>")
        assert error_answer(error, "yaml").media_type.startswith("application/json")
