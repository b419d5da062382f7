"""Batch import of hotline (12345) exports, CSV or XLSX, streamed in chunks.

Each chunk is one transaction: its rows are normalised, COPY'd into a session stage table, placed and stored by
a few set-based statements, and the batch's counters move on with it. So an import killed halfway leaves whole
chunks only, and running it again skips every complaint already held: (source, external_id) is the key, and rows
without a ticket number get a key derived from their content.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from time import perf_counter

import psycopg

from gis.db.engine import libpq_url
from gis.db.partitions import is_partitioned
from gis.errors import InvalidInput
from gis.intake.address import normalise as normalise_text
from gis.intake.gazetteer import Gazetteer
from gis.intake.locate import Locator
from gis.intake.normalise import FIELDS, Catalogue, Normalised, normalise_rows
from gis.intake.placement import (
    ADDRESS_POINTS_BATCH_SQL,
    CLOSED_TICKET_FILTER,
    DUPLICATE_BOUNDS_SQL,
    DUPLICATE_KEYS_SQL,
    DUPLICATE_REACH_ROWS_SQL,
    POLYGONS_OUTER_FROM,
    STAGE_COLUMN_NAMES,
    STAGE_DDL,
    UNPLACED_INSERT_SQL,
    degrees_for,
    duplicates_batch_sql,
    duplicates_sql,
    hit_insert_sql,
    snap_insert_sql,
    store_sql,
)
from gis.layers.crs import normalise_crs
from gis.settings import city_settings

DEFAULT_CHUNK_ROWS = 50_000

DEFAULT_MAPPING: dict[str, tuple[str, ...]] = {
    "external_id": ("工单编号", "工单号", "受理编号", "受理号", "编号", "ticket_no", "ticket", "id", "external_id"),
    "reported_at": ("受理时间", "来电时间", "登记时间", "创建时间", "反映时间", "时间", "reported_at", "time"),
    "category": ("诉求类别", "问题分类", "事项分类", "诉求分类", "类别", "分类", "category", "service_code"),
    "description": ("诉求内容", "问题描述", "来电内容", "反映内容", "内容", "description", "content"),
    "address": ("事发地址", "诉求地址", "发生地址", "地址", "address"),
    "x": ("经度", "x坐标", "x", "lon", "lng", "longitude"),
    "y": ("纬度", "y坐标", "y", "lat", "latitude"),
    "coordinates": ("坐标", "经纬度", "coordinates"),
    "crs": ("坐标系", "crs"),
    "reporter_name": ("来电人", "联系人", "反映人", "姓名", "reporter_name", "name"),
    "reporter_phone": ("联系电话", "来电号码", "电话", "手机", "reporter_phone", "phone"),
}
"""Usual column names of 12345 exports for each canonical field (matched ignoring case, spaces, punctuation)."""


@dataclass
class ImportReport:
    batch_id: int
    rows_read: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    placements: dict[str, int] = field(default_factory=dict)
    duplicates_linked: int = 0
    rejected_file: str | None = None
    seconds: dict[str, float] = field(default_factory=dict, compare=False)
    """Where the time went: reading, loading polygons, normalising, placing, storing, linking duplicates."""

    def as_dict(self) -> dict:
        """The outcome (counts and placements); the timings stay out, as two runs of one file never agree on them."""
        return {name: value for name, value in self.__dict__.items() if name != "seconds"}


def parse_mapping(text: str | None) -> dict[str, str]:
    """A mapping given as 'field=column,field=column' or as JSON {"field": "column"}."""
    if not text:
        return {}
    text = text.strip()
    if text.startswith("{"):
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidInput(f"mapping is not valid JSON: {error}") from None
    else:
        mapping = {}
        for part in text.split(","):
            if "=" not in part:
                raise InvalidInput(f"mapping part {part!r} is not field=column")
            key, value = part.split("=", 1)
            mapping[key.strip()] = value.strip()
    unknown = set(mapping) - set(FIELDS)
    if unknown:
        raise InvalidInput(f"unknown mapping fields {sorted(unknown)}; fields are {', '.join(FIELDS)}")
    return mapping


def resolve_columns(header: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """Column index of each canonical field: the explicit mapping first, then the usual export names."""
    norm = {normalise_text(name): index for index, name in enumerate(header)}
    resolved: dict[str, int] = {}
    for field_name, column in mapping.items():
        if column not in header and normalise_text(column) not in norm:
            raise InvalidInput(f"mapped column {column!r} for {field_name} is not in the file; "
                               f"columns are {', '.join(header)}")
        resolved[field_name] = header.index(column) if column in header else norm[normalise_text(column)]
    taken = set(resolved.values())
    for field_name, names in DEFAULT_MAPPING.items():
        if field_name in resolved:
            continue
        for name in names:
            index = norm.get(normalise_text(name))
            if index is not None and index not in taken:
                resolved[field_name] = index
                taken.add(index)
                break
    if "description" not in resolved:
        raise InvalidInput("no column for the complaint text (description); give --mapping description=COLUMN")
    if "reported_at" not in resolved:
        raise InvalidInput("no column for the reported time; give --mapping reported_at=COLUMN")
    return resolved


# -- reading files -------------------------------------------------------------------------------------------------


def _detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) when the start of the file decodes as such, else GB18030 (GBK exports)."""
    with path.open("rb") as handle:
        head = handle.read(1 << 20)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    if head.isascii():
        # ASCII so far (English column names, numbers): the first bytes beyond ASCII decide, wherever they are
        with path.open("rb") as handle:
            handle.seek(len(head))
            while block := handle.read(1 << 20):
                if not block.isascii():
                    first = next(i for i, byte in enumerate(block) if byte >= 0x80)
                    try:
                        codecs.getincrementaldecoder("utf-8")().decode(block[first:first + 64], final=False)
                    except UnicodeDecodeError:
                        return "gb18030"
                    break
    return "utf-8"


