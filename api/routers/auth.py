"""Sign in (bearer token), sign out (revoke), and who am I."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.deps import Engine
from api.security import SignedIn, bearer_token
from gis.access import auth

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginBody(BaseModel):
    username: str
    password: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str
    expires_at: datetime
    role: str


@router.post("/login", response_model=TokenOut, responses={
    401: {"description": "Wrong username or password, or the user is disabled"},
    429: {"description": "Too many failed sign-ins from this address on this account, or from this address on "
                         "any; see Retry-After. The same answer whatever the password"}})
async def login(body: LoginBody, request: Request, engine: Engine) -> dict:
    """Sign in. Failed attempts are throttled per client address and account together, with a doubling wait, and
    per client address (429 with Retry-After); an address that has not been failing still signs in."""
    address = request.client.host if request.client else None
    async with engine.connect() as conn:
        return await auth.login(conn, body.username, body.password, address)


@router.post("/logout")
async def logout(request: Request, principal: SignedIn, engine: Engine) -> dict:
    """Revoke the token of this request."""
    async with engine.begin() as conn:
        await auth.revoke_token(conn, bearer_token(request) or "")
    return {"revoked": True}


@router.get("/me")
async def me(principal: SignedIn) -> dict:
    """Who the bearer token belongs to: username, user id, role, scope codes and property company; 401 without a valid
    token."""
    return {"username": principal.username, "user_id": principal.user_id, "role": principal.role,
            "scope": list(principal.scope), "property_company_id": principal.company_id}
