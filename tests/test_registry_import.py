"""Registry import and export (gis/registry): the credit code's check character, the row-by-row account, and
round trips on the test city and on a registry made by hand (tests/data/registry/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gis.access.auth import Principal
from gis.db.engine import sync_engine
from gis.errors import InvalidInput
from gis.registry import export, load
from gis.registry.kinds import KINDS
from gis.registry.values import credit_code_check_character, parse_credit_code

ADMIN = Principal(role="admin", username="registry-test")
DATA = Path(__file__).parent / "data" / "registry"


@pytest.fixture
def engine(fresh_city_db):
    engine = sync_engine(fresh_city_db)
    yield engine
    engine.dispose()


def test_every_kind_exported_imports_unchanged_on_the_test_city(engine, tmp_path):
    for name in KINDS:
        with engine.begin() as conn:
            body, count = export.export_file(conn, ADMIN, name, "csv")
        assert count > 0, name
        path = tmp_path / f"{name}.csv"
        path.write_bytes(body)
        with engine.begin() as conn:
            report = load.import_file(conn, ADMIN, name, path)
        assert report.rows_read == count, name
        assert report.unchanged == count, (name, [r for r in report.rows if r.state != "unchanged"][:3])


# --- the unified social credit code (GB 32100-2015) ---------------------------------------------------------

@pytest.mark.parametrize("code", [
    # The standard's example. Values (0-9, A=10 ... Y=30 without I O S V Z): 9 1 3 5 0 1 0 0 M=21 0 0 0 1 0 0 Y=30 4;
    # weights 3^i mod 31: 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28; products 9+3+27+135+26+420+8+900+112
    # = 1640 = 52*31 + 28, so the check is 31 - 28 = 3.
    "91350100M000100Y43",
    # 9*1 + 1*3 + 1*9 + 1*27 + 1*20 = 68 = 2*31 + 6: check 31 - 6 = 25, the character R.
    "91110000100000000R",
    # 1*1 + A=10 * 3 = 31: remainder 0, so 31 - 0 = 31 is written as 0.
    "1A0000000000000000",
])
def test_credit_codes_computed_by_hand_are_valid(code):
    assert credit_code_check_character(code[:17]) == code[17]
    assert parse_credit_code(code.lower()) == code


@pytest.mark.parametrize("code, reason", [
    ("91350100M000100Y44", "校验位错误：应为 3"),
    ("91350100M000100Y4", "应为 18 位"),
    ("91350100M000100I43", "不允许的字符“I”"),
])
def test_wrong_credit_codes_are_refused_with_the_reason(code, reason):
    with pytest.raises(InvalidInput, match=reason):
        parse_credit_code(code)
