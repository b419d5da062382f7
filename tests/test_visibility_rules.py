"""The privacy policy's rules (可见范围) one by one, each SQL rendering evaluated in PostGIS on a tiny city.

The HTTP tests (`test_privacy_precision.py`, `test_privacy_matrix.py`) hold every path to the policy; these hold
each rule of `gis.access.visibility` to the policy written out here (README privacy table, the module's
docstring), fast enough to run against each of the module's mutants: the policy per role, the public's 0.0005°
lattice in SQL and in Python, the filters that test the snapped place (box, circle, area), the address composed at
the allowed level from the current version of each unit, the masking of numbers, units and rooms, the contacts
of the caller's own chain, the attributes each role reads, and who may fetch a stored object by id.
"""

from __future__ import annotations

import math

import psycopg
import pytest
from conftest import _clone
from sqlalchemy import create_engine, text
from test_tickets_support import COMMUNITIES, COMPOUNDS, GRIDS, STREETS, build_city

from gis.access.auth import Principal
from gis.access.visibility import (
    address_sql,
    building_sql,
    complaint_column_sql,
    complaint_columns,
    contacts_sql,
    mask_numbers,
    masked_sql,
    owned_sql,
    place_in_area_sql,
    place_in_box_sql,
    place_near_sql,
    place_sql,
    snap_point,
    text_sql,
    text_value,
    visibility,
)
from gis.db.engine import with_driver

STEP = 0.0005
"""The public's lattice (README privacy table), written here, never imported."""
STAFF_ROLES = ("admin", "street", "community", "grid_worker", "property_company")
POLICY = {
    # role: (place lattice, address, description, reporter, staff in histories, photos, handling, contacts)
    "admin": (None, "full", "full", True, True, True, True, "all"),
    "street": (None, "full", "full", True, True, True, True, "chain"),
    "community": (None, "full", "full", True, True, True, True, "chain"),
    "grid_worker": (None, "full", "full", True, True, True, True, "chain"),
    "property_company": (None, "full", "full", True, True, True, True, "chain"),
    "planner": (None, "building", "masked", False, False, False, True, "none"),
    "public": (STEP, "compound", "none", False, False, False, False, "none"),
}
# an off-lattice point of the tiny city's first grid: 0.00017° east and 0.00031° north of a lattice node
NODE = (117.1040, 36.2045)
POINT = (round(NODE[0] + 0.00017, 7), round(NODE[1] + 0.00031, 7))
SNAPPED = (NODE[0], NODE[1] + STEP)
BUILDING = GRIDS[0] + "001" + "007"
CREDIT_CODE = "91370900MA000001XX"


def view(role: str):
    return visibility(Principal(role=role))


@pytest.fixture(scope="module")
def db(pg_cluster, empty_template):
    """The tiny city with a renamed street (a retired and a current version), a building 3号楼 and one complaint
    with every code; a SQLAlchemy connection (the policy's parameters are named) and the complaint's id."""
    url = _clone(pg_cluster, empty_template)
    build_city(url)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE street SET valid_to = DATE '2020-01-01' WHERE code = %s", [STREETS[0]])
        conn.execute("INSERT INTO street (code, name, district_code, valid_from, geom) SELECT code, '新街道', "
                     "district_code, DATE '2020-01-01', geom FROM street WHERE code = %s", [STREETS[0]])
        compound = next(c for c, g in COMPOUNDS.items() if g == GRIDS[0])
        conn.execute("INSERT INTO building (code, name, micro_grid_code, compound_code, number, floors, units, "
                     "households, geom) SELECT %s, '3号楼', code, compound_code, 3, 6, 2, 24, "
                     "ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(%s, %s), 4326), 0.0001)) FROM micro_grid "
                     "WHERE code = %s", [BUILDING, *POINT, GRIDS[0] + "001"])
        complaint = conn.execute(
            "INSERT INTO complaint (category_code, description, address, reported_at, geom, match_level, placement, "
            "street_code, community_code, grid_code, micro_grid_code, compound_code, building_code, "
            "reporter_name, reporter_phone, source) VALUES ('E0601', '请联系13812345678', "
            "'泰山区某小区3号楼2单元301室', now(), ST_SetSRID(ST_MakePoint(%s, %s), 4326), 'coordinates', 'inside', "
            "%s, %s, %s, %s, %s, %s, '王女士', '13812345678', 'app') RETURNING id",
            [*POINT, STREETS[0], COMMUNITIES[0], GRIDS[0], GRIDS[0] + "001", compound, BUILDING]).fetchone()[0]
        bare = conn.execute(
            "INSERT INTO complaint (category_code, description, reported_at, match_level, placement, source) "
            "VALUES ('E0601', '', now(), 'none', 'review', 'app') RETURNING id").fetchone()[0]
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.connect() as conn:
        yield {"conn": conn, "complaint": complaint, "bare": bare}
    engine.dispose()


