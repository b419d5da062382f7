"""Registry import and export (gis/registry): the credit code's check character, the row-by-row account, and
round trips on the test city and on a registry made by hand (tests/data/registry/)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from test_tickets_support import build_city, square

from gis.access.auth import Principal
from gis.db.engine import sync_engine
from gis.errors import Forbidden, InvalidInput
from gis.registry import export, load
from gis.registry.kinds import KINDS
from gis.registry.values import credit_code_check_character, parse_credit_code

ADMIN = Principal(role="admin", username="registry-test")
DATA = Path(__file__).parent / "data" / "registry"

COMPANY_CODES = {"物业公司1": "91370900MA00000107", "物业公司2": "91370900MA00000208"}
"""The tiny city's two companies get valid credit codes (its own are placeholders without a check character)."""
BUILDINGS = ("370902001001001001001", "370902001001001001002")
"""Two buildings in compound 1 (micro-grid 370902001001001001), added to the tiny city for the building leaders."""

FILES = (
    ("property_company", "property_company_gbk.csv", None),
    ("compound_attributes", "compound_attributes.csv", None),
    ("owners_committee", "owners_committee.csv", None),
    ("grid_worker", "grid_worker_own_headers.csv",
     {"联系电话": "手机号", "所在网格": "网格编码", "党员": "是否党员", "兼职": "是否兼职",
      "所属物业企业": "所属物业企业信用代码"}),
    ("party_organisation", "party_organisation.csv", None),
    ("building_leader", "building_leader.csv", None),
    ("cross_appointment", "cross_appointment.csv", None),
)
"""The hand-made registry in the order a city imports it (companies before what refers to them)."""

EXPECTED = {
    "property_company": [
        (2, "imported", None), (3, "imported", None),
        (4, "rejected", "与第 2 行的统一社会信用代码重复"),
        (5, "rejected", "校验位错误：应为 W，而不是 X"),
        (6, "unchanged", None), (7, "updated", None),
        (8, "rejected", "“有党组织”为是时"),
        (9, "rejected", "列“统一社会信用代码”为空"),
    ],
    "compound_attributes": [
        (2, "updated", None), (3, "updated", None), (4, "unchanged", None),
        (5, "rejected", "小区 370902001001C0009 不存在或不在您的管辖范围内"),
        (6, "rejected", "与第 2 行的小区编码重复"),
        (7, "rejected", "列“管理方式”：应为专业物业、社区领办、代管、自管、无物业之一，而不是“物业托管”；列“建成年份”"),
    ],
    "owners_committee": [
        (2, "imported", None), (3, "imported", None), (4, "imported", None),
        (5, "rejected", "与本文件第 4 行的任期（2020-01-01 至 2025-01-01）重叠"),
        (6, "rejected", "党员委员人数 6 多于委员人数 5"),
        (7, "rejected", "与第 2 行的小区编码、任期开始日期重复"),
        (8, "imported", None),
    ],
    "grid_worker": [
        (2, "imported", None), (3, "updated", None), (4, "imported", None),
        (5, "rejected", "所属物业企业 913709000000000003 未登记"),
        (6, "rejected", "兼职网格员必须填写所属物业企业"),
        (7, "rejected", "列“手机号”：手机号应为 11 位数字"),
        (8, "rejected", "与第 2 行的手机号重复"),
    ],
    "party_organisation": [
        (2, "imported", None), (3, "imported", None), (4, "imported", None), (5, "imported", None),
        (6, "unchanged", None),
        (7, "rejected", "列“组织类型”：应为社区党委、网格党支部、小区党支部、楼院党小组、企业党支部之一"),
        (8, "rejected", "小区 370902001001C0009 不存在或不在您的管辖范围内"),
    ],
    "building_leader": [
        (2, "updated", None), (3, "unchanged", None),
        (4, "rejected", "楼栋 370902001001001001009 不存在或不在您的管辖范围内"),
        (5, "rejected", "与第 3 行的楼栋编码重复"),
    ],
    "cross_appointment": [
        (2, "imported", None), (3, "imported", None), (4, "imported", None),
        (5, "rejected", "本职单位与兼任单位相同"),
        (6, "rejected", "物业企业 913709000000000003 未登记"),
    ],
}
"""Every row of every file with what must become of it, decided by reading the files."""

SNAPSHOT_TABLES = ("property_company", "compound", "owners_committee", "owners_committee_term", "grid_worker",
                   "grid_worker_assignment", "party_organisation", "party_organisation_period", "building",
                   "cross_appointment", "compound_management_version", "compound_fee", "audit_change")


