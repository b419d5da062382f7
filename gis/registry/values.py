"""How a registry cell is read and written back: text, 是/否, dates, numbers, codes, the credit code.

Every parser takes the cell's text (stripped, never blank: blank cells are handled by the column) and returns
the value, or raises InvalidInput with a Chinese reason a person can act on. Every shower writes a value back
as the parser reads it, so an exported file imports unchanged.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from gis.errors import InvalidInput
from gis.numbers import is_number_text, parse_float, parse_int

CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters of a unified social credit code (GB 32100-2015; no I, O, S, V, Z)."""

CREDIT_CODE_WEIGHTS = tuple(pow(3, position, 31) for position in range(17))
"""The weight of each of the first 17 characters: 3 to the power of its position, modulo 31."""

YES = ("是", "Y", "YES", "TRUE", "1")
NO = ("否", "N", "NO", "FALSE", "0")


def credit_code_check_character(body: str) -> str:
    """The 18th character of a unified social credit code whose first 17 characters are `body` (GB 32100-2015:
    31 minus the weighted sum modulo 31, with 31 written as 0)."""
    total = sum(CREDIT_CODE_CHARSET.index(char) * weight for char, weight in zip(body, CREDIT_CODE_WEIGHTS))
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def parse_credit_code(text: str) -> str:
    """A unified social credit code 统一社会信用代码: 18 characters of the standard's set, the last one its check."""
    code = text.strip().upper()
    if len(code) != 18:
        raise InvalidInput(f"统一社会信用代码应为 18 位，而“{text[:40]}”为 {len(code)} 位")
    wrong = [char for char in code if char not in CREDIT_CODE_CHARSET]
    if wrong:
        raise InvalidInput(f"统一社会信用代码“{code}”含有不允许的字符“{wrong[0]}”（不使用 I、O、S、V、Z）")
    expected = credit_code_check_character(code[:17])
    if code[17] != expected:
        raise InvalidInput(f"统一社会信用代码“{code}”的校验位错误：应为 {expected}，而不是 {code[17]}")
    return code


def parse_text(text: str) -> str:
    """Free text, with inner runs of white space kept and the ends stripped."""
    return text.strip()


def parse_bool(text: str) -> bool:
    """是/否 (also Y/N, 1/0, true/false)."""
    value = text.strip().upper()
    if value in YES:
        return True
    if value in NO:
        return False
    raise InvalidInput(f"应填“是”或“否”，而不是“{text[:40]}”")


_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")


def parse_date(text: str) -> date:
    """A date as 2026-07-01, 2026/7/1, 2026.7.1 or 2026年7月1日 (a spreadsheet time of midnight is accepted)."""
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[ T]00:00(:00)?", value):
        value = value[:10]
    match = _DATE.fullmatch(value)
    if match is None:
        raise InvalidInput(f"日期应写作 2026-07-01，而不是“{text[:40]}”")
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise InvalidInput(f"“{text[:40]}”不是有效的日期") from None
    if not date(1900, 1, 1) <= day <= date(2100, 12, 31):
        raise InvalidInput(f"日期“{text[:40]}”不在 1900 年到 2100 年之间")
    return day


def whole_number(low: int | None = None, high: int | None = None):
    """A parser of whole numbers within [low, high]."""
    def parse(text: str) -> int:
        return parse_int(text, "数值", low=low, high=high)
    return parse


def real_number(low: float | None = None, high: float | None = None):
    """A parser of decimal numbers within [low, high]."""
    def parse(text: str) -> float:
        return parse_float(text, "数值", low=low, high=high)
    return parse


def money(text: str) -> Decimal:
    """An amount of money or a fee standard in yuan: a plain decimal number, at most two decimals, not negative."""
    value = text.strip().replace(",", "")
    if not is_number_text(value) or "e" in value.lower():
        raise InvalidInput(f"金额应为阿拉伯数字书写的十进制数，而不是“{text[:40]}”")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise InvalidInput(f"金额“{text[:40]}”无法读取") from None
    if amount < 0:
        raise InvalidInput(f"金额不能为负数：{text[:40]}")
    if amount != amount.quantize(Decimal("0.01")):
        raise InvalidInput(f"金额最多保留两位小数：{text[:40]}")
    if amount >= Decimal("1e12"):
        raise InvalidInput(f"金额过大：{text[:40]}")
    return amount


def mobile_phone(text: str) -> str:
    """A mainland mobile number: 11 digits starting with 1 (spaces and dashes dropped)."""
    value = re.sub(r"[\s-]", "", text)
    if not re.fullmatch(r"1[3-9]\d{9}", value):
        raise InvalidInput(f"手机号应为 11 位数字、以 1 开头，而不是“{text[:40]}”")
    return value


def code(text: str) -> str:
    """A unit code (community, grid, compound, building, organisation): letters, digits and dashes."""
    value = text.strip()
    if not re.fullmatch(r"[0-9A-Za-z-]{1,40}", value):
        raise InvalidInput(f"编码只能由字母、数字和“-”组成（最多 40 位），而不是“{text[:40]}”")
    return value


def choice(labels: dict[str, str]):
    """A parser of one of `labels` (Chinese label → stored value; the stored value itself is accepted too)."""
    def parse(text: str) -> str:
        value = text.strip()
        if value in labels:
            return labels[value]
        if value in labels.values():
            return value
        raise InvalidInput(f"应为{'、'.join(labels)}之一，而不是“{text[:40]}”")
    parse.labels = labels
    return parse


def show(value, labels: dict[str, str] | None = None) -> str:
    """A value written back as its parser reads it (blank for None)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if labels:
        for label, stored in labels.items():
            if stored == value:
                return label
    return str(value)
