"""The registry's kinds (登记类别): one declarative spec per kind of record a city keeps.

A kind says, once, everything the import, the export and the templates need:

- `columns`: the template's Chinese headers in order, each with the field it fills, its parser (gis.registry.values:
  text, 是/否, dates, numbers, codes, the unified social credit code with its check character), whether it is
  required, and whether it is compared (a change date or a reason says when and why, not what: such columns
  are written on export and never make a row "updated");
- `key`: the fields of the natural key (credit code, organisation code, compound code + term start, ...); two rows
  of one file with the same key are refused (the second names the first), and a stored record with the key is
  the one a row updates;
- `fetch(ctx, keys)`: the stored records of those keys, as {key tuple: {field: value}} in the parsers' types;
- `check(ctx, row, old)`: the reason (Chinese) a parsed row cannot be accepted — a code outside the caller's
  scope or unknown, a company not registered, overlapping terms — or None;
- `save(ctx, row, old)`: write the row (old is None for a new record); dated versions change only through
  gis.registry.history;
- `export(ctx)`: the stored records in the caller's scope, in the same form, sorted by key;
- `save_many(ctx, items)` (optional): write many accepted rows at once, `items` being (row, old) pairs in file
  order, with set-based SQL (a statement per file, not a round trip per row); the import uses it when given and
  falls back to `save` row by row, each in its own savepoint, when the database refuses the batch, so every row
  still gets its own account. It must write exactly what `save` would;
- `roles`: who may import and export the kind (scope is then checked row by row).

How to add a kind: write its columns, key and the four functions below, build a `Kind` and add it to `KINDS`
with `register(kind)`. The import (gis.registry.load), the export and the templates (gis.registry.export), the
command line (`gridgov registry ...`) and the API (/registry/{kind}/...) pick it up by name; nothing else
changes. Parsers raise InvalidInput with a reason; `check` returns a reason instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis.access.auth import Principal
from gis.analytics.input_kinds import EVALUATION_KINDS
from gis.layers.models import MANAGEMENT_MODES
from gis.registry import history
from gis.registry.scope import Scope
from gis.registry.values import (
    choice,
    code,
    mobile_phone,
    money,
    parse_bool,
    parse_credit_code,
    parse_date,
    parse_text,
    real_number,
    whole_number,
)

OUT_OF_SCOPE = "{what} {code} 不存在或不在您的管辖范围内"


@dataclass(frozen=True)
class Column:
    """One column of a kind's template."""

    header: str
    field: str
    parse: Callable[[str], Any] = parse_text
    required: bool = False
    compare: bool = True
    default: Any = None

    @property
    def labels(self) -> dict[str, str] | None:
        """Chinese label → stored value, for a column of choices."""
        return getattr(self.parse, "labels", None)


@dataclass
class Context:
    """What a kind's functions share during one import or export: the connection, the caller and their scope,
    the day, registered companies, and the rows of the file accepted so far (`accepted`)."""

    conn: Connection
    principal: Principal
    scope: Scope
    today: date = field(default_factory=history.today)
    accepted: list[dict] = field(default_factory=list)
    memo: dict = field(default_factory=dict)
    _companies: dict[str, int] | None = None
    _accepted_index: dict = field(default_factory=dict)

    def company_id(self, credit_code: str | None) -> int | None:
        """The id of the registered company with this credit code (None if not registered or not given)."""
        if credit_code is None:
            return None
        if self._companies is None:
            self._companies = dict(self.conn.execute(text("SELECT credit_code, id FROM property_company")).all())
        return self._companies.get(credit_code)

    def forget_companies(self) -> None:
        """Re-read the registered companies on next use (after a company was added)."""
        self._companies = None

    def accepted_with(self, field_name: str, value) -> list[dict]:
        """The rows of the file accepted so far whose `field_name` equals `value` (an index kept up to date, so a
        check comparing a row with the earlier ones does not scan the whole file for every row)."""
        by_value, seen = self._accepted_index.setdefault(field_name, ({}, [0]))
        for row in self.accepted[seen[0]:]:
            by_value.setdefault(row.get(field_name), []).append(row)
        seen[0] = len(self.accepted)
        return by_value.get(value, [])

    def remember(self, name: str, load: Callable[[], Any]) -> Any:
        """A value read once per import or export (`load()` on first use), e.g. every company's compounds."""
        if name not in self.memo:
            self.memo[name] = load()
        return self.memo[name]


@dataclass(frozen=True)
class Kind:
    """One kind of registry record (see the module's docstring)."""

    name: str
    title: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    fetch: Callable[[Context, list[tuple]], dict[tuple, dict]]
    check: Callable[[Context, dict, dict | None], str | None]
    save: Callable[[Context, dict, dict | None], None]
    export: Callable[[Context], Iterable[dict]]
    roles: tuple[str, ...] = ("admin", "street", "community")
    save_many: Callable[[Context, list[tuple[dict, dict | None]]], None] | None = None

    @property
    def headers(self) -> list[str]:
        """The template's headers in order."""
        return [column.header for column in self.columns]

    def column(self, field_name: str) -> Column:
        """The column filling `field_name`."""
        return next(column for column in self.columns if column.field == field_name)

    def key_of(self, row: dict) -> tuple:
        """The natural key of a parsed row."""
        return tuple(row[name] for name in self.key)


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add `kind` to the registry's kinds (its name must be new)."""
    if kind.name in KINDS:
        raise ValueError(f"registry kind {kind.name} is registered twice")
    KINDS[kind.name] = kind
    return kind