def scalar(db, sql: str, **params):
    return db["conn"].execute(text(sql), params).scalar_one()


def of_complaint(db, expression: str, complaint: str = "complaint", **params):
    return scalar(db, f"SELECT {expression} FROM complaint c WHERE c.id = :id", id=db[complaint], **params)


# -- the policy per role --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(POLICY))
def test_each_role_gets_the_documented_policy(role):
    v = view(role)
    assert (v.place_grid_deg, v.address, v.description, v.reporter, v.history_people, v.photos, v.handling,
            v.contacts) == POLICY[role]
    assert v.role == role
    assert v.exact_place is (POLICY[role][0] is None)


def test_an_unknown_role_gets_the_publics_policy():
    assert view("visitor") == view("public")
    assert not view("visitor").exact_place


# -- places -----------------------------------------------------------------------------------------------------------


def test_the_public_place_is_the_point_snapped_to_the_lattice_and_staff_see_the_point(db):
    for role in POLICY:
        x = of_complaint(db, f"ST_X({place_sql(view(role))})")
        y = of_complaint(db, f"ST_Y({place_sql(view(role))})")
        expected = SNAPPED if role == "public" else POINT
        assert (x, y) == pytest.approx(expected, abs=1e-9), role
    assert place_sql(view("admin"), "t.geom") == "t.geom"


def test_snap_point_in_python_is_the_same_lattice():
    assert snap_point(view("public"), *POINT) == pytest.approx(SNAPPED, abs=1e-9)
    assert snap_point(view("public"), *POINT) == (round(SNAPPED[0], 7), round(SNAPPED[1], 7))
    for role in STAFF_ROLES + ("planner",):
        assert snap_point(view(role), *POINT) == POINT
    assert snap_point(view("public"), None, POINT[1]) == (None, POINT[1])
    assert snap_point(view("public"), POINT[0], None) == (POINT[0], None)
    # under half a step past a lattice line goes back to it, over half a step on to the next
    assert snap_point(view("public"), 117.10024, 36.20026) == (117.1, 36.2005)


def _envelope(lon: float, lat: float, half: float) -> str:
    return f"ST_MakeEnvelope({lon - half}, {lat - half}, {lon + half}, {lat + half}, 4326)"


def test_a_box_finds_the_public_place_by_its_snapped_point_only(db):
    around_snapped, around_point = _envelope(*SNAPPED, 0.00002), _envelope(*POINT, 0.00002)
    public = view("public")
    assert of_complaint(db, place_in_box_sql(public, "c.geom", around_snapped)) is True
    assert of_complaint(db, place_in_box_sql(public, "c.geom", around_point)) is False
    for role in ("admin", "planner"):
        assert of_complaint(db, place_in_box_sql(view(role), "c.geom", around_point)) is True
        assert of_complaint(db, place_in_box_sql(view(role), "c.geom", around_snapped)) is False


