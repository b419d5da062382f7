"""Sign in (bearer token), sign out (revoke), and who am I."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.deps import Engine
from api.security import SignedIn, bearer_token
from gis import auth

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginBody(BaseModel):
    username: str
    password: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str
    expires_at: datetime
    role: str


@router.post("/login", response_model=TokenOut)
async def login(body: LoginBody, engine: Engine) -> dict:
    async with engine.begin() as conn:
        return await auth.login(conn, body.username, body.password)


@router.post("/logout")
async def logout(request: Request, principal: SignedIn, engine: Engine) -> dict:
    """Revoke the token of this request."""
    async with engine.begin() as conn:
        await auth.revoke_token(conn, bearer_token(request) or "")
    return {"revoked": True}


@router.get("/me")
async def me(principal: SignedIn) -> dict:
    return {"username": principal.username, "user_id": principal.user_id, "role": principal.role,
            "scope": list(principal.scope), "property_company_id": principal.company_id}