def _rows(conn: Connection, sql: str, params: dict | None = None) -> list[dict]:
    return [dict(row) for row in conn.execute(text(sql), params or {}).mappings()]


def _by_key(rows: Iterable[dict], key: tuple[str, ...]) -> dict[tuple, dict]:
    return {tuple(row[name] for name in key): row for row in rows}


def _fields(row: dict, names) -> dict:
    return {name: row[name] for name in names}


def _insert(ctx: Context, table: str, fields: tuple[str, ...], row: dict) -> None:
    """INSERT of `fields` of `row` into `table`."""
    ctx.conn.execute(text(f"INSERT INTO {table} ({', '.join(fields)}) VALUES ({', '.join(':' + f for f in fields)})"),
                     _fields(row, fields))


def _update(ctx: Context, table: str, fields: tuple[str, ...], keys: tuple[str, ...], row: dict) -> None:
    """UPDATE of the `fields` of `table`'s row whose `keys` equal `row`'s."""
    sets = ", ".join(f"{f} = :{f}" for f in fields)
    where = " AND ".join(f"{k} = :{k}" for k in keys)
    ctx.conn.execute(text(f"UPDATE {table} SET {sets} WHERE {where}"), _fields(row, fields + keys))


def as_json(rows: Iterable[dict]) -> str:
    """Rows as a JSON array for `json_populate_recordset` (dates in ISO form, amounts as text)."""
    import json
    from decimal import Decimal

    def ready(value):
        return value.isoformat() if isinstance(value, date) else str(value) if isinstance(value, Decimal) else value
    return json.dumps([{name: ready(value) for name, value in row.items()} for row in rows], ensure_ascii=False)


def records_of(table: str) -> str:
    """`rows` read as records of `table`'s own row type (one statement for a whole file)."""
    return f"json_populate_recordset(NULL::{table}, CAST(:rows AS json))"


def _insert_many(ctx: Context, table: str, fields: tuple[str, ...], rows: list[dict]) -> None:
    """One INSERT of `fields` of every row of `rows` into `table`, in order."""
    if rows:
        names = ", ".join(fields)
        ctx.conn.execute(text(f"INSERT INTO {table} ({names}) SELECT {names} FROM {records_of(table)}"),
                         {"rows": as_json(_fields(row, fields) for row in rows)})


def _update_many(ctx: Context, table: str, fields: tuple[str, ...], keys: tuple[str, ...], rows: list[dict],
                 where: str = "TRUE") -> None:
    """One UPDATE of the `fields` of `table`'s rows whose `keys` equal those of a row of `rows`."""
    if rows:
        sets = ", ".join(f"{f} = r.{f}" for f in fields)
        match = " AND ".join(f"t.{k} = r.{k}" for k in keys)
        ctx.conn.execute(text(f"UPDATE {table} t SET {sets} FROM {records_of(table)} r WHERE {match} AND {where}"),
                         {"rows": as_json(_fields(row, fields + keys) for row in rows)})


def _new_and_old(items: list[tuple[dict, dict | None]]) -> tuple[list[dict], list[tuple[dict, dict]]]:
    return [row for row, old in items if old is None], [(row, old) for row, old in items if old is not None]


# --- property companies 物业服务企业 ---------------------------------------------------------------------------

_COMPANY_FIELDS = ("credit_code", "name", "is_community_led", "has_party_org", "party_work_only", "contact_name",
                   "contact_phone", "founded_year")
_COMPANY_SELECT = f"SELECT {', '.join(_COMPANY_FIELDS)} FROM property_company"


def _company_fetch(ctx: Context, keys: list[tuple]) -> dict[tuple, dict]:
    return _by_key(_rows(ctx.conn, f"{_COMPANY_SELECT} WHERE credit_code = ANY(:codes)",
                         {"codes": [k[0] for k in keys]}), ("credit_code",))


def _company_check(ctx: Context, row: dict, old: dict | None) -> str | None:
    if row["party_work_only"] and row["has_party_org"]:
        return "“有党组织”为是时“未建党组织但开展党的工作”应为否"
    return None


def _company_save(ctx: Context, row: dict, old: dict | None) -> None:
    if old is None:
        _insert(ctx, "property_company", _COMPANY_FIELDS, row)
        ctx.forget_companies()
    else:
        _update(ctx, "property_company", _COMPANY_FIELDS[1:], ("credit_code",), row)


def _company_save_many(ctx: Context, items: list[tuple[dict, dict | None]]) -> None:
    new, old = _new_and_old(items)
    _insert_many(ctx, "property_company", _COMPANY_FIELDS, new)
    ctx.forget_companies()
    for row, before in old:
        _company_save(ctx, row, before)


def _company_export(ctx: Context) -> list[dict]:
    return _rows(ctx.conn, f"{_COMPANY_SELECT} ORDER BY credit_code")