def test_a_circle_finds_the_public_place_by_its_snapped_point_only(db):
    public = view("public")
    near = {"snapped": SNAPPED, "point": POINT}
    for name, (lon, lat) in near.items():
        for role, found in (("public", name == "snapped"), ("admin", name == "point"), ("planner", name == "point")):
            test = place_near_sql(view(role), "c.geom", ":lon", ":lat", ":metres")
            assert of_complaint(db, test, lon=lon, lat=lat, metres=5.0) is found, (name, role)
    assert public.place_grid_deg == STEP


def test_a_circle_reaches_its_whole_radius_east_and_north(db):
    """Near the circle's edge the box that prefilters the search must not cut anything off: a place 1% inside
    a 1 km circle due east (where a degree is shortest) or due north is found, one 1% outside is not."""
    for role in ("admin", "public"):
        place = place_sql(view(role))
        for bearing in (90.0, 0.0):
            for metres, found in ((990.0, True), (1010.0, False)):
                # the circle's centre `metres` from the place, the place lying due east or north of it
                centre = scalar(db, f"SELECT ST_AsText(CAST(ST_Project(CAST({place} AS geography), :m, "
                                "radians(:b)) AS geometry)) FROM complaint c WHERE c.id = :id",
                                m=metres, b=bearing + 180.0, id=db["complaint"])
                lon, lat = (float(v) for v in centre.removeprefix("POINT(").removesuffix(")").split())
                test = place_near_sql(view(role), "c.geom", ":lon", ":lat", ":metres")
                assert of_complaint(db, test, lon=lon, lat=lat, metres=1000.0) is found, (role, bearing, metres)


def test_the_public_circle_searches_a_lattice_step_wider_than_the_radius(db):
    """A stored point just outside the circle's box whose snapped point lies inside the circle is found: the box
    is widened by the lattice step, so the snapped point decides."""
    public = view("public")
    # centre due west of the snapped point, 20 m more than the radius from the stored point's longitude
    metres = 200.0
    lon = SNAPPED[0] - (metres - 5.0) / (111_320.0 * math.cos(math.radians(SNAPPED[1])))
    distance_to_point = scalar(db, "SELECT ST_Distance(CAST(ST_SetSRID(ST_MakePoint(:a, :b), 4326) AS geography), "
                               "CAST(c.geom AS geography)) FROM complaint c WHERE c.id = :id",
                               a=lon, b=SNAPPED[1], id=db["complaint"])
    assert distance_to_point > metres
    test = place_near_sql(public, "c.geom", ":lon", ":lat", ":metres")
    assert of_complaint(db, test, lon=lon, lat=SNAPPED[1], metres=metres) is True
    assert of_complaint(db, place_near_sql(view("admin"), "c.geom", ":lon", ":lat", ":metres"),
                        lon=lon, lat=SNAPPED[1], metres=metres) is False


def test_an_area_finds_the_public_place_by_its_snapped_point_only(db):
    around_snapped = f"ST_Buffer({_envelope(*SNAPPED, 0.00001)}, 0)"
    around_point = f"ST_Buffer({_envelope(*POINT, 0.00001)}, 0)"
    assert of_complaint(db, place_in_area_sql(view("public"), "c.geom", around_snapped)) is True
    assert of_complaint(db, place_in_area_sql(view("public"), "c.geom", around_point)) is False
    assert of_complaint(db, place_in_area_sql(view("planner"), "c.geom", around_point)) is True
    assert of_complaint(db, place_in_area_sql(view("planner"), "c.geom", around_snapped)) is False


# -- addresses ------------------------------------------------------------------------------------------------------


def test_the_address_at_each_level_from_the_current_versions(db):
    # street 1 was renamed in 2020: its current version (新街道) names it, never the retired one (街道1)
    assert of_complaint(db, address_sql(view("admin"))) == "泰山区某小区3号楼2单元301室"
    assert of_complaint(db, address_sql(view("street"), "c")) == "泰山区某小区3号楼2单元301室"
    assert of_complaint(db, address_sql(view("planner"))) == "新街道社区1小区13号楼"
    assert of_complaint(db, address_sql(view("public"))) == "新街道社区1小区1"
    assert scalar(db, f"SELECT {address_sql(view('public'), 'k')} FROM complaint k WHERE k.id = :id",
                  id=db["complaint"]) == "新街道社区1小区1"


