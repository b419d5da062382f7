"""Strict parameter types for query and path parameters: what the OpenAPI document says is all that is taken.

pydantic's lax parsing would read a date from `0.5` (a Unix time) and a boolean from `0`, `1`, `yes` or `on`;
these types take a date as `YYYY-MM-DD`, a date-time as RFC 3339 / ISO 8601 text, and a boolean as `true` or
`false` only, and say so in Chinese otherwise (422 with the reason)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated

from pydantic import BeforeValidator

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})?)?$")


def _boolean(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    raise ValueError("布尔参数只接受 true 或 false")


def _date(value):
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.match(value):
        return value
    raise ValueError("日期须写作 YYYY-MM-DD")


def _datetime(value):
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATETIME.match(value):
        return value
    raise ValueError("时间须写作 ISO 8601 / RFC 3339，例如 2026-03-01T08:00:00+08:00")


QueryBool = Annotated[bool, BeforeValidator(_boolean)]
"""A boolean query parameter: `true` or `false`."""
QueryDate = Annotated[date, BeforeValidator(_date)]
"""A date parameter: `YYYY-MM-DD`."""
QueryDateTime = Annotated[datetime, BeforeValidator(_datetime)]
"""A date-time parameter: ISO 8601 text with at least the date."""


BEIJING = timezone(timedelta(hours=8))


def period_bounds(period_from: date | None, period_to: date | None) -> tuple[datetime, datetime]:
    """A `from`/`to` (exclusive) query period as Beijing-time instants; by default the year up to today."""
    end = period_to or datetime.now(BEIJING).date() + timedelta(days=1)
    start = period_from or end - timedelta(days=365)
    return datetime.combine(start, time(), BEIJING), datetime.combine(end, time(), BEIJING)
