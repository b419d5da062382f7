"""A hand-made one-street city with known answers, for tests that must not depend on the generated city."""

from __future__ import annotations

import psycopg

from gis.db.engine import libpq_url

DISTRICT = "370902"
STREET = DISTRICT + "001"
COMMUNITY = STREET + "001"
GRID = COMMUNITY + "001"
MICRO_A = GRID + "001"
MICRO_B = GRID + "002"
COMPOUND = COMMUNITY + "C0001"
BUILDING = MICRO_A + "001"
CREDIT_CODE = "91370900MA3C000001"

# A point inside building 1 of compound 1 (micro-grid A), and one in micro-grid B (no compound).
IN_BUILDING = (117.1015, 36.2015)
IN_MICRO_B = (117.1075, 36.2025)
OUTSIDE = (117.2, 36.3)


def _box(minx: float, miny: float, maxx: float, maxy: float) -> str:
    return (
        f"SRID=4326;MULTIPOLYGON((({minx} {miny},{maxx} {miny},{maxx} {maxy},{minx} {maxy},{minx} {miny})))"
    )


def load_minicity(url: str) -> None:
    """Street 0.01° square split into one community, one grid and two micro-grids, with every party."""
    whole = _box(117.10, 36.20, 117.11, 36.21)
    with psycopg.connect(libpq_url(url), autocommit=False) as conn:
        run = conn.execute
        run("INSERT INTO district (code, name, geom) VALUES (%s, '泰山区', %s)", (DISTRICT, whole))
        run("INSERT INTO street (code, name, district_code, geom) VALUES (%s, '财源街道', %s, %s)",
            (STREET, DISTRICT, whole))
        run("INSERT INTO community (code, name, street_code, office_phone, geom) VALUES (%s, '三里社区', %s,"
            " '0538-6200001', %s)", (COMMUNITY, STREET, whole))
        run("INSERT INTO grid (code, name, community_code, households, geom) VALUES (%s, '三里社区第一网格', %s,"
            " 420, %s)", (GRID, COMMUNITY, whole))
        run("INSERT INTO micro_grid (code, name, grid_code, compound_code, households, geom) VALUES"
            " (%s, '东苑微网格', %s, %s, 300, %s), (%s, '西苑微网格', %s, NULL, 120, %s)",
            (MICRO_A, GRID, COMPOUND, _box(117.10, 36.20, 117.105, 36.21),
             MICRO_B, GRID, _box(117.105, 36.20, 117.11, 36.21)))
        company_id = run(
            "INSERT INTO property_company (credit_code, name, has_party_org, contact_name, contact_phone)"
            " VALUES (%s, '泰山红帆物业服务有限公司', true, '物业经理甲', '13900000001') RETURNING id",
            (CREDIT_CODE,)).fetchone()[0]
        run("INSERT INTO company_evaluation (company_id, period, residents_score, regulator_score, street_score,"
            " total_score, standing) VALUES (%s, '2023H2', 60, 60, 60, 60, 'black'),"
            " (%s, '2024H1', 95, 92, 90, 93.1, 'red')", (company_id, company_id))
        run("INSERT INTO compound (code, name, community_code, grid_code, aliases, address, build_year,"
            " is_old_estate, floor_area_m2, households, management_mode, property_company_id, geom) VALUES"
            " (%s, '东苑小区', %s, %s, '{东苑}', '泰山区财源街道东苑路1号', 1995, true, 30000, 300,"
            " 'community_led', %s, %s)",
            (COMPOUND, COMMUNITY, GRID, company_id, _box(117.10, 36.20, 117.105, 36.21)))
        run("INSERT INTO building (code, name, micro_grid_code, compound_code, number, floors, units, households,"
            " leader_name, leader_phone, leader_is_party_member, geom) VALUES (%s, '1号楼', %s, %s, 1, 6, 3,"
            " 36, '楼栋长甲', '13900000002', true, %s)",
            (BUILDING, MICRO_A, COMPOUND, _box(117.101, 36.201, 117.102, 36.202)))
        run("INSERT INTO owners_committee (compound_code, formed_on, member_count, party_member_count, chair_name,"
            " chair_is_party_member) VALUES (%s, '2021-05-01', 7, 5, '业委会主任甲', true)", (COMPOUND,))
        run("INSERT INTO grid_worker (name, phone, grid_code, is_party_member) VALUES"
            " ('网格员甲', '13900000003', %s, true)", (GRID,))
        run("INSERT INTO party_organisation (code, kind, name, unit_code, secretary_name, secretary_phone,"
            " member_count) VALUES"
            " ('P-COM', 'community_committee', '三里社区党委', %s, '书记甲', '13900000004', 120),"
            " ('P-GRID', 'grid_branch', '三里社区第一网格党支部', %s, '书记乙', '13900000005', 15),"
            " ('P-CPD', 'compound_branch', '东苑小区党支部', %s, '书记丙', '13900000006', 9),"
            " ('P-CO', 'company_branch', '红帆物业党支部', %s, '书记丁', '13900000007', 5)",
            (COMMUNITY, GRID, COMPOUND, CREDIT_CODE))
        conn.commit()