register(Kind(
    name="property_company", title="物业服务企业",
    columns=(
        Column("统一社会信用代码", "credit_code", parse_credit_code, required=True),
        Column("企业名称", "name", required=True),
        Column("社区领办", "is_community_led", parse_bool, default=False),
        Column("有党组织", "has_party_org", parse_bool, required=True),
        Column("未建党组织但开展党的工作", "party_work_only", parse_bool, default=False),
        Column("联系人", "contact_name"),
        Column("联系电话", "contact_phone"),
        Column("成立年份", "founded_year", whole_number(1949, 2100)),
    ),
    key=("credit_code",), fetch=_company_fetch, check=_company_check, save=_company_save, export=_company_export,
    roles=("admin",), save_many=_company_save_many,
))


# --- party organisations 党组织 ---------------------------------------------------------------------------------

PARTY_KIND_LABELS = {"社区党委": "community_committee", "网格党支部": "grid_branch", "小区党支部": "compound_branch",
                     "楼院党小组": "building_group", "企业党支部": "company_branch"}
_UNIT_LEVEL = {"community_committee": "community", "grid_branch": "grid", "compound_branch": "compound",
               "building_group": "building"}
_UNIT_NAME = {"community": "社区", "grid": "网格", "compound": "小区", "building": "楼栋"}
# The parent chain (community committee → grid branch → compound branch → building group) follows from the units'
# own chain in the pyramid (building → micro-grid → grid → community), so a row names its unit, not its parent.
_PARTY_FIELDS = ("code", "kind", "name", "unit_code", "secretary_name", "secretary_phone", "member_count",
                 "founded_on")
# 撤销日期 is the end of the organisation's last existence period once none is open (gis.registry.history).
_PARTY_SELECT = f"""
    SELECT {', '.join('p.' + f for f in _PARTY_FIELDS)},
           CASE WHEN NOT e.open THEN e.last_end END AS dissolved_on
    FROM party_organisation p
    LEFT JOIN (SELECT organisation_code, bool_or(valid_to IS NULL) AS open, max(valid_to) AS last_end
               FROM party_organisation_period GROUP BY organisation_code) e ON e.organisation_code = p.code"""


def _party_fetch(ctx: Context, keys: list[tuple]) -> dict[tuple, dict]:
    return _by_key(_rows(ctx.conn, f"{_PARTY_SELECT} WHERE p.code = ANY(:codes)", {"codes": [k[0] for k in keys]}),
                   ("code",))


def _unit_problem(ctx: Context, kind: str, unit_code: str) -> str | None:
    if kind == "company_branch":
        if not ctx.scope.whole_city:
            return "企业党支部只能由管理员登记"
        try:
            parse_credit_code(unit_code)
        except Exception as error:  # noqa: BLE001 - the parser's reason is the answer
            return f"企业党支部的所属单位应为企业的统一社会信用代码：{error}"
        return None if ctx.company_id(unit_code) else f"物业企业 {unit_code} 未登记"
    level = _UNIT_LEVEL[kind]
    if unit_code not in ctx.scope.codes(level):
        return OUT_OF_SCOPE.format(what=_UNIT_NAME[level], code=unit_code)
    return None


def _dissolution_problem(ctx: Context, row: dict, old: dict | None) -> str | None:
    """Why the row's 撤销日期 cannot be stored: it may be given once (closing the open period), not moved or
    cleared, not in the future, and must be later than the period's start."""
    day = row["dissolved_on"]
    if old is not None and old["dissolved_on"] is not None:
        if day != old["dissolved_on"]:
            return (f"党组织 {row['code']} 已于 {old['dissolved_on'].isoformat()} 撤销：撤销日期不能修改或清空"
                    "（恢复的组织请以新的组织编码登记）")
        return None
    if day is None:
        return None
    if day > ctx.today:
        return f"撤销日期 {day.isoformat()} 晚于今天：只能登记已经发生的撤销"
    since = (row["founded_on"] or ctx.today) if old is None else history.open_party_period(ctx.conn, row["code"])
    if since is not None and day <= since:
        return f"撤销日期 {day.isoformat()} 应晚于成立日期 {since.isoformat()}"
    return None


def _party_check(ctx: Context, row: dict, old: dict | None) -> str | None:
    if old is not None and _unit_problem(ctx, old["kind"], old["unit_code"]):
        return f"组织编码 {row['code']} 已由您管辖范围以外的单位使用"
    problem = _unit_problem(ctx, row["kind"], row["unit_code"])
    if problem:
        return f"所属单位编码：{problem}"
    if row["founded_on"] and row["founded_on"] > ctx.today:
        return f"成立日期 {row['founded_on'].isoformat()} 晚于今天"
    return _dissolution_problem(ctx, row, old)


def _party_period(ctx: Context, row: dict) -> dict:
    return {"organisation_code": row["code"], "valid_from": row["founded_on"] or ctx.today,
            "valid_to": row["dissolved_on"]}


def _party_save(ctx: Context, row: dict, old: dict | None) -> None:
    if old is None:
        _insert(ctx, "party_organisation", _PARTY_FIELDS, row)
        _insert(ctx, "party_organisation_period", ("organisation_code", "valid_from", "valid_to"),
                _party_period(ctx, row))
        return
    _update(ctx, "party_organisation", _PARTY_FIELDS[1:], ("code",), row)
    if row["dissolved_on"] is not None and old["dissolved_on"] is None:
        history.end_party_period(ctx.conn, row["code"], row["dissolved_on"])


