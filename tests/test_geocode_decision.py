"""No automatic placement against the text: a complaint's address places it only when every division it names
agrees with the place matched and the score clears the threshold; otherwise it goes to review with its ranked
candidates. The traps are built from the loaded small city's own names, and a generated set of perturbed
addresses (fixtures/address_set.py) must give no wrong automatic placement."""

from __future__ import annotations

import asyncio
import csv

import psycopg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from fixtures.address_set import City, evaluate, generate
from gis.access.auth import Principal
from gis.db.engine import with_driver
from gis.intake import review
from gis.intake.gazetteer import COMMUNITY_ALIAS_ENDINGS, Gazetteer
from gis.intake.importer import import_file

HEADER = ["工单编号", "受理时间", "诉求类别", "诉求内容", "事发地址", "经度", "纬度", "坐标系"]


@pytest.fixture(scope="module")
def city(city_db) -> City:
    return City.load(city_db)


@pytest.fixture(scope="module")
def gazetteer(city_db) -> Gazetteer:
    return Gazetteer.load(city_db)


def _district_of(city: City, street: str) -> str:
    return city.districts[city.streets[street][1]]


def _compound_trap(city: City):
    """A compound named like a community (X社区小区) where no community is called X社区, with a building."""
    communities = {name for name, _ in city.communities.values()}
    for code, (name, community, _, numbers) in sorted(city.compounds.items()):
        form = name[:name.find("社区") + 2]
        if "社区" in name[:-1] and form not in communities and numbers:
            return code, form, numbers[0]
    pytest.skip("the city has no compound named like a community")


def _short_community(city: City):
    """A community whose name ends like a compound (X新村社区, X小区社区), written short (X社区), with the compound
    of its that alone has some building number."""
    for code, (name, street) in sorted(city.communities.items()):
        base = name.removesuffix("社区")
        for ending in COMMUNITY_ALIAS_ENDINGS:
            if base.endswith(ending) and len(base) - len(ending) >= 2:
                compounds = [c for c, v in city.compounds.items() if v[1] == code and v[3]]
                return code, street, base.removesuffix(ending) + "社区", compounds
    pytest.skip("the city has no community named like a compound")


def test_a_compound_named_like_a_community_is_not_taken_for_it(city, gazetteer):
    """泰山区东岳社区3号楼 was placed in another street through the compound 东岳社区小区 (score 0.672)."""
    code, form, number = _compound_trap(city)
    community = city.compounds[code][1]
    street = city.communities[community][1]
    text = f"{_district_of(city, street)}{form}{number}号楼漏水"
    match = gazetteer.match(text)
    assert not match.auto and match.compound_code is None and match.level != "building"
    assert form in match.review_reason and "找不到" in match.review_reason
    assert code in [c.get("compound_code") for c in match.candidates]  # the look-alike is offered, not chosen
    # Its own full name still places it.
    named = gazetteer.match(f"{city.compounds[code][0]}{number}号楼漏水")
    assert named.auto and (named.compound_code, named.building_number) == (code, number)


def test_a_short_community_form_counts_within_its_named_street(city, gazetteer):
    """泰山区上高街道东岳社区3号楼 must reach 东岳小区社区 of 上高街道."""
    community, street, short, compounds = _short_community(city)
    district = _district_of(city, street)
    street_name = city.streets[street][0]
    compound = compounds[0]
    name, _, _, numbers = city.compounds[compound]
    with_street = gazetteer.match(f"{district}{street_name}{short}{name}{numbers[0]}号楼漏水")
    assert with_street.auto and (with_street.compound_code, with_street.community_code) == (compound, community)
    vague = gazetteer.match(f"{district}{street_name}{short}{numbers[0]}号楼漏水")
    assert vague.community_code == community
    without_street = gazetteer.match(f"{district}{short}{name}{numbers[0]}号楼漏水")
    assert not without_street.auto and "没有写明街道" in without_street.review_reason
    assert without_street.candidates and without_street.candidates[0]["compound_code"] == compound


def test_every_named_division_must_agree(city, gazetteer):
    code = next(c for c, v in sorted(city.compounds.items()) if v[3] and len(v[0]) >= 3)
    name, community, aliases, numbers = city.compounds[code]
    community_name, street = city.communities[community]
    other_street = next(s for s in sorted(city.streets) if s != street)
    district = _district_of(city, street)
    right = gazetteer.match(f"{district}{city.streets[street][0]}{community_name}{name}{numbers[0]}号楼")
    assert right.auto and right.level == "building" and right.score == 1.0
    wrong_street = gazetteer.match(f"{district}{city.streets[other_street][0]}{community_name}{name}{numbers[0]}号楼")
    assert not wrong_street.auto and wrong_street.compound_code is None and "街道" in wrong_street.review_reason
    other_community = next(c for c, (_, s) in sorted(city.communities.items()) if s == street and c != community)
    wrong_community = gazetteer.match(f"{city.communities[other_community][0]}{name}{numbers[0]}号楼")
    assert not wrong_community.auto and wrong_community.candidates[0]["compound_code"] == code
    # Forms that do agree: 居委会, a phase in Chinese numerals (the text's own), one character wrong in the street.
    committee = gazetteer.match(f"{city.streets[street][0]}{community_name.removesuffix('社区')}居委会{name}"
                                f"{numbers[0]}号楼")
    assert committee.auto and committee.compound_code == code
    typo = name[:-1] + ("华" if name[-1] != "华" else "东")
    near = gazetteer.match(f"{city.streets[street][0]}{community_name}{typo}{numbers[0]}号楼")
    assert near.auto and near.compound_code == code and near.score < 1.0
    # The same typo without any division is not placed: fuzzy forms count only within the named street.
    assert not gazetteer.match(f"{typo}{numbers[0]}号楼").auto


