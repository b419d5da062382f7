"""Who is asking: principals, roles, the scope each role may see, users, passwords and bearer tokens.

Roles: administrator, street office (its street), community (its community), grid worker (its grids),
property company (its compounds), planner (read only, no personal data), public (anonymised reports only).
Passwords are hashed with Argon2id; a bearer token is random, stored only as its SHA-256 digest, expires and can
be revoked.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.errors import Conflict, InvalidInput, NotFound, TooManyAttempts, Unauthorized
from gis.settings import AuthSettings, auth_settings

ROLES = ("admin", "street", "community", "grid_worker", "property_company", "planner", "public")
STAFF_ROLES = ("admin", "street", "community", "grid_worker", "property_company")
USER_ROLES = ROLES[:-1]

SCOPE_TABLE = {"street": "street", "community": "community", "grid_worker": "grid"}
"""Which boundary table a role's scope codes name (property companies are scoped by their company)."""


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
    """The Argon2 hash of a password; InvalidInput when it is shorter than the settings' minimum length."""
    settings = auth_settings()
    if len(password) < settings.min_password_length:
        raise InvalidInput(f"a password needs at least {settings.min_password_length} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash`; False (never an exception) for a wrong password or a malformed
    hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which an access token is stored (the token itself never is)."""
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
    """Every user (no password hashes), by username."""
    rows = (await conn.execute(text(f"SELECT {USER_COLUMNS} FROM app_user ORDER BY username"))).mappings()
    return [dict(row) for row in rows]


async def get_user(conn: AsyncConnection, username: str) -> dict:
    """One user (no password hash); NotFound for an unknown username."""
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
    """Hash and store a new password for a user, in the caller's transaction; InvalidInput when too short, NotFound for
    an unknown username."""
    password_hash = await asyncio.to_thread(hash_password, password)
    done = (await conn.execute(text("UPDATE app_user SET password_hash = :h WHERE username = :u RETURNING id"),
                               {"h": password_hash, "u": username})).first()
    if done is None:
        raise NotFound(f"no user {username!r}")


# --- tokens -------------------------------------------------------------------------------------------------

LOGIN_REFUSED = "登录尝试过于频繁，请稍后再试（等待时间见 Retry-After）"
"""The one answer of a throttled sign-in: the same whatever the password, the account or its existence."""
LOGIN_FAILED = "用户名或密码错误，或该用户已停用"


def throttle_address(address: str | None) -> str | None:
    """The source a sign-in is counted against: the IPv4 address, or the /64 network of an IPv6 address (one
    host holds a whole /64, so its single addresses would be free to use for every guess)."""
    if address is None:
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    if parsed.version == 6:
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return str(parsed)


_THROTTLE = text("""
    WITH pair AS (
        SELECT count(*) AS failures, max(at) AS last FROM login_failure
        WHERE username = :username AND client_address IS NOT DISTINCT FROM :address
          AND at > now() - make_interval(secs => :memory)),
    account AS (
        SELECT count(*) AS failures FROM login_failure
        WHERE username = :username AND at > now() - make_interval(secs => :memory))
    SELECT greatest(
        -- the back-off of this address on this account: doubling after the free failures, capped
        CASE WHEN pair.failures >= :free THEN extract(epoch FROM pair.last + make_interval(secs => least(
            CAST(:max_wait AS float8), :base * power(2, least(pair.failures - :free, 40)))) - now()) END,
        -- the ceiling of this address on all accounts, over the sliding window
        (SELECT extract(epoch FROM at + make_interval(secs => :window) - now()) FROM login_failure
         WHERE client_address = :address AND at > now() - make_interval(secs => :window)
         ORDER BY at DESC OFFSET :per_address - 1 LIMIT 1),
        -- an account under a distributed guess: only addresses that have not failed on it may try
        CASE WHEN pair.failures > 0 AND account.failures >= :per_account
             THEN extract(epoch FROM pair.last + make_interval(secs => :memory) - now()) END)
    FROM pair, account""")


async def _check_throttle(conn: AsyncConnection, username: str, address: str | None,
                          settings: AuthSettings) -> None:
    """Refuse (TooManyAttempts) while this address must wait on this account, or has reached its ceiling.

    Takes transaction-level locks on the username, then the address (always in that order), so concurrent
    guesses are counted one after another and cannot slip past the limits together."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('gridgov-login:' || :u))"), {"u": username})
    if address is not None:
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('gridgov-login-address:' || :a))"),
                           {"a": address})
    seconds = (await conn.execute(_THROTTLE, {
        "username": username, "address": address, "memory": float(settings.login_memory_seconds),
        "window": float(settings.login_window_seconds), "free": max(settings.login_free_failures, 1),
        "base": float(settings.login_backoff_seconds), "max_wait": float(settings.login_backoff_max_seconds),
        "per_address": max(settings.login_failures_per_address, 1),
        "per_account": max(settings.login_failures_per_account, 1)})).scalar_one()
    if seconds is not None and seconds > 0:
        raise TooManyAttempts(LOGIN_REFUSED, max(1, math.ceil(float(seconds))))