def _party_save_many(ctx: Context, items: list[tuple[dict, dict | None]]) -> None:
    new, old = _new_and_old(items)
    _insert_many(ctx, "party_organisation", _PARTY_FIELDS, new)
    _insert_many(ctx, "party_organisation_period", ("organisation_code", "valid_from", "valid_to"),
                 [_party_period(ctx, row) for row in new])
    for row, before in old:
        _party_save(ctx, row, before)


def _party_export(ctx: Context) -> list[dict]:
    rows = _rows(ctx.conn, f"{_PARTY_SELECT} ORDER BY p.code")
    return [row for row in rows if not _unit_problem(ctx, row["kind"], row["unit_code"])]


register(Kind(
    name="party_organisation", title="党组织",
    columns=(
        Column("组织编码", "code", code, required=True),
        Column("组织类型", "kind", choice(PARTY_KIND_LABELS), required=True),
        Column("组织名称", "name", required=True),
        Column("所属单位编码", "unit_code", code, required=True),
        Column("书记姓名", "secretary_name", required=True),
        Column("书记电话", "secretary_phone"),
        Column("党员人数", "member_count", whole_number(0, 100000), required=True),
        Column("成立日期", "founded_on", parse_date),
        Column("撤销日期", "dissolved_on", parse_date),
    ),
    key=("code",), fetch=_party_fetch, check=_party_check, save=_party_save, export=_party_export,
    save_many=_party_save_many,
))


# --- owners' committee terms 业主委员会（届） --------------------------------------------------------------------

_TERM_FIELDS = ("compound_code", "term_start", "term_end", "member_count", "party_member_count", "chair_name",
                "chair_is_party_member", "members")


def _term_fetch(ctx: Context, keys: list[tuple]) -> dict[tuple, dict]:
    codes = sorted({k[0] for k in keys})
    rows = _rows(ctx.conn, f"SELECT {', '.join(_TERM_FIELDS)} FROM {history.COMMITTEE_TERMS} t "
                           "WHERE compound_code = ANY(:codes)", {"codes": codes})
    stored = ctx.memo.setdefault("stored_terms", {})
    for code_ in codes:
        stored[code_] = []
    for row in rows:
        stored[row["compound_code"]].append(row)
    return _by_key(rows, ("compound_code", "term_start"))


def _stored_terms(ctx: Context, compound: str) -> list[dict]:
    """The compound's terms stored before this import (read with the file's keys, or now)."""
    stored = ctx.memo.setdefault("stored_terms", {})
    if compound not in stored:
        stored[compound] = _rows(ctx.conn, f"SELECT term_start, term_end FROM {history.COMMITTEE_TERMS} t "
                                           "WHERE compound_code = :code", {"code": compound})
    return stored[compound]


def _overlap(a_start: date, a_end: date | None, b_start: date, b_end: date | None) -> bool:
    return (b_end is None or a_start < b_end) and (a_end is None or b_start < a_end)


def _span(start: date, end: date | None) -> str:
    return f"{start.isoformat()} 至 {end.isoformat() if end else '未定'}"


def _term_check(ctx: Context, row: dict, old: dict | None) -> str | None:
    compound = row["compound_code"]
    if compound not in ctx.scope.codes("compound"):
        return OUT_OF_SCOPE.format(what="小区", code=compound)
    if row["term_end"] is not None and row["term_end"] <= row["term_start"]:
        return f"任期结束日期 {row['term_end'].isoformat()} 应晚于任期开始日期 {row['term_start'].isoformat()}"
    if row["term_start"] > ctx.today:
        return f"任期开始日期 {row['term_start'].isoformat()} 晚于今天"
    if row["party_member_count"] > row["member_count"]:
        return f"党员委员人数 {row['party_member_count']} 多于委员人数 {row['member_count']}"
    if row["chair_is_party_member"] and row["party_member_count"] == 0:
        return "主任是党员，但党员委员人数为 0"
    for other in ctx.accepted_with("compound_code", compound):
        if _overlap(row["term_start"], row["term_end"], other["term_start"], other["term_end"]):
            return (f"与本文件第 {other['_row']} 行的任期（{_span(other['term_start'], other['term_end'])}）"
                    f"重叠：同一小区的任期不能重叠")
    for other in _stored_terms(ctx, compound):
        if other["term_start"] != row["term_start"] and _overlap(row["term_start"], row["term_end"],
                                                                 other["term_start"], other["term_end"]):
            return (f"与已登记的任期（{_span(other['term_start'], other['term_end'])}）重叠："
                    "同一小区的任期不能重叠")
    return None


def _term_save(ctx: Context, row: dict, old: dict | None) -> None:
    history.materialise_terms(ctx.conn, row["compound_code"])
    if old is None:
        _insert(ctx, "owners_committee_term", _TERM_FIELDS, row)
    else:
        _update(ctx, "owners_committee_term", _TERM_FIELDS[2:], ("compound_code", "term_start"), row)
    history.sync_current_committee(ctx.conn, row["compound_code"])


def _term_save_many(ctx: Context, items: list[tuple[dict, dict | None]]) -> None:
    new, old = _new_and_old(items)
    compounds = list(dict.fromkeys(row["compound_code"] for row, _ in items))
    history.materialise_terms_many(ctx.conn, compounds)
    _insert_many(ctx, "owners_committee_term", _TERM_FIELDS, new)
    for row, _ in old:
        _update(ctx, "owners_committee_term", _TERM_FIELDS[2:], ("compound_code", "term_start"), row)
    history.sync_current_committees(ctx.conn, compounds)


