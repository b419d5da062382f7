"""Importing a registry file of one kind, in one transaction, with a row-by-row account.

Every data row of the file ends in exactly one state, as in complaint imports:

- `imported`: a new record (its natural key was not stored);
- `updated`: the stored record of its key differed and now holds the row (the columns that changed are named);
- `unchanged`: the stored record already holds exactly this row (re-importing a file is all unchanged);
- `rejected`: with a Chinese reason naming the column and what is wrong, the unit out of scope or unknown, a
  duplicate of an earlier row's key (naming that row), overlapping terms, ...

No row is dropped silently: cells under headers the template does not have make the whole file refused before
anything is written (give a column mapping), and a row that cannot be written is rejected with the reason.
Every write is recorded in the change log (gis.access.audit.record_change: who, when, old, new), and the batch
with its account in `registry_import`.

Speed: the rows are parsed and checked one by one in Python, but a kind with `save_many` has every accepted row
of the file written in a few set-based statements, with the change log in one more (a city's 187,000 building
leaders are a handful of statements, not a round trip each). Should the database refuse that batch, it is undone
and the rows are written one by one, each in its own savepoint, so the refused row is rejected with its reason and
the others are stored, exactly as without `save_many`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from gis.access.audit import record_change, record_changes
from gis.access.auth import Principal
from gis.errors import Forbidden, GridgovError, InvalidInput
from gis.registry.files import parse_mapping, read_table
from gis.registry.kinds import Context, Kind, get_kind
from gis.registry.scope import Scope
from gis.registry.values import show

STATES = ("imported", "updated", "unchanged", "rejected")


@dataclass
class RowAccount:
    """What became of one row of the file."""

    row: int
    state: str
    key: str
    reason: str | None = None
    changed: list[str] = field(default_factory=list)


@dataclass
class RegistryReport:
    """The account of one import: counts per state (they add up to `rows_read`) and every row."""

    kind: str
    import_id: int | None = None
    rows_read: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rows: list[RowAccount] = field(default_factory=list)

    def add(self, account: RowAccount) -> None:
        """Count one row's account."""
        self.rows.append(account)
        self.rows_read += 1
        setattr(self, account.state, getattr(self, account.state) + 1)

    def as_dict(self) -> dict:
        """The report as JSON-ready data."""
        return asdict(self)


def require_role(kind: Kind, principal: Principal) -> None:
    """Forbidden unless the caller's role may import and export `kind`."""
    if principal.role not in kind.roles:
        raise Forbidden(f"“{kind.title}”只能由{'、'.join(_ROLE_NAMES.get(r, r) for r in kind.roles)}维护")


_ROLE_NAMES = {"admin": "管理员", "street": "街道", "community": "社区"}


def _parse_row(kind: Kind, cells: dict) -> tuple[dict | None, str | None]:
    """The row's values by field, or the reason it cannot be read (every bad column named)."""
    problems, values = [], {}
    for column in kind.columns:
        raw = (cells.get(column.header) or "").strip()
        if not raw:
            if column.required:
                problems.append(f"列“{column.header}”为空")
            values[column.field] = column.default
            continue
        try:
            values[column.field] = column.parse(raw)
        except InvalidInput as error:
            problems.append(f"列“{column.header}”：{error}")
    return (None, "；".join(problems)) if problems else (values, None)


def _key_text(kind: Kind, key: tuple) -> str:
    return " / ".join(show(value, kind.column(name).labels) for name, value in zip(kind.key, key))


def _comparable(kind: Kind, values: dict) -> dict:
    return {column.field: values[column.field] for column in kind.columns if column.compare}


def load_rows(conn: Connection, principal: Principal, kind_name: str, header: list[str], rows,
              file_name: str | None = None, progress: Callable[[int], None] | None = None) -> RegistryReport:
    """Import `rows` ((row number, {header: text}) pairs) of `kind_name` on `conn`, inside the caller's
    transaction. Raises InvalidInput for a file that cannot be read as the kind's template (a missing required
    column, a column the template does not have), Forbidden for a role that may not."""
    kind = get_kind(kind_name)
    require_role(kind, principal)
    known = set(kind.headers)
    unknown = [name for name in header if name and name not in known]
    if unknown:
        raise InvalidInput(f"“{kind.title}”模板中没有列“{'”、“'.join(unknown)}”：请按模板填写，或给出列对应关系"
                           f"（模板列：{'、'.join(kind.headers)}）")
    missing = [c.header for c in kind.columns if c.required and c.header not in header]
    if missing:
        raise InvalidInput(f"缺少“{kind.title}”模板的必填列“{'”、“'.join(missing)}”")
    ctx = Context(conn=conn, principal=principal, scope=Scope(conn, principal))
    report = RegistryReport(kind=kind.name)
    parsed: list[tuple[int, dict | None, str | None]] = []
    for number, cells in rows:
        stray = [name for name, value in cells.items() if name not in known and value.strip()]
        if stray:
            parsed.append((number, None, f"列“{stray[0]}”有内容，但模板中没有这一列"))
            continue
        values, reason = _parse_row(kind, cells)
        parsed.append((number, values, reason))
    first_row: dict[tuple, int] = {}
    keys = [kind.key_of(values) for _, values, _ in parsed if values is not None]
    stored = kind.fetch(ctx, sorted(set(keys), key=repr)) if keys else {}
    done = 0
    accounts: list[RowAccount] = []
    pending: list[_Write] = []
    for number, values, reason in parsed:
        account, write = _one_row(ctx, kind, number, values, reason, first_row, stored)
        if write is not None:
            if kind.save_many is None:
                _save_one(ctx, kind, account, write)
            else:
                pending.append(write)
        accounts.append(account)
        done += 1
        if progress and done % 100 == 0:
            progress(100)
    _save_pending(ctx, kind, pending)
    for account in accounts:
        report.add(account)
    if progress and done % 100:
        progress(done % 100)
    report.import_id = conn.execute(text("""
        INSERT INTO registry_import (kind, file_name, user_id, username, role, scope_codes, rows_read, imported,
                                     unchanged, updated, rejected, rows)
        VALUES (:kind, :file_name, :user_id, :username, :role, :scope, :rows_read, :imported, :unchanged, :updated,
                :rejected, CAST(:rows AS jsonb)) RETURNING id"""),
        {"kind": kind.name, "file_name": file_name, "user_id": principal.user_id, "username": principal.username,
         "role": principal.role, "scope": list(principal.scope) if principal.role != "admin" else None,
         "rows_read": report.rows_read, "imported": report.imported, "unchanged": report.unchanged,
         "updated": report.updated, "rejected": report.rejected,
         "rows": json.dumps([asdict(r) for r in report.rows], ensure_ascii=False)}).scalar_one()
    return report