def test_an_address_with_no_units_is_null_not_empty(db):
    for role in ("planner", "public"):
        assert of_complaint(db, address_sql(view(role)), complaint="bare") is None


def test_a_retired_unit_is_named_by_its_latest_version(db):
    conn = db["conn"]
    with conn.begin_nested():
        conn.execute(text("UPDATE street SET valid_to = DATE '2024-01-01' WHERE code = :s AND valid_to IS NULL"),
                     {"s": STREETS[0]})
        assert of_complaint(db, address_sql(view("public"))) == "新街道社区1小区1"
        conn.rollback()


def test_the_building_code_for_those_who_see_buildings(db):
    assert of_complaint(db, building_sql(view("admin"))) == BUILDING
    assert of_complaint(db, building_sql(view("planner"), "c")) == BUILDING
    assert of_complaint(db, building_sql(view("public"))) is None
    assert scalar(db, f"SELECT {building_sql(view('planner'), 'k')} FROM complaint k WHERE k.id = :id",
                  id=db["complaint"]) == BUILDING


# -- free text --------------------------------------------------------------------------------------------------------

MASKED = {
    "请联系13812345678": "请联系138****5678",
    "+8613812345678": "+86138****5678",
    "8613812345678": "86138****5678",
    "电话138 1234 5678": "电话138****5678",
    "电话138-1234-5678": "电话138****5678",
    "+86 138 1234 5678": "+86 138****5678",
    "1381234 5678": "138****5678",
    "身份证370902199001011234": "身份证370902********1234",
    "身份证37090219900101123X": "身份证370902********123X",
    "旧证370902900101123": "旧证370902******123",
    "座机0538-1234567": "座机0538-****4567",
    "座机0538 12345678": "座机0538-****5678",
    "住3号楼2单元301室": "住3号楼*单元***室",
    "三单元502户": "*单元***户",
    "1203房间": "***房间",
    "订单号2026010112345678901": "订单号2026010112345678901",
    "3号楼": "3号楼",
    "无号码": "无号码",
}


@pytest.mark.parametrize("value", list(MASKED))
def test_numbers_units_and_rooms_are_masked_in_python_and_in_postgresql(db, value):
    assert mask_numbers(value) == MASKED[value]
    assert scalar(db, f"SELECT {masked_sql('CAST(:v AS text)')}", v=value) == MASKED[value]


def test_nothing_to_mask_is_returned_as_it_is():
    assert mask_numbers("") == ""
    assert mask_numbers(None) is None


def test_the_text_each_role_reads(db):
    original = "请联系13812345678"
    for role in STAFF_ROLES:
        assert of_complaint(db, text_sql(view(role), "c.description")) == original
        assert text_value(view(role), original) == original
    assert of_complaint(db, text_sql(view("planner"), "c.description")) == "请联系138****5678"
    assert text_value(view("planner"), original) == "请联系138****5678"
    assert of_complaint(db, text_sql(view("public"), "c.description")) is None
    assert text_value(view("public"), original) is None


# -- contacts: the caller's own chain ---------------------------------------------------------------------------------


def may_see_contacts(db, principal: Principal, unit: str | None, place: str | None = None) -> bool:
    expression, params = contacts_sql(visibility(principal), principal, "CAST(:unit AS text)",
                                      None if place is None else "CAST(:place AS text)")
    return scalar(db, f"SELECT {expression}", unit=unit, place=place, **params)


def test_contacts_are_seen_along_the_callers_own_chain(db):
    street = Principal(role="street", user_id=1, scope=(STREETS[0],))
    assert may_see_contacts(db, street, STREETS[0]) is True
    assert may_see_contacts(db, street, "370902") is True  # the district above
    assert may_see_contacts(db, street, COMMUNITIES[0]) is True  # the units below
    assert may_see_contacts(db, street, BUILDING) is True
    assert may_see_contacts(db, street, STREETS[1]) is False
    assert may_see_contacts(db, street, COMMUNITIES[1]) is False
    assert may_see_contacts(db, street, GRIDS[2]) is False