def _term_export(ctx: Context) -> list[dict]:
    return _rows(ctx.conn, f"SELECT {', '.join(_TERM_FIELDS)} FROM {history.COMMITTEE_TERMS} t "
                           "WHERE compound_code = ANY(:codes) ORDER BY compound_code, term_start",
                 {"codes": sorted(ctx.scope.codes("compound"))})


register(Kind(
    name="owners_committee", title="业主委员会（每届一行）",
    columns=(
        Column("小区编码", "compound_code", code, required=True),
        Column("任期开始日期", "term_start", parse_date, required=True),
        Column("任期结束日期", "term_end", parse_date),
        Column("委员人数", "member_count", whole_number(1, 99), required=True),
        Column("党员委员人数", "party_member_count", whole_number(0, 99), required=True),
        Column("主任姓名", "chair_name", required=True),
        Column("主任是否党员", "chair_is_party_member", parse_bool, required=True),
        Column("委员名单", "members"),
    ),
    key=("compound_code", "term_start"), fetch=_term_fetch, check=_term_check, save=_term_save,
    export=_term_export, save_many=_term_save_many,
))


# --- grid workers 网格员 ---------------------------------------------------------------------------------------

_WORKER_SELECT = f"""
    SELECT w.id, w.name, w.phone, w.grid_code, w.is_party_member, w.is_part_time,
           pc.credit_code AS company_credit_code, a.valid_from AS since,
           count(*) OVER (PARTITION BY w.phone) AS same_phone,
           (SELECT x.grid_code FROM grid_worker_assignment x WHERE x.grid_worker_id = w.id
            ORDER BY x.valid_from DESC LIMIT 1) AS last_grid,
           (SELECT max(x.valid_to) FROM grid_worker_assignment x WHERE x.grid_worker_id = w.id) AS left_on
    FROM grid_worker w
    LEFT JOIN property_company pc ON pc.id = w.property_company_id
    LEFT JOIN {history.ASSIGNMENTS} a ON a.grid_worker_id = w.id AND a.valid_to IS NULL"""


def _worker_fetch(ctx: Context, keys: list[tuple]) -> dict[tuple, dict]:
    return _by_key(_rows(ctx.conn, f"SELECT * FROM ({_WORKER_SELECT}) w WHERE phone = ANY(:phones)",
                         {"phones": [k[0] for k in keys]}), ("phone",))


def _worker_check(ctx: Context, row: dict, old: dict | None) -> str | None:
    if old is not None and old["same_phone"] > 1:
        return f"手机号 {row['phone']} 已登记给 {old['same_phone']} 名网格员，无法确定更新哪一名，请先核对"
    # A worker who left (no grid now) may be registered again by the office of the grid they join.
    if old is not None and old["grid_code"] is not None and old["grid_code"] not in ctx.scope.codes("grid"):
        return f"手机号 {row['phone']} 已登记为您管辖范围以外的网格员"
    if row["grid_code"] not in ctx.scope.codes("grid"):
        return OUT_OF_SCOPE.format(what="网格", code=row["grid_code"])
    credit = row["company_credit_code"]
    # A part-time grid worker is a property company's project manager serving the grid, so the company is part of
    # the record: without it, or with a company the registry does not know, the row is rejected with the reason
    # rather than stored with the company left empty (that would silently drop what the file says).
    if row["is_part_time"] and credit is None:
        return "兼职网格员必须填写所属物业企业的统一社会信用代码"
    if credit is not None and ctx.company_id(credit) is None:
        return f"所属物业企业 {credit} 未登记：请先导入该物业企业，或核对信用代码"
    since = row["since"]
    if since is not None and since > ctx.today:
        return f"任职日期 {since.isoformat()} 晚于今天"
    if old is not None and old["grid_code"] != row["grid_code"] and since is not None and old["since"] \
            and since <= old["since"]:
        return f"调整网格的任职日期 {since.isoformat()} 应晚于现任网格的任职日期 {old['since'].isoformat()}"
    if old is not None and old["grid_code"] is None and old["left_on"] and (since or ctx.today) < old["left_on"]:
        return (f"该网格员已于 {old['left_on'].isoformat()} 离任，重新任职的任职日期 "
                f"{(since or ctx.today).isoformat()} 不能早于离任日期")
    return None


def _worker_save(ctx: Context, row: dict, old: dict | None) -> None:
    values = {**_fields(row, ("name", "phone", "is_party_member", "is_part_time")),
              "company": ctx.company_id(row["company_credit_code"])}
    if old is None:
        worker_id = ctx.conn.execute(text("""
            INSERT INTO grid_worker (name, phone, grid_code, is_party_member, is_part_time, property_company_id)
            VALUES (:name, :phone, :grid, :is_party_member, :is_part_time, :company) RETURNING id"""),
            {**values, "grid": row["grid_code"]}).scalar_one()
        ctx.conn.execute(text("INSERT INTO grid_worker_assignment (grid_worker_id, grid_code, valid_from) "
                              "VALUES (:id, :grid, :since)"),
                         {"id": worker_id, "grid": row["grid_code"], "since": row["since"] or ctx.today})
        return
    ctx.conn.execute(text("UPDATE grid_worker SET name = :name, is_party_member = :is_party_member, "
                          "is_part_time = :is_part_time, property_company_id = :company WHERE id = :id"),
                     {**values, "id": old["id"]})
    if old["grid_code"] != row["grid_code"]:
        history.move_grid_worker(ctx.conn, old["id"], row["grid_code"], row["since"] or ctx.today)