@dataclass
class _Write:
    """An accepted row waiting to be written: its account, values, the stored record it replaces and what the
    change log records."""

    account: RowAccount
    values: dict
    old: dict | None
    logged_old: dict | None
    logged_new: dict


def _one_row(ctx: Context, kind: Kind, number: int, values: dict | None, reason: str | None,
             first_row: dict[tuple, int], stored: dict[tuple, dict]) -> tuple[RowAccount, _Write | None]:
    """The row's account, and the write it needs (None: rejected or unchanged)."""
    if values is None:
        return RowAccount(number, "rejected", "", reason), None
    key = kind.key_of(values)
    key_text = _key_text(kind, key)
    if key in first_row:
        headers = "、".join(kind.column(name).header for name in kind.key)
        reason = f"与第 {first_row[key]} 行的{headers}重复（{key_text}）：同一文件中每条记录只能出现一次"
        return RowAccount(number, "rejected", key_text, reason), None
    first_row[key] = number
    old = stored.get(key)
    reason = kind.check(ctx, values, old)
    if reason:
        return RowAccount(number, "rejected", key_text, reason), None
    new_values = _comparable(kind, values)
    old_values = None if old is None else _comparable(kind, old)
    ctx.accepted.append({**values, "_row": number})
    if new_values == old_values:
        return RowAccount(number, "unchanged", key_text), None
    fields = [] if old_values is None else [name for name in new_values if new_values[name] != old_values[name]]
    account = RowAccount(number, "imported" if old is None else "updated", key_text,
                         changed=[kind.column(name).header for name in fields])
    if old_values is None:
        return account, _Write(account, values, old, None, new_values)
    return account, _Write(account, values, old, {name: old_values[name] for name in fields},
                           {name: new_values[name] for name in fields})


def _save_one(ctx: Context, kind: Kind, account: RowAccount, write: _Write) -> None:
    """Write one accepted row in its own savepoint; a refusal makes the row rejected with the reason."""
    savepoint = ctx.conn.begin_nested()
    try:
        kind.save(ctx, write.values, write.old)
        record_change(ctx.conn, ctx.principal, kind.name, account.key, "insert" if write.old is None else "update",
                      write.logged_old, write.logged_new)
        savepoint.commit()
    except (GridgovError, DBAPIError) as error:
        savepoint.rollback()
        account.state, account.changed = "rejected", []
        account.reason = str(error) if isinstance(error, GridgovError) else _database_reason(error)
        if ctx.accepted and ctx.accepted[-1]["_row"] == account.row:  # written at once: later rows not checked yet
            ctx.accepted.pop()


def _save_pending(ctx: Context, kind: Kind, pending: list[_Write]) -> None:
    """Write the accepted rows of a kind with `save_many` in one batch; if the database refuses it, row by row."""
    if not pending:
        return
    savepoint = ctx.conn.begin_nested()
    try:
        kind.save_many(ctx, [(write.values, write.old) for write in pending])
        record_changes(ctx.conn, ctx.principal, kind.name,
                       [(write.account.key, "insert" if write.old is None else "update", write.logged_old,
                         write.logged_new) for write in pending])
        savepoint.commit()
    except (GridgovError, DBAPIError):
        savepoint.rollback()
        ctx.forget_companies()
        for write in pending:
            _save_one(ctx, kind, write.account, write)


def _database_reason(error: DBAPIError) -> str:
    """A Chinese reason for a row the database refused (a constraint the checks did not foresee)."""
    diag = getattr(getattr(error, "orig", None), "diag", None)
    constraint = getattr(diag, "constraint_name", None) if diag else None
    return f"数据库拒绝了这一行（约束 {constraint}）" if constraint else "数据库拒绝了这一行"


def import_file(conn: Connection, principal: Principal, kind_name: str, path: Path,
                mapping: str | dict | list | None = None, file_name: str | None = None,
                progress: Callable[[int], None] | None = None) -> RegistryReport:
    """Read `path` (CSV or XLSX, UTF-8 or GBK) with the column mapping {their header: our header} and import it
    as `kind_name` (see load_rows)."""
    header, rows = read_table(Path(path), parse_mapping(mapping))
    return load_rows(conn, principal, kind_name, header, rows, file_name=file_name or Path(path).name,
                     progress=progress)
