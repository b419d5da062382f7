"""Security records: the log of who read personal data (个人信息访问日志), and the table of failed sign-ins.

A personal-data read is one append-only row per request (never per record): who, in which role, when, which
endpoint with which query, which record ids (or how many). Rows cannot be updated or deleted; the database
refuses it. Failed sign-ins are kept per username and client address in the database, so every worker process
sees the same counts; the sign-in throttle in gis.access.auth writes and reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from gis.access.auth import Principal
from gis.errors import InvalidInput
from gis.layers.models import Base
from gis.settings import audit_settings


class PersonalDataRead(Base):
    """One response that carried reporters' names or phone numbers, or the contacts of people."""

    __tablename__ = "audit_personal_read"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    # No foreign key to app_user: the log must outlive the users it names.
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    username: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    method: Mapped[str] = mapped_column(Text, nullable=False)
    endpoint: Mapped[str] = mapped_column(Text, nullable=False)
    """The route template, e.g. /tickets/{ticket_id}."""
    path: Mapped[str] = mapped_column(Text, nullable=False)
    query: Mapped[str | None] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(Text, nullable=False)
    """What was read: ticket, complaint, contact, import_rejected_row, party_organisation, ..."""
    record_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    record_count: Mapped[int | None] = mapped_column(Integer)
    """None when the count is not known without decoding the response (vector tiles)."""
    client_address: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_audit_personal_read_at", "at"),
        Index("ix_audit_personal_read_user_at", "username", "at"),
        Index("ix_audit_personal_read_record_ids", "record_ids", postgresql_using="gin"),
    )


class LoginFailure(Base):
    """A failed sign-in (wrong password, unknown or disabled user), written and read by gis.access.auth's throttle."""

    __tablename__ = "login_failure"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    username: Mapped[str] = mapped_column(Text, nullable=False)
    client_address: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_login_failure_username_at", "username", "at"),
        Index("ix_login_failure_client_address_at", "client_address", "at"),
        Index("ix_login_failure_at", "at"),
    )


APPEND_ONLY_SQL = """
CREATE FUNCTION audit_personal_read_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'the personal-data access log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$fn$;
CREATE TRIGGER audit_personal_read_append_only BEFORE UPDATE OR DELETE ON audit_personal_read
    FOR EACH ROW EXECUTE FUNCTION audit_personal_read_append_only();
CREATE TRIGGER audit_personal_read_no_truncate BEFORE TRUNCATE ON audit_personal_read
    FOR EACH STATEMENT EXECUTE FUNCTION audit_personal_read_append_only();
"""
"""The database's refusal to change or delete log rows, as the newest migration that installs it must hold it
(migrations paste their own copy; a change here is a new migration)."""


# --- the personal-data access log ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestFacts:
    """What the HTTP layer knows of the request that is being logged."""

    method: str
    endpoint: str
    path: str
    query: str | None = None
    client_address: str | None = None
    request_id: str | None = None


_INSERT_READ = text("""
    INSERT INTO audit_personal_read (user_id, username, role, method, endpoint, path, query, resource, record_ids,
                                     record_count, client_address, request_id)
    VALUES (:user_id, :username, :role, :method, :endpoint, :path, :query, :resource, :record_ids, :record_count,
            :client_address, :request_id)""")


async def record_personal_read(
    target: AsyncConnection | AsyncEngine,
    principal: Principal,
    request: RequestFacts,
    resource: str,
    record_ids=None,
    record_count: int | None = None,
) -> bool:
    """Log one read of personal data and commit it before the answer leaves, so no read goes unlogged.

    Does nothing (returns False) for a caller who is not shown personal data, or when nothing was read. On a
    connection the caller's transaction is committed (read routes hold nothing else to keep)."""
    if not principal.sees_personal_data:
        return False
    ids = None if record_ids is None else [str(value) for value in record_ids]
    if record_count is None and ids is not None:
        record_count = len(ids)
    if record_count == 0:
        return False
    params = {
        "user_id": principal.user_id, "username": principal.username, "role": principal.role,
        "method": request.method, "endpoint": request.endpoint, "path": request.path,
        "query": request.query or None, "resource": resource, "record_ids": ids, "record_count": record_count,
        "client_address": request.client_address, "request_id": request.request_id,
    }
    if isinstance(target, AsyncEngine):
        async with target.begin() as conn:
            await _insert_read(conn, params)
    else:
        await _insert_read(target, params)
        await target.commit()
    return True


