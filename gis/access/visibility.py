"""Who sees what (可见范围): gridgov's one privacy policy, used by every path that reads complaints, tickets,
histories, photos and the contacts of responsible parties.

| role | complaint place | address | description | reporter | staff in histories | party contacts |
|---|---|---|---|---|---|---|
| administrator | exact | as given | as given | yes | names and notes | all |
| street, community, grid worker, company (in scope) | exact | as given | as given | yes | names, notes | own chain |
| planner | exact | building (N号楼) | phone and ID numbers masked | no | neither | none |
| public | snapped to 0.0005° | compound | none | no | neither | none |

"Own chain" means the units at, above and below the caller's scope: a street office sees the contacts of its
street, its communities, grids, compounds and buildings (and the district above), but not another street's.

The public place is the complaint's point snapped to the policy's lattice, and every public filter tests that
snapped point, not the stored one, so no sequence of filters narrows a place below its cell. Addresses are
composed from the layers at the allowed level (street, community, compound, building) rather than cut out of
the resident's free text, which may name a unit or a room anywhere in it.

Each rule renders to SQL here, so queries built elsewhere compose the policy instead of restating it; the
masking of numbers in free text is one list of patterns rendered both as Python and as PostgreSQL regular
expressions (the tests hold the two renderings to the same answers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gis.access.auth import Principal

PUBLIC_PLACE_GRID_DEG = 0.0005
"""The public sees a complaint's place snapped to a 0.0005° lattice (about 55 m by 45 m around Tai'an): enough
to see where problems gather, too coarse to point at a household's door."""

ADDRESS_LEVELS = ("full", "building", "compound")
DESCRIPTION_MODES = ("full", "masked", "none")
CONTACT_MODES = ("all", "chain", "none")


@dataclass(frozen=True)
class Visibility:
    """What one role may see; build SQL from it with the functions below."""

    role: str
    place_grid_deg: float | None
    """None: the exact point; otherwise the lattice the place is snapped to."""
    address: str
    """'full' (the address as given), 'building' (street, community, compound, N号楼) or 'compound'."""
    description: str
    """'full', 'masked' (phone and ID numbers masked) or 'none'."""
    reporter: bool
    """Reporters' names and phones, rating comments, who was informed."""
    history_people: bool
    """Staff usernames and their notes in ticket histories."""
    photos: bool
    handling: bool
    """How a ticket is handled: assignees, deadlines, counts of send-backs and reopenings, ratings."""
    contacts: str
    """Names and phones of party secretaries, grid workers, building leaders, company and committee contacts:
    'all', 'chain' (the caller's own units, those above and those below) or 'none'."""

    @property
    def exact_place(self) -> bool:
        return self.place_grid_deg is None


_STAFF = dict(place_grid_deg=None, address="full", description="full", reporter=True, history_people=True,
              photos=True, handling=True)
POLICY: dict[str, Visibility] = {
    "admin": Visibility("admin", contacts="all", **_STAFF),
    "street": Visibility("street", contacts="chain", **_STAFF),
    "community": Visibility("community", contacts="chain", **_STAFF),
    "grid_worker": Visibility("grid_worker", contacts="chain", **_STAFF),
    "property_company": Visibility("property_company", contacts="chain", **_STAFF),
    "planner": Visibility("planner", place_grid_deg=None, address="building", description="masked",
                          reporter=False, history_people=False, photos=False, handling=True, contacts="none"),
    "public": Visibility("public", place_grid_deg=PUBLIC_PLACE_GRID_DEG, address="compound", description="none",
                         reporter=False, history_people=False, photos=False, handling=False, contacts="none"),
}


def visibility(principal: Principal) -> Visibility:
    """The policy for the caller's role (an unknown role gets the public's)."""
    return POLICY.get(principal.role, POLICY["public"])


# -- places -------------------------------------------------------------------------------------------------------


def place_sql(view: Visibility, geom: str = "c.geom") -> str:
    """The complaint's place as this caller may see it (a geometry expression)."""
    if view.exact_place:
        return geom
    return f"ST_SnapToGrid({geom}, {view.place_grid_deg!r})"


def place_in_box_sql(view: Visibility, geom: str, envelope: str) -> str:
    """A bounding-box test on the place the caller sees: for snapped places the stored point is searched a
    lattice step wider (so the index is used) and the snapped point decides."""
    if view.exact_place:
        return f"{geom} && {envelope}"
    step = view.place_grid_deg
    return f"({geom} && ST_Expand({envelope}, {step!r}) AND {place_sql(view, geom)} && {envelope})"


