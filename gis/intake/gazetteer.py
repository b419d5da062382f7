"""The gazetteer (地名库) built from the current layers, and address matching against it with a score.

Names are found in the normalised text as substrings, longest first; a compound name that is misspelt is found
by weighted character-bigram containment (rare bigrams weigh more, so generic endings like 小区 or 花园 do not
carry a match). The result is the finest level that resolves: building, compound, community, street or none.

Buildings are numbered per compound (N号楼), so `三里社区3号楼` without a compound name resolves to a building
only when it is unambiguous: the community has one compound with that building, or one compound named after the
community (三里小区, 三里新村) has it. Otherwise it stays at community level and goes to review.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import psycopg

from gis.intake.address import ParsedAddress, normalise, parse_address

STREET_SUFFIXES = ("街道办事处", "街道办", "街道", "办事处", "镇", "乡")
COMMUNITY_SUFFIXES = ("社区居民委员会", "社区居委会", "居民委员会", "居委会", "社区", "村委会", "村")
COMPOUND_GENERIC_SUFFIXES = ("小区", "花园", "家园", "新村", "公寓", "宿舍", "家属院", "片区", "苑", "园", "院")
FUZZY_THRESHOLD = 0.6



@dataclass
class Place:
    code: str
    name: str
    parent_code: str | None = None
    street_code: str | None = None
    community_code: str | None = None
    aliases: tuple[str, ...] = ()
    building_numbers: frozenset[int] = frozenset()


@dataclass
class AddressMatch:
    """The outcome of matching one address: level, score in [0, 1] and the codes resolved."""

    level: str = "none"
    score: float = 0.0
    street_code: str | None = None
    community_code: str | None = None
    compound_code: str | None = None
    building_number: int | None = None
    notes: list[str] = field(default_factory=list)


def _base_name(name: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


class NameScanner:
    """Finds known names in a text: for each position only the lengths of names starting with that character
    are tried, so a scan costs a few dictionary look-ups per character whatever the size of the gazetteer."""

    def __init__(self, names):
        self.names = set(names)
        lengths: dict[str, set[int]] = defaultdict(set)
        for name in self.names:
            if name:
                lengths[name[0]].add(len(name))
        self.lengths = {char: sorted(values, reverse=True) for char, values in lengths.items()}

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, name) of every occurrence, longest first at each position."""
        found = []
        for start, char in enumerate(text):
            for length in self.lengths.get(char, ()):
                piece = text[start:start + length]
                if len(piece) == length and piece in self.names:
                    found.append((start, start + length, piece))
        return found


def _bigrams(text: str) -> set[str]:
    return {text[i:i + 2] for i in range(len(text) - 1)}


