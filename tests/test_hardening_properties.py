"""Property-based tests (hypothesis): coordinate conversion, address parsing and the ticket state machine.

Short by default; GRIDGOV_FUZZ=full (set by `make soak`) runs many more examples.
"""

from __future__ import annotations

import asyncio
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gis.errors import GridgovError, InvalidInput
from gis.intake.address import chinese_number, normalise, parse_address
from gis.layers.crs import from_storage, to_storage

FULL = os.environ.get("GRIDGOV_FUZZ") == "full"
settings.register_profile("gridgov-short", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("gridgov-full", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("gridgov-full" if FULL else "gridgov-short")

# --- coordinate conversion ----------------------------------------------------------------------------------

china_lon = st.floats(min_value=73.7, max_value=134.7)
china_lat = st.floats(min_value=18.2, max_value=53.5)
gk_117_lon = st.floats(min_value=115.0, max_value=119.0)  # within the CGCS2000 GK zone of CM 117°E


def degrees_apart_in_metres(lon_a, lat_a, lon_b, lat_b) -> float:
    return math.hypot((lon_a - lon_b) * 111_320 * math.cos(math.radians(lat_a)), (lat_a - lat_b) * 110_540)


@given(lon=china_lon, lat=china_lat, crs=st.sampled_from(["GCJ-02", "BD-09", "EPSG:4490"]))
def test_chinese_offsets_round_trip_to_a_millimetre(lon, lat, crs):
    x, y = from_storage(lon, lat, crs)
    back_lon, back_lat = to_storage(x, y, crs)
    assert degrees_apart_in_metres(lon, lat, back_lon, back_lat) < 0.001


@given(lon=china_lon, lat=china_lat)
def test_the_gcj_offset_is_bounded(lon, lat):
    x, y = from_storage(lon, lat, "GCJ-02")
    assert degrees_apart_in_metres(lon, lat, x, y) < 1_000


@given(lon=gk_117_lon, lat=china_lat, crs=st.sampled_from(["EPSG:4548", "EPSG:4527"]))
def test_gauss_kruger_round_trips(lon, lat, crs):
    x, y = from_storage(lon, lat, crs)
    back_lon, back_lat = to_storage(x, y, crs)
    assert degrees_apart_in_metres(lon, lat, back_lon, back_lat) < 0.01


@given(x=st.floats(allow_nan=True, allow_infinity=True), y=st.floats(allow_nan=True, allow_infinity=True),
       crs=st.sampled_from(["EPSG:4326", "GCJ-02", "BD-09", "EPSG:4548", "EPSG:4527", "EPSG:3857"]))
def test_any_input_gives_a_point_on_earth_or_a_clear_error(x, y, crs):
    try:
        lon, lat = to_storage(x, y, crs)
    except InvalidInput:
        return
    assert math.isfinite(lon) and math.isfinite(lat)
    assert -180 <= lon <= 180 and -90 <= lat <= 90


@given(xs=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=30))
def test_unchecked_arrays_keep_their_length_and_flag_bad_points(xs):
    from gis.layers.crs import storage_coordinates_ok

    values = np.array(xs)
    lon, lat = to_storage(values, values / 3.0, "GCJ-02", check=False)
    assert lon.shape == values.shape == lat.shape
    ok = storage_coordinates_ok(lon, lat)
    assert not ok[~np.isfinite(values)].any()


# --- address parsing ----------------------------------------------------------------------------------------

DIGITS = "零一二三四五六七八九"


def in_chinese(number: int) -> str:
    """1..9999 written the way addresses write them (十二, 二十三, 一百零五)."""
    parts, zero_pending = [], False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = number // value % 10
        if digit == 0:
            zero_pending = bool(parts)
            continue
        if zero_pending:
            parts.append("零")
            zero_pending = False
        parts.append(("" if (unit == "十" and digit == 1 and not parts) else DIGITS[digit]) + unit)
    return "".join(parts)


compound_names = st.text(alphabet="东西南北阳光花园幸福嘉和泰山岱宗明珠", min_size=2, max_size=6).map(
    lambda s: s + "小区")


@given(number=st.integers(1, 9999))
def test_chinese_numbers_read_back(number):
    assert chinese_number(in_chinese(number)) == number
    assert chinese_number(str(number)) == number


@given(name=compound_names, building=st.integers(1, 999), unit=st.integers(1, 9), room=st.integers(101, 3999),
       chinese=st.booleans(), spaced=st.booleans())
def test_house_parts_are_found(name, building, unit, room, chinese, spaced):
    building_text = in_chinese(building) if chinese else str(building)
    gap = " " if spaced else ""
    text = f"泰安市泰山区{gap}{name}{gap}{building_text}号楼{gap}{unit}单元{room}室"
    parsed = parse_address(text)
    assert parsed.building_number == building
    assert parsed.unit_number == unit
    assert parsed.room == str(room)


@given(text=st.text(max_size=300))
def test_any_text_parses_without_error(text):
    parsed = parse_address(text)
    assert parsed.text == normalise(text)
    for number in (parsed.building_number, parsed.unit_number, parsed.floor):
        assert number is None or number >= 0


@given(text=st.text(max_size=200))
def test_normalising_twice_changes_nothing(text):
    once = normalise(text)
    assert normalise(once) == once


@given(text=st.text(alphabet="０１２３４５６７８９号楼单元室ＡＢ　", max_size=40))
def test_full_width_and_half_width_addresses_parse_alike(text):
    import unicodedata

    assert parse_address(text) == parse_address(unicodedata.normalize("NFKC", text))


# --- the ticket state machine, against the real database ----------------------------------------------------


@pytest.fixture(scope="module")
def ticket_world(city_db):
    """An event loop and engine shared by the machine's runs, and the small city's reported tickets."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from gis.db.engine import with_driver

    loop = asyncio.new_event_loop()
    engine = create_async_engine(with_driver(city_db, "asyncpg"), poolclass=NullPool)

    async def tickets():
        # New complaints (copies of the city's own, reported now) give tickets fresh from intake.
        async with engine.begin() as conn:
            ids = (await conn.execute(text(
                "INSERT INTO complaint (category_code, description, reported_at, geom, match_level, placement, "
                "street_code, community_code, grid_code, micro_grid_code, compound_code, source) "
                "SELECT category_code, description, now(), geom, match_level, placement, street_code, "
                "community_code, grid_code, micro_grid_code, compound_code, 'app' FROM complaint "
                "WHERE grid_code IS NOT NULL ORDER BY id LIMIT 300 RETURNING id"))).scalars().all()
            rows = await conn.execute(text(
                "SELECT id, community_code, grid_code FROM ticket WHERE complaint_id = ANY(:ids) "
                "AND state NOT IN ('merged') ORDER BY id"), {"ids": list(ids)})
            return [dict(row._mapping) for row in rows]

    world = {"loop": loop, "engine": engine, "tickets": loop.run_until_complete(tickets())}
    yield world
    loop.run_until_complete(engine.dispose())
    loop.close()


def test_the_ticket_state_machine(ticket_world):
    """Random sequences of actions by random roles on one ticket: the database state always equals the model
    (the closed loop as defined, written out in the workflow tests and never read from the code's own table),
    the version counts successful actions only, and each success leaves one event."""
    from sqlalchemy import text
    from test_tickets_workflow import CLOSED_LOOP

    from gis.access.auth import Principal

    assert ticket_world["tickets"], "the city gave no fresh tickets to act on"
    loop, engine, pool = ticket_world["loop"], ticket_world["engine"], ticket_world["tickets"]
    actions = sorted(CLOSED_LOOP)
    visited: set[str] = set()

    def run(coroutine):
        return loop.run_until_complete(coroutine)

    class TicketMachine(RuleBasedStateMachine):
        @initialize(start=st.sampled_from([None, *sorted({s for sources, _, _, _ in CLOSED_LOOP.values()
                                                          for s in sources})]))
        def pick_ticket(self, start):
            if not pool:
                pytest.skip("no reported tickets left")
            self.ticket = pool.pop()
            if start is not None:
                # Start anywhere in the loop, so short runs reach its late states too.
                async def put():
                    async with engine.begin() as conn:
                        await conn.execute(text("UPDATE ticket SET state = :s WHERE id = :id"),
                                           {"s": start, "id": self.ticket["id"]})

                run(put())
            self.state, self.version, self.events = self.read()

        def read(self):
            async def go():
                async with engine.connect() as conn:
                    state, version = (await conn.execute(
                        text("SELECT state, version FROM ticket WHERE id = :id"), {"id": self.ticket["id"]})).one()
                    events = (await conn.execute(
                        text("SELECT count(*) FROM ticket_event WHERE ticket_id = :id"),
                        {"id": self.ticket["id"]})).scalar_one()
                    return state, version, events

            return run(go())

        def principal(self, role: str) -> Principal:
            scope = {"community": (self.ticket["community_code"],), "grid_worker": (self.ticket["grid_code"],),
                     "street": (self.ticket["community_code"][:9],)}.get(role, ())
            return Principal(role=role, username=f"fuzz-{role}", scope=scope)

        @rule(action=st.sampled_from(actions), role=st.sampled_from(["admin", "street", "community", "grid_worker",
                                                                       "planner", "public"]),
              note=st.sampled_from([None, "", "  ", "因为需要", "<script>alert(1)</script>"]),
              stale=st.booleans())
        def act(self, action, role, note, stale):
            from gis.tickets import workflow

            sources, target, roles, needs_note = CLOSED_LOOP[action]
            principal = self.principal(role)
            assignee = {"kind": "community", "code": self.ticket["community_code"]}
            expected_ok = (
                role in roles and self.state in sources and not stale
                and (not needs_note or (note or "").strip() != "") and action != "merge"
            )

            async def go():
                async with engine.begin() as conn:
                    return await workflow.transition(
                        conn, principal, self.ticket["id"], action, note=note,
                        version=self.version - 1 if stale else self.version, assignee=assignee)

            try:
                result = run(go())
            except GridgovError:
                succeeded = False
            else:
                succeeded = True
                assert result["state"] == target
            assert succeeded == expected_ok, (action, role, self.state, note, stale)
            if succeeded:
                self.state, self.version, self.events = target, self.version + 1, self.events + 1
                visited.add(target)

        @invariant()
        def database_equals_model(self):
            if not hasattr(self, "ticket"):
                return
            assert self.read() == (self.state, self.version, self.events)

    TicketMachine.TestCase.settings = settings(
        max_examples=200 if FULL else 15, stateful_step_count=20 if FULL else 12, deadline=None,
        suppress_health_check=list(HealthCheck))
    TicketMachine.TestCase().runTest()
    # The runs went somewhere: the machine moved tickets on, not only refused them.
    assert visited, "no action succeeded in any run"