def build_hand_city(url: str) -> dict:
    """The tiny hand-made city of the ticket tests, with valid company credit codes and two buildings."""
    made = build_city(url)
    with psycopg.connect(url) as conn:
        for name, code in COMPANY_CODES.items():
            conn.execute("UPDATE property_company SET credit_code = %s WHERE name = %s", (code, name))
        for number, building in enumerate(BUILDINGS, start=1):
            conn.execute(
                "INSERT INTO building (code, name, micro_grid_code, compound_code, number, floors, units, "
                "households, geom) VALUES (%s, %s, %s, '370902001001C0001', %s, 6, 2, 24, %s)",
                (building, f"{number}号楼", building[:18], number, square(117.101 + 0.002 * number, 36.201, 0.001)))
    return made


def import_registry(engine, principal: Principal = ADMIN) -> dict[str, load.RegistryReport]:
    """Import every hand-made file, each in its own transaction."""
    reports = {}
    for kind, name, mapping in FILES:
        with engine.begin() as conn:
            reports[kind] = load.import_file(conn, principal, kind, DATA / name, mapping=mapping)
    return reports


def snapshot(engine) -> dict[str, list]:
    """Every row of the registry's tables (and the change log), to see that nothing changed."""
    with engine.connect() as conn:
        return {table: sorted(map(repr, conn.execute(text(f"SELECT * FROM {table}")).all()))
                for table in SNAPSHOT_TABLES}


@pytest.fixture
def hand_city(empty_db):
    build_hand_city(empty_db)
    engine = sync_engine(empty_db)
    yield engine
    engine.dispose()


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


# --- the hand-made registry ----------------------------------------------------------------------------------

def _accounts(report: load.RegistryReport) -> list[tuple[int, str, str | None]]:
    return [(row.row, row.state, row.reason) for row in report.rows]


def test_the_hand_made_registry_imports_with_every_row_accounted_for(hand_city):
    reports = import_registry(hand_city)
    for kind, _, _ in FILES:
        report = reports[kind]
        got = _accounts(report)
        expected = EXPECTED[kind]
        assert [(row, state) for row, state, _ in got] == [(row, state) for row, state, _ in expected], kind
        for (row, state, reason), (_, _, wanted) in zip(got, expected):
            if wanted:
                assert reason and wanted in reason, (kind, row, reason)
            else:
                assert reason is None, (kind, row, reason)
        assert report.rows_read == report.imported + report.updated + report.unchanged + report.rejected
        assert report.rows_read == len(expected)
    updated = {row.row: row.changed for row in reports["property_company"].rows if row.state == "updated"}
    assert updated == {7: ["企业名称", "联系人"]}
    with hand_city.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM registry_import")).scalar_one()
        logged = conn.execute(text("SELECT count(*) FROM audit_change WHERE subject = 'property_company'")).scalar_one()
        company = conn.execute(text("SELECT name, contact_name FROM property_company "
                                    "WHERE credit_code = '91370900MA00000208'")).one()
    assert stored == len(FILES)
    assert logged == 3  # two new companies and one updated
    assert tuple(company) == ("物业公司二号", "孙经理")


def test_importing_the_registry_twice_changes_nothing(hand_city):
    first = import_registry(hand_city)
    before = snapshot(hand_city)
    second = import_registry(hand_city)
    assert snapshot(hand_city) == before
    for kind, report in second.items():
        again = [(row, "rejected" if state == "rejected" else "unchanged") for row, state, _ in
                 _accounts(first[kind])]
        assert [(row.row, row.state) for row in report.rows] == again, kind


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_then_import_changes_nothing(hand_city, tmp_path, fmt):
    import_registry(hand_city)
    before = snapshot(hand_city)
    for kind, _, _ in FILES:
        with hand_city.begin() as conn:
            body, count = export.export_file(conn, ADMIN, kind, fmt)
        path = tmp_path / f"{kind}.{fmt}"
        path.write_bytes(body)
        with hand_city.begin() as conn:
            report = load.import_file(conn, ADMIN, kind, path)
        assert report.rows_read == count > 0, kind
        assert report.unchanged == count, (kind, [r for r in report.rows if r.state != "unchanged"][:3])
    assert snapshot(hand_city) == before


def test_a_street_cannot_import_another_streets_compound(hand_city, tmp_path):
    street2 = Principal(role="street", username="street2", scope=("370902002",))
    with hand_city.begin() as conn:
        report = load.import_file(conn, street2, "compound_attributes", DATA / "compound_attributes.csv")
    states = {row.row: (row.state, row.reason) for row in report.rows}
    assert states[2] == ("rejected", "小区 370902001001C0001 不存在或不在您的管辖范围内")
    assert states[3][0] == "rejected"
    assert states[4] == ("unchanged", None)  # its own compound
    with hand_city.begin() as conn:
        body, count = export.export_file(conn, street2, "compound_attributes", "csv")
    assert count == 1 and "370902001001C0001" not in body.decode("utf-8-sig")