def _worker_save_many(ctx: Context, items: list[tuple[dict, dict | None]]) -> None:
    new, old = _new_and_old(items)
    if new:
        rows = [{**_fields(row, ("name", "phone", "grid_code", "is_party_member", "is_part_time")),
                 "property_company_id": ctx.company_id(row["company_credit_code"])} for row in new]
        since = [{"phone": row["phone"], "valid_from": row["since"] or ctx.today} for row in new]
        ctx.conn.execute(text(f"""
            WITH added AS (
                INSERT INTO grid_worker (name, phone, grid_code, is_party_member, is_part_time, property_company_id)
                SELECT name, phone, grid_code, is_party_member, is_part_time, property_company_id
                FROM {records_of('grid_worker')}
                RETURNING id, phone, grid_code)
            INSERT INTO grid_worker_assignment (grid_worker_id, grid_code, valid_from)
            SELECT added.id, added.grid_code, CAST(s.since ->> 'valid_from' AS date)
            FROM added JOIN json_array_elements(CAST(:since AS json)) AS s(since)
                 ON s.since ->> 'phone' = added.phone"""), {"rows": as_json(rows), "since": as_json(since)})
    for row, before in old:
        _worker_save(ctx, row, before)


def _worker_export(ctx: Context) -> list[dict]:
    return _rows(ctx.conn, f"SELECT * FROM ({_WORKER_SELECT}) w WHERE grid_code = ANY(:grids) ORDER BY phone, id",
                 {"grids": sorted(ctx.scope.codes("grid"))})


register(Kind(
    name="grid_worker", title="网格员",
    columns=(
        Column("姓名", "name", required=True),
        Column("手机号", "phone", mobile_phone, required=True),
        Column("网格编码", "grid_code", code, required=True),
        Column("是否党员", "is_party_member", parse_bool, required=True),
        Column("是否兼职", "is_part_time", parse_bool, default=False),
        Column("所属物业企业信用代码", "company_credit_code", parse_credit_code),
        Column("任职日期", "since", parse_date, compare=False),
    ),
    key=("phone",), fetch=_worker_fetch, check=_worker_check, save=_worker_save, export=_worker_export,
    save_many=_worker_save_many,
))


# --- building leaders 楼长 -------------------------------------------------------------------------------------

_LEADER_SELECT = ("SELECT code AS building_code, leader_name, leader_phone, leader_is_party_member FROM building "
                  "WHERE valid_to IS NULL")


def _leader_fetch(ctx: Context, keys: list[tuple]) -> dict[tuple, dict]:
    return _by_key(_rows(ctx.conn, f"{_LEADER_SELECT} AND code = ANY(:codes)", {"codes": [k[0] for k in keys]}),
                   ("building_code",))


def _leader_check(ctx: Context, row: dict, old: dict | None) -> str | None:
    if old is None or row["building_code"] not in ctx.scope.codes("building"):
        return OUT_OF_SCOPE.format(what="楼栋", code=row["building_code"])
    if row["leader_name"] is None and (row["leader_phone"] is not None or row["leader_is_party_member"]):
        return "没有楼长姓名时不能填写楼长电话或“楼长是否党员”为是"
    return None


def _leader_save(ctx: Context, row: dict, old: dict | None) -> None:
    ctx.conn.execute(text("UPDATE building SET leader_name = :leader_name, leader_phone = :leader_phone, "
                          "leader_is_party_member = :leader_is_party_member "
                          "WHERE code = :building_code AND valid_to IS NULL"), row)


def _leader_save_many(ctx: Context, items: list[tuple[dict, dict | None]]) -> None:
    rows = [{"code": row["building_code"], **_fields(row, ("leader_name", "leader_phone", "leader_is_party_member"))}
            for row, _ in items]
    _update_many(ctx, "building", ("leader_name", "leader_phone", "leader_is_party_member"), ("code",), rows,
                 "t.valid_to IS NULL")


def _leader_export(ctx: Context) -> list[dict]:
    return _rows(ctx.conn, f"{_LEADER_SELECT} AND code = ANY(:codes) ORDER BY code",
                 {"codes": sorted(ctx.scope.codes("building"))})


register(Kind(
    name="building_leader", title="楼长",
    columns=(
        Column("楼栋编码", "building_code", code, required=True),
        Column("楼长姓名", "leader_name"),
        Column("楼长电话", "leader_phone"),
        Column("楼长是否党员", "leader_is_party_member", parse_bool, default=False),
    ),
    key=("building_code",), fetch=_leader_fetch, check=_leader_check, save=_leader_save, export=_leader_export,
    save_many=_leader_save_many,
))


# --- cross-appointments 交叉任职 --------------------------------------------------------------------------------

BODY_LABELS = {"社区两委": "community_committee", "业主委员会": "owners_committee", "物业企业": "property_company"}
_CROSS_KEY = ("person_name", "home_kind", "home_ref", "seat_kind", "seat_ref")
_CROSS_FIELDS = (*_CROSS_KEY, "role", "since")