def _cell_text(value) -> str | None:
    """A spreadsheet cell as the text the export meant (whole numbers without '.0', times in ISO form)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _unreadable(path: Path, kind: str, error: Exception, row: int | None = None) -> InvalidInput:
    where = f"第 {row} 行附近" if row else "开头"
    return InvalidInput(f"无法读取文件 {path.name}（{where}）：不是有效的 {kind} 文件或文件已损坏"
                        f"（{type(error).__name__}）")


def _read_xlsx(path: Path) -> tuple[list[str], Iterator[list[str | None]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [(_cell_text(v) or "").strip() for v in next(rows)]
    except StopIteration:
        raise InvalidInput("the spreadsheet is empty") from None
    except Exception as error:  # a damaged or foreign file fails anywhere inside the zip and XML readers
        raise _unreadable(path, "XLSX", error) from None

    def stream() -> Iterator[list[str | None]]:
        row_no = 1
        try:
            for row in rows:
                row_no += 1
                yield [_cell_text(v) for v in row]
        except Exception as error:
            raise _unreadable(path, "XLSX", error, row_no) from None
        finally:
            workbook.close()

    return header, stream()


def _read_csv(path: Path) -> tuple[list[str], Iterator[list[str | None]]]:
    encoding = _detect_encoding(path)
    handle = path.open(encoding=encoding, newline="")
    try:
        sample = handle.read(64 * 1024)
        handle.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",\t;|")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(handle, dialect)
        header = [name.strip().lstrip("\ufeff") for name in next(reader)]
    except StopIteration:
        handle.close()
        raise InvalidInput("the file is empty") from None
    except (UnicodeDecodeError, csv.Error) as error:
        handle.close()
        raise _unreadable(path, "CSV", error) from None

    def stream() -> Iterator[list[str | None]]:
        with handle:
            try:
                yield from reader
            except (UnicodeDecodeError, csv.Error) as error:
                raise _unreadable(path, "CSV", error, reader.line_num) from None

    return header, stream()


def read_rows(path: Path) -> tuple[list[str], Iterator[list[str | None]]]:
    """Header and a stream of rows (lists of text) of a CSV or XLSX file."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_csv(path)
    raise InvalidInput(f"cannot import {path.name}: give a .csv or .xlsx file")


