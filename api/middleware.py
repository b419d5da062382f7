"""Hardening around every request: security headers, a request body limit, request ids, and database faults
answered as clear JSON errors (503 while the database is away, 504 when a statement ran out of time).

Pure ASGI middleware (not BaseHTTPMiddleware), so streamed bodies stay streamed and the cost per request is a
few dictionary operations.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis.settings import api_settings, hardening_settings

log = logging.getLogger("gridgov.api")

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def content_security_policy() -> str:
    """Same-origin only; the one exception is the base-map tile server an operator configured on purpose.

    Inline styles are allowed because Leaflet markers and the printable report carry style attributes;
    inline and foreign scripts are not.
    """
    images = ["'self'", "data:", "blob:"]
    tile_url = api_settings().base_tile_url
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        if parts.scheme in ("http", "https") and parts.netloc:
            host = parts.netloc
            if "{s}." in tile_url:
                host = "*." + host.split(".", 1)[1]
            images.append(f"{parts.scheme}://{host}")
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": images,
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers() -> list[tuple[bytes, bytes]]:
    """The security headers every answer carries (content security policy, no framing, no sniffing, ...), as raw ASGI
    header pairs; HSTS only when the hardening settings ask for it."""
    headers = {
        "content-security-policy": content_security_policy(),
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "strict-origin-when-cross-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=(self), payment=()",
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-resource-policy": "same-origin",
    }
    if hardening_settings().hsts:
        headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"
    return [(name.encode(), value.encode()) for name, value in headers.items()]


class BodyTooLarge(Exception):
    """Raised from inside `receive` when a streamed body passes the limit."""


def _error_body(status: int, detail: str, request_id: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"detail": detail, "request_id": request_id}).encode()
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())], body


class HardeningMiddleware:
    """Adds a request id and the security headers to every response and refuses bodies over the limit (413)."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.headers = security_headers()
        settings = hardening_settings()
        self.max_body = settings.max_body_bytes
        self.max_upload = settings.max_upload_bytes

    def _limit_for(self, headers: dict[bytes, bytes]) -> int:
        content_type = headers.get(b"content-type", b"").lower()
        return self.max_upload if content_type.startswith(b"multipart/form-data") else self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        offered = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = offered if _SAFE_REQUEST_ID.match(offered) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        extra_headers = [*self.headers, (REQUEST_ID_HEADER.encode(), request_id.encode())]
        limit = self._limit_for(headers)

        async def send_error(status: int, detail: str) -> None:
            error_headers, body = _error_body(status, detail, request_id)
            await send({"type": "http.response.start", "status": status,
                        "headers": error_headers + extra_headers + [(b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})

        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                declared_size = int(declared)
            except ValueError:
                await send_error(400, "Content-Length is not a number")
                return
            if declared_size > limit:
                await send_error(413, f"the request body is larger than the limit of {limit} bytes")
                return

        received = 0
        response_started = False
        response_ended = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started, response_ended
            if message["type"] == "http.response.start":
                response_started = True
                names = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *(h for h in extra_headers if h[0] not in names)]}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                response_ended = True

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            if response_started:
                raise
            await send_error(413, f"the request body is larger than the limit of {limit} bytes")
        except Exception as error:  # noqa: BLE001
            if response_ended:
                # The answer is complete on the wire (a teardown after the response failed): raising would make
                # the server reset the keep-alive connection and fail the client's next request on it.
                log.warning("error after the response to %s %s was sent [%s]", scope.get("method"),
                            scope.get("path"), request_id, exc_info=error)
                return
            # Anything that escaped the app's handlers still gets a JSON answer carrying the request id.
            if response_started:
                raise
            log.exception("unhandled error in request %s %s [%s]", scope.get("method"), scope.get("path"),
                          request_id, exc_info=error)
            status, detail = database_fault(error) or (500, "internal error; quote the request id when reporting")
            await send_error(status, detail)


# --- database faults ----------------------------------------------------------------------------------------

_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P", "53")
"""Connection exceptions, operator intervention (shutdown, crash recovery), insufficient resources."""
_CANCELED = "57014"


def _sqlstate(error: BaseException) -> str | None:
    for candidate in (error, getattr(error, "orig", None), getattr(error, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def database_fault(error: BaseException) -> tuple[int, str] | None:
    """The status and message for an error that means the database is away, a statement ran too long or the
    database refused a value; None for any other error (a real bug, which stays a 500)."""
    code = _sqlstate(error)
    if code and code.startswith("22"):
        # The database refused a value (a NUL character, a number out of range): bad input, not a server fault.
        # Routes should catch these earlier; this keeps the answer a 4xx when one slips through.
        return 400, "a value in the request cannot be stored or compared (bad characters or out of range)"
    if code == _CANCELED:
        return 504, "the database query took too long and was stopped (statement timeout); narrow the request"
    if code and code.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
        return 503, "the database is unavailable; try again shortly"
    if isinstance(error, sa_exc.TimeoutError):
        return 503, "all database connections are busy; try again shortly"
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return 503, "the database connection was lost; try again shortly"
    chain: BaseException | None = error
    seen = 0
    while chain is not None and seen < 6:
        if isinstance(chain, (ConnectionError, TimeoutError)) or type(chain).__name__ in (
            "ConnectionDoesNotExistError", "CannotConnectNowError", "InterfaceError", "ConnectionFailure",
            "OperationalError",
        ):
            return 503, "the database is unavailable; try again shortly"
        if isinstance(chain, OSError) and chain.errno is not None:
            return 503, "the database is unavailable; try again shortly"
        chain = chain.__cause__ or chain.__context__
        seen += 1
    return None


def _database_error_handler():
    async def handle(request: Request, error: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
        fault = database_fault(error)
        if fault is None:
            log.error("database error in %s %s [%s]", request.method, request.url.path, request_id,
                      exc_info=error)
            status, detail = 500, "internal error; quote the request id when reporting"
        else:
            status, detail = fault
            level = logging.INFO if status == 400 else logging.WARNING
            log.log(level, "%s %s answered %s [%s]: %s", request.method, request.url.path, status, request_id,
                    type(error).__name__)
        headers = {"Retry-After": "5"} if status == 503 else None
        return JSONResponse({"detail": detail, "request_id": request_id}, status_code=status, headers=headers)

    return handle


def install(app: FastAPI) -> None:
    """Add the middleware and the database-fault handlers to `app` (call once in create_app)."""
    handler = _database_error_handler()
    app.add_exception_handler(sa_exc.DBAPIError, handler)
    app.add_exception_handler(sa_exc.TimeoutError, handler)
    app.add_exception_handler(ConnectionError, handler)
    try:
        import asyncpg

        app.add_exception_handler(asyncpg.PostgresError, handler)
        app.add_exception_handler(asyncpg.InterfaceError, handler)
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        pass
    try:
        import psycopg

        app.add_exception_handler(psycopg.Error, handler)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    app.add_middleware(HardeningMiddleware)