def place_near_sql(view: Visibility, geom: str, lon: str, lat: str, metres: str) -> str:
    """A distance test (metres on the spheroid) on the place the caller sees, around the point (`lon`, `lat`),
    all three SQL expressions: the stored point is searched in a box a little wider than the circle (so the index
    is used; 1° of latitude is never shorter than 110 km) and a lattice step more, and the snapped point decides."""
    centre = f"ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)"
    step = 0.0 if view.exact_place else view.place_grid_deg
    box = (f"ST_Expand({centre}, {metres} / (110000.0 * greatest(cos(radians({lat})), 0.01)) + {step!r}, "
           f"{metres} / 110000.0 + {step!r})")
    return (f"({geom} && {box} AND ST_DWithin(CAST({place_sql(view, geom)} AS geography), "
            f"CAST({centre} AS geography), {metres}))")


def place_in_area_sql(view: Visibility, geom: str, area: str) -> str:
    """An area (polygon) test on the place the caller sees."""
    return f"ST_Intersects({place_sql(view, geom)}, {area})"


def snap_point(view: Visibility, lon: float | None, lat: float | None) -> tuple[float | None, float | None]:
    """A point as this caller may see it, in Python (the same lattice as `place_sql`)."""
    if lon is None or lat is None or view.exact_place:
        return lon, lat
    step = view.place_grid_deg
    return round(round(lon / step) * step, 7), round(round(lat / step) * step, 7)


# -- addresses ----------------------------------------------------------------------------------------------------

_CURRENT = "ORDER BY u.valid_to IS NULL DESC, u.valid_from DESC LIMIT 1"


def address_sql(view: Visibility, alias: str = "c") -> str:
    """The complaint's address at the level the caller may see (a text expression over `complaint {alias}`)."""
    if view.address == "full":
        return f"{alias}.address"
    parts = [
        f"(SELECT u.name FROM street u WHERE u.code = {alias}.street_code {_CURRENT})",
        f"(SELECT u.name FROM community u WHERE u.code = {alias}.community_code {_CURRENT})",
        f"(SELECT u.name FROM compound u WHERE u.code = {alias}.compound_code {_CURRENT})",
    ]
    if view.address == "building":
        parts.append(f"(SELECT u.number || '号楼' FROM building u WHERE u.code = {alias}.building_code {_CURRENT})")
    return f"nullif(concat({', '.join(parts)}), '')"


def building_sql(view: Visibility, alias: str = "c") -> str:
    """The building code, for those who may see a place down to the building."""
    return f"{alias}.building_code" if view.address in ("full", "building") else "NULL::text"


# -- free text ----------------------------------------------------------------------------------------------------

PERSONAL_NUMBER_PATTERNS: tuple[tuple[str, str], ...] = (
    # resident identity card numbers (18 characters, or the old 15 digits): keep the region and the last four
    (r"(?<![0-9A-Za-z])([1-9][0-9]{5})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])", r"\1********\2"),
    (r"(?<![0-9A-Za-z])([1-9][0-9]{5})[0-9]{6}([0-9]{3})(?![0-9A-Za-z])", r"\1******\2"),
    # mobile numbers, optionally after +86 or 86 (kept), written 3-4-4 with spaces or hyphens or without
    (r"(?<![0-9])((?:\+?86[- ]?)?)(1[3-9][0-9])[- ]?[0-9]{4}[- ]?([0-9]{4})(?![0-9])", r"\1\2****\3"),
    # landlines with an area code: 0538-1234567, 0538 12345678
    (r"(?<![0-9])(0[1-9][0-9]{1,2})[- ]?[0-9]{3,4}([0-9]{4})(?![0-9])", r"\1-****\2"),
    # a household's door: the unit (单元) and the room (室, 户) below the building
    (r"[0-9０-９一二三四五六七八九十]+(单元)", r"*\1"),
    (r"[0-9０-９]{2,5}(室|户|房间)", r"***\1"),
)
"""Phone and identity numbers, units and rooms in free text, masked for those who see the text but not the
people: (pattern, replacement) pairs written in the subset that Python's `re` and PostgreSQL's regular expressions
read alike: character classes, counted repeats, lookbehind and lookahead, and backreferences."""

_COMPILED = tuple((re.compile(pattern), replacement) for pattern, replacement in PERSONAL_NUMBER_PATTERNS)


def mask_numbers(value: str | None) -> str | None:
    """Phone and identity-card numbers, units and rooms in free text masked (138****5678, *单元***室)."""
    if not value:
        return value
    for pattern, replacement in _COMPILED:
        value = pattern.sub(replacement, value)
    return value


