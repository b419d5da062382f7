"""Who is asking: principals, roles, the scope each role may see, users, passwords and bearer tokens.

Roles: administrator, street office (its street), community (its community), grid worker (its grids),
property company (its compounds), planner (read only, no personal data), public (anonymised reports only).
Passwords are hashed with Argon2id; a bearer token is random, stored only as its SHA-256 digest, expires and can
be revoked.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.errors import Conflict, InvalidInput, NotFound, Unauthorized

ROLES = ("admin", "street", "community", "grid_worker", "property_company", "planner", "public")
STAFF_ROLES = ("admin", "street", "community", "grid_worker", "property_company")
USER_ROLES = ROLES[:-1]

SCOPE_TABLE = {"street": "street", "community": "community", "grid_worker": "grid"}
"""Which boundary table a role's scope codes name (property companies are scoped by their company)."""


class AuthSettings(BaseSettings):
    """Token lifetime and password rules."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_AUTH_", extra="ignore")

    token_hours: float = 12.0
    min_password_length: int = 10
    login_window_seconds: float = 300.0
    """Failed sign-ins count for this long (a sliding window)."""
    login_failures_per_user: int = 5
    login_failures_per_address: int = 20
    """Higher than per user: an office behind one NAT address shares it."""


@dataclass(frozen=True)
class Principal:
    """The caller of a request. `scope` holds the codes the role is limited to (street, community or grid
    codes, or compound codes for a property company); the administrator and planner see the whole city."""

    role: str
    username: str = "public"
    user_id: int | None = None
    scope: tuple[str, ...] = field(default_factory=tuple)
    company_id: int | None = None

    @property
    def sees_personal_data(self) -> bool:
        """Names and phone numbers of reporters and contacts: staff only, never planners or the public."""
        return self.role in STAFF_ROLES

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


PUBLIC = Principal(role="public")


def complaint_scope_sql(principal: Principal, alias: str = "complaint") -> tuple[str, dict]:
    """A WHERE fragment limiting complaints (or tickets joined to them) to what `principal` may see."""
    column = {
        "street": "street_code",
        "community": "community_code",
        "grid_worker": "grid_code",
        "property_company": "compound_code",
    }.get(principal.role)
    if column is None:
        return "TRUE", {}
    return f"{alias}.{column} = ANY(:scope_codes)", {"scope_codes": list(principal.scope)}


# --- passwords ----------------------------------------------------------------------------------------------

_hasher = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown user the same as for a known one.
_UNKNOWN_USER_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    settings = AuthSettings()
    if len(password) < settings.min_password_length:
        raise InvalidInput(f"a password needs at least {settings.min_password_length} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- users --------------------------------------------------------------------------------------------------

USER_COLUMNS = "id, username, display_name, role, scope_codes, property_company_id, active, created_at, disabled_at"


async def _check_scope(conn: AsyncConnection, role: str, scope_codes: list[str], company_id: int | None) -> None:
    if role not in USER_ROLES:
        raise InvalidInput(f"role must be one of {', '.join(USER_ROLES)}")
    table = SCOPE_TABLE.get(role)
    if table:
        if not scope_codes:
            raise InvalidInput(f"a {role} user needs at least one {table} code in its scope")
        found = (await conn.execute(
            text(f"SELECT array_agg(code) FROM {table} WHERE valid_to IS NULL AND code = ANY(:codes)"),
            {"codes": scope_codes},
        )).scalar_one() or []
        missing = sorted(set(scope_codes) - set(found))
        if missing:
            raise InvalidInput(f"unknown {table} code(s): {', '.join(missing)}")
    elif scope_codes:
        raise InvalidInput(f"a {role} user has no scope codes")
    if role == "property_company":
        if company_id is None:
            raise InvalidInput("a property_company user needs its property company id")
        exists = (await conn.execute(text("SELECT 1 FROM property_company WHERE id = :id"),
                                     {"id": company_id})).first()
        if exists is None:
            raise InvalidInput(f"no property company with id {company_id}")
    elif company_id is not None:
        raise InvalidInput("only property_company users belong to a property company")


async def create_user(
    conn: AsyncConnection,
    username: str,
    password: str,
    role: str,
    scope_codes: list[str] | None = None,
    property_company_id: int | None = None,
    display_name: str | None = None,
) -> dict:
    """Add a user; the password is hashed here and never stored in clear."""
    username = username.strip()
    if not username or len(username) > 64 or any(ch.isspace() for ch in username):
        raise InvalidInput("a username is 1 to 64 characters without spaces")
    scope_codes = sorted(set(scope_codes or []))
    await _check_scope(conn, role, scope_codes, property_company_id)
    password_hash = await asyncio.to_thread(hash_password, password)
    row = (await conn.execute(
        text(f"""
            INSERT INTO app_user (username, display_name, role, scope_codes, property_company_id, password_hash)
            VALUES (:username, :display_name, :role, :scope_codes, :company, :hash)
            ON CONFLICT (username) DO NOTHING
            RETURNING {USER_COLUMNS}"""),
        {"username": username, "display_name": display_name, "role": role, "scope_codes": scope_codes,
         "company": property_company_id, "hash": password_hash},
    )).mappings().first()
    if row is None:
        raise Conflict(f"user {username!r} exists already")
    return dict(row)


async def list_users(conn: AsyncConnection) -> list[dict]:
    rows = (await conn.execute(text(f"SELECT {USER_COLUMNS} FROM app_user ORDER BY username"))).mappings()
    return [dict(row) for row in rows]


async def get_user(conn: AsyncConnection, username: str) -> dict:
    row = (await conn.execute(text(f"SELECT {USER_COLUMNS} FROM app_user WHERE username = :u"),
                              {"u": username})).mappings().first()
    if row is None:
        raise NotFound(f"no user {username!r}")
    return dict(row)


async def set_active(conn: AsyncConnection, username: str, active: bool) -> dict:
    """Enable or disable a user; disabling revokes every token it holds at once."""
    row = (await conn.execute(
        text(f"""
            UPDATE app_user SET active = :active,
                   disabled_at = CASE WHEN :active THEN NULL ELSE coalesce(disabled_at, now()) END
            WHERE username = :u RETURNING {USER_COLUMNS}"""),
        {"u": username, "active": active},
    )).mappings().first()
    if row is None:
        raise NotFound(f"no user {username!r}")
    if not active:
        await conn.execute(
            text("UPDATE auth_token SET revoked_at = now() WHERE user_id = :id AND revoked_at IS NULL"),
            {"id": row["id"]},
        )
    return dict(row)


async def set_password(conn: AsyncConnection, username: str, password: str) -> None:
    password_hash = await asyncio.to_thread(hash_password, password)
    done = (await conn.execute(text("UPDATE app_user SET password_hash = :h WHERE username = :u RETURNING id"),
                               {"h": password_hash, "u": username})).first()
    if done is None:
        raise NotFound(f"no user {username!r}")


# --- tokens -------------------------------------------------------------------------------------------------

async def login(conn: AsyncConnection, username: str, password: str, client_address: str | None = None) -> dict:
    """Check the password and issue a bearer token: {access_token, token_type, expires_at, role}.

    Rate-limited per username and per client address (audit.TooManyLoginFailures, before the password is even
    looked at). Commits on `conn` itself, so that a failure is counted although Unauthorized is raised."""
    from gis import audit

    settings = AuthSettings()
    await audit.check_login_allowed(
        conn, username, client_address, window_seconds=settings.login_window_seconds,
        per_user=settings.login_failures_per_user, per_address=settings.login_failures_per_address)
    row = (await conn.execute(
        text("SELECT id, role, password_hash, active FROM app_user WHERE username = :u"), {"u": username}
    )).mappings().first()
    ok = await asyncio.to_thread(verify_password, row["password_hash"] if row else _UNKNOWN_USER_HASH, password)
    if row is None or not ok or not row["active"]:
        await audit.record_login_failure(conn, username, client_address)
        await conn.commit()
        raise Unauthorized("wrong username or password, or the user is disabled")
    token = secrets.token_urlsafe(32)
    expires_at = datetime.now(timezone.utc) + timedelta(hours=settings.token_hours)
    await conn.execute(
        text("INSERT INTO auth_token (token_digest, user_id, expires_at) VALUES (:d, :u, :e)"),
        {"d": token_digest(token), "u": row["id"], "e": expires_at},
    )
    await audit.forget_login_failures(conn, username)
    await conn.commit()
    return {"access_token": token, "token_type": "bearer", "expires_at": expires_at, "role": row["role"]}


async def revoke_token(conn: AsyncConnection, token: str) -> bool:
    done = (await conn.execute(
        text("UPDATE auth_token SET revoked_at = now() WHERE token_digest = :d AND revoked_at IS NULL RETURNING id"),
        {"d": token_digest(token)},
    )).first()
    return done is not None


async def principal_for_token(conn: AsyncConnection, token: str) -> Principal:
    """The user behind a live token, with its scope resolved now (a company's compounds as they stand)."""
    row = (await conn.execute(
        text("""
            SELECT u.id, u.username, u.role, u.scope_codes, u.property_company_id,
                   CASE WHEN u.role = 'property_company' THEN ARRAY(
                       SELECT code FROM compound
                       WHERE property_company_id = u.property_company_id AND valid_to IS NULL ORDER BY code)
                   END AS compounds
            FROM auth_token t JOIN app_user u ON u.id = t.user_id
            WHERE t.token_digest = :d AND t.revoked_at IS NULL AND t.expires_at > now() AND u.active"""),
        {"d": token_digest(token)},
    )).mappings().first()
    if row is None:
        raise Unauthorized("the token is unknown, expired or revoked")
    scope = row["compounds"] if row["role"] == "property_company" else row["scope_codes"]
    return Principal(role=row["role"], username=row["username"], user_id=row["id"], scope=tuple(scope or ()),
                     company_id=row["property_company_id"])