def file_sha256(path: Path) -> str:
    """The SHA-256 hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- storing ----------------------------------------------------------------------------------------------------


def _copy_stage(conn: psycopg.Connection, staged: dict[str, list]) -> None:
    with conn.cursor() as cur:
        with cur.copy(f"COPY intake_stage ({', '.join(STAGE_COLUMN_NAMES)}) FROM STDIN") as copy:
            columns = [staged.get(name) or [None] * len(staged["row_no"]) for name in STAGE_COLUMN_NAMES]
            for values in zip(*columns):
                copy.write_row(values)


def _resolve_address_points(conn: psycopg.Connection, staged: dict[str, list], positions: list[int]) -> None:
    """Give address-only rows the point of their building (or compound), in one query."""
    if not positions:
        return
    compounds = [staged["addr_compound"][i] for i in positions]
    numbers = [staged["_building_number"][i] if staged["match_level"][i] == "building" else None
               for i in positions]
    rows = conn.execute(ADDRESS_POINTS_BATCH_SQL, {"compounds": compounds, "numbers": numbers})
    for key, building_code, lon, lat in rows:
        i = positions[key - 1]
        staged["lon"][i], staged["lat"][i], staged["building_code"][i] = lon, lat, building_code
        if building_code is None and staged["match_level"][i] == "building":
            staged["match_level"][i] = "compound"


def _unique_rows(staged: dict[str, list]) -> None:
    """Keep the first row of each (source, external_id) in the chunk; later copies count as duplicates."""
    if len(set(zip(staged["source"], staged["external_id"]))) == len(staged["row_no"]):
        return  # the usual case, found at the cost of one set
    seen: set[tuple[str, str]] = set()
    keep = []
    for i, key in enumerate(zip(staged["source"], staged["external_id"])):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    if len(keep) < len(staged["row_no"]):
        for name, values in staged.items():
            staged[name] = [values[i] for i in keep]


DUPLICATE_PROBE_COST_ROWS = 30
"""One index probe for one new complaint costs about as much as reading this many rows in the hash join."""


def _link_duplicates(conn: psycopg.Connection, new_count: int, open_filter: str, params: dict) -> int:
    """Link possible duplicates of the new complaints (`intake_new`): one index probe each for a few, one hash
    join over the complaints within the chunk's reach (its time span and window, its categories, its area) for
    many, whichever reads less. The reach bounds the join by what the rule can link, so a chunk of a file in time
    order costs the same however many chunks came before it."""
    if new_count == 0:
        return 0
    bounds = conn.execute(DUPLICATE_BOUNDS_SQL, params).fetchone()
    if bounds is None:
        return 0
    reach = dict(zip(("low", "high", "categories", "xmin", "ymin", "xmax", "ymax"), bounds))
    reach_rows = conn.execute(DUPLICATE_REACH_ROWS_SQL, reach).fetchone()[0] or 0
    if new_count * DUPLICATE_PROBE_COST_ROWS > reach_rows:
        conn.execute(DUPLICATE_KEYS_SQL, params)
        conn.execute("ANALYZE intake_dup_key")
        # Equal keys on both sides: a hash join reads each side once, where the merge join the planner prefers
        # sorts both (400,000 keys and the reach's complaints: most of the statement's time at 50,000 rows).
        conn.execute("SET LOCAL enable_mergejoin = off")
        linked = conn.execute(duplicates_batch_sql(open_filter), params | reach).rowcount
        conn.execute("SET LOCAL enable_mergejoin = on")
        return linked
    return conn.execute(duplicates_sql("SELECT id FROM intake_new", open_filter), params).rowcount


BUILDINGS_OUTER_FROM = 100_000
"""The building join runs polygons-outer from this many rows on: a city has several times more buildings than
micro-grids, so visiting every building pays only for far larger batches."""
VECTORISED_FROM = 20_000
"""From this many staged rows in a chunk on, points are placed by the vectorised step (`locate.py`): loading the
city's polygons once per import pays for itself over a chunk of this size."""
LOCATOR_AHEAD_BYTES = 6_000_000
"""A file this large almost surely holds a chunk large enough for the vectorised step (`VECTORISED_FROM` rows of
300 bytes, where a 12345 row with its Chinese text is 150 to 300), so the city's polygons are loaded while its
first chunk is normalised. One that does not pays for loading them, never with a different answer."""
VACUUM_FROM = 10_000
"""After importing this many complaints the import vacuums the tables it filled: the new pages become all-visible
(complaint tiles and counts read only the index there) and the planner learns the new rows at once."""
BATCH_LOCK_CLASS = 311311
"""First key of the session advisory lock an import holds on its batch id while it runs."""