def masked_sql(expression: str) -> str:
    """`mask_numbers` as a PostgreSQL expression."""
    for pattern, replacement in PERSONAL_NUMBER_PATTERNS:
        expression = f"regexp_replace({expression}, '{pattern}', '{replacement}', 'g')"
    return expression


def text_sql(view: Visibility, expression: str) -> str:
    """Free text written by residents (descriptions) as the caller may see it."""
    if view.description == "full":
        return expression
    if view.description == "masked":
        return masked_sql(expression)
    return "NULL::text"


def text_value(view: Visibility, value: str | None) -> str | None:
    """`text_sql` for a value already in Python."""
    if view.description == "full":
        return value
    if view.description == "masked":
        return mask_numbers(value)
    return None


# -- people -------------------------------------------------------------------------------------------------------


def contacts_sql(view: Visibility, principal: Principal, unit_code: str,
                 place_code: str | None = None) -> tuple[str, dict]:
    """A boolean expression: may the caller see the contacts of the people serving the unit `unit_code`
    (a street, community, grid, micro-grid, compound or building code, or a company's credit code)?

    Codes nest by prefix (community = street + 3 digits, compound = community + C + 4, building = micro-grid
    + 3), so a unit is in the caller's chain when its code and one of the scope's codes are prefixes of one
    another. `place_code`, when given, is the micro-grid of the place asked about: the people serving that
    place are shown to those whose chain holds the place (a grid worker sees the compound's company in its
    grid, though compounds are coded under the community). A property company also sees its own company
    branch."""
    if view.contacts == "all":
        return "TRUE", {}
    if view.contacts == "none" or not principal.scope and principal.company_id is None:
        return "FALSE", {}
    codes = [unit_code] if place_code is None else [unit_code, place_code]
    tests = " OR ".join(f"starts_with({code}, s.code) OR starts_with(s.code, {code})" for code in codes)
    expression = f"EXISTS (SELECT 1 FROM unnest(CAST(:contact_scope AS text[])) AS s(code) WHERE {tests})"
    params: dict = {"contact_scope": list(principal.scope)}
    if principal.role == "property_company" and principal.company_id is not None:
        expression = (f"({expression} OR {unit_code} = "
                      "(SELECT credit_code FROM property_company WHERE id = CAST(:contact_company AS integer)))")
        params["contact_company"] = principal.company_id
    return expression, params


# -- complaint attributes (tiles, OGC features) -------------------------------------------------------------------

COMPLAINT_PUBLIC_COLUMNS = ("category_code", "source", "reported_at", "street_code", "community_code",
                            "grid_code", "compound_code")
COMPLAINT_DETAIL_COLUMNS = ("micro_grid_code", "building_code", "address", "description", "match_level",
                            "placement")
COMPLAINT_REPORTER_COLUMNS = ("reporter_name", "reporter_phone")


def complaint_columns(view: Visibility) -> tuple[str, ...]:
    """The complaint attributes the caller may see, by name."""
    if not view.exact_place:
        # a snapped place with a building, an address or the text beside it would undo the snapping
        return COMPLAINT_PUBLIC_COLUMNS
    columns = COMPLAINT_PUBLIC_COLUMNS + COMPLAINT_DETAIL_COLUMNS
    return columns + COMPLAINT_REPORTER_COLUMNS if view.reporter else columns


def complaint_column_sql(view: Visibility, name: str, alias: str = "c") -> str:
    """The SQL of one complaint attribute as the caller may see it (names from `complaint_columns`)."""
    if name not in complaint_columns(view):
        raise ValueError(f"{name} is not a complaint attribute the {view.role} role may see")
    if name == "address":
        return address_sql(view, alias)
    if name == "description":
        return text_sql(view, f"{alias}.description")
    if name == "building_code":
        return building_sql(view, alias)
    return f"{alias}.{name}"


# -- stored objects with an owner ---------------------------------------------------------------------------------


def owned_sql(principal: Principal, alias: str) -> tuple[str, dict]:
    """May the caller fetch a stored object (an import batch and its rejected rows) by id? The administrator
    always; another user when it is their own, or when its owner's scope lies inside theirs. Objects without an
    owner (made from the command line) are the administrator's."""
    if principal.role == "admin":
        return "TRUE", {}
    if principal.user_id is None:
        return "FALSE", {}
    return (f"({alias}.owner_user_id = CAST(:owner_me AS bigint) OR ({alias}.owner_scope IS NOT NULL "
            f"AND cardinality({alias}.owner_scope) > 0 AND {alias}.owner_scope <@ CAST(:owner_scope AS text[])))"), {
        "owner_me": principal.user_id, "owner_scope": list(principal.scope)}
