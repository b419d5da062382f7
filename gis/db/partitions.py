"""Monthly partitions of `complaint`: an opt-in conversion for a province-size deployment (docs/scaling.md §1).

No migration partitions anything: a city pays a cost per partition on every map request, so only a deployment
that needs to archive by month converts its database (`gridgov db partitions convert`). After the conversion:

- `complaint` is partitioned by range of `reported_at`, one partition per calendar month in Beijing time
  (`complaint_2025_01` holds 2025-01-01 00:00+08 up to 2025-02-01 00:00+08), plus `complaint_default` for a
  month that has no partition yet, so that no intake ever fails on a date;
- a partitioned table's unique keys must contain the partition key, so ids and the deduplication key
  `(source, external_id)` are held in `complaint_key` (one unpartitioned row per complaint, kept by statement
  triggers, `partitions_key.sql`), and every foreign key that pointed at `complaint(id)` points at
  `complaint_key(id)` with its action kept: deleting a complaint still deletes its ticket;
- `detach MONTH` moves a month to the `archive` schema together with every row that hangs off its complaints
  (tickets, their events, intake facts, parties, ...), so the month leaves every read, and `attach MONTH` puts
  all of it back as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from gis.db.engine import libpq_url
from gis.errors import Conflict, InvalidInput, NotFound
from gis.times import BEIJING

KEY_SQL = (Path(__file__).parent / "partitions_key.sql").read_text(encoding="utf-8")
ARCHIVE_SCHEMA = "archive"
DEFAULT_PARTITION = "complaint_default"
PARTITION_NAME = re.compile(r"^complaint_(\d{4})_(\d{2})$")
MONTH_TEXT = re.compile(r"^(\d{4})-(\d{1,2})$")

IS_PARTITIONED_SQL = ("SELECT coalesce((SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('complaint')), "
                      "false)")
"""Whether this database's `complaint` has been converted (a writer that must differ asks this once a batch)."""

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total), as the CLI's bars take it."""


def parse_month(text: str) -> date:
    """The first day of the month `YYYY-MM`; InvalidInput otherwise."""
    found = MONTH_TEXT.match(text.strip())
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise InvalidInput(f"月份应写作 YYYY-MM，例如 2025-01：{text!r}")
    return date(int(found.group(1)), int(found.group(2)), 1)


def add_months(month: date, count: int) -> date:
    """The first day of the month `count` months after `month` (before it when negative)."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    """The name of the partition (and of its archive) of `month`."""
    return f"complaint_{month.year:04d}_{month.month:02d}"


def month_bounds(month: date) -> tuple[str, str]:
    """The partition bounds of `month`: midnight Beijing time at its start and at the next month's."""
    return f"{month.isoformat()} 00:00:00+08", f"{add_months(month, 1).isoformat()} 00:00:00+08"


def current_month(now: datetime | None = None) -> date:
    """The month it is now in Beijing time."""
    today = (now or datetime.now(BEIJING)).astimezone(BEIJING).date()
    return today.replace(day=1)


def is_partitioned(conn: psycopg.Connection) -> bool:
    """Whether `complaint` is partitioned in the database of `conn`."""
    return bool(conn.execute(IS_PARTITIONED_SQL).fetchone()[0])


def _connect(url: str) -> psycopg.Connection:
    conn = psycopg.connect(libpq_url(url))
    # Maintenance moves whole months: the API's statement timeout is not meant for it.
    conn.execute("SET statement_timeout = 0")
    return conn


def _need_partitioned(conn: psycopg.Connection) -> None:
    if not is_partitioned(conn):
        raise InvalidInput("诉求表尚未按月分区：先运行 gridgov db partitions convert")


def _rows(conn: psycopg.Connection, query, params=None) -> list[tuple]:
    return conn.execute(query, params).fetchall()


def _months_with_rows(conn: psycopg.Connection, table: str) -> list[date]:
    return [row[0] for row in _rows(conn, sql.SQL(
        "SELECT DISTINCT date_trunc('month', reported_at AT TIME ZONE 'Asia/Shanghai')::date FROM {} ORDER BY 1"
    ).format(sql.Identifier(table)))]