async def _insert_read(conn: AsyncConnection, params: dict) -> None:
    if audit_settings().asynchronous_commit:
        await conn.execute(text("SET LOCAL synchronous_commit TO off"))
    await conn.execute(_INSERT_READ, params)


LOG_COLUMNS = ("id, at, user_id, username, role, method, endpoint, path, query, resource, record_ids, record_count, "
               "client_address, request_id")
MAX_LOG_ROWS = 5000


async def personal_reads(
    conn: AsyncConnection,
    *,
    username: str | None = None,
    resource: str | None = None,
    record_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
    before_id: int | None = None,
) -> list[dict]:
    """The access log, newest first: filter by user, resource, one record id (who read this complaint?) or time.
    Page with `before_id` (the smallest id of the previous page)."""
    if not 1 <= limit <= MAX_LOG_ROWS:
        raise InvalidInput(f"limit must be 1 to {MAX_LOG_ROWS}")
    where, params = ["TRUE"], {"limit": limit}
    for column, value in (("username", username), ("resource", resource)):
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    if record_id is not None:
        where.append("record_ids @> ARRAY[CAST(:record_id AS text)]")
        params["record_id"] = str(record_id)
    if since is not None:
        where.append("at >= :since")
        params["since"] = since
    if until is not None:
        where.append("at < :until")
        params["until"] = until
    if before_id is not None:
        where.append("id < :before_id")
        params["before_id"] = before_id
    rows = (await conn.execute(text(
        f"SELECT {LOG_COLUMNS} FROM audit_personal_read WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT :limit"),
        params)).mappings()
    return [dict(row) for row in rows]


# --- the change log (变更记录) ---------------------------------------------------------------------------------

class ChangeRecord(Base):
    """One change of a stored record: who, when, which record (subject and natural key), the old and new values."""

    __tablename__ = "audit_change"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    username: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    record_key: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    old = mapped_column(JSONB)
    new = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_audit_change_at", "at"),
        Index("ix_audit_change_subject_key", "subject", "record_key"),
    )


def _json_ready(values: dict | None) -> str | None:
    if values is None:
        return None
    return json.dumps({key: (value.isoformat() if isinstance(value, (date, datetime)) else
                             str(value) if isinstance(value, Decimal) else value)
                       for key, value in values.items()}, ensure_ascii=False)


def record_change(conn, principal: Principal, subject: str, record_key: str, action: str,
                  old: dict | None, new: dict | None, reason: str | None = None) -> None:
    """Log one change inside the caller's transaction (a synchronous SQLAlchemy connection), so the change and its
    record commit or roll back together."""
    conn.execute(text("""
        INSERT INTO audit_change (user_id, username, role, subject, record_key, action, old, new, reason)
        VALUES (:user_id, :username, :role, :subject, :record_key, :action, CAST(:old AS jsonb),
                CAST(:new AS jsonb), :reason)"""),
        {"user_id": principal.user_id, "username": principal.username, "role": principal.role, "subject": subject,
         "record_key": record_key, "action": action, "old": _json_ready(old), "new": _json_ready(new),
         "reason": reason})


def record_changes(conn, principal: Principal, subject: str, changes: list[tuple[str, str, dict | None, dict | None]],
                   reason: str | None = None) -> None:
    """record_change for many records of one subject at once ((record key, action, old, new) each, logged in
    order), in one statement: a whole import file's changes."""
    if not changes:
        return
    entries = json.dumps([{"key": key, "action": action, "old": _json_ready(old), "new": _json_ready(new)}
                          for key, action, old, new in changes], ensure_ascii=False)
    conn.execute(text("""
        INSERT INTO audit_change (user_id, username, role, subject, record_key, action, old, new, reason)
        SELECT :user_id, :username, :role, :subject, e.v ->> 'key', e.v ->> 'action',
               CAST(e.v ->> 'old' AS jsonb), CAST(e.v ->> 'new' AS jsonb), :reason
        FROM jsonb_array_elements(CAST(:entries AS jsonb)) WITH ORDINALITY AS e(v, n)
        ORDER BY e.n"""),
        {"user_id": principal.user_id, "username": principal.username, "role": principal.role, "subject": subject,
         "entries": entries, "reason": reason})
