"""Chinese address parsing (地址解析): normalisation, division tokens by their suffixes, and the house parts
`N号楼` (building), `N单元` (unit) and the room, with Chinese numerals read as numbers.

Only structure is read here; which street, community or compound a name means is the gazetteer's job.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

CHINESE_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
                  "九": 9}
CHINESE_UNITS = {"十": 10, "百": 100, "千": 1000}
NUMBER = r"(\d{1,4}|[零〇一二两三四五六七八九十百千]{1,6})"

# A building is N号楼, N栋, N幢, N座, N#楼 or N#; a bare N号 is a house number on a road, not a building.
BUILDING_PATTERN = re.compile(NUMBER + r"(?:号楼|号栋|号幢|栋|幢|座|#楼|#|号院楼)")
UNIT_PATTERN = re.compile(NUMBER + r"(?:单元|门洞)")
ROOM_PATTERN = re.compile(r"(?:单元|门洞)-?(\d{2,5})(?:室|号|户)?|(\d{3,5})(?:室|户)")
FLOOR_PATTERN = re.compile(NUMBER + r"(?:楼层|层)")

DIVISION_SUFFIXES = (
    ("province", r"[^省市区县]{2,7}?(?:省|自治区)"),
    ("city", r"[^省市区县]{2,7}?市"),
    ("district", r"[^省市区县街镇乡]{1,7}?(?:区|县)"),
    ("street", r"[^区县街镇乡社村]{1,7}?(?:街道办事处|街道办|街道|镇|乡)"),
    ("community", r"[^街道镇乡社村]{1,8}?(?:社区居委会|社区居民委员会|社区|居委会|村委会|村)"),
)
_NOISE = re.compile(r"[\s,，。、;；:：()（）\[\]【】\"'“”‘’<>《》!！?？]+")


def chinese_number(text: str) -> int | None:
    """Read '12', '十二', '二十三', '一百零五' or '三' as an int; None when it is not a number."""
    if text.isdigit():
        return int(text)
    total, current = 0, 0
    for char in text:
        if char in CHINESE_DIGITS:
            current = CHINESE_DIGITS[char]
        elif char in CHINESE_UNITS:
            total += (current or 1) * CHINESE_UNITS[char]
            current = 0
        else:
            return None
    return total + current


PHASE_PATTERN = re.compile(r"第?([零〇一二两三四五六七八九十]{1,3})期")
"""A compound's phase written in Chinese numerals: 二期, 第三期."""


def canonical_phases(text: str) -> str:
    """Phases as numbers (二期 and 第二期 → 2期), the form compound names are compared in."""
    return PHASE_PATTERN.sub(lambda m: f"{chinese_number(m.group(1))}期", text)


def normalise(text: str | None) -> str:
    """NFKC (full-width digits and letters to half-width), no spaces or punctuation, lower-case Latin."""
    if not text:
        return ""
    # NFKC once more at the end: removing noise can bring a combining mark next to a letter it composes with,
    # and lower() can change composition, so only the last normalisation makes the result a fixed point.
    stripped = _NOISE.sub("", unicodedata.normalize("NFKC", str(text))).lower()
    return unicodedata.normalize("NFKC", stripped)


@dataclass(frozen=True)
class ParsedAddress:
    """The structural parts of one address; `divisions` maps a level to the token found for it."""

    text: str
    divisions: dict[str, str]
    building_number: int | None
    unit_number: int | None
    room: str | None
    floor: int | None

    @property
    def has_house_parts(self) -> bool:
        return self.building_number is not None or self.unit_number is not None


def _first_number(pattern: re.Pattern, text: str) -> int | None:
    match = pattern.search(text)
    return chinese_number(match.group(1)) if match else None


def parse_address(text: str | None) -> ParsedAddress:
    """Parse an address (or a complaint text that contains one) into divisions and house parts."""
    norm = normalise(text)
    divisions: dict[str, str] = {}
    rest = norm
    for level, pattern in DIVISION_SUFFIXES:
        match = re.search(pattern, rest)
        if match:
            divisions[level] = match.group(0)
            rest = rest[match.end():]
    room_match = ROOM_PATTERN.search(norm)
    room = (room_match.group(1) or room_match.group(2)) if room_match else None
    return ParsedAddress(
        text=norm,
        divisions=divisions,
        building_number=_first_number(BUILDING_PATTERN, norm),
        unit_number=_first_number(UNIT_PATTERN, norm),
        room=room,
        floor=_first_number(FLOOR_PATTERN, norm),
    )