# --- the conversion ----------------------------------------------------------------------------------------------


def _complaint_definitions(conn: psycopg.Connection) -> dict[str, list]:
    """What the conversion must carry over from the single table: its indexes (but the two keys), its own
    constraints, its triggers, the foreign keys that point at it and its identity sequence's position."""
    indexes = [definition for name, definition in _rows(conn, (
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'complaint' "
        "ORDER BY indexname")) if name not in ("pk_complaint", "uq_complaint_source_external")]
    own = _rows(conn, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                      "WHERE conrelid = 'complaint'::regclass AND contype IN ('c', 'f') ORDER BY conname")
    triggers = [row[0] for row in _rows(conn, "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                                              "WHERE tgrelid = 'complaint'::regclass AND NOT tgisinternal")]
    pointing = _rows(conn, "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                           "WHERE confrelid = 'complaint'::regclass AND contype = 'f' ORDER BY 1, 2")
    return {"indexes": indexes, "own": own, "triggers": triggers, "pointing": pointing}


def _to_key(definition: str) -> str:
    """A foreign key's definition that pointed at complaint(id), pointing at complaint_key(id) instead."""
    changed = re.sub(r"REFERENCES (\w+\.)?complaint\(id\)", "REFERENCES complaint_key(id)", definition)
    if changed == definition:
        raise InvalidInput(f"无法改指向诉求键表的外键：{definition}")
    return changed


def convert(url: str, ahead: int = 3, progress: Progress | None = None, now: datetime | None = None
            ) -> dict[str, int]:
    """Convert the database at `url` in one transaction: `complaint` partitioned by month (every month from the
    oldest complaint's to `ahead` months after the current one, and DEFAULT), its rows moved, the keys and the
    foreign keys reworked. Returns the number of partitions and of rows moved. Conflict when already converted."""
    progress = progress or (lambda stage, done, total: None)
    with _connect(url) as conn:
        if is_partitioned(conn):
            raise Conflict("诉求表已经按月分区")
        conn.execute("LOCK TABLE complaint IN ACCESS EXCLUSIVE MODE")
        found = _complaint_definitions(conn)
        sequence = conn.execute("SELECT pg_get_serial_sequence('complaint', 'id')").fetchone()[0]
        last_id, called = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
            sql.SQL(sequence))).fetchone()
        first = _months_with_rows(conn, "complaint")[:1] or [current_month(now)]
        months = []
        month = min(first[0], current_month(now))
        while month <= add_months(current_month(now), ahead):
            months.append(month)
            month = add_months(month, 1)
        conn.execute("CREATE TABLE complaint_partitioned (LIKE complaint INCLUDING DEFAULTS INCLUDING IDENTITY "
                     "INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (reported_at)")
        for month in months:
            _create_partition(conn, "complaint_partitioned", month)
        conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF complaint_partitioned DEFAULT").format(
            sql.Identifier(DEFAULT_PARTITION)))
        moved = 0
        for done, month in enumerate(months):
            low, high = month_bounds(month)
            moved += conn.execute("INSERT INTO complaint_partitioned SELECT * FROM complaint "
                                  "WHERE reported_at >= %s AND reported_at < %s", (low, high)).rowcount
            progress("moving rows", done + 1, len(months) + 1)
        low, high = month_bounds(months[0])[0], month_bounds(months[-1])[1]
        moved += conn.execute("INSERT INTO complaint_partitioned SELECT * FROM complaint "
                              "WHERE reported_at < %s OR reported_at >= %s", (low, high)).rowcount
        progress("moving rows", len(months) + 1, len(months) + 1)
        for table, name, _ in found["pointing"]:
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(table), sql.Identifier(name)))
        conn.execute("DROP TABLE complaint")
        conn.execute("ALTER TABLE complaint_partitioned RENAME TO complaint")
        new_sequence = conn.execute("SELECT pg_get_serial_sequence('complaint', 'id')").fetchone()[0]
        conn.execute(sql.SQL("ALTER SEQUENCE {} RENAME TO complaint_id_seq").format(sql.SQL(new_sequence)))
        conn.execute("SELECT setval(pg_get_serial_sequence('complaint', 'id'), %s, %s)", (last_id, called))
        steps = ["ALTER TABLE complaint ADD CONSTRAINT pk_complaint PRIMARY KEY (id, reported_at)",
                 *found["indexes"],
                 *(f'ALTER TABLE complaint ADD CONSTRAINT "{name}" {definition}' for name, definition in found["own"]),
                 KEY_SQL,
                 "INSERT INTO complaint_key (id, source, external_id) SELECT id, source, external_id FROM complaint",
                 *found["triggers"],
                 *(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {_to_key(definition)}'
                   for table, name, definition in found["pointing"]),
                 "ANALYZE complaint", "ANALYZE complaint_key"]
        for done, step in enumerate(steps):
            conn.execute(step)
            progress("indexes and keys", done + 1, len(steps))
    return {"partitions": len(months) + 1, "rows": moved}


