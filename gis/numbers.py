"""Numbers read from text, strictly: one rule for every path that turns user text into a number.

Python's float() accepts far more than a person means by a number: '1_0' (ten), Arabic-Indic or full-width
digits ('١٠', '１０'), 'nan', 'inf', 'infinity', surrounding whitespace of any Unicode kind. Here a number is
ASCII only: an optional sign, digits with an optional decimal point, an optional exponent; finite, and within
the bounds the caller gives. Anything else is an `InvalidInput` naming the field (数值).
"""

from __future__ import annotations

import math
import re

from gis.errors import InvalidInput

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
MAX_NUMBER_CHARS = 64
"""Longer text is never a coordinate or a count a person typed."""


def is_number_text(text: str) -> bool:
    """Whether `text` (already stripped) is written as a plain ASCII decimal number."""
    return len(text) <= MAX_NUMBER_CHARS and _DECIMAL.fullmatch(text) is not None


def parse_float(text, name: str, *, low: float | None = None, high: float | None = None) -> float:
    """A finite decimal number written in ASCII, within [low, high] when given; InvalidInput otherwise."""
    value = text.strip() if isinstance(text, str) else text
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidInput(f"{name} 必须是数字")
    if isinstance(value, str):
        if not is_number_text(value):
            raise InvalidInput(f"{name} 必须是用阿拉伯数字书写的十进制数，而不是 {value[:40]!r}")
        number = float(value)
    else:
        number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(f"{name} 必须是有限的数字")
    if (low is not None and number < low) or (high is not None and number > high):
        raise InvalidInput(f"{name} {_bounds(low, high)}，而不是 {_show(number)}")
    return number


def parse_int(text, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """A whole number written in ASCII digits, within [low, high] when given; InvalidInput otherwise."""
    value = text.strip() if isinstance(text, str) else text
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInput(f"{name} 必须是整数")
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_CHARS or _INTEGER.fullmatch(value) is None:
            raise InvalidInput(f"{name} 必须是用阿拉伯数字书写的整数，而不是 {value[:40]!r}")
        value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise InvalidInput(f"{name} {_bounds(low, high)}，而不是 {value}")
    return value


def optional_float(text, name: str, *, low: float | None = None, high: float | None = None) -> float | None:
    """parse_float, with None or blank text meaning no value."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    return parse_float(text, name, low=low, high=high)


def _bounds(low, high) -> str:
    if low is not None and high is not None:
        return f"必须在 {_show(low)} 到 {_show(high)} 之间"
    return f"不能小于 {_show(low)}" if low is not None else f"不能大于 {_show(high)}"


def _show(number) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)
