"""Periods of time as governance uses them: years, half-years (the red/black list), quarters, months, or ranges."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gis.errors import InvalidInput

LOCAL_TIME = ZoneInfo("Asia/Shanghai")
"""Periods are calendar periods of local (China Standard) time."""

_FORMS = "YYYY、YYYYH1/YYYYH2、YYYYQ1..Q4、YYYY-MM 或 YYYY-MM-DD..YYYY-MM-DD"
FIRST_YEAR = 1900
LAST_YEAR = 3000
"""Periods lie within [FIRST_YEAR, LAST_YEAR): their neighbours and baselines stay within Python's dates."""


@dataclass(frozen=True)
class Period:
    """A half-open span of local calendar days [start, end) with the label it was asked by."""

    label: str
    start: date
    end: date
    kind: str  # year | half | quarter | month | range

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(), LOCAL_TIME)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end, time(), LOCAL_TIME)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month

    def previous(self) -> Period:
        """The period of the same kind just before this one (the default baseline); it may reach before
        FIRST_YEAR, as a baseline is only read."""
        if self.kind == "year":
            return _unbounded(str(self.start.year - 1))
        if self.kind == "half":
            year, half = self.start.year, 1 if self.start.month == 1 else 2
            return _unbounded(f"{year - 1}H2" if half == 1 else f"{year}H1")
        if self.kind == "quarter":
            year, quarter = self.start.year, (self.start.month - 1) // 3 + 1
            return _unbounded(f"{year - 1}Q4" if quarter == 1 else f"{year}Q{quarter - 1}")
        if self.kind == "month":
            before = self.start - timedelta(days=1)
            return _unbounded(f"{before.year}-{before.month:02d}")
        start = self.start - timedelta(days=self.days)
        return _unbounded(f"{start.isoformat()}..{(self.start - timedelta(days=1)).isoformat()}")


def _month_start(year: int, month: int) -> date:
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def parse_period(text: str) -> Period:
    """Parse a period label; anything else is an `InvalidInput` naming the accepted forms."""
    label = (text or "").strip().upper()
    period = _parse_label(text, label)
    if not (FIRST_YEAR <= period.start.year and period.end.year <= LAST_YEAR):
        raise InvalidInput(f"期间 {text!r} 超出 {FIRST_YEAR} 年至 {LAST_YEAR - 1} 年的范围")
    return period


def _unbounded(text: str) -> Period:
    return _parse_label(text, text.strip().upper())


def _parse_label(text: str, label: str) -> Period:
    try:
        if m := re.fullmatch(r"(\d{4})", label, re.ASCII):
            year = int(m[1])
            return Period(label, date(year, 1, 1), date(year + 1, 1, 1), "year")
        if m := re.fullmatch(r"(\d{4})H([12])", label, re.ASCII):
            year, half = int(m[1]), int(m[2])
            return Period(label, _month_start(year, 6 * half - 5), _month_start(year, 6 * half + 1), "half")
        if m := re.fullmatch(r"(\d{4})Q([1-4])", label, re.ASCII):
            year, quarter = int(m[1]), int(m[2])
            return Period(label, _month_start(year, 3 * quarter - 2), _month_start(year, 3 * quarter + 1), "quarter")
        if m := re.fullmatch(r"(\d{4})-(\d{2})", label, re.ASCII):
            year, month = int(m[1]), int(m[2])
            if not 1 <= month <= 12:
                raise ValueError
            return Period(label, date(year, month, 1), _month_start(year, month + 1), "month")
        if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", label, re.ASCII):
            first, last = date.fromisoformat(m[1]), date.fromisoformat(m[2])
            if last < first:
                raise InvalidInput(f"期间 {text!r} 的结束早于开始")
            return Period(label, first, last + timedelta(days=1), "range")
    except (ValueError, OverflowError):
        pass
    raise InvalidInput(f"无法识别期间 {text!r}（period not understood）；请使用 {_FORMS}")


def half_year(text: str) -> Period:
    """A half-year period (the unit of the red/black list)."""
    period = parse_period(text)
    if period.kind != "half":
        raise InvalidInput(f"评价按半年进行：请写作 YYYYH1 或 YYYYH2，{text!r} 不是")
    return period