def _create_partition(conn: psycopg.Connection, parent: str, month: date) -> None:
    low, high = month_bounds(month)
    conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
        sql.Identifier(partition_name(month)), sql.Identifier(parent), sql.Literal(low), sql.Literal(high)))


def _from_default(conn: psycopg.Connection, table: str, month: date) -> int:
    """Move the default partition's rows of `month` into the standalone table `table` (not yet attached).
    A direct DELETE on the partition fires none of the parent's statement triggers: the keys stay."""
    low, high = month_bounds(month)
    return conn.execute(sql.SQL(
        "WITH moved AS (DELETE FROM {} WHERE reported_at >= %s AND reported_at < %s RETURNING *) "
        "INSERT INTO {} SELECT * FROM moved").format(sql.Identifier(DEFAULT_PARTITION), sql.Identifier(table)),
        (low, high)).rowcount


def _attach(conn: psycopg.Connection, table: str, month: date) -> None:
    low, high = month_bounds(month)
    conn.execute(sql.SQL("ALTER TABLE complaint ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
        sql.Identifier(table), sql.Literal(low), sql.Literal(high)))


# --- months ahead, and the months the default partition holds ---------------------------------------------------


def _attached(conn: psycopg.Connection) -> dict[str, str]:
    """Each partition of `complaint` (name → bounds as PostgreSQL writes them)."""
    return dict(_rows(conn, "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'complaint'::regclass"))


def _archived(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in _rows(conn, (
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname ~ '^complaint_[0-9]{4}_[0-9]{2}$' ORDER BY 1"),
        (ARCHIVE_SCHEMA,))]


def _add_month(conn: psycopg.Connection, month: date) -> int:
    """A partition for `month`, with the rows of that month the default partition held; returns them."""
    name = partition_name(month)
    held = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE reported_at >= %s AND reported_at < %s").format(
        sql.Identifier(DEFAULT_PARTITION)), month_bounds(month)).fetchone()[0]
    if not held:
        _create_partition(conn, "complaint", month)
        return 0
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE complaint INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                         "INCLUDING STORAGE)").format(sql.Identifier(name)))
    moved = _from_default(conn, name, month)
    _attach(conn, name, month)
    return moved


def ensure(url: str, ahead: int = 3, now: datetime | None = None) -> dict[str, list[str] | int]:
    """Create the partitions of the current month and the `ahead` months after it where missing, and one for
    each month the default partition holds complaints of (their rows moved into it), except archived months.
    Returns the partitions created and the rows moved out of the default partition."""
    with _connect(url) as conn:
        _need_partitioned(conn)
        attached, archived = _attached(conn), set(_archived(conn))
        wanted = [add_months(current_month(now), step) for step in range(ahead + 1)]
        held = [month for month in _months_with_rows(conn, DEFAULT_PARTITION) if partition_name(month) not in archived]
        created, moved = [], 0
        for month in sorted(set(wanted) | set(held)):
            name = partition_name(month)
            if name in attached or name in archived:
                continue
            moved += _add_month(conn, month)
            created.append(name)
    return {"created": created, "moved": moved}


# --- detaching a month to the archive, and attaching it back ------------------------------------------------------