SETTLE_ABANDONED_SQL = f"""
UPDATE intake_batch b SET state = 'failed', finished_at = coalesce(b.finished_at, now())
WHERE b.state = 'running' AND NOT EXISTS (
    SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
      AND l.classid::bigint = {BATCH_LOCK_CLASS} AND l.objid::bigint = b.id)"""
"""Batches still marked running whose import is gone (its process killed, its connection lost) are marked failed:
what their committed chunks stored stays, and importing the file again adds only the rest."""


VACUUMED_TABLES = ("complaint", "complaint_intake", "complaint_party", "ticket")
"""The tables an import fills, vacuumed after it (ticket: by the trigger on complaint)."""
ANALYZE_SHARE = 0.1
"""An import re-analyses a table only when it adds at least this share of the rows the table held before (the
share at which autovacuum would analyse it too): the statistics of a city of a million complaints do not move
for a file of fifty thousand, and sampling the table again costs seconds."""


def _vacuum_after_import(url: str, imported: int) -> list[str]:
    """VACUUM the tables the import filled (their new pages all-visible), and ANALYZE those the import grew by
    `ANALYZE_SHARE` or more; returns the tables analysed."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        # reltuples as of the last VACUUM or ANALYZE, which is before this import's rows (-1: never counted)
        held = dict(conn.execute("SELECT t, (SELECT reltuples FROM pg_class WHERE oid = to_regclass(t)) "
                                 "FROM unnest(%s::text[]) t", (list(VACUUMED_TABLES),)).fetchall())
        stale = [table for table in VACUUMED_TABLES
                 if (held.get(table) or -1) < 0 or imported >= ANALYZE_SHARE * held[table]]
        conn.execute(f"VACUUM {', '.join(VACUUMED_TABLES)}")
        if stale:
            conn.execute(f"ANALYZE {', '.join(stale)}")
    return stale


def _snap(conn: psycopg.Connection, unplaced: int, params: dict) -> None:
    """Snap the `unplaced` points of `intake_unplaced` within the tolerance to their nearest micro-grid."""
    if not unplaced:
        return
    snap_outer = unplaced >= POLYGONS_OUTER_FROM
    if snap_outer:
        conn.execute("CREATE INDEX intake_unplaced_geom ON intake_unplaced USING gist (geom); ANALYZE intake_unplaced")
    conn.execute(snap_insert_sql(snap_outer), params)


def store_staged(conn: psycopg.Connection, staged: dict[str, list], address_positions: list[int],
                 locator: Callable[[], Locator] | None = None, timings: dict[str, float] | None = None) -> tuple[
        dict[str, int], int]:
    """Place and store staged rows (inside the caller's transaction). Returns placements and duplicates linked.
    `locator` gives the city's polygons for the vectorised placement of large chunks; `timings` gathers the
    seconds spent placing, storing and linking duplicates."""
    timings = timings if timings is not None else {}
    settings = city_settings()
    params = {"snap_m": settings.snap_tolerance_m, "snap_deg": degrees_for(settings.snap_tolerance_m)}
    vectorised = locator is not None and len(staged["row_no"]) >= VECTORISED_FROM
    located = locator() if vectorised else None  # loads the polygons on first use, timed apart
    started = perf_counter()
    conn.execute(STAGE_DDL)
    _resolve_address_points(conn, staged, address_positions)
    _unique_rows(staged)
    conn.execute("DROP INDEX IF EXISTS intake_stage_geom; DROP INDEX IF EXISTS intake_unplaced_geom")
    count = len(staged["row_no"])
    polygons_outer = count >= POLYGONS_OUTER_FROM
    if vectorised:
        # Placing needs only the points: the rows themselves are copied afterwards, as part of storing.
        found = located.place(staged["lon"], staged["lat"], staged["local_day"], staged["building_code"],
                              settings.snap_tolerance_m)
        for index, code in found.building_codes.items():
            staged["building_code"][index] = code
        _snap(conn, located.write(conn, staged["row_no"], staged["lon"], staged["lat"], staged["local_day"], found),
              params)
        placed = perf_counter()
        _copy_stage(conn, staged)
    else:
        _copy_stage(conn, staged)
        if polygons_outer:
            conn.execute("CREATE INDEX intake_stage_geom ON intake_stage USING gist (geom); ANALYZE intake_stage")
        conn.execute(hit_insert_sql("intake_stage", polygons_outer))
        _snap(conn, conn.execute(UNPLACED_INSERT_SQL).rowcount, params)
        placed = perf_counter()
    if polygons_outer:
        conn.execute("ANALYZE intake_placed")
    placements = dict(conn.execute(store_sql("intake_stage", count >= BUILDINGS_OUTER_FROM,
                                             buildings_resolved=vectorised, keyed=is_partitioned(conn)),
                                   params).fetchall())
    stored = perf_counter()
    linked = _link_duplicates(conn, sum(placements.values()), CLOSED_TICKET_FILTER, {
        "radius_m": settings.duplicate_radius_m, "radius_deg": degrees_for(settings.duplicate_radius_m),
        "window_days": settings.duplicate_window_days})
    for stage, seconds in (("placing", placed - started), ("storing", stored - placed),
                           ("linking duplicates", perf_counter() - stored)):
        timings[stage] = timings.get(stage, 0.0) + seconds
    return placements, linked


def _write_rejected(conn: psycopg.Connection, batch_id: int, rejected: list[tuple[int, str, dict]]) -> None:
    if not rejected:
        return
    with conn.cursor() as cur:
        with cur.copy("COPY intake_rejected_row (batch_id, row_number, reason, raw) FROM STDIN") as copy:
            for row_no, reason, raw in rejected:
                copy.write_row((batch_id, row_no, reason, json.dumps(raw, ensure_ascii=False)))


class RejectedWriter:
    """The rejected rows as a CSV with the original columns plus the row number and the reason, so they can be
    fixed and imported again (the two added columns are kept aside as extra fields on re-import)."""

    def __init__(self, path: Path | None, header: list[str]):
        self.path = path
        self.header = header
        self.handle = None
        self.writer = None

    def write(self, rows: list[tuple[int, str, list[str | None]]]) -> None:
        if self.path is None or not rows:
            return
        if self.writer is None:
            self.handle = self.path.open("w", encoding="utf-8-sig", newline="")
            self.writer = csv.writer(self.handle)
            self.writer.writerow([*self.header, "rejected_row", "rejected_reason"])
        for row_no, reason, values in rows:
            padded = list(values) + [None] * (len(self.header) - len(values))
            self.writer.writerow([*padded[: len(self.header)], row_no, reason])
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        elif self.path is not None:
            # An empty file with the header says "nothing rejected" more clearly than no file at all.
            with self.path.open("w", encoding="utf-8-sig", newline="") as handle:
                csv.writer(handle).writerow([*self.header, "rejected_row", "rejected_reason"])


@dataclass
class _ImportContext:
    """What every chunk of one import shares: the file's columns, the source and its default CRS, the lookups
    loaded once, the report the chunks add to, the writer of rejected rows and the city's polygons (loaded on the
    first large chunk only)."""

    conn: psycopg.Connection
    header: list[str]
    columns: dict[str, int]
    unmapped: list[tuple[int, str]]
    source: str
    default_crs: str
    catalogue: Catalogue
    gazetteer: Gazetteer
    report: ImportReport
    rejected_out: RejectedWriter
    located: list[Locator] = field(default_factory=list)

    def locator(self) -> Locator:
        """The city's polygons, loaded on first use: small imports never pay for them."""
        if not self.located:
            started = perf_counter()
            self.located.append(Locator(self.conn))
            self.report.seconds["loading polygons"] = perf_counter() - started
        return self.located[0]


