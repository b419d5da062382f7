"""From raw source rows (strings) to staged complaints: times, coordinates, categories and idempotency keys.

Every row comes out either staged or rejected with a reason a person can act on.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from gis.errors import InvalidInput
from gis.intake.address import normalise as normalise_text
from gis.intake.gazetteer import Gazetteer
from gis.layers import crs as crs_module
from gis.numbers import is_number_text
from gis.times import time_problem

LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
FIELDS = ("external_id", "reported_at", "category", "description", "address", "x", "y", "coordinates", "crs",
          "reporter_name", "reporter_phone")
"""The canonical fields a source column can be mapped to."""

_DATE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]*(\d{1,2})\s*[:时点]\s*(\d{1,2})(?:\s*[:分]\s*(\d{1,2})(?:\.(\d{1,6}))?\s*秒?)?\s*分?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?$")
_EXCEL_EPOCH = datetime(1899, 12, 30)


def parse_time(text: str | None) -> datetime | None:
    """Read a reported time in the forms hotline exports use; naive times are Beijing time. None if unreadable.

    Forms: 2024-03-05 14:22[:10], 2024/3/5 14:22, 2024.03.05, 2024年3月5日14时22分, 20240305142210,
    ISO 8601 with T and a zone, and an Excel serial day number (45356.59) left by a spreadsheet."""
    if text is None:
        return None
    value = str(text).strip()
    if not value:
        return None
    match = _DATE.match(value) or _COMPACT_DATE.match(value)
    try:
        if match:
            parts = match.groups()
            year, month, day = int(parts[0]), int(parts[1]), int(parts[2])
            hour = int(parts[3]) if parts[3] else 0
            minute = int(parts[4]) if parts[4] else 0
            second = int(parts[5]) if len(parts) > 5 and parts[5] else 0
            micro = int((parts[6] or "0").ljust(6, "0")) if len(parts) > 6 and parts[6] else 0
            zone_text = parts[7] if len(parts) > 7 else None
            zone = LOCAL_ZONE
            if zone_text == "Z":
                zone = timezone.utc
            elif zone_text:
                sign = 1 if zone_text[0] == "+" else -1
                digits = zone_text[1:].replace(":", "")
                zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
            return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
        serial = float(value) if is_number_text(value) else math.nan
    except (ValueError, OverflowError):
        return None
    if 20_000 <= serial <= 80_000:  # Excel day numbers for 1954–2119
        return (_EXCEL_EPOCH + timedelta(days=serial)).replace(tzinfo=LOCAL_ZONE)
    return None


def parse_times(values: list[str | None]) -> list[datetime | None]:
    """parse_time over a column: the common 'YYYY-MM-DD HH:MM:SS' form vectorised, the rest one by one."""
    series = pd.Series(values, dtype="object")
    fast = pd.to_datetime(series, format="%Y-%m-%d %H:%M:%S", errors="coerce")
    out: list[datetime | None] = []
    for value, quick in zip(values, fast):
        if quick is not pd.NaT and not pd.isna(quick):
            out.append(quick.to_pydatetime().replace(tzinfo=LOCAL_ZONE))
        else:
            out.append(parse_time(value))
    return out


def _number(text: str | None) -> float | None:
    """A coordinate number, or NaN when present but not a number; None when empty."""
    if text is None:
        return None
    value = str(text).strip().replace("，", ",")
    if not value:
        return None
    # strict: float() would read '1_0', Arabic-Indic digits and 'nan' (gis.numbers)
    return float(value) if is_number_text(value) else math.nan


@dataclass
class Catalogue:
    """Category lookup: by code, Chinese or English name or minor class; inference by keywords in the text."""

    codes: set[str]
    by_name: dict[str, str]
    keywords: list[tuple[str, str]]  # (keyword, code), longest keyword first

    @classmethod
    def from_rows(cls, rows) -> "Catalogue":
        codes, by_name, keywords = set(), {}, []
        for code, name, name_zh, minor, words in rows:
            codes.add(code)
            for label in (code, name, name_zh, minor):
                if label:
                    by_name.setdefault(normalise_text(label), code)
            keywords.extend((normalise_text(w), code) for w in (words or ()) if w)
        keywords.sort(key=lambda item: (-len(item[0]), item[1]))
        return cls(codes, by_name, keywords)

    @classmethod
    def load(cls, conn) -> "Catalogue":
        return cls.from_rows(conn.execute(
            "SELECT code, name, name_zh, minor_class, keywords FROM category WHERE active ORDER BY code"))

    def lookup(self, label: str | None) -> str | None:
        if not label:
            return None
        return self.by_name.get(normalise_text(label))

    def infer(self, text: str | None) -> str | None:
        norm = normalise_text(text)
        for word, code in self.keywords:
            if word in norm:
                return code
        return None


@dataclass
class Normalised:
    """A chunk after normalisation: staged rows (stage column → list) and rejected (row_no, reason, raw)."""

    staged: dict[str, list] = field(default_factory=dict)
    rejected: list[tuple[int, str, dict]] = field(default_factory=list)
    address_rows: list[int] = field(default_factory=list)  # positions in `staged` needing an address point


def derived_key(parts: list) -> str:
    """The idempotency key of a row without a ticket number: a hash of its normalised content."""
    payload = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), default=str)
    return "h:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


STAGED_FIELDS = ("row_no", "source", "external_id", "category_code", "description", "address", "reported_at",
                 "local_day", "lon", "lat", "original_x", "original_y", "original_crs", "match_level",
                 "match_score", "addr_level", "addr_street", "addr_community", "addr_compound", "building_code",
                 "reporter_name", "reporter_phone", "review_reason", "batch_id", "extra", "_building_number")
"""The columns of `Normalised.staged` (`_building_number` is the importer's, not staged)."""


@dataclass
class _Points:
    """The coordinates of a chunk: as given (x, y, system), converted to storage (lon, lat), and per row the
    problem that rejects it. A row without a point has no system."""

    xs: np.ndarray
    ys: np.ndarray
    systems: list[str | None]
    problems: list[str | None]
    lons: np.ndarray
    lats: np.ndarray
    ok: np.ndarray


def _given_point(fields: dict[str, str | None], default_crs: str) -> tuple[float, float, str] | str | None:
    """One row's point as (x, y, system), the reason it cannot be read, or None when it has none."""
    x, y = _number(fields.get("x")), _number(fields.get("y"))
    combined = (fields.get("coordinates") or "").strip()
    if x is None and y is None and combined:
        parts = re.split(r"[,，;\s]+", combined)
        if len(parts) != 2:
            return f"coordinates {combined!r} are not two numbers"
        x, y = _number(parts[0]), _number(parts[1])
    if x is None and y is None:
        return None
    if x is None or y is None:
        return "only one of the two coordinates is given"
    if math.isnan(x) or math.isnan(y) or math.isinf(x) or math.isinf(y):
        return f"coordinates ({fields.get('x') or combined}, {fields.get('y') or ''}) are not numbers"
    if x == 0 and y == 0:
        return None  # (0, 0) is how many systems write "no coordinates"
    try:
        return x, y, crs_module.normalise_crs(fields.get("crs") or default_crs)
    except InvalidInput as error:
        return str(error)


def _points(rows: list, default_crs: str) -> _Points:
    """The chunk's points, grouped by system so each group converts in one vectorised call."""
    xs, ys = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    systems: list[str | None] = [None] * len(rows)
    problems: list[str | None] = [None] * len(rows)
    for i, (_, fields, _) in enumerate(rows):
        given = _given_point(fields, default_crs)
        if isinstance(given, str):
            problems[i] = given
        elif given is not None:
            xs[i], ys[i], systems[i] = given
    lons, lats = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    for system in {s for s in systems if s}:
        index = np.array([i for i, s in enumerate(systems) if s == system])
        lons[index], lats[index] = crs_module.to_storage(xs[index], ys[index], system, check=False)
    return _Points(xs, ys, systems, problems, lons, lats, crs_module.storage_coordinates_ok(lons, lats))


def _category(fields: dict, description: str, catalogue: Catalogue) -> tuple[str, dict] | str:
    """The row's category code and notes on how it was found, or the reason it has none."""
    label = (fields.get("category") or "").strip()
    category = catalogue.lookup(label)
    if category is not None:
        return category, {}
    category = catalogue.infer(description)
    if category is None:
        return (f"unknown category {label!r} and none recognisable in the text" if label
                else "no category and none recognisable in the text")
    notes = {"category_inferred_from_text": True}
    if label:
        notes["category_given"] = label
    return category, notes


def _checked(fields: dict, reported_at: datetime | None, points: _Points, i: int, catalogue: Catalogue,
             now: datetime) -> tuple[str, str, dict] | str:
    """(description, category, notes) of a row that can be staged, or the reason it is rejected."""
    description = (fields.get("description") or "").strip()
    if not description:
        return "no complaint text (description)"
    if reported_at is None:
        given = (fields.get("reported_at") or "").strip()
        return f"reported time {given!r} cannot be read" if given else "no reported time"
    problem = time_problem(reported_at, "受理时间（reported_at）", now)
    if problem:
        return problem
    category = _category(fields, description, catalogue)
    if isinstance(category, str):
        return category
    if points.problems[i]:
        return points.problems[i]
    if points.systems[i] is not None and not points.ok[i]:
        return f"坐标 ({points.xs[i]}, {points.ys[i]})（坐标系 {points.systems[i]}）不是地球上的点"
    return description, *category


def _external_id(fields: dict, reported_at: datetime, category: str, description: str, address: str | None) -> str:
    """The row's ticket number, or a key derived from its content."""
    external_id = (fields.get("external_id") or "").strip() or None
    if external_id is not None:
        return external_id
    return derived_key([reported_at.isoformat(), category, normalise_text(description), normalise_text(address),
                        fields.get("x"), fields.get("y"), fields.get("coordinates"),
                        (fields.get("reporter_phone") or "").strip()])


def _staged_row(fields: dict, reported_at: datetime, description: str, category: str, points: _Points, i: int,
                match, address: str | None) -> dict:
    """The stage values of one accepted row (without row_no, source, batch_id and extra)."""
    has_point = points.systems[i] is not None
    return {
        "external_id": _external_id(fields, reported_at, category, description, address),
        "category_code": category, "description": description, "address": address,
        "reported_at": reported_at.isoformat(),
        "local_day": reported_at.astimezone(LOCAL_ZONE).date().isoformat(),
        "lon": float(points.lons[i]) if has_point else None, "lat": float(points.lats[i]) if has_point else None,
        "original_x": float(points.xs[i]) if has_point else None,
        "original_y": float(points.ys[i]) if has_point else None,
        "original_crs": points.systems[i],
        "match_level": "coordinates" if has_point else match.level,
        "match_score": 1.0 if has_point else match.score,
        "addr_level": match.level if (address or not has_point) else None,
        "addr_street": match.street_code, "addr_community": match.community_code,
        "addr_compound": match.compound_code, "building_code": None,
        "reporter_name": (fields.get("reporter_name") or "").strip() or None,
        "reporter_phone": (fields.get("reporter_phone") or "").strip() or None,
        "review_reason": None if has_point else match.review_reason,
        "_building_number": match.building_number,
    }


def _extra(extra: dict, notes: dict, match, has_point: bool) -> str | None:
    """The row's unmapped columns and notes on how it was read, as JSON."""
    extras = {**extra, **notes}
    if match.notes and not has_point:
        extras["geocoding_notes"] = match.notes
    if match.candidates and not has_point and not match.auto:
        extras["geocoding_candidates"] = match.candidates  # ranked, for the person who places it
    return json.dumps(extras, ensure_ascii=False) if extras else None


def normalise_rows(
    rows: list[tuple[int, dict[str, str | None], dict[str, str]]],
    *,
    source: str,
    default_crs: str,
    catalogue: Catalogue,
    gazetteer: Gazetteer,
    batch_id: int | None,
    now: datetime | None = None,
) -> Normalised:
    """Normalise a chunk of (row_no, canonical fields, unmapped columns) into staged rows and rejections."""
    now = now or datetime.now(timezone.utc)
    out = Normalised(staged={name: [] for name in STAGED_FIELDS})
    times = parse_times([fields.get("reported_at") for _, fields, _ in rows])
    points = _points(rows, default_crs)
    for i, (row_no, fields, extra) in enumerate(rows):
        checked = _checked(fields, times[i], points, i, catalogue, now)
        if isinstance(checked, str):
            out.rejected.append((row_no, checked, {**{k: v for k, v in fields.items() if v not in (None, "")},
                                                   **extra}))
            continue
        description, category, notes = checked
        has_point = points.systems[i] is not None
        address = (fields.get("address") or "").strip() or None
        # Hotline content often carries the address ("…三里社区3号楼2单元厨房漏水"): use it when the address is empty.
        match = gazetteer.match(address or (description if not has_point else None))
        row = _staged_row(fields, times[i], description, category, points, i, match, address)
        row.update(row_no=row_no, source=source, batch_id=batch_id, extra=_extra(extra, notes, match, has_point))
        for name in STAGED_FIELDS:
            out.staged[name].append(row[name])
        if not has_point and match.compound_code is not None:
            out.address_rows.append(len(out.staged["row_no"]) - 1)
    return out
