"""Times written by users: the one rule of which times may be stored (a plausible window).

A time before `InputSettings.earliest_time` (2000-01-01, Beijing time, by default) or later than now plus
`future_tolerance_hours` is refused at every entry (Open311 POST, imports) with a reason naming the field: asyncpg
stores `datetime.min` as `-infinity`, and such values broke reads for everyone.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from gis.errors import InvalidInput
from gis.settings import input_settings

BEIJING = timezone(timedelta(hours=8))


def window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """(earliest, latest) time accepted now."""
    settings = input_settings()
    now = now or datetime.now(timezone.utc)
    earliest = settings.earliest_time
    if earliest.tzinfo is None:
        earliest = earliest.replace(tzinfo=BEIJING)
    return earliest, now + timedelta(hours=settings.future_tolerance_hours)


def shown(moment: datetime) -> str:
    """A time as people read it: Beijing time, to the second (as given when it cannot be converted)."""
    try:
        return moment.astimezone(BEIJING).isoformat(sep=" ", timespec="seconds")[:19] + "（北京时间）"
    except (OverflowError, ValueError):
        return moment.isoformat()


def time_problem(moment: datetime, field: str, now: datetime | None = None) -> str | None:
    """Why `moment` cannot be stored as `field` (a Chinese reason naming the field), or None when it can.
    A naive time is Beijing time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    earliest, latest = window(now)
    if moment < earliest:
        return f"{field} {shown(moment)} 早于 {shown(earliest)}，不是可信的时间"
    if moment > latest:
        hours = input_settings().future_tolerance_hours
        return f"{field} {shown(moment)} 晚于当前时间 {hours:g} 小时以上，不是可信的时间"
    return None


def check_time(moment: datetime, field: str, now: datetime | None = None) -> datetime:
    """`moment` when it lies in the plausible window; InvalidInput naming the field otherwise."""
    problem = time_problem(moment, field, now)
    if problem:
        raise InvalidInput(problem)
    return moment


def is_infinite(value) -> bool:
    """Whether a value read from PostgreSQL stands for ±infinity (asyncpg reads them as naive datetime.min/max
    or date.min/max)."""
    if isinstance(value, datetime):
        return value.tzinfo is None and value in (datetime.min, datetime.max)
    return isinstance(value, date) and value in (date.min, date.max)


def iso_text(value, zone=BEIJING, *, z: bool = False) -> str | None:
    """A stored time (or date) as ISO 8601 text in `zone` for answers; None for no time and for ±infinity, which
    mean "unbounded" (the open end of an interval). A time that cannot be moved into `zone` (9999-12-31 late in
    UTC) is given in its own zone; with `z`, UTC is written as Z."""
    if value is None or is_infinite(value):
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.min, tzinfo=zone)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        value = value.astimezone(zone)
    except (OverflowError, ValueError):
        pass
    text = value.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if z else text