def _cross_fetch(ctx: Context, keys: list[tuple]) -> dict[tuple, dict]:
    wanted = set(keys)
    rows = _rows(ctx.conn, f"SELECT {', '.join(_CROSS_FIELDS)} FROM cross_appointment "
                           "WHERE person_name = ANY(:names) ORDER BY id", {"names": sorted({k[0] for k in keys})})
    found: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row[name] for name in _CROSS_KEY)
        if key in wanted:
            found.setdefault(key, row)
    return found


def _body_problem(ctx: Context, kind: str, ref: str) -> str | None:
    if kind == "property_company":
        return None if ctx.company_id(ref) else f"物业企业 {ref} 未登记"
    level, what = ("community", "社区") if kind == "community_committee" else ("compound", "小区")
    return None if ref in ctx.scope.codes(level) else OUT_OF_SCOPE.format(what=what, code=ref)


def _cross_check(ctx: Context, row: dict, old: dict | None) -> str | None:
    if (row["home_kind"], row["home_ref"]) == (row["seat_kind"], row["seat_ref"]):
        return "本职单位与兼任单位相同"
    for side, kind, ref in (("本职单位", row["home_kind"], row["home_ref"]),
                            ("兼任单位", row["seat_kind"], row["seat_ref"])):
        problem = _body_problem(ctx, kind, ref)
        if problem:
            return f"{side}：{problem}"
    if row["since"] > ctx.today:
        return f"任职日期 {row['since'].isoformat()} 晚于今天"
    return None


def _cross_save(ctx: Context, row: dict, old: dict | None) -> None:
    if old is None:
        _insert(ctx, "cross_appointment", _CROSS_FIELDS, row)
    else:
        _update(ctx, "cross_appointment", ("role", "since"), _CROSS_KEY, row)


def _cross_save_many(ctx: Context, items: list[tuple[dict, dict | None]]) -> None:
    new, old = _new_and_old(items)
    _insert_many(ctx, "cross_appointment", _CROSS_FIELDS, new)
    for row, before in old:
        _cross_save(ctx, row, before)


def _cross_export(ctx: Context) -> list[dict]:
    rows = _rows(ctx.conn, f"SELECT DISTINCT ON ({', '.join(_CROSS_KEY)}) {', '.join(_CROSS_FIELDS)} "
                           f"FROM cross_appointment ORDER BY {', '.join(_CROSS_KEY)}, id")
    return [row for row in rows if not _body_problem(ctx, row["home_kind"], row["home_ref"])
            and not _body_problem(ctx, row["seat_kind"], row["seat_ref"])]


register(Kind(
    name="cross_appointment", title="交叉任职",
    columns=(
        Column("姓名", "person_name", required=True),
        Column("本职单位类型", "home_kind", choice(BODY_LABELS), required=True),
        Column("本职单位编码", "home_ref", code, required=True),
        Column("兼任单位类型", "seat_kind", choice(BODY_LABELS), required=True),
        Column("兼任单位编码", "seat_ref", code, required=True),
        Column("兼任职务", "role", required=True),
        Column("任职日期", "since", parse_date, required=True),
    ),
    key=_CROSS_KEY, fetch=_cross_fetch, check=_cross_check, save=_cross_save, export=_cross_export,
    save_many=_cross_save_many,
))


# --- compound attributes 小区属性 -------------------------------------------------------------------------------

MODE_LABELS = {"专业物业": "professional", "社区领办": "community_led", "代管": "entrusted", "自管": "self_managed",
               "无物业": "none"}
assert set(MODE_LABELS.values()) == set(MANAGEMENT_MODES)
_ATTRIBUTE_FIELDS = ("is_old_estate", "build_year", "floor_area_m2", "households", "property_fee_yuan_m2")
_COMPOUND_SELECT = f"""
    SELECT c.code AS compound_code, c.name AS compound_name, v.management_mode,
           pc.credit_code AS company_credit_code, {', '.join('c.' + f for f in _ATTRIBUTE_FIELDS)},
           f.fees_due_yuan, f.fees_collected_yuan, v.valid_from AS changed_on, v.reason AS change_reason
    FROM compound c
    JOIN {history.MANAGEMENT_VERSIONS} v ON v.compound_code = c.code AND v.valid_to IS NULL
    LEFT JOIN property_company pc ON pc.id = v.property_company_id
    LEFT JOIN compound_fee f ON f.compound_code = c.code
    WHERE c.valid_to IS NULL"""


def _compound_fetch(ctx: Context, keys: list[tuple]) -> dict[tuple, dict]:
    return _by_key(_rows(ctx.conn, f"{_COMPOUND_SELECT} AND c.code = ANY(:codes)", {"codes": [k[0] for k in keys]}),
                   ("compound_code",))


def _management_changed(row: dict, old: dict) -> bool:
    return (row["management_mode"], row["company_credit_code"]) != (old["management_mode"],
                                                                     old["company_credit_code"])


