"""The gazetteer (地名库) built from the current layers, and address matching against it with a score and a
placement decision.

Names are found in the normalised text as substrings (a name inside a longer name found there does not count:
the compound 东岳小区 inside the community 东岳小区社区, or the community form 东岳社区 inside the compound
东岳社区小区). Division names match in their written forms: street offices with 街道 / 街道办 / 街道办事处,
communities with 社区 / 居委会 / 社区居委会 / 居民委员会, and — as aliases — without a compound-like ending of the
community's own name (东岳小区社区 is also written 东岳社区). Phases are read as numbers (二期 = 2期). A name of
three or more characters also matches with one character wrong (not a digit), and a misspelt compound name by
weighted character-bigram containment; both only among the places of a division the text names.

Where one name is one compound's own name and other compounds' alias, the own name wins; where it is several
compounds' names or aliases only, the building number may tell them apart, else a person chooses.

A match is placed automatically (`AddressMatch.auto`) only when every division the text names — district,
street office, community, compound — agrees with the place matched, none of them is unknown, the compound is
the only one that fits, and the score clears `CitySettings.auto_place_min_score`
(`GRIDGOV_CITY_AUTO_PLACE_MIN_SCORE`, 0.75 by default). Otherwise the match keeps only the divisions that agree
(so the right office sees it in its review queue), no compound, the reason in Chinese and the ranked candidates
for the person who places it. Every path (hotline import, Open311, the map) takes this one decision.

Scores multiply: compound named exactly 1.0, by an alias 0.95, with one character wrong 0.85, approximately
0.9 × containment; picked from several of one name by its building number × 0.9; the compound inferred from the
community and `N号楼` 0.85; a community by an alias form × 0.95, with one character wrong × 0.9. A building
number the compound does not have is a disagreement too (review, × 0.9).

Buildings are numbered per compound (N号楼), so `三里社区3号楼` without a compound name resolves to a building
only when it is unambiguous: the community has one compound with that building. Otherwise it stays at community
level and goes to review, a compound named after the community (三里小区, 三里新村) first among the candidates.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

import psycopg

from gis.intake.address import (
    BUILDING_PATTERN,
    ParsedAddress,
    canonical_phases,
    normalise,
    parse_address,
)

STREET_SUFFIXES = ("街道办事处", "街道办", "街道", "办事处", "镇", "乡")
COMMUNITY_SUFFIXES = ("社区居民委员会", "社区居委会", "居民委员会", "居委会", "社区", "村委会", "村")
COMPOUND_GENERIC_SUFFIXES = ("小区", "花园", "家园", "新村", "公寓", "宿舍", "家属院", "片区", "苑", "园", "院")
COMMUNITY_ALIAS_ENDINGS = ("小区", "新村")
"""Endings of a community's own name (东岳小区社区, 青山新村社区) that people leave out (东岳社区, 青山社区)."""
FUZZY_THRESHOLD = 0.6
"""Least weighted bigram containment for a misspelt compound name to be considered at all."""
TYPO_MIN_LENGTH = 3
"""Names shorter than this never match with a character wrong (one of two is too much)."""
CANDIDATES_KEPT = 5

# Written division suffixes that name a level even when the name before them is unknown.
_NAMED_COMMUNITY = re.compile(r"社区居民委员会|社区居委会|居民委员会|居委会|社区")
_NAMED_STREET = re.compile(r"街道办事处|街道办|街道")
_NOT_A_NAME = set("的找向给到和跟在是让请被把由对与及去来说要我你他她们楼号室层元栋幢座户")
_CJK = re.compile(r"[\u4e00-\u9fff]")

LEVEL_ZH = {"district": "区县", "street": "街道", "community": "社区", "compound": "小区"}


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
    """The outcome of matching one address: level, score in [0, 1], the codes resolved and the decision.

    `auto` says the complaint may be placed without a person (see the module's rules); when it is False the
    compound and building are left out (every intake path places by the compound), `review_reason` says why in
    Chinese and `candidates` lists the places that may be meant, best first."""

    level: str = "none"
    score: float = 0.0
    street_code: str | None = None
    community_code: str | None = None
    compound_code: str | None = None
    building_number: int | None = None
    notes: list[str] = field(default_factory=list)
    auto: bool = False
    review_reason: str | None = None
    candidates: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class _Hit:
    level: str
    start: int
    end: int
    code: str
    kind: str  # exact, alias or typo
    weight: float