@dataclass
class _Link:
    """A foreign key from `table`(`columns`) to `parent`(`parent_columns`); `cascade` when deleting cascades."""

    table: str
    columns: list[str]
    parent: str
    parent_columns: list[str]
    cascade: bool


@dataclass
class _Dependents:
    """The tables whose rows hang off a complaint's key (in an order where a parent comes before its children),
    and every foreign key into them."""

    order: list[str] = field(default_factory=list)
    links: list[_Link] = field(default_factory=list)


def _dependents(conn: psycopg.Connection) -> _Dependents:
    rows = _rows(conn, """
        SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, c.confdeltype = 'c',
               array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
               array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
        FROM pg_constraint c WHERE c.contype = 'f'""")
    found = _Dependents()
    reached, frontier = {"complaint_key"}, ["complaint_key"]
    while frontier:
        parent = frontier.pop(0)
        for table, target, cascade, columns, parent_columns in rows:
            if target != parent:
                continue
            found.links.append(_Link(table, list(columns), target, list(parent_columns), cascade))
            if cascade and table not in reached:
                reached.add(table)
                frontier.append(table)
    # parents before children: a table comes after every cascading parent of it
    remaining = reached - {"complaint_key"}
    placed = {"complaint_key"}
    while remaining:
        ready = sorted(t for t in remaining if all(link.parent in placed or link.parent == t
                                                   for link in found.links if link.table == t and link.cascade))
        if not ready:
            raise InvalidInput(f"外键成环，无法归档：{', '.join(sorted(remaining))}")
        found.order.extend(ready)
        placed.update(ready)
        remaining.difference_update(ready)
    return found


def _archive_name(table: str, month: date) -> sql.Composed:
    return sql.Identifier(ARCHIVE_SCHEMA, f"{table}_{month.year:04d}_{month.month:02d}")


def _held_rows(link: _Link, month: date, alias: str) -> sql.Composed:
    """SQL boolean: row `alias` of `link.table` points, through `link`, at a row that leaves with `month`."""
    parent = (sql.Identifier(partition_name(month)) if link.parent == "complaint_key"
              else _archive_name(link.parent, month))
    match = sql.SQL(" AND ").join(
        sql.SQL("p.{} = {}.{}").format(sql.Identifier(pc), sql.Identifier(alias), sql.Identifier(c))
        for c, pc in zip(link.columns, link.parent_columns))
    return sql.SQL("EXISTS (SELECT 1 FROM {} p WHERE {})").format(parent, match)


def _stored_columns(conn: psycopg.Connection, table: str) -> sql.Composed:
    names = [row[0] for row in _rows(conn, (
        "SELECT attname::text FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "AND attgenerated = '' ORDER BY attnum"), (table,))]
    return sql.SQL(", ").join(map(sql.Identifier, names))


def detach(url: str, month_text: str) -> dict[str, int]:
    """Move month `month_text` (YYYY-MM) to the archive schema: its complaints' partition and every row that hangs
    off them (each table's rows in `archive.<table>_YYYY_MM`), so that the month leaves every read. Conflict when
    a row that stays points at one that would leave without a cascade (e.g. a ticket merged into one of the
    month's tickets). Returns the rows archived per table."""
    month = parse_month(month_text)
    name = partition_name(month)
    with _connect(url) as conn:
        _need_partitioned(conn)
        if name not in _attached(conn):
            raise NotFound(f"没有 {month_text} 的分区（已归档的月份用 attach 恢复）")
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(ARCHIVE_SCHEMA)))
        conn.execute(sql.SQL("LOCK TABLE complaint, {} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(name)))
        found = _dependents(conn)
        counts = {"complaint": conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(name))).fetchone()[0]}
        for table in found.order:
            held = sql.SQL(" OR ").join(_held_rows(link, month, "r") for link in found.links
                                        if link.table == table and link.cascade)
            target = _archive_name(table, month)
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {})").format(target, sql.SQL(table)))
            counts[table] = conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {} r WHERE {}").format(
                target, sql.SQL(table), held)).rowcount
        for link in found.links:
            if link.cascade:
                continue
            staying = sql.SQL("")
            if link.table in found.order:  # its own rows that leave with the month do not count
                staying = sql.SQL(" AND NOT ({})").format(sql.SQL(" OR ").join(
                    _held_rows(own, month, "r") for own in found.links if own.table == link.table and own.cascade))
            blocking = conn.execute(sql.SQL("SELECT count(*) FROM {} r WHERE {}{}").format(
                sql.SQL(link.table), _held_rows(link, month, "r"), staying)).fetchone()[0]
            if blocking:
                raise Conflict(f"{link.table} 中有 {blocking} 行（{', '.join(link.columns)}）指向 {month_text} 的记录，"
                               f"该月无法单独归档")
        conn.execute(sql.SQL("DELETE FROM complaint_key k USING {} c WHERE k.id = c.id").format(
            sql.Identifier(name)))
        conn.execute(sql.SQL("ALTER TABLE complaint DETACH PARTITION {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(sql.Identifier(name),
                                                                    sql.Identifier(ARCHIVE_SCHEMA)))
    return counts