def _open_batch(conn: psycopg.Connection, path: Path, source: str, file_name: str | None, header: list[str],
                columns: dict[str, int], default_crs: str, owner_user_id: int | None,
                owner_scope: list[str] | None) -> int:
    """Record the batch (settling abandoned ones first) and hold its advisory lock; committed. Returns its id."""
    conn.execute(SETTLE_ABANDONED_SQL)
    batch_id = conn.execute(
        "INSERT INTO intake_batch (source, file_name, file_sha256, mapping, crs, owner_user_id, owner_scope) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (source, file_name or path.name, file_sha256(path),
         json.dumps({f: header[i] for f, i in columns.items()}, ensure_ascii=False), default_crs,
         owner_user_id, owner_scope),
    ).fetchone()[0]
    # held by this session until it ends, however it ends: taken before the row is visible to anyone
    conn.execute("SELECT pg_advisory_lock(%s, %s)", (BATCH_LOCK_CLASS, batch_id))
    conn.commit()
    return batch_id


def _chunks(rows: Iterator[list[str | None]], chunk_rows: int) -> Iterator[list[tuple[int, list[str | None]]]]:
    """The file's rows numbered from 1 (blank lines are not rows), `chunk_rows` at a time."""
    chunk: list[tuple[int, list[str | None]]] = []
    row_no = 0
    for values in rows:
        if not values or all(v in (None, "") for v in values):
            continue
        row_no += 1
        chunk.append((row_no, values))
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_file(
    url: str,
    path: str | Path,
    *,
    mapping: dict[str, str] | str | None = None,
    crs: str = "EPSG:4326",
    source: str = "hotline",
    rejected_path: str | Path | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
    file_name: str | None = None,
    owner_user_id: int | None = None,
    owner_scope: list[str] | None = None,
) -> ImportReport:
    """Import a hotline export; every row ends imported, duplicate or rejected (with the reason). The batch
    records who ran it and their scope (gis.intake.batches reads it back only inside that scope)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"{path} does not exist")
    if source not in ("hotline", "patrol", "app", "open311"):
        raise InvalidInput(f"unknown source {source!r}")
    default_crs = normalise_crs(crs)
    mapping = parse_mapping(mapping) if isinstance(mapping, str) or mapping is None else mapping
    header, rows = read_rows(path)
    columns = resolve_columns(header, mapping)
    unmapped = [(index, name) for index, name in enumerate(header) if index not in set(columns.values()) and name]
    rejected_out = RejectedWriter(Path(rejected_path) if rejected_path else None, header)

    with psycopg.connect(libpq_url(url)) as conn:
        catalogue, gazetteer = Catalogue.load(conn), Gazetteer.load(conn)
        batch_id = _open_batch(conn, path, source, file_name, header, columns, default_crs, owner_user_id,
                               owner_scope)
        report = ImportReport(batch_id=batch_id, rejected_file=str(rejected_path) if rejected_path else None)
        context = _ImportContext(conn, header, columns, unmapped, source, default_crs, catalogue, gazetteer, report,
                                 rejected_out)
        try:
            # A chunk's commit need not wait for its WAL to reach the disk: a crash loses at most the last chunks
            # committed, whole (their counters with them), and importing the file again adds exactly those.
            conn.execute("SET synchronous_commit = off")
            _run_chunks(context, _chunks(rows, chunk_rows), chunk_rows >= VECTORISED_FROM
                        and path.stat().st_size >= LOCATOR_AHEAD_BYTES, progress)
            conn.execute("SET synchronous_commit = on")  # the batch is done once that is durable
            conn.execute("UPDATE intake_batch SET state = 'done', finished_at = now() WHERE id = %s", (batch_id,))
            conn.commit()
            if report.imported >= VACUUM_FROM:
                started = perf_counter()
                _vacuum_after_import(url, report.imported)
                report.seconds["vacuuming"] = perf_counter() - started
        except BaseException:
            conn.rollback()
            with psycopg.connect(libpq_url(url)) as other:
                other.execute("UPDATE intake_batch SET state = 'failed', finished_at = now() WHERE id = %s",
                              (batch_id,))
            raise
        finally:
            rejected_out.close()
    return report


def _prepare(context: _ImportContext, chunk: list[tuple[int, list[str | None]]]
             ) -> tuple[list[tuple[int, dict, dict]], list[tuple[int, str, dict]]]:
    """The chunk's rows as (row_no, canonical fields, unmapped columns), and those with more fields than the
    header (rejected)."""
    width = len(context.header)
    prepared = []
    malformed: list[tuple[int, str, dict]] = []
    for row_no, values in chunk:
        if len(values) > width and any(v not in (None, "") for v in values[width:]):
            malformed.append((row_no, f"row has {len(values)} fields, the header has {width}",
                              {f"column_{i + 1}": v for i, v in enumerate(values)}))
            continue
        fields = {name: (values[index] if index < len(values) else None) for name, index in context.columns.items()}
        extra = {name: values[index] for index, name in context.unmapped
                 if index < len(values) and values[index] not in (None, "")}
        prepared.append((row_no, fields, extra))
    return prepared, malformed


BATCH_COUNTERS_SQL = """
UPDATE intake_batch SET rows_read = rows_read + %s, imported = imported + %s, duplicates = duplicates + %s,
    rejected = rejected + %s,
    placements = (SELECT coalesce(jsonb_object_agg(key, total), '{}') FROM (
        SELECT key, sum(value::int) AS total FROM (
            SELECT * FROM jsonb_each_text(placements) UNION ALL SELECT * FROM jsonb_each_text(%s::jsonb)) a
        GROUP BY key) b)