def test_the_people_of_a_place_are_seen_by_those_whose_chain_holds_it(db):
    worker = Principal(role="grid_worker", user_id=2, scope=(GRIDS[0],))
    compound = next(c for c, g in COMPOUNDS.items() if g == GRIDS[0])
    # the compound is coded under the community, not the grid
    assert may_see_contacts(db, worker, compound) is False
    assert may_see_contacts(db, worker, compound, GRIDS[0] + "001") is True
    assert may_see_contacts(db, worker, compound, GRIDS[2] + "001") is False
    assert may_see_contacts(db, worker, GRIDS[0], GRIDS[2] + "001") is True


def test_a_property_company_sees_its_own_branch_and_its_compounds(db):
    company_id = scalar(db, "SELECT id FROM property_company WHERE credit_code = :c", c=CREDIT_CODE)
    other = scalar(db, "SELECT credit_code FROM property_company WHERE credit_code <> :c", c=CREDIT_CODE)
    compound = next(c for c, g in COMPOUNDS.items() if g == GRIDS[0])
    company = Principal(role="property_company", user_id=3, scope=(compound,), company_id=company_id)
    assert may_see_contacts(db, company, CREDIT_CODE) is True
    assert may_see_contacts(db, company, other) is False
    assert may_see_contacts(db, company, compound) is True
    unscoped = Principal(role="property_company", user_id=3, scope=(), company_id=company_id)
    assert may_see_contacts(db, unscoped, CREDIT_CODE) is True
    assert may_see_contacts(db, unscoped, compound) is False
    # the company branch is the property company's alone: a street office with a company id sees no more
    street = Principal(role="street", user_id=1, scope=(STREETS[1],), company_id=company_id)
    assert may_see_contacts(db, street, CREDIT_CODE) is False


def test_contacts_for_all_or_none(db):
    assert may_see_contacts(db, Principal(role="admin", user_id=1), STREETS[1]) is True
    assert contacts_sql(view("admin"), Principal(role="admin"), "u.code") == ("TRUE", {})
    for role in ("planner", "public"):
        principal = Principal(role=role, user_id=4, scope=(STREETS[0],))
        assert contacts_sql(visibility(principal), principal, "u.code") == ("FALSE", {})
    unscoped = Principal(role="community", user_id=5)
    assert contacts_sql(visibility(unscoped), unscoped, "u.code") == ("FALSE", {})


# -- complaint attributes ------------------------------------------------------------------------------------------

PUBLIC_COLUMNS = ("category_code", "source", "reported_at", "street_code", "community_code", "grid_code",
                  "compound_code")
DETAIL_COLUMNS = ("micro_grid_code", "building_code", "address", "description", "match_level", "placement")
REPORTER_COLUMNS = ("reporter_name", "reporter_phone")


def test_the_attributes_each_role_reads():
    assert complaint_columns(view("public")) == PUBLIC_COLUMNS
    assert complaint_columns(view("planner")) == PUBLIC_COLUMNS + DETAIL_COLUMNS
    for role in STAFF_ROLES:
        assert complaint_columns(view(role)) == PUBLIC_COLUMNS + DETAIL_COLUMNS + REPORTER_COLUMNS


def test_each_attribute_as_the_role_reads_it(db):
    planner = view("planner")
    assert of_complaint(db, complaint_column_sql(planner, "address")) == "新街道社区1小区13号楼"
    assert of_complaint(db, complaint_column_sql(planner, "description")) == "请联系138****5678"
    assert of_complaint(db, complaint_column_sql(planner, "building_code")) == BUILDING
    assert of_complaint(db, complaint_column_sql(planner, "grid_code")) == GRIDS[0]
    assert scalar(db, f"SELECT {complaint_column_sql(planner, 'grid_code', 'k')} FROM complaint k WHERE k.id = :id",
                  id=db["complaint"]) == GRIDS[0]
    assert scalar(db, f"SELECT {complaint_column_sql(planner, 'address', 'k')} FROM complaint k WHERE k.id = :id",
                  id=db["complaint"]) == "新街道社区1小区13号楼"
    admin = view("admin")
    assert of_complaint(db, complaint_column_sql(admin, "reporter_phone")) == "13812345678"
    assert of_complaint(db, complaint_column_sql(admin, "address")) == "泰山区某小区3号楼2单元301室"
    assert of_complaint(db, complaint_column_sql(admin, "description")) == "请联系13812345678"