class Gazetteer:
    """Street offices, communities and compounds (with aliases and their building numbers) of the current
    layers, indexed for matching."""

    def __init__(self, streets: list[Place], communities: list[Place], compounds: list[Place]):
        self.streets = {p.code: p for p in streets}
        self.communities = {p.code: p for p in communities}
        self.compounds = {p.code: p for p in compounds}
        self.street_names = self._name_index(streets, STREET_SUFFIXES, min_base=2)
        self.community_names = self._name_index(communities, COMMUNITY_SUFFIXES, min_base=2, short_forms=False)
        self.compound_names: dict[str, list[tuple[str, float]]] = defaultdict(list)
        self.compounds_by_community: dict[str, list[Place]] = defaultdict(list)
        for place in compounds:
            self.compounds_by_community[place.community_code].append(place)
            self.compound_names[normalise(place.name)].append((place.code, 1.0))
            for alias in place.aliases:
                self.compound_names[normalise(alias)].append((place.code, 0.95))
        self.street_scanner = NameScanner(self.street_names)
        self.community_scanner = NameScanner(self.community_names)
        self.compound_scanner = NameScanner(self.compound_names)
        self._cache: dict[str, AddressMatch] = {}
        # Bigram inverted index with inverse document frequency, for misspelt compound names.
        self.bigram_index: dict[str, set[str]] = defaultdict(set)
        for name in self.compound_names:
            for gram in _bigrams(name):
                self.bigram_index[gram].add(name)
        total = max(len(self.compound_names), 1)
        self.idf = {gram: math.log(1 + total / len(names)) for gram, names in self.bigram_index.items()}

    @staticmethod
    def _name_index(places: list[Place], suffixes: tuple[str, ...], min_base: int,
                    short_forms: bool = True) -> dict[str, list[str]]:
        """Full names and their suffix variants (社区 ~ 居委会 ~ 社区居委会); bare names without any suffix only
        when `short_forms`, since a bare community name is too easily found inside other words."""
        index: dict[str, list[str]] = defaultdict(list)
        for place in places:
            base = _base_name(normalise(place.name), suffixes)
            variants = {normalise(place.name)} | {base + suffix for suffix in suffixes}
            if short_forms and len(base) >= min_base:
                variants.add(base)
            for variant in variants:
                index[variant].append(place.code)
        return index

    # -- loading -------------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, url_or_conn) -> "Gazetteer":
        """Read the current streets, communities, compounds and building numbers (one round trip each)."""
        if isinstance(url_or_conn, psycopg.Connection):
            return cls._load(url_or_conn)
        from gis.db import libpq_url

        with psycopg.connect(libpq_url(url_or_conn)) as conn:
            return cls._load(conn)

    STREETS_SQL = "SELECT code, name, district_code FROM street WHERE valid_to IS NULL"
    COMMUNITIES_SQL = "SELECT code, name, street_code FROM community WHERE valid_to IS NULL"
    COMPOUNDS_SQL = """
        SELECT c.code, c.name, c.community_code, c.aliases, coalesce(n.numbers, '{}')
        FROM compound c LEFT JOIN (
            SELECT compound_code, array_agg(DISTINCT number) AS numbers FROM building
            WHERE valid_to IS NULL GROUP BY compound_code) n ON n.compound_code = c.code
        WHERE c.valid_to IS NULL"""

    @classmethod
    def from_rows(cls, streets, communities, compounds) -> "Gazetteer":
        street_places = [Place(code, name, district) for code, name, district in streets]
        community_places = [Place(code, name, street, street_code=street) for code, name, street in communities]
        street_of = {c.code: c.parent_code for c in community_places}
        compound_places = [
            Place(code, name, community, street_of.get(community), community, tuple(aliases or ()),
                  frozenset(numbers or ()))
            for code, name, community, aliases, numbers in compounds]
        return cls(street_places, community_places, compound_places)

    @classmethod
    def _load(cls, conn: psycopg.Connection) -> "Gazetteer":
        return cls.from_rows(conn.execute(cls.STREETS_SQL).fetchall(), conn.execute(cls.COMMUNITIES_SQL).fetchall(),
                             conn.execute(cls.COMPOUNDS_SQL).fetchall())

    @classmethod
    async def load_async(cls, conn) -> "Gazetteer":
        """The same from an SQLAlchemy AsyncConnection (the API)."""
        from sqlalchemy import text

        rows = [(await conn.execute(text(sql))).all()
                for sql in (cls.STREETS_SQL, cls.COMMUNITIES_SQL, cls.COMPOUNDS_SQL)]
        return cls.from_rows(*rows)

    # -- matching ------------------------------------------------------------------------------------------------

    @staticmethod
    def _find_names(text: str, index: dict[str, list[str]], scanner: "NameScanner") -> list[tuple[str, str]]:
        """(name, code) of every indexed name occurring in text, longest names first; a name inside a longer
        one found already does not count again."""
        hits = sorted(scanner.find(text), key=lambda h: (h[0] - h[1], h[0]))
        found: list[tuple[str, str]] = []
        spans: list[tuple[int, int]] = []
        for start, end, name in hits:
            if any(s <= start and end <= e for s, e in spans):
                continue
            spans.append((start, end))
            found.extend((name, code) for code in index[name])
        return found

    def _exact_compounds(self, text: str) -> list[tuple[str, float, int]]:
        """(code, weight, name length) of compounds whose name or alias occurs in text."""
        return [(code, weight, end - start) for start, end, name in self.compound_scanner.find(text)
                for code, weight in self.compound_names[name]]

    def _fuzzy_compounds(self, text: str, allowed: set[str] | None) -> list[tuple[str, float]]:
        grams = _bigrams(text)
        candidates: dict[str, int] = defaultdict(int)
        for gram in grams:
            for name in self.bigram_index.get(gram, ()):
                candidates[name] += 1
        scored = []
        for name, shared in candidates.items():
            if shared < 2:
                continue
            name_grams = _bigrams(name)
            weight = sum(self.idf[g] for g in name_grams)
            covered = sum(self.idf[g] for g in name_grams & grams)
            containment = covered / weight if weight else 0.0
            if containment >= FUZZY_THRESHOLD:
                for code, alias_weight in self.compound_names[name]:
                    if allowed is None or code in allowed:
                        scored.append((code, 0.9 * containment * alias_weight))
        scored.sort(key=lambda item: (-item[1], item[0]))
        return scored

    def match(self, address: str | None) -> AddressMatch:
        """Match one address; repeated addresses (common in hotline exports) are answered from a cache."""
        key = address or ""
        cached = self._cache.get(key)
        if cached is None:
            cached = self._match(parse_address(address))
            if len(self._cache) < 200_000:
                self._cache[key] = cached
        return cached

    def _match(self, parsed: ParsedAddress) -> AddressMatch:
        text = parsed.text
        result = AddressMatch()
        if not text:
            return result

        street_hits = self._find_names(text, self.street_names, self.street_scanner)
        community_hits = self._find_names(text, self.community_names, self.community_scanner)
        streets = {code for _, code in street_hits}
        communities = {code for _, code in community_hits}
        if streets and communities:
            # A community of another street than the one named is a different place with the same name.
            within = {c for c in communities if self.communities[c].parent_code in streets}
            if within:
                communities = within
            else:
                result.notes.append("community and street disagree")
        if len(communities) > 1:
            result.notes.append("community name is ambiguous")
        community = min(communities) if len(communities) == 1 else None
        street = min(streets) if len(streets) == 1 else None
        if community is not None:
            street = self.communities[community].parent_code

        compound, compound_score = None, 0.0
        hits = self._exact_compounds(text)
        if community is not None and hits:
            inside = [h for h in hits if self.compounds[h[0]].community_code == community]
            hits = inside or hits
        elif street is not None and hits:
            inside = [h for h in hits if self.compounds[h[0]].street_code == street]
            hits = inside or hits
        number = parsed.building_number
        if hits:
            best = max((h[2], h[1]) for h in hits)
            tied = sorted({h[0] for h in hits if (h[2], h[1]) == best})
            if len(tied) > 1 and number is not None:
                # Two compounds answer to this name (an alias shared, or the same name twice): the building
                # number may tell them apart.
                tied = [code for code in tied if number in self.compounds[code].building_numbers] or tied
            if len(tied) == 1:
                compound, compound_score = tied[0], best[1]
            else:
                result.notes.append("compound name is ambiguous: " + ", ".join(tied))
        else:
            allowed = None
            if community is not None:
                allowed = {p.code for p in self.compounds_by_community.get(community, ())}
            elif street is not None:
                allowed = {code for code, p in self.compounds.items() if p.street_code == street}
            # Division names are not compound names: their bigrams must not make a compound look similar.
            rest = text
            for name, _ in street_hits + community_hits:
                rest = rest.replace(name, "|")
            fuzzy = self._fuzzy_compounds(rest, allowed)
            if fuzzy:
                compound, compound_score = fuzzy[0]
                result.notes.append("compound matched approximately")

        if compound is None and community is not None and number is not None and not hits:
            compound = self._compound_by_building(community, number)
            if compound is not None:
                compound_score = 0.85

        if compound is not None:
            place = self.compounds[compound]
            if community is not None and place.community_code != community:
                result.notes.append("compound lies in another community than the one named")
                compound_score *= 0.8
            result.compound_code = compound
            result.community_code = place.community_code
            result.street_code = place.street_code
            if number is not None and number in place.building_numbers:
                result.level, result.building_number = "building", number
                result.score = compound_score
            else:
                if number is not None:
                    result.notes.append(f"no building {number} in the compound")
                result.level, result.score = "compound", compound_score * (0.9 if number is not None else 1.0)
        elif community is not None:
            result.level, result.score = "community", 1.0
            result.community_code, result.street_code = community, street
        elif street is not None:
            result.level, result.score, result.street_code = "street", 1.0, street
        result.score = round(result.score, 3)
        return result

    def _compound_by_building(self, community: str, number: int) -> str | None:
        """The compound of `community` that `N号楼` must mean, when only one fits."""
        having = [p for p in self.compounds_by_community.get(community, ()) if number in p.building_numbers]
        if len(having) == 1:
            return having[0].code
        base = _base_name(normalise(self.communities[community].name), COMMUNITY_SUFFIXES)
        named = [p for p in having if normalise(p.name).startswith(base)]
        return named[0].code if len(named) == 1 else None