MAX_USERNAME_KEPT = 128
"""Usernames are kept only this long in the failure log (a login body may carry any string)."""


async def record_login_failure(conn: AsyncConnection, username: str, address: str | None) -> None:
    """Count one failed sign-in (table `login_failure`), and forget failures older than a day (they no longer count
    for anything)."""
    await conn.execute(text("DELETE FROM login_failure WHERE at < now() - interval '1 day'"))
    await conn.execute(text("INSERT INTO login_failure (username, client_address) VALUES (:u, :a)"),
                       {"u": username[:MAX_USERNAME_KEPT], "a": address})


async def login(conn: AsyncConnection, username: str, password: str, client_address: str | None = None) -> dict:
    """Check the password and issue a bearer token: {access_token, token_type, expires_at, role}.

    Throttled by source address and account together, before the password is even looked at, so a refusal
    (TooManyAttempts, the same answer whatever the password) says nothing about it: after
    `login_free_failures` failures an address waits on that account, the wait doubling with each further
    failure; an address failing on many accounts meets a ceiling; an address that has not been failing still
    signs in to an account another address is hammering. Commits on `conn` itself, so that a failure is
    counted although Unauthorized is raised."""
    settings = auth_settings()
    username = username[:MAX_USERNAME_KEPT]
    source = throttle_address(client_address)
    await _check_throttle(conn, username, source, settings)
    row = (await conn.execute(
        text("SELECT id, role, password_hash, active FROM app_user WHERE username = :u"), {"u": username}
    )).mappings().first()
    ok = await asyncio.to_thread(verify_password, row["password_hash"] if row else _UNKNOWN_USER_HASH, password)
    if row is None or not ok or not row["active"]:
        await record_login_failure(conn, username, source)
        await conn.commit()
        raise Unauthorized(LOGIN_FAILED)
    token = secrets.token_urlsafe(32)
    expires_at = datetime.now(timezone.utc) + timedelta(hours=settings.token_hours)
    await conn.execute(
        text("INSERT INTO auth_token (token_digest, user_id, expires_at) VALUES (:d, :u, :e)"),
        {"d": token_digest(token), "u": row["id"], "e": expires_at},
    )
    # Only this address's failures on this account are forgiven: the owner signing in elsewhere does not reset
    # the back-off of whoever is guessing.
    await conn.execute(text("DELETE FROM login_failure WHERE username = :u AND client_address IS NOT DISTINCT FROM :a"),
                       {"u": username, "a": source})
    await conn.commit()
    return {"access_token": token, "token_type": "bearer", "expires_at": expires_at, "role": row["role"]}


async def revoke_token(conn: AsyncConnection, token: str) -> bool:
    """Revoke an access token; whether a live token was revoked (False for an unknown or already revoked one)."""
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