def test_who_may_import_what(hand_city):
    street1 = Principal(role="street", username="street1", scope=("370902001",))
    planner = Principal(role="planner", username="planner")
    with hand_city.begin() as conn:
        with pytest.raises(Forbidden):
            load.import_file(conn, street1, "property_company", DATA / "property_company_gbk.csv")
        with pytest.raises(Forbidden):
            export.export_file(conn, planner, "grid_worker", "csv")


def test_a_file_with_a_column_the_template_lacks_is_refused_whole(hand_city, tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text("楼栋编码,楼长姓名,楼长电话,楼长是否党员,备注\n370902001001001001001,许楼长,,否,新任\n",
                    encoding="utf-8")
    with hand_city.begin() as conn, pytest.raises(InvalidInput, match="模板中没有列“备注”"):
        load.import_file(conn, ADMIN, "building_leader", path)
    path.write_text("楼栋编码,楼长姓名\n370902001001001001001,许楼长,多出的一格\n", encoding="utf-8")
    with hand_city.begin() as conn:
        report = load.import_file(conn, ADMIN, "building_leader", path)
    assert [(r.state, r.reason) for r in report.rows] == [("rejected", "列“(第 3 列)”有内容，但模板中没有这一列")]


# --- the demo city comes through the same import -------------------------------------------------------------

def test_the_generated_city_came_through_the_registry_import(city_db):
    """The generator writes every registry kind as its template file and imports it: the stored values are the
    generator's own, every row was accepted, and the change log names the import (the parties and the evaluation's
    inputs are checked in tests/test_registry_demo_path.py)."""
    from conftest import SMALL_SEED

    from fixtures.city import generate_city

    city = generate_city("small", SMALL_SEED)
    companies, compounds = city.tables["property_company"], city.tables["compound"]
    engine = sync_engine(city_db)
    try:
        with engine.connect() as conn:
            batches = conn.execute(text("SELECT kind, rows_read, imported, updated, rejected, username "
                                        "FROM registry_import ORDER BY id")).all()
            stored_companies = conn.execute(text(
                "SELECT id, credit_code, name, is_community_led, has_party_org, party_work_only, contact_name, "
                "contact_phone, founded_year FROM property_company ORDER BY id")).all()
            stored_compounds = {row.code: row for row in conn.execute(text(
                "SELECT code, build_year, is_old_estate, floor_area_m2, households, property_fee_yuan_m2, "
                "management_mode, property_company_id FROM compound WHERE valid_to IS NULL"))}
    finally:
        engine.dispose()
    assert [tuple(b) for b in batches[:2]] == [
        ("property_company", len(companies), len(companies), 0, 0, "fixtures"),
        ("compound_attributes", len(compounds), 0, len(compounds), 0, "fixtures")]
    assert [tuple(row) for row in stored_companies] == [
        (i + 1, r.credit_code, r.name, r.is_community_led, r.has_party_org, r.party_work_only, r.contact_name,
         r.contact_phone, r.founded_year) for i, r in enumerate(companies.itertuples())]
    assert len(stored_compounds) == len(compounds)
    for row in compounds.itertuples():
        got = stored_compounds[row.code]
        fee = None if row.property_fee_yuan_m2 is None or row.property_fee_yuan_m2 != row.property_fee_yuan_m2 \
            else round(row.property_fee_yuan_m2, 2)
        company = None if row.property_company_id != row.property_company_id or row.property_company_id is None \
            else int(row.property_company_id)
        assert (got.build_year, got.is_old_estate, got.floor_area_m2, got.households, got.management_mode,
                got.property_company_id) == (row.build_year, row.is_old_estate, row.floor_area_m2, row.households,
                                             row.management_mode, company), row.code
        assert (None if got.property_fee_yuan_m2 is None else float(got.property_fee_yuan_m2)) == fee, row.code


def test_committees_ending_on_the_test_city_match_an_independent_count(city_db):
    """Every committee whose current term ends within 90 days of the day or has ended, per community."""
    import datetime

    from gis.registry.history import expiring_committees

    day = datetime.date(2026, 6, 1)
    engine = sync_engine(city_db)
    try:
        with engine.connect() as conn:
            listed = expiring_committees(conn, ADMIN, day=day)
            terms = conn.execute(text("SELECT compound_code, term_end FROM owners_committee")).all()
            street = conn.execute(text("SELECT code FROM street ORDER BY code LIMIT 1")).scalar_one()
            own = expiring_committees(conn, Principal(role="street", username="s", scope=(street,)), day=day)
    finally:
        engine.dispose()
    expected = {code for code, end in terms if end is not None and end <= day + datetime.timedelta(days=90)}
    assert {row["compound_code"] for row in listed} == expected
    assert sum(row["ended"] for row in listed) == sum(1 for _, end in terms if end is not None and end <= day)
    assert 0 < len(own) < len(listed)
    assert all(row["community_code"].startswith(street) for row in own)
    print(f"\ntest city on {day}: {len(terms)} committees, {len(expected)} ending within 90 days or ended, "
          f"{sum(row['ended'] for row in listed)} ended")
