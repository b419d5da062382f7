"""The one place where the core's typed errors become HTTP statuses.

Every domain error is a `GridgovError` subclass (gis/errors.py), and `DEFAULT_STATUS_CODES` gives each its
status (a subclass takes the status of its nearest listed ancestor; an unlisted one is a 500). Ordinary routes
answer `{"detail": ...}`; the Open311 routes answer the same errors, with the same statuses, in GeoReport v2's
error list (api/open311_format.py).

Two kinds of fault are answered elsewhere, on purpose, because they arise where no route's exception handler
can catch them: database faults (the server away or restarting, a statement timeout, a value the database
refused; SQLAlchemy, asyncpg and psycopg errors, not domain errors) are mapped to 503, 504 or 400 by
`api.middleware.database_fault`, which the middleware also applies to errors raised while a streamed answer is
being sent or a dependency is torn down; and a body over the size limit is refused (413) by the middleware before
any route runs.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gis import errors

DEFAULT_STATUS_CODES: dict[type[errors.GridgovError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooManyAttempts: 429,
    errors.SetupError: 503,
}
"""The HTTP status of each kind of domain error."""


def status_for(error: errors.GridgovError) -> int:
    """The status of `error`: that of its nearest kind in DEFAULT_STATUS_CODES, else 500."""
    for kind in type(error).__mro__:
        if kind in DEFAULT_STATUS_CODES:
            return DEFAULT_STATUS_CODES[kind]
    return 500


def headers_for(error: errors.GridgovError) -> dict[str, str] | None:
    """Headers an error's answer carries: Retry-After when the caller must wait."""
    if isinstance(error, errors.TooManyAttempts):
        return {"Retry-After": str(error.retry_after)}
    return None


def install(app: FastAPI) -> None:
    """Answer every GridgovError raised by a route as JSON {detail} with its status from DEFAULT_STATUS_CODES (and
    Retry-After when the caller must wait)."""
    @app.exception_handler(errors.GridgovError)
    async def _gridgov_error(request: Request, error: errors.GridgovError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=status_for(error), headers=headers_for(error))


# --- the error answers in the OpenAPI document --------------------------------------------------------------

ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "The reason, in words for the user"},
        "request_id": {"type": "string", "description": "Quote it when reporting a fault"},
    },
}
OPEN311_ERRORS_NAME = "Open311Errors"
OPEN311_ERRORS_SCHEMA = {
    "title": OPEN311_ERRORS_NAME,
    "description": "GeoReport v2 errors: a list of {code, description}",
    "type": "array",
    "items": {"type": "object", "required": ["code", "description"],
              "properties": {"code": {"type": "integer"}, "description": {"type": "string"}}},
}
DESCRIPTIONS = {
    400: "Bad input; `detail` says why",
    401: "No valid token: required and missing, unknown, expired or revoked, or a malformed Authorization header",
    403: "Signed in, but this role may not do this",
    404: "Not found, or outside the caller's scope (the two are not told apart)",
    409: "A concurrent change won, or it exists already; reload and retry",
    413: "The request body is larger than the limit",
    429: "Too many attempts; wait as long as Retry-After says",
    503: "The database is unavailable; try again shortly",
    504: "A database statement ran out of time; narrow the request",
}
RETRY_AFTER = {"description": "Seconds to wait before trying again", "schema": {"type": "integer", "minimum": 0}}
WRITE_METHODS = ("post", "put", "patch", "delete")
OPEN311_PREFIX = "/open311/"


def _reference(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def error_response(status: int, open311: bool = False) -> dict:
    """The documented answer of one error status: the shared error schema (GeoReport v2's own list and its XML
    on Open311 paths, where a fault outside Open311's handling still answers with the shared schema)."""
    if open311:
        content = {"application/json": {"schema": {"anyOf": [_reference(OPEN311_ERRORS_NAME),
                                                             _reference(ERROR_SCHEMA_NAME)]}},
                   "text/xml": {"schema": {"type": "string"}}}
    else:
        content = {"application/json": {"schema": _reference(ERROR_SCHEMA_NAME)}}
    response = {"description": DESCRIPTIONS[status], "content": content}
    if status == 429:
        response["headers"] = {"Retry-After": {**RETRY_AFTER, "required": True}}
    elif status == 503:
        response["headers"] = {"Retry-After": RETRY_AFTER}
    return response


def document_errors(document: dict, statuses_of) -> dict:
    """Add the error answers every operation can give to an OpenAPI document, in place.

    `statuses_of(path, method, operation)` names the statuses of one operation (see api.main); an answer the
    router documented itself is completed with the shared schema, never replaced."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    schemas[OPEN311_ERRORS_NAME] = OPEN311_ERRORS_SCHEMA
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch", "options", "head"):
                continue
            responses = operation.setdefault("responses", {})
            declared = {int(code) for code in responses if code.isdigit() and int(code) in DESCRIPTIONS}
            for status in sorted(set(statuses_of(path, method, operation)) | declared):
                documented = error_response(status, path.startswith(OPEN311_PREFIX))
                given = responses.setdefault(str(status), {})
                given.setdefault("description", documented["description"])
                if not given.get("content"):
                    given["content"] = documented["content"]
                if "headers" in documented:
                    given.setdefault("headers", documented["headers"])
    return document
