"""Exporting a kind in its own template (CSV UTF-8 with BOM, or XLSX), and the empty templates.

An export is what the import reads back unchanged: the same headers, every value written as its parser reads it
(gis.registry.values.show), so export → import is all `unchanged`.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy.engine import Connection

from gis.access.auth import Principal
from gis.errors import InvalidInput
from gis.registry.kinds import KINDS, Context, Kind, get_kind
from gis.registry.load import require_role
from gis.registry.scope import Scope
from gis.registry.values import show

FORMATS = ("csv", "xlsx")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def kinds_listing() -> list[dict]:
    """Every kind with its Chinese title, natural key and columns (header, required, choices)."""
    return [{"kind": kind.name, "title": kind.title, "key": [kind.column(f).header for f in kind.key],
             "roles": list(kind.roles),
             "columns": [{"header": c.header, "required": c.required, "compared": c.compare,
                          "choices": list(c.labels) if c.labels else None} for c in kind.columns]}
            for kind in KINDS.values()]


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidInput(f"格式只能是 {' 或 '.join(FORMATS)}，而不是“{fmt}”")
    return fmt


def render(kind: Kind, records: list[dict], fmt: str) -> bytes:
    """The records in the kind's template as a CSV (UTF-8 with BOM) or XLSX file (every cell text)."""
    _check_format(fmt)
    table = [kind.headers] + [[show(record.get(c.field), c.labels) for c in kind.columns] for record in records]
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(table)
        return ("\ufeff" + out.getvalue()).encode("utf-8")
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(kind.title[:31].replace("（", "(").replace("）", ")"))
    for line in table:
        sheet.append(line)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def template(kind_name: str, fmt: str = "csv") -> bytes:
    """The empty template of a kind: its headers only."""
    return render(get_kind(kind_name), [], fmt)


def export_records(conn: Connection, principal: Principal, kind_name: str) -> list[dict]:
    """The kind's stored records in the caller's scope, by key."""
    kind = get_kind(kind_name)
    require_role(kind, principal)
    return list(kind.export(Context(conn=conn, principal=principal, scope=Scope(conn, principal))))


def export_file(conn: Connection, principal: Principal, kind_name: str, fmt: str = "csv") -> tuple[bytes, int]:
    """The kind exported in its template, and how many records it holds."""
    _check_format(fmt)
    records = export_records(conn, principal, kind_name)
    return render(get_kind(kind_name), records, fmt), len(records)