@pytest.mark.parametrize("role,name", [("public", "address"), ("public", "description"), ("public", "building_code"),
                                       ("planner", "reporter_phone"), ("admin", "geom")])
def test_an_attribute_beyond_the_policy_is_refused(role, name):
    with pytest.raises(ValueError) as refused:
        complaint_column_sql(view(role), name)
    assert str(refused.value) == f"{name} is not a complaint attribute the {role} role may see"


# -- stored objects with an owner -------------------------------------------------------------------------------------


def may_fetch(db, principal: Principal, owner: int | None, owner_scope: list[str] | None) -> bool:
    """Whether the object is fetched: the expression is a WHERE condition (NULL counts as no)."""
    expression, params = owned_sql(principal, "b")
    return scalar(db, f"SELECT count(*) FROM (SELECT CAST(:owner AS bigint) AS owner_user_id, "
                  f"CAST(:scope AS text[]) AS owner_scope) b WHERE {expression}",
                  owner=owner, scope=owner_scope, **params) == 1


def test_who_may_fetch_a_stored_object(db):
    street = Principal(role="street", user_id=10, scope=(STREETS[0],))
    community = Principal(role="community", user_id=11, scope=(COMMUNITIES[0],))
    assert may_fetch(db, Principal(role="admin", user_id=1), None, None) is True
    assert may_fetch(db, street, 10, None) is True  # its own
    assert may_fetch(db, street, 11, [STREETS[0]]) is True  # the owner's scope inside the caller's
    assert may_fetch(db, community, 10, [STREETS[0]]) is False  # the owner's scope wider than the caller's
    assert may_fetch(db, street, 11, [STREETS[1]]) is False
    assert may_fetch(db, street, 11, [STREETS[0], STREETS[1]]) is False
    assert may_fetch(db, street, None, None) is False  # made from the command line: the administrator's
    assert may_fetch(db, street, 11, []) is False  # an empty scope is inside every scope, and grants nothing
    assert owned_sql(Principal(role="street", scope=(STREETS[0],)), "b") == ("FALSE", {})
    assert owned_sql(Principal(role="admin"), "b") == ("TRUE", {})


def test_each_rendering_uses_the_alias_of_the_query_it_goes_into(db):
    """Queries name the complaint as they like (`k` here): each rule renders over that name, never a default."""
    planner, public = view("planner"), view("public")

    def of_k(expression: str, **params):
        return scalar(db, f"SELECT {expression} FROM complaint k WHERE k.id = :id", id=db["complaint"], **params)

    assert of_k(f"ST_AsText({place_sql(public, 'k.geom')})") == "POINT(117.104 36.205)"
    assert of_k(place_in_box_sql(public, "k.geom", _envelope(*SNAPPED, 0.00002))) is True
    assert of_k(place_near_sql(public, "k.geom", ":lon", ":lat", ":metres"), lon=SNAPPED[0], lat=SNAPPED[1],
                metres=5.0) is True
    assert of_k(place_in_area_sql(public, "k.geom", f"ST_Buffer({_envelope(*SNAPPED, 0.00001)}, 0)")) is True
    assert of_k(building_sql(planner, "k")) == BUILDING
    assert of_k(complaint_column_sql(planner, "building_code", "k")) == BUILDING
    assert of_k(complaint_column_sql(planner, "description", "k")) == "请联系138****5678"
    assert of_k(text_sql(planner, "k.description")) == "请联系138****5678"
