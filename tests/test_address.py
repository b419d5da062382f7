"""Chinese address parsing: divisions by suffix, N号楼 / N单元 / room, Chinese numerals, normalisation."""

from __future__ import annotations

import pytest

from gis.intake.address import chinese_number, normalise, parse_address


@pytest.mark.parametrize("text, number", [("3", 3), ("十", 10), ("十二", 12), ("二十三", 23), ("一百零五", 105),
                                          ("两", 2), ("楼", None)])
def test_chinese_numbers(text, number):
    assert chinese_number(text) == number


def test_headline_example():
    parsed = parse_address("泰山区财源街道三里社区3号楼2单元厨房漏水")
    assert parsed.divisions == {"district": "泰山区", "street": "财源街道", "community": "三里社区"}
    assert (parsed.building_number, parsed.unit_number) == (3, 2)


def test_full_form_with_chinese_numerals_and_room():
    parsed = parse_address("山东省泰安市泰山区财源街道办事处三里社区居委会十二号楼三单元302室")
    assert parsed.divisions["province"] == "山东省" and parsed.divisions["city"] == "泰安市"
    assert parsed.divisions["street"] == "财源街道办事处"
    assert (parsed.building_number, parsed.unit_number, parsed.room) == (12, 3, "302")


@pytest.mark.parametrize("text, building", [("泰山花园５栋１单元", 5), ("幸福小区7幢", 7), ("8#楼", 8), ("A区9座", 9),
                                            ("东岳大街123号", None), ("3楼楼道灯不亮", None)])
def test_building_forms(text, building):
    # A bare 'N号' is a house number on a road and 'N楼' a floor: neither is a building.
    assert parse_address(text).building_number == building


def test_normalise_removes_spaces_punctuation_and_full_width():
    assert normalise(" 泰山区，财源街道（三里社区）ＡＢ１２ ") == "泰山区财源街道三里社区ab12"
    assert normalise(None) == ""
