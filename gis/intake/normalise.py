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

from gis import crs as crs_module
from gis.errors import InvalidInput
from gis.intake.address import normalise as normalise_text
from gis.intake.gazetteer import Gazetteer
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
    out = Normalised()
    staged = out.staged
    for name in ("row_no", "source", "external_id", "category_code", "description", "address", "reported_at",
                 "local_day", "lon", "lat", "original_x", "original_y", "original_crs", "match_level",
                 "match_score", "addr_level", "addr_street", "addr_community", "addr_compound", "building_code",
                 "reporter_name", "reporter_phone", "review_reason", "batch_id", "extra", "_building_number"):
        staged[name] = []
    times = parse_times([fields.get("reported_at") for _, fields, _ in rows])

    # Coordinates, grouped by system so each group converts in one vectorised call.
    xs = np.full(len(rows), np.nan)
    ys = np.full(len(rows), np.nan)
    systems: list[str | None] = [None] * len(rows)
    problems: list[str | None] = [None] * len(rows)
    for i, (_, fields, _) in enumerate(rows):
        x, y = _number(fields.get("x")), _number(fields.get("y"))
        combined = (fields.get("coordinates") or "").strip()
        if x is None and y is None and combined:
            parts = re.split(r"[,，;\s]+", combined)
            if len(parts) == 2:
                x, y = _number(parts[0]), _number(parts[1])
            else:
                problems[i] = f"coordinates {combined!r} are not two numbers"
                continue
        if x is None and y is None:
            continue
        if x is None or y is None:
            problems[i] = "only one of the two coordinates is given"
            continue
        if math.isnan(x) or math.isnan(y) or math.isinf(x) or math.isinf(y):
            problems[i] = f"coordinates ({fields.get('x') or combined}, {fields.get('y') or ''}) are not numbers"
            continue
        if x == 0 and y == 0:
            continue  # (0, 0) is how many systems write "no coordinates"
        try:
            systems[i] = crs_module.normalise_crs(fields.get("crs") or default_crs)
        except InvalidInput as error:
            problems[i] = str(error)
            continue
        xs[i], ys[i] = x, y
    lons = np.full(len(rows), np.nan)
    lats = np.full(len(rows), np.nan)
    for system in {s for s in systems if s}:
        index = np.array([i for i, s in enumerate(systems) if s == system])
        lon, lat = crs_module.to_storage(xs[index], ys[index], system, check=False)
        lons[index], lats[index] = lon, lat
    ok = crs_module.storage_coordinates_ok(lons, lats)

    for i, (row_no, fields, extra) in enumerate(rows):
        raw = {**{k: v for k, v in fields.items() if v not in (None, "")}, **extra}

        def reject(reason: str) -> None:
            out.rejected.append((row_no, reason, raw))

        description = (fields.get("description") or "").strip()
        if not description:
            reject("no complaint text (description)")
            continue
        reported_at = times[i]
        if reported_at is None:
            given = (fields.get("reported_at") or "").strip()
            reject(f"reported time {given!r} cannot be read" if given else "no reported time")
            continue
        problem = time_problem(reported_at, "受理时间（reported_at）", now)
        if problem:
            reject(problem)
            continue
        label = (fields.get("category") or "").strip()
        category = catalogue.lookup(label)
        notes = {}
        if category is None:
            category = catalogue.infer(description)
            if category is None:
                reject(f"unknown category {label!r} and none recognisable in the text" if label
                       else "no category and none recognisable in the text")
                continue
            notes["category_inferred_from_text"] = True
            if label:
                notes["category_given"] = label
        if problems[i]:
            reject(problems[i])
            continue
        has_point = systems[i] is not None
        if has_point and not ok[i]:
            reject(f"coordinates ({xs[i]}, {ys[i]}) in {systems[i]} do not give a point on the earth")
            continue

        address = (fields.get("address") or "").strip() or None
        # Hotline content often carries the address ("…三里社区3号楼2单元厨房漏水"): use it when the address is empty.
        match = gazetteer.match(address or (description if not has_point else None))
        external_id = (fields.get("external_id") or "").strip() or None
        if external_id is None:
            external_id = derived_key([reported_at.isoformat(), category, normalise_text(description),
                                       normalise_text(address), fields.get("x"), fields.get("y"),
                                       fields.get("coordinates"), (fields.get("reporter_phone") or "").strip()])
        staged["row_no"].append(row_no)
        staged["source"].append(source)
        staged["external_id"].append(external_id)
        staged["category_code"].append(category)
        staged["description"].append(description)
        staged["address"].append(address)
        staged["reported_at"].append(reported_at.isoformat())
        staged["local_day"].append(reported_at.astimezone(LOCAL_ZONE).date().isoformat())
        staged["lon"].append(float(lons[i]) if has_point else None)
        staged["lat"].append(float(lats[i]) if has_point else None)
        staged["original_x"].append(float(xs[i]) if has_point else None)
        staged["original_y"].append(float(ys[i]) if has_point else None)
        staged["original_crs"].append(systems[i])
        staged["match_level"].append("coordinates" if has_point else match.level)
        staged["match_score"].append(1.0 if has_point else match.score)
        staged["addr_level"].append(match.level if (address or not has_point) else None)
        staged["addr_street"].append(match.street_code)
        staged["addr_community"].append(match.community_code)
        staged["addr_compound"].append(match.compound_code)
        staged["building_code"].append(None)
        staged["reporter_name"].append((fields.get("reporter_name") or "").strip() or None)
        staged["reporter_phone"].append((fields.get("reporter_phone") or "").strip() or None)
        staged["review_reason"].append(None if has_point else match.review_reason)
        staged["batch_id"].append(batch_id)
        extras = {**extra, **notes}
        if match.notes and not has_point:
            extras["geocoding_notes"] = match.notes
        if match.candidates and not has_point and not match.auto:
            extras["geocoding_candidates"] = match.candidates  # ranked, for the person who places it
        staged["extra"].append(json.dumps(extras, ensure_ascii=False) if extras else None)
        staged["_building_number"].append(match.building_number)
        if not has_point and match.compound_code is not None:
            out.address_rows.append(len(staged["row_no"]) - 1)
    return out
