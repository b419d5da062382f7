"""Import batches read back (导入批次): their counts and their rejected rows, each only for its owner and for
users whose scope holds the owner's (gis.access.visibility.owned_sql); out of scope is NotFound."""

from __future__ import annotations

import csv
import io

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal
from gis.access.visibility import owned_sql
from gis.errors import Forbidden, NotFound
from gis.intake.importer import SETTLE_ABANDONED_SQL

IMPORT_ROLES = ("admin", "street")


def require_importer(principal: Principal) -> None:
    """Refuse (Forbidden) any role but admin and street: only they import batches."""
    if principal.role not in IMPORT_ROLES:
        raise Forbidden("批量导入仅限管理员和街道用户")


def owner_of(principal: Principal) -> tuple[int | None, list[str] | None]:
    """(owner_user_id, owner_scope) to record on a batch the caller runs."""
    return principal.user_id, (list(principal.scope) if principal.role != "admin" else None)


async def get_batch(conn: AsyncConnection, principal: Principal, batch_id: int) -> dict:
    """One import batch with its counts, once batches whose import died are marked failed; Forbidden for roles that may
    not import, NotFound for a batch the caller does not own."""
    require_importer(principal)
    await conn.execute(text(SETTLE_ABANDONED_SQL))
    await conn.commit()
    owned, params = owned_sql(principal, "b")
    row = (await conn.execute(text(
        "SELECT id, source, file_name, crs, state, rows_read, imported, duplicates, rejected, placements, "
        f"started_at, finished_at FROM intake_batch b WHERE id = :id AND {owned}"),
        {**params, "id": batch_id})).mappings().first()
    if row is None:
        raise NotFound(f"没有编号为 {batch_id} 的导入批次")
    return dict(row)


async def rejected_rows_csv(conn: AsyncConnection, principal: Principal, batch_id: int) -> tuple[bytes, list[str]]:
    """The rejected rows with their reasons as CSV under the file's own column names, and the row keys read
    (for the personal-data log: rejected rows are the file's own cells, reporters' names and phones included)."""
    require_importer(principal)
    owned, params = owned_sql(principal, "b")
    batch = (await conn.execute(text(f"SELECT mapping FROM intake_batch b WHERE id = :id AND {owned}"),
                                {**params, "id": batch_id})).first()
    if batch is None:
        raise NotFound(f"没有编号为 {batch_id} 的导入批次")
    rows = (await conn.execute(text(
        "SELECT row_number, reason, raw FROM intake_rejected_row WHERE batch_id = :id ORDER BY row_number"),
        {"id": batch_id})).all()
    mapping = batch[0] or {}
    columns = list(dict.fromkeys([*mapping.values(), *(k for _, _, raw in rows for k in raw)]))
    # Raw values are keyed by canonical field; show them under the file's own column names.
    field_of = {column: field for field, column in mapping.items()}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*columns, "rejected_row", "rejected_reason"])
    for row_number, reason, raw in rows:
        writer.writerow([raw.get(field_of.get(c, c), raw.get(c)) for c in columns] + [row_number, reason])
    return ("\ufeff" + out.getvalue()).encode("utf-8"), [f"{batch_id}:{row_number}" for row_number, _, _ in rows]
