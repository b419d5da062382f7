"""Users, for administrators."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictBool

from api.deps import Connection, Engine
from api.security import Admin
from gis.access import auth

router = APIRouter(prefix="/users", tags=["users"])


class UserIn(BaseModel):
    username: str
    password: str
    role: str
    scope_codes: list[str] = Field(default_factory=list)
    property_company_id: int | None = None
    display_name: str | None = None


class UserPatch(BaseModel):
    active: StrictBool | None = None
    password: str | None = None


@router.get("")
async def list_users(principal: Admin, conn: Connection) -> list[dict]:
    """Every user account (no password hashes), by username; admins only."""
    return await auth.list_users(conn)


@router.post("", status_code=201)
async def create_user(body: UserIn, principal: Admin, engine: Engine) -> dict:
    """Add a user with a role and scope; the password is hashed and never stored in clear. Admins only; 400 for a bad
    username, short password or a scope that does not fit the role, 409 when the username is taken."""
    async with engine.begin() as conn:
        return await auth.create_user(conn, body.username, body.password, body.role, body.scope_codes,
                                      body.property_company_id, body.display_name)


@router.patch("/{username}")
async def update_user(username: str, body: UserPatch, principal: Admin, engine: Engine) -> dict:
    """Set a user's password and/or enable or disable it (disabling revokes its tokens at once); answers the user.
    Admins only; 404 for an unknown user, 400 for a short password."""
    async with engine.begin() as conn:
        if body.password is not None:
            await auth.set_password(conn, username, body.password)
        if body.active is not None:
            return await auth.set_active(conn, username, body.active)
        return await auth.get_user(conn, username)
