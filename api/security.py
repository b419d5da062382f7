"""Resolving the caller of a request into a `Principal` (bearer tokens), and which client address a request
has (forwarded headers are believed only from configured proxies)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gis.access.auth import PUBLIC, Principal, principal_for_token
from gis.errors import Forbidden, SetupError, Unauthorized
from gis.settings import proxy_settings

# --- client addresses ---------------------------------------------------------------------------------------

def trusted_proxies(value: str | None = None) -> list[str]:
    """The configured proxies, checked: each an IP address or network, or `*`."""
    raw = proxy_settings().trusted_proxies if value is None else value
    entries = [part.strip() for part in raw.split(",") if part.strip()]
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SetupError(f"GRIDGOV_TRUSTED_PROXIES 中的 {entry!r} 不是 IP 地址或网段") from None
    return entries


def uvicorn_proxy_options(value: str | None = None) -> dict:
    """Keyword arguments for uvicorn: its proxy-header handling on only for the configured proxies (uvicorn
    itself would believe X-Forwarded-For from any loopback client)."""
    trusted = trusted_proxies(value)
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(trusted)}


def uvicorn_proxy_args(value: str | None = None) -> list[str]:
    """The same as command-line options of `python -m uvicorn`."""
    options = uvicorn_proxy_options(value)
    if not options["proxy_headers"]:
        return ["--no-proxy-headers"]
    return ["--proxy-headers", "--forwarded-allow-ips", options["forwarded_allow_ips"]]


# --- principals ---------------------------------------------------------------------------------------------


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header; a malformed header is refused, not ignored."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization 请求头必须是 'Bearer <令牌>'")
    return token.strip()


BEARER_SCHEME = "bearer"
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name=BEARER_SCHEME, bearerFormat="opaque token",
    description="The access_token of POST /auth/login, sent as `Authorization: Bearer <token>`.")
"""Declares the bearer scheme in the OpenAPI document (Swagger's Authorize); the header itself is read by
`bearer_token`, which refuses a malformed one instead of ignoring it."""


async def get_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
) -> Principal:
    """The caller; without credentials, the public. A bad or expired token is a 401, never the public."""
    token = bearer_token(request)
    if token is None:
        return PUBLIC
    async with request.app.state.engine.connect() as conn:
        return await principal_for_token(conn, token)


async def get_staff(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """The signed-in caller; the public (no token) is refused with 401."""
    if principal.role == "public":
        raise Unauthorized("请先登录")
    return principal


async def get_admin(principal: Annotated[Principal, Depends(get_staff)]) -> Principal:
    """The signed-in caller when an admin; 401 without a sign-in, 403 for any other role."""
    if principal.role != "admin":
        raise Forbidden("仅限管理员")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
"""The caller, the public without a token: the operation's security is optional."""
SignedIn = Annotated[Principal, Depends(get_staff)]
"""Any signed-in user (staff or planner)."""
Admin = Annotated[Principal, Depends(get_admin)]

SIGNED_IN_DEPENDENCIES = (get_staff, get_admin)


def operation_security(route) -> list[dict] | None:
    """The OpenAPI security requirement of a route from its dependencies: a bearer token required (signed-in
    users), optional (`{}` first: the public may call it too), or None when the route reads no principal."""
    calls = set()
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        calls.add(dependant.call)
        stack.extend(dependant.dependencies)
    if calls & set(SIGNED_IN_DEPENDENCIES):
        return [{BEARER_SCHEME: []}]
    if get_principal in calls:
        return [{}, {BEARER_SCHEME: []}]
    return None
