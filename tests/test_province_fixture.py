"""The province fixture at its tiny scale: cities apart, codes unique, complaints in bounded chunks, counts that
add up, and the same through the loader into a database."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
import shapely

from fixtures.city import SIZES
from fixtures.complaints import DAYS, YEAR_START
from fixtures.province import PROVINCE_SCALES, PROVINCE_START, city_divisions, generate_province
from fixtures.province_load import load_province
from gis.db.engine import libpq_url
from gis.registry.values import parse_credit_code

TINY = PROVINCE_SCALES["tiny"]
CODED = ("district", "street", "community", "grid", "micro_grid", "compound", "building")


@pytest.fixture(scope="module")
def tiny_province():
    """Every city of the tiny province with its complaint chunks (small enough to keep)."""
    out = []
    for member in generate_province(seed=3, scale="tiny"):
        member.ids = {"micro_grid": dict(zip(member.city.tables["micro_grid"]["code"],
                                             range(member.first_ids["micro_grid"],
                                                   member.first_ids["micro_grid"]
                                                   + len(member.city.tables["micro_grid"]))))}
        out.append((member, list(member.complaint_chunks())))
    return out


def test_the_cities_do_not_overlap_and_share_no_district(tiny_province):
    outlines = [shapely.union_all(member.city.tables["district"]["geom"].tolist()) for member, _ in tiny_province]
    assert len(outlines) == TINY.cities
    for i, a in enumerate(outlines):
        for b in outlines[i + 1:]:
            assert not a.intersects(b)
    districts = [set(member.city.tables["district"]["code"]) for member, _ in tiny_province]
    assert sum(len(d) for d in districts) == len(set().union(*districts))


def test_codes_ids_credit_codes_and_phones_are_unique(tiny_province):
    for table in CODED:
        codes = [c for member, _ in tiny_province for c in member.city.tables[table]["code"]]
        assert len(codes) == len(set(codes)), table
    companies = [member.city.tables["property_company"] for member, _ in tiny_province]
    credit = [c for frame in companies for c in frame["credit_code"]]
    assert len(credit) == len(set(credit))
    assert all(parse_credit_code(c) == c for c in credit)  # the check character was recomputed
    ids = [i for frame in companies for i in frame["id"]]
    assert ids == list(range(1, len(ids) + 1))  # numbered on from the earlier cities, as the registry will
    for member, _ in tiny_province:
        own = set(member.city.tables["property_company"]["id"])
        used = set(member.city.tables["compound"]["property_company_id"].dropna().astype(int))
        assert used <= own
        branches = member.city.tables["party_organisation"]
        assert set(branches[branches["kind"] == "company_branch"]["unit_code"]) <= set(
            member.city.tables["property_company"]["credit_code"])
    phones = [p for member, _ in tiny_province for p in member.city.tables["grid_worker"]["phone"]]
    assert len(phones) == len(set(phones))
    party = [c for member, _ in tiny_province for c in member.city.tables["party_organisation"]["code"]]
    assert len(party) == len(set(party))


def test_the_first_city_uses_the_city_fixtures_streets():
    divisions = city_divisions(5, SIZES["city"].streets)
    assert [len(d) for d in divisions] == [SIZES["city"].streets] * 5
    from fixtures.divisions import shandong_streets

    assert [d.code for d in divisions[0]] == [d.code for d in shandong_streets()[:SIZES["city"].streets]]
    owners = {}
    for index, own in enumerate(divisions):
        for street in own:
            assert owners.setdefault(street.district_code, index) == index  # a district in one city only


def test_complaints_stream_in_bounded_chunks_and_add_up(tiny_province):
    ids, total = [], 0
    for member, chunks in tiny_province:
        assert len(chunks) > 1
        assert all(len(chunk) <= TINY.chunk_size for chunk in chunks)
        assert sum(len(chunk) for chunk in chunks) == TINY.complaints_per_city
        for chunk in chunks:
            ids += chunk["id"].tolist()
            assert chunk["micro_grid_code"].isin(member.city.tables["micro_grid"]["code"]).all()
            assert chunk["reported_at"].min() >= PROVINCE_START
            assert chunk["reported_at"].max() < YEAR_START + timedelta(days=DAYS)
        total += TINY.complaints_per_city
    assert ids == list(range(1, total + 1))
    years = {t.year for _, chunks in tiny_province for chunk in chunks for t in chunk["reported_at"]}
    assert years == {2022, 2023, 2024, 2025, 2026}


def test_the_tiny_province_loads_with_counts_that_add_up(empty_db, tiny_province):
    counts = load_province(empty_db, seed=3, scale="tiny", progress=False)
    assert counts["complaint"] == counts["ticket"] == TINY.cities * TINY.complaints_per_city
    for table in CODED + ("property_company", "grid_worker", "party_organisation"):
        assert counts[table] == sum(len(m.city.tables[table]) for m, _ in tiny_province), table
    with psycopg.connect(libpq_url(empty_db)) as conn:
        assert conn.execute("SELECT size, seed FROM fixture_info").fetchone() == ("province-tiny", 3)
        per_city = conn.execute(
            "SELECT count(DISTINCT left(c.street_code, 6)), count(*) FROM complaint c "
            "JOIN micro_grid m ON m.id = c.micro_grid_id AND m.code = c.micro_grid_code").fetchone()
        assert per_city == (TINY.cities, counts["complaint"])
        overlaps = conn.execute("SELECT count(*) FROM district a JOIN district b ON a.code < b.code "
                                "AND ST_Intersects(a.geom, b.geom)").fetchone()[0]
        assert overlaps == 0