@dataclass
class _Reading:
    """One address being read, stage by stage: what its text names at each level, what agrees, and the problems
    that send it to review."""

    text: str
    number: int | None
    hits: list[_Hit]
    result: AddressMatch = field(default_factory=AddressMatch)
    problems: list[str] = field(default_factory=list)
    districts: set[str] = field(default_factory=set)
    streets: set[str] = field(default_factory=set)
    street: str | None = None
    street_factor: float = 1.0
    street_ok: bool = True
    community_hits: list[_Hit] = field(default_factory=list)
    communities: dict[str, _Hit] = field(default_factory=dict)
    community: str | None = None
    community_factor: float = 1.0
    community_ok: bool = False
    allowed: set[str] | None = None
    options: list[tuple[str, float, str]] = field(default_factory=list)
    by_building: bool = False

    @property
    def factor(self) -> float:
        return self.community_factor * self.street_factor


def _base_name(name: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def canonical(text: str | None) -> str:
    """The form names and texts are compared in: normalised, phases as numbers."""
    return canonical_phases(normalise(text))


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


class TypoIndex:
    """Names of three or more characters under each of their one-character masks (东?小区), so a piece of text
    with one character wrong finds them in a few look-ups. Digits are never the character wrong: 2期 and 3期
    are different compounds."""

    def __init__(self, names):
        self.masks: dict[str, set[str]] = defaultdict(set)
        self.lengths: set[int] = set()
        for name in names:
            if len(name) < TYPO_MIN_LENGTH:
                continue
            self.lengths.add(len(name))
            for i, char in enumerate(name):
                if not char.isdigit():
                    self.masks[name[:i] + "\0" + name[i + 1:]].add(name)

    def near(self, piece: str) -> set[str]:
        """Names that differ from `piece` (same length) in exactly one non-digit character."""
        found: set[str] = set()
        for i, char in enumerate(piece):
            if char.isdigit():
                continue
            for name in self.masks.get(piece[:i] + "\0" + piece[i + 1:], ()):
                if name != piece:
                    found.add(name)
        return found

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, name) of every name found in text with one character wrong."""
        found = []
        for length in sorted(self.lengths, reverse=True):
            for start in range(0, len(text) - length + 1):
                found.extend((start, start + length, name) for name in self.near(text[start:start + length]))
        return found


def _bigrams(text: str) -> set[str]:
    return {text[i:i + 2] for i in range(len(text) - 1)}


class Gazetteer:
    """Districts, street offices, communities and compounds (with aliases and their building numbers) of the
    current layers, indexed for matching."""

    def __init__(self, streets: list[Place], communities: list[Place], compounds: list[Place],
                 districts: list[Place] = (), auto_min_score: float | None = None):
        if auto_min_score is None:
            from gis.settings import city_settings

            auto_min_score = city_settings().auto_place_min_score
        self.auto_min_score = auto_min_score
        self.districts = {p.code: p for p in districts}
        self.streets = {p.code: p for p in streets}
        self.communities = {p.code: p for p in communities}
        self.compounds = {p.code: p for p in compounds}
        # name form -> [(code, kind, weight)]
        self.names: dict[str, dict[str, list[tuple[str, str, float]]]] = {
            "district": defaultdict(list), "street": defaultdict(list), "community": defaultdict(list),
            "compound": defaultdict(list)}
        self._index_divisions(districts, streets, communities)
        self._index_compounds(compounds)
        self._index_search(streets)

    def _index_divisions(self, districts: list[Place], streets: list[Place], communities: list[Place]) -> None:
        """The name forms of districts, streets and communities: official, with the usual suffixes, and a
        community's short forms (its alias endings dropped) unless another community has them as its own."""
        for place in districts:
            self.names["district"][canonical(place.name)].append((place.code, "exact", 1.0))
        for place in streets:
            base = _base_name(canonical(place.name), STREET_SUFFIXES)
            for form in {canonical(place.name)} | {base + suffix for suffix in STREET_SUFFIXES[:3]}:
                self.names["street"][form].append((place.code, "exact", 1.0))
        exact_community_forms = set()
        self.community_bases: dict[str, list[str]] = defaultdict(list)
        for place in communities:
            base = _base_name(canonical(place.name), COMMUNITY_SUFFIXES)
            self.community_bases[base].append(place.code)
            for form in {canonical(place.name)} | {base + suffix for suffix in COMMUNITY_SUFFIXES[:5]}:
                self.names["community"][form].append((place.code, "exact", 1.0))
                exact_community_forms.add(form)
        for place in communities:
            base = _base_name(canonical(place.name), COMMUNITY_SUFFIXES)
            for ending in COMMUNITY_ALIAS_ENDINGS:
                short = base.removesuffix(ending)
                if short != base and len(short) >= 2:
                    for suffix in COMMUNITY_SUFFIXES[:5]:
                        if short + suffix not in exact_community_forms:
                            self.names["community"][short + suffix].append((place.code, "alias", 0.95))

    def _index_compounds(self, compounds: list[Place]) -> None:
        """Compounds by community and by street, and their names and aliases."""
        self.compounds_by_community: dict[str, list[Place]] = defaultdict(list)
        self.compounds_by_street: dict[str, set[str]] = defaultdict(set)
        for place in compounds:
            self.compounds_by_community[place.community_code].append(place)
            self.compounds_by_street[place.street_code].add(place.code)
            self.names["compound"][canonical(place.name)].append((place.code, "exact", 1.0))
            for alias in place.aliases:
                if canonical(alias) != canonical(place.name):
                    self.names["compound"][canonical(alias)].append((place.code, "alias", 0.95))

    def _index_search(self, streets: list[Place]) -> None:
        """What matching searches with: every level's names in one scanner, the typo indexes, street bases, and a
        bigram index with inverse document frequency for misspelt compound names."""
        self.all_names: dict[str, list[tuple[str, str, str, float]]] = defaultdict(list)
        for level, index in self.names.items():
            for name, entries in index.items():
                self.all_names[name].extend((level, code, kind, weight) for code, kind, weight in entries)
        self.scanner = NameScanner(self.all_names)  # one pass over the text finds every level's names
        self.typos = {"street": TypoIndex({_base_name(canonical(p.name), STREET_SUFFIXES) for p in streets}),
                      "community": TypoIndex(self.community_bases),
                      "compound": TypoIndex(self.names["compound"])}
        self.street_bases: dict[str, list[str]] = defaultdict(list)
        for place in streets:
            self.street_bases[_base_name(canonical(place.name), STREET_SUFFIXES)].append(place.code)
        self._cache: dict[str, AddressMatch] = {}
        # Bigram inverted index with inverse document frequency, for misspelt compound names.
        self.bigram_index: dict[str, set[str]] = defaultdict(set)
        for name in self.names["compound"]:
            for gram in _bigrams(name):
                self.bigram_index[gram].add(name)
        total = max(len(self.names["compound"]), 1)
        self.idf = {gram: math.log(1 + total / len(names)) for gram, names in self.bigram_index.items()}

    # -- loading -------------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, url_or_conn) -> "Gazetteer":
        """Read the current districts, streets, communities, compounds and building numbers (one round trip
        each)."""
        if isinstance(url_or_conn, psycopg.Connection):
            return cls._load(url_or_conn)
        from gis.db.engine import libpq_url

        with psycopg.connect(libpq_url(url_or_conn)) as conn:
            return cls._load(conn)

    DISTRICTS_SQL = "SELECT code, name FROM district WHERE valid_to IS NULL"
    STREETS_SQL = "SELECT code, name, district_code FROM street WHERE valid_to IS NULL"
    COMMUNITIES_SQL = "SELECT code, name, street_code FROM community WHERE valid_to IS NULL"
    COMPOUNDS_SQL = """
        SELECT c.code, c.name, c.community_code, c.aliases, coalesce(n.numbers, '{}')
        FROM compound c LEFT JOIN (
            SELECT compound_code, array_agg(DISTINCT number) AS numbers FROM building
            WHERE valid_to IS NULL GROUP BY compound_code) n ON n.compound_code = c.code
        WHERE c.valid_to IS NULL"""

    @classmethod
    def from_rows(cls, streets, communities, compounds, districts=(), auto_min_score: float | None = None
                  ) -> "Gazetteer":
        street_places = [Place(code, name, district) for code, name, district in streets]
        community_places = [Place(code, name, street, street_code=street) for code, name, street in communities]
        street_of = {c.code: c.parent_code for c in community_places}
        compound_places = [
            Place(code, name, community, street_of.get(community), community, tuple(aliases or ()),
                  frozenset(numbers or ()))
            for code, name, community, aliases, numbers in compounds]
        district_places = [Place(code, name) for code, name in districts]
        return cls(street_places, community_places, compound_places, district_places, auto_min_score)

    @classmethod
    def _load(cls, conn: psycopg.Connection) -> "Gazetteer":
        return cls.from_rows(conn.execute(cls.STREETS_SQL).fetchall(), conn.execute(cls.COMMUNITIES_SQL).fetchall(),
                             conn.execute(cls.COMPOUNDS_SQL).fetchall(), conn.execute(cls.DISTRICTS_SQL).fetchall())

    @classmethod
    async def load_async(cls, conn) -> "Gazetteer":
        """The same from an SQLAlchemy AsyncConnection (the API)."""
        from sqlalchemy import text

        rows = [(await conn.execute(text(sql))).all()
                for sql in (cls.STREETS_SQL, cls.COMMUNITIES_SQL, cls.COMPOUNDS_SQL, cls.DISTRICTS_SQL)]
        return cls.from_rows(*rows)

    # -- matching ------------------------------------------------------------------------------------------------

    def match(self, address: str | None) -> AddressMatch:
        """Match one address; repeated addresses (common in hotline exports) are answered from a cache."""
        key = address or ""
        cached = self._cache.get(key)
        if cached is None:
            cached = self._match(parse_address(address))
            if len(self._cache) < 200_000:
                self._cache[key] = cached
        return cached

    def _district_of(self, street_code: str | None) -> str | None:
        place = self.streets.get(street_code)
        return place.parent_code if place else None

    def _hits(self, text: str) -> list[_Hit]:
        """Every name found, minus those lying inside a longer name found (of any level)."""
        hits = [_Hit(level, start, end, code, kind, weight) for start, end, name in self.scanner.find(text)
                for level, code, kind, weight in self.all_names[name]]
        hits.sort(key=lambda h: (h.start - h.end, h.start))
        kept: list[_Hit] = []
        for hit in hits:
            if any(k.start <= hit.start and hit.end <= k.end and k.end - k.start > hit.end - hit.start
                   for k in kept):
                continue
            kept.append(hit)
        return kept

    def _named_divisions(self, text: str, hits: list[_Hit], streets: set[str], districts: set[str]
                         ) -> tuple[list[_Hit], list[tuple[str, str]]]:
        """Street and community names written with their suffix that no exact name explains: resolved with one
        character wrong when that fits one place only (streets within the named district, communities within
        the named street), else reported as unknown (level, token)."""
        resolved: list[_Hit] = []
        unknown: list[tuple[str, str]] = []
        unknown_ends: list[int] = []
        for level, pattern in (("street", _NAMED_STREET), ("community", _NAMED_COMMUNITY)):
            bases = self.street_bases if level == "street" else self.community_bases
            for found in pattern.finditer(text):
                start, end = found.span()
                if any(h.start <= start and end <= h.end for h in hits + resolved):
                    continue
                before = text[max(0, start - 8):start]
                if len(before) < 2 or not _CJK.match(before[-1]) or before[-1] in _NOT_A_NAME:
                    continue  # 找社区, 3号楼街道口: not a name
                options: dict[str, int] = {}
                for length in sorted(self.typos[level].lengths, reverse=True):
                    if length <= start:
                        for name in self.typos[level].near(text[start - length:start]):
                            for code in bases[name]:
                                options.setdefault(code, length)
                if level == "street" and districts:
                    options = {c: n for c, n in options.items() if self.streets[c].parent_code in districts}
                if level == "community":
                    options = ({c: n for c, n in options.items() if self.communities[c].parent_code in streets}
                               if streets else {})
                if len(options) == 1:
                    code, length = next(iter(options.items()))
                    resolved.append(_Hit(level, start - length, end, code, "typo", 0.9))
                else:
                    begin = max([start - 4, 0] + [h.end for h in hits + resolved if h.end <= start]
                                + [e for e in unknown_ends if e <= start])
                    unknown.append((level, text[begin:end]))
                    unknown_ends.append(end)
        return resolved, unknown

    def _compound_candidates(self, text: str, hits: list[_Hit], allowed: set[str] | None,
                             number: int | None, approximate: bool) -> tuple[list[tuple[str, float, str]], list[str]]:
        """(code, score, how) of the compounds the text may name within `allowed` (None: anywhere), best first,
        and notes; misspelt names only when `approximate` (a street or community is named and agrees)."""
        notes: list[str] = []
        inside = [h for h in hits if h.level == "compound" and (allowed is None or h.code in allowed)]
        if inside:
            return self._named_compounds(text, inside, allowed, number, notes), notes
        if allowed is None or not approximate:
            return [], notes
        return self._misspelt_compounds(text, hits, allowed, notes), notes

    def _longer_rivals(self, text: str, best: _Hit, allowed: set[str] | None, codes: list[str],
                       weight: dict[str, float]) -> set[str]:
        """A longer name with one character wrong over the same place (老王府新村2银 for 老王府新村2期, not
        老王府新村) is a rival too: added to `codes` and `weight`, and returned."""
        house = BUILDING_PATTERN.search(text, best.end)
        longer: set[str] = set()
        for length in self.typos["compound"].lengths:
            if length > best.end - best.start and best.start + length <= (house.start() if house else len(text)):
                for name in self.typos["compound"].near(text[best.start:best.start + length]):
                    for code, _, name_weight in self.names["compound"][name]:
                        if (allowed is None or code in allowed) and code not in weight:
                            codes.append(code)
                            weight[code] = 0.85 * name_weight
                            longer.add(code)
        return longer

    def _named_compounds(self, text: str, inside: list[_Hit], allowed: set[str] | None, number: int | None,
                         notes: list[str]) -> list[tuple[str, float, str]]:
        """The compounds named by the longest name found within `allowed`, told apart by building number or by
        an official name over an alias where they can be."""
        best = max(inside, key=lambda h: (h.end - h.start, h.weight))
        # Rivals: the same text, or the best name less a generic ending (东岳花园 in 东岳花园小区).
        rivals = [h for h in inside if (h.start, h.end) == (best.start, best.end)
                  or (h.start == best.start and h.end < best.end
                      and text[h.end:best.end] in COMPOUND_GENERIC_SUFFIXES)]
        codes = sorted({h.code for h in rivals})
        weight = {code: max(h.weight for h in rivals if h.code == code) for code in codes}
        longer = self._longer_rivals(text, best, allowed, codes, weight)
        if len(codes) > 1 and number is not None:
            having = [code for code in codes if number in self.compounds[code].building_numbers]
            if len(having) == 1:
                notes.append("compound told apart by its building number")
                return [(having[0], weight[having[0]] * 0.9, "number")] + [
                    (code, weight[code] * 0.5, "rival") for code in codes if code != having[0]]
        official = [h.code for h in rivals if h.kind == "exact" and (h.start, h.end) == (best.start, best.end)]
        if len(codes) > 1 and len(set(official)) == 1 and not longer:
            # A compound's own name outranks the same words as another's alias (an alias that is someone
            # else's name is the gazetteer's ambiguity, not the writer's).
            notes.append("compound named by its own name; others have it as an alias")
            return [(official[0], 1.0, "name")] + sorted(
                ((code, weight[code] * 0.5, "alias") for code in codes if code != official[0]),
                key=lambda c: (-c[1], c[0]))
        if len(codes) > 1:  # one name, several compounds: a person chooses
            return sorted(((code, weight[code], "rival") for code in codes), key=lambda c: (-c[1], c[0]))
        return [(codes[0], weight[codes[0]], "name")]

    def _misspelt_compounds(self, text: str, hits: list[_Hit], allowed: set[str], notes: list[str]
                            ) -> list[tuple[str, float, str]]:
        """One character wrong, then bigram containment: only among the named division's compounds."""
        rest = text
        for hit in sorted(hits, key=lambda h: -h.start):
            rest = rest[:hit.start] + "|" * (hit.end - hit.start) + rest[hit.end:]
        typo: dict[str, float] = {}
        for _, _, name in self.typos["compound"].find(rest):
            for code, _, weight in self.names["compound"][name]:
                if code in allowed:
                    typo[code] = max(typo.get(code, 0.0), 0.85 * weight)
        if typo:
            notes.append("compound matched with one character wrong")
            return sorted(((code, score, "typo") for code, score in typo.items()), key=lambda c: (-c[1], c[0]))
        fuzzy = self._fuzzy_compounds(rest, allowed)
        if fuzzy:
            notes.append("compound matched approximately")
        return [(code, score, "fuzzy") for code, score in fuzzy]

    def _fuzzy_compounds(self, text: str, allowed: set[str]) -> list[tuple[str, float]]:
        grams = _bigrams(text)
        candidates: dict[str, int] = defaultdict(int)
        for gram in grams:
            for name in self.bigram_index.get(gram, ()):
                candidates[name] += 1
        scored: dict[str, float] = {}
        for name, shared in candidates.items():
            if shared < 2:
                continue
            name_grams = _bigrams(name)
            weight = sum(self.idf[g] for g in name_grams)
            covered = sum(self.idf[g] for g in name_grams & grams)
            containment = covered / weight if weight else 0.0
            if containment >= FUZZY_THRESHOLD:
                for code, _, alias_weight in self.names["compound"][name]:
                    if code in allowed:
                        scored[code] = max(scored.get(code, 0.0), 0.9 * containment * alias_weight)
        return sorted(scored.items(), key=lambda item: (-item[1], item[0]))

    def _match(self, parsed: ParsedAddress) -> AddressMatch:
        text = canonical(parsed.text)
        if not text:
            return AddressMatch()
        r = _Reading(text, parsed.building_number, self._hits(text))
        self._read_street(r)
        self._read_community(r)
        self._read_compound(r)
        best = self._best_option(r)
        r.result.candidates = self._ranked(r.options, r.communities, r.number, r.factor) or self._look_alikes(r)
        if best is not None:
            if self._place_on(r, best):
                return r.result
        elif r.result.candidates:
            r.result.score = r.result.candidates[0]["score"]
        return self._to_review(r)

    def _read_street(self, r: _Reading) -> None:
        """The district and street the text names (with misspelt or unknown ones); streets must lie in the
        named district, and one street at most may be named."""
        r.districts = {h.code for h in r.hits if h.level == "district"}
        streets = {h.code for h in r.hits if h.level == "street"}
        typo_hits, unknown = self._named_divisions(r.text, r.hits, streets, r.districts)
        r.hits = r.hits + typo_hits
        street_hits = [h for h in r.hits if h.level == "street"]
        r.streets = {h.code for h in street_hits}
        for level, token in unknown:
            r.problems.append(f"地址中的{LEVEL_ZH[level]}“{token}”在地名库中找不到")
        if r.districts and r.streets:
            outside = {c for c in r.streets if self.streets[c].parent_code not in r.districts}
            if outside:
                r.problems.append("地址中的街道与区县不符")
                r.streets -= outside
                r.street_ok = False
        if len(r.streets) > 1:
            r.problems.append("地址中写了不止一个街道")
            r.street_ok = False
        r.street = min(r.streets) if len(r.streets) == 1 else None
        r.street_factor = min((h.weight for h in street_hits if h.code == r.street), default=1.0)

    def _read_community(self, r: _Reading) -> None:
        """The community the text names, within the named street (or district); a short form only counts
        within the street named with it. A community named alone gives its street."""
        r.community_hits = [h for h in r.hits if h.level == "community"]
        for hit in r.community_hits:
            if hit.code not in r.communities or hit.weight > r.communities[hit.code].weight:
                r.communities[hit.code] = hit
        if r.community_hits and r.streets:
            within = {c: h for c, h in r.communities.items() if self.communities[c].parent_code in r.streets}
            if not within:
                r.problems.append("地址中的社区不属于所写的街道")
            r.communities = within
        elif r.community_hits and r.districts:
            within = {c: h for c, h in r.communities.items()
                      if self._district_of(self.communities[c].parent_code) in r.districts}
            if not within:
                r.problems.append("地址中的社区不属于所写的区县")
            r.communities = within
        if len(r.communities) > 1:
            r.problems.append("社区名有歧义：" + "、".join(self.communities[c].name for c in sorted(r.communities)))
            r.result.notes.append("community name is ambiguous")
        elif len(r.communities) == 1:
            r.community, hit = next(iter(r.communities.items()))
            r.community_factor = hit.weight
            r.community_ok = True
            if hit.kind != "exact" and r.street is None:
                # 东岳社区 for 东岳小区社区 is taken only within the street named with it.
                r.problems.append(f"“{r.text[hit.start:hit.end]}”像是{self.communities[r.community].name}的简写，"
                                  "但地址没有写明街道")
                r.community_ok = False
            elif r.street is None:
                r.street = self.communities[r.community].parent_code
        r.street_ok = r.street_ok and r.street is not None

    def _allowed_compounds(self, r: _Reading) -> set[str] | None:
        """The compounds the text may name, within what it names above (None: any)."""
        if r.community is not None:
            return {p.code for p in self.compounds_by_community.get(r.community, ())}
        if r.street is not None:
            return set(self.compounds_by_street.get(r.street, ()))
        if r.districts:
            return {code for code, p in self.compounds.items() if self._district_of(p.street_code) in r.districts}
        return None

    def _read_compound(self, r: _Reading) -> None:
        """The compounds the text may mean, scored: those it names within the divisions named, those it names
        elsewhere (never placed on), and without a name the compounds of the community with its building."""
        r.allowed = self._allowed_compounds(r)
        r.options, notes = self._compound_candidates(
            r.text, r.hits, r.allowed, r.number,
            approximate=r.community_ok or (r.street_ok and not r.community_hits))
        r.result.notes.extend(notes)
        named_elsewhere = [h for h in r.hits if h.level == "compound" and r.allowed is not None
                           and h.code not in r.allowed]
        if named_elsewhere and not any(h.level == "compound" and h.code in r.allowed for h in r.hits):
            r.problems.append("地址中的小区不在所写的社区或街道内："
                              + "、".join(sorted({self.compounds[h.code].name for h in named_elsewhere})))
            r.options += [(h.code, 0.5 * h.weight, "elsewhere") for h in named_elsewhere]
        if not r.options and r.community is not None and r.number is not None \
                and not any(h.level == "compound" for h in r.hits):
            self._read_compound_by_building(r)

    def _read_compound_by_building(self, r: _Reading) -> None:
        """No compound named: the community's only compound with building N, or those with one (to review)."""
        inferred = self._compound_by_building(r.community, r.number)
        if inferred is not None:
            r.options, r.by_building = [(inferred, 0.85, "building")], True
            return
        base = _base_name(canonical(self.communities[r.community].name), COMMUNITY_SUFFIXES)
        having = sorted((not canonical(p.name).startswith(base), p.code)
                        for p in self.compounds_by_community.get(r.community, ())
                        if r.number in p.building_numbers)
        r.options = [(code, 0.5 if later else 0.6, "building") for later, code in having]
        if having:
            r.problems.append(f"{self.communities[r.community].name}有 {len(having)} 个小区有 {r.number} 号楼，"
                              "地址没有写小区名")

    def _best_option(self, r: _Reading) -> tuple[str, float, str] | None:
        """The compound to place on, if any: never one named elsewhere nor a guess by building; a tie or a rival
        is a problem."""
        best = r.options[0] if r.options else None
        if best is not None and (best[2] == "elsewhere" or (best[2] == "building" and not r.by_building)):
            best = None
        if best is not None and len(r.options) > 1 and (best[2] == "rival" or r.options[1][1] == best[1]):
            tied = [c for c, score, how in r.options if score == best[1] or how == "rival"]
            r.problems.append("小区名有歧义：" + "、".join(self.compounds[c].name for c in tied))
            r.result.notes.append("compound name is ambiguous: " + ", ".join(tied))
        return best

    def _look_alikes(self, r: _Reading) -> list[dict]:
        """Nothing the text names fits: compounds that look like its words, for the reviewer only."""
        rest = r.text
        for hit in sorted(r.hits, key=lambda h: -h.start):
            if hit.level != "compound":
                rest = rest[:hit.start] + "|" * (hit.end - hit.start) + rest[hit.end:]
        return self._ranked([(code, score, "fuzzy") for code, score in self._fuzzy_compounds(
            rest, r.allowed if r.allowed is not None else set(self.compounds))], {}, r.number, 1.0)

    def _place_on(self, r: _Reading, best: tuple[str, float, str]) -> bool:
        """Score the best compound (and its building N); placed automatically, and True, when nothing disagrees
        and the score clears the threshold."""
        code, score, _ = best
        place = self.compounds[code]
        score *= r.factor
        if r.number is not None and r.number in place.building_numbers:
            level = "building"
        else:
            level = "compound"
            if r.number is not None:
                # The text names a building the compound does not have: it does not agree.
                r.result.notes.append(f"no building {r.number} in the compound")
                r.problems.append(f"{place.name}没有 {r.number} 号楼")
                score *= 0.9
        result = r.result
        result.score = round(score, 3)
        if not r.problems and result.score < self.auto_min_score:
            r.problems.append(f"匹配分数 {result.score:.2f} 低于自动定位的阈值 {self.auto_min_score:.2f}")
        if r.problems:
            return False
        result.auto = True
        result.level, result.compound_code = level, code
        result.community_code, result.street_code = place.community_code, place.street_code
        result.building_number = r.number if level == "building" else None
        return True

    def _to_review(self, r: _Reading) -> AddressMatch:
        """To review: only the divisions that agree with the text are kept, for the queue of the right office."""
        result = r.result
        if r.community_ok:
            result.level, result.community_code = "community", r.community
            result.street_code = self.communities[r.community].parent_code
        elif r.street_ok:
            result.level, result.street_code = "street", r.street
        if not r.options and not r.problems:
            # Only a community or a street, or nothing: the intake's own reasons say so.
            result.score = round(r.factor, 3) if result.level != "none" else 0.0
            return result
        result.review_reason = "；".join(dict.fromkeys(r.problems)) or "地址中的小区无法确定"
        return result

    def _ranked(self, options: list[tuple[str, float, str]], communities: dict[str, _Hit], number: int | None,
                factor: float) -> list[dict]:
        """The candidates a reviewer chooses from, best first."""
        ranked = []
        for code, score, how in options:
            place = self.compounds[code]
            has_building = number is not None and number in place.building_numbers
            ranked.append({"level": "building" if has_building else "compound", "compound_code": code,
                           "compound_name": place.name, "building_number": number if has_building else None,
                           "community_code": place.community_code, "street_code": place.street_code,
                           "score": round(score * factor, 3), "how": how})
        if not ranked:
            for code, hit in communities.items():
                ranked.append({"level": "community", "community_code": code,
                               "community_name": self.communities[code].name,
                               "street_code": self.communities[code].parent_code, "score": round(hit.weight, 3),
                               "how": hit.kind})
        ranked.sort(key=lambda c: (-c["score"], c.get("compound_code") or c["community_code"]))
        return ranked[:CANDIDATES_KEPT]

    def _compound_by_building(self, community: str, number: int) -> str | None:
        """The compound of `community` that `N号楼` must mean: the only one with that building. (A compound
        named after the community, 三里小区 for 三里社区, is only the first candidate when several have it: the
        name is a guess, not what the text says.)"""
        having = [p for p in self.compounds_by_community.get(community, ()) if number in p.building_numbers]
        return having[0].code if len(having) == 1 else None