def attach(url: str, month_text: str) -> dict[str, int]:
    """Bring archived month `month_text` back: its partition attached (with the rows of that month written into the
    default partition meanwhile), its keys, and every archived row of the tables hanging off it, restored as they
    were (their own triggers do not fire). Returns the rows restored per table."""
    month = parse_month(month_text)
    name = partition_name(month)
    with _connect(url) as conn:
        _need_partitioned(conn)
        if name not in _archived(conn):
            raise NotFound(f"归档中没有 {month_text}")
        if name in _attached(conn):
            raise Conflict(f"{month_text} 已有分区")
        conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA public").format(sql.Identifier(ARCHIVE_SCHEMA, name)))
        try:
            with conn.transaction():
                counts = {"complaint": conn.execute(sql.SQL(
                    "INSERT INTO complaint_key (id, source, external_id) SELECT id, source, external_id FROM {}"
                ).format(sql.Identifier(name))).rowcount}
        except psycopg.errors.UniqueViolation as error:
            raise Conflict(f"{month_text} 的诉求与现有诉求重复（编号或来源与外部编号）：{error.diag.message_detail}"
                           ) from error
        counts["complaint"] += _from_default(conn, name, month)
        _attach(conn, name, month)
        found = _dependents(conn)
        for table in found.order:
            archived = _archive_name(table, month)
            if conn.execute("SELECT to_regclass(%s)", (archived.as_string(conn),)).fetchone()[0] is None:
                continue
            columns = _stored_columns(conn, table)
            conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(sql.SQL(table)))
            try:
                with conn.transaction():
                    counts[table] = conn.execute(sql.SQL(
                        "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}").format(
                        sql.SQL(table), columns, columns, archived)).rowcount
            except psycopg.errors.ForeignKeyViolation as error:
                raise Conflict(f"{month_text} 的 {table} 指向另一个已归档的月份，先恢复那个月份："
                               f"{error.diag.message_detail}") from error
            conn.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(sql.SQL(table)))
            conn.execute(sql.SQL("DROP TABLE {}").format(archived))
    return counts


def status(url: str, now: datetime | None = None) -> dict:
    """Whether `complaint` is partitioned; its partitions (month, estimated rows), the rows in DEFAULT (counted),
    the archived months and how many months ahead of the current one have a partition."""
    with _connect(url) as conn:
        if not is_partitioned(conn):
            return {"partitioned": False}
        partitions = []
        for name in sorted(_attached(conn)):
            if name == DEFAULT_PARTITION:
                continue
            rows = conn.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass",
                                (name,)).fetchone()[0]
            partitions.append({"name": name, "rows_estimate": rows})
        in_default = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(DEFAULT_PARTITION))).fetchone()[0]
        names = {p["name"] for p in partitions}
        ahead = 0
        while partition_name(add_months(current_month(now), ahead + 1)) in names:
            ahead += 1
        if partition_name(current_month(now)) not in names:
            ahead = -1
        return {"partitioned": True, "partitions": partitions, "default_rows": in_default,
                "archived": [name.removeprefix("complaint_").replace("_", "-") for name in _archived(conn)],
                "months_ahead": ahead}