WHERE id = %s"""
"""A chunk's counts added to its batch (rows read, imported, duplicates, rejected, placements)."""


def _run_chunks(context: _ImportContext, chunks: Iterator[list[tuple[int, list[str | None]]]], large: bool,
                progress: Callable[[int], None] | None) -> None:
    """Every chunk in two stages, one thread each: a worker reads and normalises the next chunk (Python) while
    this thread places and stores the current one (mostly waiting on the database), so the two overlap. A `large`
    file has the city's polygons loaded while its first chunk is normalised."""
    with ThreadPoolExecutor(1, thread_name_prefix="gridgov-normalise") as worker:
        pending = worker.submit(_read_and_normalise, context, chunks)
        if large:
            context.locator()
        while (ready := pending.result()) is not None:
            pending = worker.submit(_read_and_normalise, context, chunks)
            _store_chunk(context, *ready)
            if progress:
                progress(len(ready[0]))


def _read_and_normalise(context: _ImportContext, chunks: Iterator[list[tuple[int, list[str | None]]]]
                        ) -> tuple[list[tuple[int, list[str | None]]], Normalised] | None:
    """The next chunk of the file and its rows normalised (None at the end of the file). Runs in the import's
    worker thread, one chunk ahead of the storing; it touches no connection."""
    report = context.report
    started = perf_counter()
    chunk = next(chunks, None)
    report.seconds["reading"] = report.seconds.get("reading", 0.0) + perf_counter() - started
    if chunk is None:
        return None
    started = perf_counter()
    prepared, malformed = _prepare(context, chunk)
    result = normalise_rows(prepared, source=context.source, default_crs=context.default_crs,
                            catalogue=context.catalogue, gazetteer=context.gazetteer, batch_id=report.batch_id)
    result.rejected[:0] = malformed
    report.seconds["normalising"] = report.seconds.get("normalising", 0.0) + perf_counter() - started
    return chunk, result


def _store_chunk(context: _ImportContext, chunk: list[tuple[int, list[str | None]]], result: Normalised) -> None:
    """Place and store one normalised chunk in one transaction, and add its counts to the batch and the report."""
    report, conn = context.report, context.conn
    rejected = result.rejected
    staged_count = len(result.staged["row_no"])
    with conn.transaction():
        placements, linked = (store_staged(conn, result.staged, result.address_rows, context.locator, report.seconds)
                              if staged_count else ({}, 0))
        _write_rejected(conn, report.batch_id, rejected)
        imported = sum(placements.values())
        duplicates = staged_count - imported
        conn.execute(BATCH_COUNTERS_SQL, (len(chunk), imported, duplicates, len(rejected), json.dumps(placements),
                                          report.batch_id))
    conn.commit()
    report.rows_read += len(chunk)
    report.imported += imported
    report.duplicates += duplicates
    report.rejected += len(rejected)
    report.duplicates_linked += linked
    for key, value in placements.items():
        report.placements[key] = report.placements.get(key, 0) + value
    by_row = dict(chunk)
    context.rejected_out.write([(row_no, reason, by_row[row_no]) for row_no, reason, _ in sorted(rejected)])
