"""schemathesis against gridgov's own OpenAPI document over real HTTP, on the small city: every operation, for
the public and for each role with a token (administrator, street office, community, grid worker, property
company, planner). Every answer must conform to the document: no server error, a documented status code, a
documented content type, the documented headers and the documented schema.

Short by default (a few examples per operation); GRIDGOV_FUZZ=full (`make soak`) runs many more. Beside the
fuzzing, deterministic walks of the same document: the security scheme and the error answers of every
operation, 405 with the real methods in Allow for a method a path does not have (OPTIONS lists them), and the
strict types of date and boolean parameters.
"""

from __future__ import annotations

import asyncio
import os
import re

import pytest
import schemathesis
from conftest import LiveServer
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

FULL = os.environ.get("GRIDGOV_FUZZ") == "full"
EXAMPLES = int(os.environ.get("GRIDGOV_FUZZ_EXAMPLES") or (60 if FULL else 3))
PASSWORD = "fuzzing password 1"
ROLES = ("public", "admin", "street", "community", "grid_worker", "property_company", "planner")
# Operations that only change who may sign in: fuzzing them would lock the fuzzer out of its own tokens.
SKIPPED = {("PATCH", "/users/{username}"), ("POST", "/auth/logout")}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
METHODS = ("get", "put", "post", "delete", "patch")


def make_users(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from gis.access import auth
    from gis.db.engine import with_driver

    async def create():
        engine = create_async_engine(with_driver(url, "asyncpg"))
        async with engine.begin() as conn:
            street, community, grid = (await conn.execute(text(
                "SELECT left(code, 9), community_code, code FROM grid WHERE valid_to IS NULL ORDER BY code LIMIT 1"
            ))).one()
            company = (await conn.execute(text("SELECT min(id) FROM property_company"))).scalar_one()
            for username, role, scope, company_id in [
                ("fuzz-admin", "admin", [], None), ("fuzz-street", "street", [street], None),
                ("fuzz-community", "community", [community], None),
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


def _document() -> dict:
    """The app's own OpenAPI document, built without a database (routes only)."""
    from api.main import create_app

    return create_app("postgresql://nobody@127.0.0.1:1/none").openapi()


DOCUMENT = _document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = sorted(result.ok().label for result in SCHEMA.get_all_operations())


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_answer_conforms_to_the_document(label, fuzz_server):
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
            headers = {name: value for name, value in (case.headers or {}).items()
                       if name.lower() != "authorization"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            response = case.call(base_url=fuzz_server.url, headers=headers, timeout=60)
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as failure:
                failure.add_note(f"as role {role}")
                raise

    each_case()


# --- the document itself --------------------------------------------------------------------------------------

def _operations():
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_the_bearer_scheme_and_each_operations_security_are_declared():
    scheme = DOCUMENT["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    security = {(method.upper(), path): operation.get("security") for path, method, operation in _operations()}
    assert security[("GET", "/auth/me")] == [{"bearer": []}]
    assert security[("GET", "/users")] == [{"bearer": []}]
    assert security[("GET", "/tickets")] == [{}, {"bearer": []}]  # the public may call it too
    assert security[("GET", "/layers")] is None and security[("POST", "/auth/login")] is None
    assert sum(1 for value in security.values() if value) >= 40


def test_every_operation_documents_its_error_answers():
    error = {"$ref": "#/components/schemas/Error"}
    for path, method, operation in _operations():
        responses = operation["responses"]
        assert "400" in responses, (method, path)
        content = responses["400"]["content"]["application/json"]["schema"]
        assert content == error or error in content.get("anyOf", []), (method, path)
        if operation.get("security"):
            assert {"401", "403"} <= responses.keys(), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        if "requestBody" in operation:
            assert "413" in responses, (method, path)
    login = DOCUMENT["paths"]["/auth/login"]["post"]["responses"]["429"]
    assert login["headers"]["Retry-After"]["required"] is True


def test_the_open311_post_declares_its_form():
    body = DOCUMENT["paths"]["/open311/v2/requests.{fmt}"]["post"]["requestBody"]
    form = body["content"]["application/x-www-form-urlencoded"]["schema"]
    assert {"api_key", "service_code", "lat", "long", "address_string", "crs", "description", "first_name",
            "last_name", "phone", "email", "device_id", "account_id", "media_url",
            "requested_datetime"} <= form["properties"].keys()
    assert any(re.match(pattern, "attribute[floor]") for pattern in form["patternProperties"])


def _concrete(path: str) -> str:
    samples = {"fmt": "json", "name": "E0601.json", "day": "2026-01-05", "period": "2026H1", "layer": "grid",
               "z": "14", "x": "13500", "y": "6300", "collection_id": "grid", "username": "fuzz-planner"}
    return re.sub(r"\{(\w+)\}", lambda match: samples.get(match.group(1), "1"), path)


def test_a_method_a_path_does_not_have_answers_405_with_the_real_allowed_methods(fuzz_server):
    admin = {"Authorization": f"Bearer {fuzz_server.tokens['admin']}"}
    with fuzz_server.client(headers=admin) as http:
        for path, item in DOCUMENT["paths"].items():
            declared = {method.upper() for method in item if method in METHODS}
            url = _concrete(path)
            allow = ", ".join(sorted(declared | {"OPTIONS"}))
            options = http.options(url)
            assert options.status_code == 204 and options.headers["allow"] == allow, (path, options.headers)
            for method in {"GET", "PUT", "POST", "DELETE", "PATCH"} - declared:
                answer = http.request(method, url)
                assert answer.status_code == 405, (method, path, answer.status_code, answer.text[:200])
                assert answer.headers["allow"] == allow, (method, path)
        assert http.get("/tickets/assign").status_code == 405


def _typed_parameters():
    for path, method, operation in _operations():
        for parameter in operation.get("parameters", []):
            schema = parameter.get("schema", {})
            options = schema.get("anyOf", [schema])
            types = {(option.get("type"), option.get("format")) for option in options}
            if ("boolean", None) in types:
                yield path, method, parameter, ("0", "1", "yes")
            elif ("string", "date") in types or ("string", "date-time") in types:
                yield path, method, parameter, ("0.5", "1700000000")


TYPED = list(_typed_parameters())


def test_date_and_boolean_parameters_take_only_their_documented_form(fuzz_server):
    assert len(TYPED) >= 10
    admin = {"Authorization": f"Bearer {fuzz_server.tokens['admin']}"}
    with fuzz_server.client(headers=admin) as http:
        for path, method, parameter, bad_values in TYPED:
            for bad in bad_values:
                url, params = _concrete(path), {}
                if parameter["in"] == "path":
                    url = re.sub(r"\{" + parameter["name"] + r"\}", bad, path)
                    url = _concrete(url)
                else:
                    params[parameter["name"]] = bad
                answer = http.request(method.upper(), url, params=params)
                assert answer.status_code in (400, 404, 422), (method, path, parameter["name"], bad,
                                                               answer.status_code)
