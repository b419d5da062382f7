"""Resolving the caller of a request into a `Principal` (bearer tokens)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gis.auth import PUBLIC, Principal, principal_for_token
from gis.errors import Forbidden, Unauthorized


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header; a malformed header is refused, not ignored."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


async def get_principal(request: Request) -> Principal:
    """The caller; without credentials, the public. A bad or expired token is a 401, never the public."""
    token = bearer_token(request)
    if token is None:
        return PUBLIC
    async with request.app.state.engine.connect() as conn:
        return await principal_for_token(conn, token)


async def get_staff(request: Request) -> Principal:
    principal = await get_principal(request)
    if principal.role == "public":
        raise Unauthorized("sign in first")
    return principal


async def get_admin(request: Request) -> Principal:
    principal = await get_staff(request)
    if principal.role != "admin":
        raise Forbidden("administrators only")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
SignedIn = Annotated[Principal, Depends(get_staff)]
"""Any signed-in user (staff or planner)."""
Admin = Annotated[Principal, Depends(get_admin)]