def test_threshold_is_a_setting(city_db, city, monkeypatch):
    from gis.settings import city_settings

    assert city_settings().auto_place_min_score == 0.75
    with psycopg.connect(city_db) as conn:
        rows = (conn.execute(Gazetteer.STREETS_SQL).fetchall(), conn.execute(Gazetteer.COMMUNITIES_SQL).fetchall(),
                conn.execute(Gazetteer.COMPOUNDS_SQL).fetchall(), conn.execute(Gazetteer.DISTRICTS_SQL).fetchall())
    lenient, strict = Gazetteer.from_rows(*rows), Gazetteer.from_rows(*rows, auto_min_score=0.99)
    # An address by a compound's alias (score 0.95), one that the alias alone tells apart.
    text = next(text for name, community, aliases, numbers in sorted(city.compounds.values()) if numbers
                for text in [f"{city.communities[community][0]}{alias}{numbers[0]}号楼" for alias in aliases]
                if lenient.match(text).auto)
    assert lenient.match(text).auto and lenient.match(text).score < 0.99
    refused = strict.match(text)
    assert not refused.auto and "阈值" in refused.review_reason
    monkeypatch.setenv("GRIDGOV_CITY_AUTO_PLACE_MIN_SCORE", "0.99")
    city_settings.cache_clear()
    try:
        assert not Gazetteer.from_rows(*rows).match(text).auto
    finally:
        monkeypatch.delenv("GRIDGOV_CITY_AUTO_PLACE_MIN_SCORE")
        city_settings.cache_clear()


def test_generated_address_set_places_nothing_wrongly(city, gazetteer):
    cases = generate(city, count=2400, seed=7)
    assert len(cases) >= 2000
    result = evaluate(gazetteer, cases)
    kinds = {kind: dict(counts) for kind, counts in sorted(result.by_kind.items())}
    print(f"\n{result.total} addresses: {result.auto_share:.1%} placed automatically, "
          f"{result.review_share:.1%} to review, {len(result.wrong)} placed wrongly; by kind {kinds}")
    assert result.wrong == []
    assert result.auto + result.review == result.total
    # The decision is not simply "review everything": clean and lightly perturbed addresses are placed.
    assert result.auto_share > 0.5
    for kind in ("full", "no_district", "committee", "typo_compound", "punctuation"):
        assert kinds[kind].get("auto", 0) >= 0.9 * kinds[kind]["total"], kind
    for kind in ("wrong_street", "trap"):
        assert kinds[kind].get("auto", 0) == 0, kind


def test_import_and_review_queue_carry_the_decision(city_db, city, tmp_path):
    """Through the hotline importer: the trap and the wrong street go to review with their reasons and
    candidates (visible in the review queue); the right address is placed on its building."""
    trap_code, form, number = _compound_trap(city)
    code = next(c for c, v in sorted(city.compounds.items()) if v[3])
    name, community, _, numbers = city.compounds[code]
    community_name, street = city.communities[community]
    other_street = next(s for s in sorted(city.streets) if s != street)
    rows = [
        ["G-trap", "2025-08-01 09:00:00", "房屋漏水", "漏水", f"{_district_of(city, street)}{form}{number}号楼",
         "", "", ""],
        ["G-wrong", "2025-08-01 09:00:00", "房屋漏水", "漏水",
         f"{city.streets[other_street][0]}{community_name}{name}{numbers[0]}号楼", "", "", ""],
        ["G-right", "2025-08-01 09:00:00", "房屋漏水", "漏水",
         f"{city.streets[street][0]}{community_name}{name}{numbers[0]}号楼", "", "", ""],
    ]
    path = tmp_path / "decision.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    assert import_file(city_db, path).imported == 3
    with psycopg.connect(city_db) as conn:
        got = {row[0]: row[1:] for row in conn.execute("""
            SELECT c.external_id, c.placement, c.compound_code, c.building_code, ci.review_reason,
                   ci.extra -> 'geocoding_candidates'
            FROM complaint c JOIN complaint_intake ci ON ci.complaint_id = c.id
            WHERE c.external_id LIKE 'G-%'""")}
        building = conn.execute("SELECT code FROM building WHERE compound_code = %s AND number = %s "
                                "AND valid_to IS NULL", (code, numbers[0])).fetchone()[0]
    assert got["G-right"][:3] == ("inside", code, building)
    for key in ("G-trap", "G-wrong"):
        placement, compound, _, reason, candidates = got[key]
        assert placement == "review" and compound is None, key
        assert any("\u4e00" <= ch <= "\u9fff" for ch in reason), reason
        assert candidates, key
    assert got["G-wrong"][4][0]["compound_code"] == code

    async def queue():
        engine = create_async_engine(with_driver(city_db, "asyncpg"), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await review.review_queue(conn, Principal(role="admin", username="admin-test"), limit=5000)
        finally:
            await engine.dispose()

    listed = {row["external_id"]: row for row in asyncio.run(queue()) if row["external_id"].startswith("G-")}
    assert set(listed) == {"G-trap", "G-wrong"}
    assert listed["G-wrong"]["candidates"][0]["compound_code"] == code
