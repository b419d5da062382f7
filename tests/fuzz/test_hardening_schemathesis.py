"""schemathesis against gridgov's own OpenAPI document over real HTTP, on the small city: every operation, for
the public and for each role with a token. No answer may be a server error, break the declared schema or carry an
undeclared content type.

Short by default (a few examples per operation); GRIDGOV_FUZZ=full (`make soak`) runs many more.
"""

from __future__ import annotations

import asyncio
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from conftest import LiveServer

FULL = os.environ.get("GRIDGOV_FUZZ") == "full"
EXAMPLES = 60 if FULL else 4
PASSWORD = "fuzzing password 1"
ROLES = ("public", "admin", "community", "grid_worker", "property_company", "planner")
# Operations that only change who may sign in: fuzzing them would lock the fuzzer out of its own tokens.
SKIPPED = {("PATCH", "/users/{username}"), ("POST", "/auth/logout")}


def make_users(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from gis import auth
    from gis.db import with_driver

    async def create():
        engine = create_async_engine(with_driver(url, "asyncpg"))
        async with engine.begin() as conn:
            community, grid = (await conn.execute(text(
                "SELECT community_code, code FROM grid WHERE valid_to IS NULL ORDER BY code LIMIT 1"))).one()
            company = (await conn.execute(text("SELECT min(id) FROM property_company"))).scalar_one()
            for username, role, scope, company_id in [
                ("fuzz-admin", "admin", [], None), ("fuzz-community", "community", [community], None),
                ("fuzz-grid_worker", "grid_worker", [grid], None),
                ("fuzz-property_company", "property_company", [], company), ("fuzz-planner", "planner", [], None),
            ]:
                await auth.create_user(conn, username, PASSWORD, role, scope, company_id)
        await engine.dispose()

    asyncio.run(create())


@pytest.fixture(scope="module")
def fuzz_server(city_db):
    make_users(city_db)
    server = LiveServer(city_db)
    with server.client() as client:
        tokens = {"public": None}
        for role in ROLES[1:]:
            answer = client.post("/auth/login", json={"username": f"fuzz-{role}", "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            tokens[role] = answer.json()["access_token"]
    server.tokens = tokens
    yield server
    server.stop()


def _schema():
    """The app's own OpenAPI document, built without a database (routes only), for the list of operations."""
    from api.main import create_app

    return schemathesis.openapi.from_dict(create_app("postgresql://nobody@127.0.0.1:1/none").openapi())


SCHEMA = _schema()
OPERATIONS = sorted(result.ok().label for result in SCHEMA.get_all_operations())


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_error_and_the_schema_holds(label, fuzz_server):
    """Each generated request is sent once per role: the public, then each role with its token."""
    method, _, path = label.partition(" ")
    if (method, path) in SKIPPED:
        pytest.skip("changes the fuzzer's own accounts")
    operation = SCHEMA.find_operation_by_label(label)

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=not FULL, database=None,
              suppress_health_check=list(HealthCheck))
    def each_case(case):
        for role in ROLES:
            token = fuzz_server.tokens[role]
            headers = {**(case.headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
            response = case.call(base_url=fuzz_server.url, headers=headers, timeout=60)
            try:
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance,
                                                          content_type_conformance])
            except Exception as failure:
                failure.add_note(f"as role {role}")
                raise

    each_case()