def _compound_check(ctx: Context, row: dict, old: dict | None) -> str | None:
    if old is None or row["compound_code"] not in ctx.scope.codes("compound"):
        return OUT_OF_SCOPE.format(what="小区", code=row["compound_code"])
    credit = row["company_credit_code"]
    if credit is not None and ctx.company_id(credit) is None:
        return f"物业企业 {credit} 未登记：请先导入该物业企业，或核对信用代码"
    if row["build_year"] > ctx.today.year:
        return f"建成年份 {row['build_year']} 晚于今年"
    due, collected = row["fees_due_yuan"], row["fees_collected_yuan"]
    if due is not None and collected is not None and collected > due:
        return f"实收物业费 {collected} 元多于应收物业费 {due} 元"
    if _management_changed(row, old):
        on = row["changed_on"] or ctx.today
        if on > ctx.today:
            return f"变更日期 {on.isoformat()} 晚于今天：只能登记已经发生的变更"
        if on <= old["changed_on"]:
            return (f"管理方式或物业企业有变更，变更日期 {on.isoformat()} 应晚于当前管理方式的开始日期 "
                    f"{old['changed_on'].isoformat()}")
    return None


def _compound_save(ctx: Context, row: dict, old: dict | None) -> None:
    sets = ", ".join(f"{f} = :{f}" for f in _ATTRIBUTE_FIELDS)
    ctx.conn.execute(text(f"UPDATE compound SET {sets} WHERE code = :compound_code AND valid_to IS NULL"), row)
    if _fees_changed(row, old):
        ctx.conn.execute(text("""
            INSERT INTO compound_fee (compound_code, fees_due_yuan, fees_collected_yuan)
            VALUES (:compound_code, :fees_due_yuan, :fees_collected_yuan)
            ON CONFLICT (compound_code) DO UPDATE SET fees_due_yuan = EXCLUDED.fees_due_yuan,
                fees_collected_yuan = EXCLUDED.fees_collected_yuan"""), row)
    if _management_changed(row, old):
        history.change_management(ctx.conn, ctx.principal, row["compound_code"], row["management_mode"],
                                  ctx.company_id(row["company_credit_code"]), row["changed_on"] or ctx.today,
                                  row["change_reason"])


def _fees_changed(row: dict, old: dict) -> bool:
    return (row["fees_due_yuan"], row["fees_collected_yuan"]) != (old["fees_due_yuan"], old["fees_collected_yuan"])


def _compound_save_many(ctx: Context, items: list[tuple[dict, dict | None]]) -> None:
    # Attributes and fees in one statement each; a change of management is a dated version, one by one.
    _update_many(ctx, "compound", _ATTRIBUTE_FIELDS, ("code",),
                 [{"code": row["compound_code"], **_fields(row, _ATTRIBUTE_FIELDS)} for row, _ in items],
                 "t.valid_to IS NULL")
    fees = [_fields(row, ("compound_code", "fees_due_yuan", "fees_collected_yuan")) for row, old in items
            if _fees_changed(row, old)]
    if fees:
        ctx.conn.execute(text(f"""
            INSERT INTO compound_fee (compound_code, fees_due_yuan, fees_collected_yuan)
            SELECT compound_code, fees_due_yuan, fees_collected_yuan FROM {records_of('compound_fee')}
            ON CONFLICT (compound_code) DO UPDATE SET fees_due_yuan = EXCLUDED.fees_due_yuan,
                fees_collected_yuan = EXCLUDED.fees_collected_yuan"""), {"rows": as_json(fees)})
    for row, old in items:
        if _management_changed(row, old):
            history.change_management(ctx.conn, ctx.principal, row["compound_code"], row["management_mode"],
                                      ctx.company_id(row["company_credit_code"]), row["changed_on"] or ctx.today,
                                      row["change_reason"])


def _compound_export(ctx: Context) -> list[dict]:
    return _rows(ctx.conn, f"{_COMPOUND_SELECT} AND c.code = ANY(:codes) ORDER BY c.code",
                 {"codes": sorted(ctx.scope.codes("compound"))})


register(Kind(
    name="compound_attributes", title="小区属性",
    columns=(
        Column("小区编码", "compound_code", code, required=True),
        Column("小区名称（仅供核对）", "compound_name", compare=False),
        Column("管理方式", "management_mode", choice(MODE_LABELS), required=True),
        Column("物业企业信用代码", "company_credit_code", parse_credit_code),
        Column("老旧小区", "is_old_estate", parse_bool, required=True),
        Column("建成年份", "build_year", whole_number(1900, 2100), required=True),
        Column("建筑面积（平方米）", "floor_area_m2", real_number(0, 1e9), required=True),
        Column("户数", "households", whole_number(0, 1000000), required=True),
        Column("物业费标准（元/平方米·月）", "property_fee_yuan_m2", money),
        Column("应收物业费（元）", "fees_due_yuan", money),
        Column("实收物业费（元）", "fees_collected_yuan", money),
        Column("变更日期", "changed_on", parse_date, compare=False),
        Column("变更原因", "change_reason", compare=False),
    ),
    key=("compound_code",), fetch=_compound_fetch, check=_compound_check, save=_compound_save,
    export=_compound_export, save_many=_compound_save_many,
))


# --- the evaluation's inputs (specs in gis/analytics/input_kinds.py) ------------------------------------------

for _spec in EVALUATION_KINDS:
    register(Kind(**{**_spec, "columns": tuple(Column(*column) for column in _spec["columns"])}))


def get_kind(name: str) -> Kind:
    """The kind called `name`; NotFound naming the kinds there are otherwise."""
    from gis.errors import NotFound

    kind = KINDS.get(name)
    if kind is None:
        raise NotFound(f"没有登记类别“{name}”：可用的类别有 {'、'.join(KINDS)}")
    return kind
