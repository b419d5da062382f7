"""Likely duplicates while a complaint is reported (相似诉求 / 重复反映): the one rule every path uses — the field
app's and the map's report form (GET /complaints/similar), Open311 POST (its answer's extension) and joining an
existing ticket instead of filing a new one (居民附议).

Candidates are the tickets within `radius_m` of the report: every open one, however old (a problem still being
handled is the one a resident re-reports; its time part is 0 past the window), and closed ones closed at most
`window_days` before it. One SQL statement reads them (the complaint's GiST index picks the box, the
ticket's unique index on complaint_id joins each). Each gets a score in [0, 1], the weighted mean of five parts:

| part | value |
|---|---|
| distance | 1 − metres / radius |
| time | 1 − days since the ticket was reported (open) or closed / window |
| text | TF-IDF cosine of character 1–2-grams (place names, numbers removed); see below |
| category | 1 when the report's category (if known) is the ticket's |
| building | 1 when both lie in the same building (for those who may see buildings) |

The text part's IDF comes from the city's newest complaint texts (common hotline words weigh little); with a
trained dispatch model (gis/dispatch/) it is the larger of that cosine and the cosine of the model's category
probabilities of the two texts, so 厨房漏水 and 卫生间渗水到楼下 agree though they share one character.

Weights, radius, window, threshold and how many are shown: gis.settings.SimilarSettings (GRIDGOV_SIMILAR_*).
Tickets scoring at least `threshold` are shown, best first, at most `max_results`; only open ones can be joined
(a closed ticket's problem coming back is a new ticket, and a repeat complaint for the rates).

Who sees what follows gis.access.visibility: the place, address, text and building of each ticket as the caller's
role may see them. For the public the radius and the distance part are measured on the snapped place (as every
public place filter is), the building part does not count, and the answer carries the score alone — no parts,
no distance, no text — so the public learns no exact point, name or phone number.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal, complaint_scope_sql
from gis.access.visibility import (
    POLICY,
    Visibility,
    address_sql,
    building_sql,
    place_near_sql,
    place_sql,
    snap_point,
    text_sql,
    visibility,
)
from gis.errors import InvalidInput, NotFound
from gis.intake.address import normalise
from gis.settings import SimilarSettings, similar_settings
from gis.tickets.models import OPEN_SQL, OPEN_STATES
from gis.times import iso_text

PARTS = ("distance", "time", "text", "category", "building")
"""The parts of the score, in the order they are listed."""
MAX_TEXT = 4000
SCAN_LIMIT = 200
"""Most candidates scored (the nearest first); a radius of a few hundred metres holds far fewer open tickets."""


@dataclass
class NewReport:
    """A report being filled in: the place (a WGS-84 point), when, the category if chosen and the text."""

    lon: float
    lat: float
    at: datetime
    text: str | None = None
    category_code: str | None = None
    exclude_complaint_id: int | None = None
    """The report itself once stored (Open311 POST answers after storing)."""


# -- text similarity ---------------------------------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]+")
_UNIT_WORDS = re.compile(r"号楼|单元|号院|栋|室")


def clean(value: str | None, names: tuple[str, ...] = ()) -> str:
    """The text compared: normalised (gis.intake.address.normalise), without the names of the units around the
    place (street, community, compound), numbers and unit words — they say where, not what."""
    cleaned = normalise(value)
    for name in sorted({normalise(n) for n in names if n}, key=len, reverse=True):
        if len(name) >= 2:
            cleaned = cleaned.replace(name, "")
    return _UNIT_WORDS.sub("", _DIGITS.sub("", cleaned))


def grams(cleaned: str) -> Counter:
    """Character unigrams and bigrams of a cleaned text."""
    found = Counter(cleaned)
    found.update(cleaned[i:i + 2] for i in range(len(cleaned) - 1))
    return found


@dataclass
class Idf:
    """Inverse document frequencies of character n-grams over a sample of the city's complaint texts."""

    documents: int
    frequency: dict[str, int]

    def weight(self, gram: str) -> float:
        """Smoothed IDF (scikit-learn's formula): common hotline words weigh little, rare ones much."""
        return math.log((1 + self.documents) / (1 + self.frequency.get(gram, 0))) + 1.0

    def vector(self, counts: Counter) -> dict[str, float]:
        """Sublinear TF times IDF."""
        return {g: (1.0 + math.log(n)) * self.weight(g) for g, n in counts.items()}


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    """Cosine of two sparse vectors (0 when either is empty)."""
    if not a or not b:
        return 0.0
    if len(b) < len(a):
        a, b = b, a
    dot = sum(v * b.get(k, 0.0) for k, v in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return max(0.0, min(1.0, dot / norm)) if norm else 0.0


def build_idf(texts: list[str]) -> Idf:
    """The IDF table of some texts (each counted once per n-gram)."""
    frequency: Counter = Counter()
    for value in texts:
        frequency.update(set(grams(clean(value))))
    return Idf(len(texts), dict(frequency))


_IDF: dict[str, tuple[float, Idf]] = {}
IDF_TTL_S = 600.0


async def idf_for(conn: AsyncConnection, sample: int) -> Idf:
    """The IDF of this database's newest complaint texts, rebuilt at most every ten minutes."""
    key = f"{conn.engine.url}:{sample}"
    cached = _IDF.get(key)
    if cached is None or time.monotonic() - cached[0] > IDF_TTL_S:
        rows = (await conn.execute(text(
            "SELECT description FROM complaint ORDER BY id DESC LIMIT :n"), {"n": sample})).scalars().all()
        cached = (time.monotonic(), build_idf([r or "" for r in rows]))
        _IDF[key] = cached
    return cached[1]


async def _model_agreement(conn: AsyncConnection, new_text: str, others: list[str]) -> list[float] | None:
    """Cosine of the dispatch model's category probabilities of the new text and each other text, or None when no
    model is trained."""
    if not others or not new_text:
        return None
    from gis.dispatch import store as dispatch_store  # loads scikit-learn only where a model exists

    loaded = await dispatch_store.current_model(conn)
    if loaded is None:
        return None
    from gis.dispatch.model import clean_text

    probabilities, _ = loaded[1].category_probabilities([clean_text(new_text)] + [clean_text(o) for o in others])
    first = probabilities[0]
    first_norm = float((first * first).sum()) ** 0.5
    out = []
    for row in probabilities[1:]:
        norm = first_norm * float((row * row).sum()) ** 0.5
        out.append(float((first * row).sum()) / norm if norm else 0.0)
    return out


# -- candidates --------------------------------------------------------------------------------------------------


def candidates_sql(view: Visibility, scope: str = "TRUE") -> str:
    """The one statement that reads the candidates of a report, as `view` may see them, with whether each lies in
    the caller's scope (`scope`, a condition on complaint `n`). Parameters: lon, lat, radius_m, at, window_days,
    exclude, scan, and the scope's."""
    place = place_sql(view, "n.geom")
    near = place_near_sql(view, "c.geom", "CAST(:lon AS float8)", "CAST(:lat AS float8)", "CAST(:radius_m AS float8)")
    current = "ORDER BY u.valid_to IS NULL DESC, u.valid_from DESC LIMIT 1"
    return f"""
WITH q AS (SELECT ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326) AS g),
near AS (
    -- the box and circle alone pick the candidates through the GiST index (OFFSET 0 keeps the time and ticket
    -- conditions out of that scan)
    SELECT c.* FROM complaint c WHERE {near} OFFSET 0)
SELECT t.id AS ticket_id, t.state, t.reported_at, t.closed_at, n.id AS complaint_id, n.category_code,
       cat.name_zh AS category_name, ST_Distance(CAST({place} AS geography), CAST(q.g AS geography), false) AS metres,
       ST_X({place}) AS lon, ST_Y({place}) AS lat, n.description AS compared_text,
       {text_sql(view, "n.description")} AS description, {address_sql(view, "n")} AS address,
       {building_sql(view, "n")} AS building_code, ({scope}) AS in_scope,
       {address_sql(POLICY["public"], "n")} AS public_address,
       (SELECT b.code FROM building b WHERE b.valid_to IS NULL AND ST_Intersects(b.geom, q.g)
        ORDER BY b.code LIMIT 1) AS here_building,
       ARRAY[(SELECT u.name FROM street u WHERE u.code = n.street_code {current}),
             (SELECT u.name FROM community u WHERE u.code = n.community_code {current}),
             (SELECT u.name FROM compound u WHERE u.code = n.compound_code {current})] AS names
FROM near n CROSS JOIN q
JOIN ticket t ON t.complaint_id = n.id
JOIN category cat ON cat.code = n.category_code
WHERE n.id IS DISTINCT FROM CAST(:exclude AS bigint)
  AND n.reported_at <= CAST(:at AS timestamptz)
  AND (t.state IN {OPEN_SQL}
       OR (t.state = 'closed' AND t.closed_at <= CAST(:at AS timestamptz)
           AND t.closed_at >= CAST(:at AS timestamptz) - make_interval(secs => CAST(:window_days AS float8) * 86400)))
ORDER BY metres, t.id
LIMIT CAST(:scan AS int)"""


def check_report(lon: float | None, lat: float | None, report_text: str | None) -> None:
    """A report's place and text, checked (InvalidInput in Chinese)."""
    if lon is None or lat is None:
        raise InvalidInput("请给出位置：经度 lon 和纬度 lat（WGS-84），或已定位的楼栋、微网格")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise InvalidInput("经度须在 -180 到 180 之间，纬度须在 -90 到 90 之间（WGS-84 度）")
    if report_text is not None and len(report_text) > MAX_TEXT:
        raise InvalidInput(f"问题描述最多 {MAX_TEXT} 个字")


async def place_of(conn: AsyncConnection, code: str) -> tuple[float, float]:
    """A placed building's or micro-grid's representative point (current version); NotFound otherwise."""
    row = (await conn.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (
            SELECT ST_PointOnSurface(geom) AS p FROM building WHERE code = :code AND valid_to IS NULL
            UNION ALL
            SELECT ST_PointOnSurface(geom) FROM micro_grid WHERE code = :code AND valid_to IS NULL) x LIMIT 1"""),
        {"code": code})).first()
    if row is None:
        raise NotFound(f"没有编码为 {code[:40]} 的楼栋或微网格")
    return float(row[0]), float(row[1])


def _days(delta) -> float:
    return max(0.0, delta.total_seconds() / 86400.0)


def score_parts(report: NewReport, row, text_value: float, settings: SimilarSettings) -> dict[str, float]:
    """The five parts of one candidate's score, each in [0, 1]."""
    since = row.closed_at if row.state == "closed" and row.closed_at is not None else row.reported_at
    return {
        "distance": max(0.0, 1.0 - row.metres / settings.radius_m) if settings.radius_m > 0 else 0.0,
        "time": max(0.0, 1.0 - _days(report.at - since) / settings.window_days) if settings.window_days > 0 else 0.0,
        "text": text_value,
        "category": 1.0 if report.category_code and report.category_code == row.category_code else 0.0,
        "building": 1.0 if row.building_code and row.building_code == row.here_building else 0.0,
    }


def weighted(parts: dict[str, float], settings: SimilarSettings) -> float:
    """The score: the parts' weighted mean, in [0, 1]."""
    weights = {part: max(0.0, getattr(settings, f"weight_{part}")) for part in PARTS}
    total = sum(weights.values())
    return sum(weights[p] * parts[p] for p in PARTS) / total if total else 0.0


async def find_similar(conn: AsyncConnection, principal: Principal, report: NewReport,
                       settings: SimilarSettings | None = None) -> list[dict]:
    """Every candidate of `report` scored, best first (above and below the threshold), as the caller may see it:
    dicts with the row's visible fields, `score`, `parts` and `joinable`."""
    view = visibility(principal)
    settings = settings or similar_settings()
    scope, scope_params = complaint_scope_sql(principal, "n")
    rows = (await conn.execute(text(candidates_sql(view, scope)), {
        **scope_params, "lon": report.lon, "lat": report.lat, "radius_m": settings.radius_m, "at": report.at,
        "window_days": settings.window_days, "exclude": report.exclude_complaint_id, "scan": SCAN_LIMIT})).all()
    if not rows:
        return []
    idf = await idf_for(conn, settings.idf_sample)
    names = tuple({name for row in rows for name in (row.names or []) if name})
    new_vector = idf.vector(grams(clean(report.text, names)))
    lexical = [cosine(new_vector, idf.vector(grams(clean(row.compared_text, names)))) for row in rows]
    agreement = (await _model_agreement(conn, report.text or "", [row.compared_text or "" for row in rows])
                 if settings.use_model and new_vector else None)
    found = []
    for i, row in enumerate(rows):
        text_value = max(lexical[i], agreement[i]) if agreement is not None else lexical[i]
        parts = score_parts(report, row, round(text_value, 4), settings)
        found.append({"row": row, "parts": parts, "score": weighted(parts, settings),
                      "joinable": row.state in OPEN_STATES})
    found.sort(key=lambda f: (-f["score"], f["row"].metres, f["row"].ticket_id))
    return found


def shown(item: dict, view: Visibility) -> dict:
    """One likely duplicate as the caller's role may see it; a ticket outside a staff member's scope as the public
    sees it (snapped place, compound address, the score alone)."""
    row = item["row"]
    if not row.in_scope:
        view = POLICY["public"]
    lon, lat = snap_point(view, row.lon, row.lat)
    out = {"ticket_id": row.ticket_id, "service_request_id": str(row.complaint_id), "score": round(item["score"], 2),
           "score_percent": round(100 * item["score"]), "state": row.state, "open": item["joinable"],
           "joinable": item["joinable"], "category_code": row.category_code, "category_name": row.category_name,
           "address": row.address if view.exact_place else row.public_address, "reported_at": iso_text(row.reported_at),
           "lon": round(lon, 7) if lon is not None else None, "lat": round(lat, 7) if lat is not None else None}
    if view.exact_place:
        out.update(description=row.description, building_code=row.building_code, distance_m=round(row.metres, 1),
                   parts={part: round(value, 3) for part, value in item["parts"].items()})
    return out


def rule(settings: SimilarSettings) -> dict:
    """The rule in force, as the answer states it."""
    return {"radius_m": settings.radius_m, "window_days": settings.window_days, "threshold": settings.threshold,
            "max_results": settings.max_results,
            "weights": {part: getattr(settings, f"weight_{part}") for part in PARTS}}


async def likely_duplicates(conn: AsyncConnection, principal: Principal, report: NewReport,
                            settings: SimilarSettings | None = None) -> dict:
    """The likely duplicates of a report for the caller (GET /complaints/similar, Open311 POST): those scoring at
    least the threshold, best first, at most `max_results`, each as the caller's role may see it."""
    settings = settings or similar_settings()
    check_report(report.lon, report.lat, report.text)
    view = visibility(principal)
    found = await find_similar(conn, principal, report, settings)
    above = [item for item in found if item["score"] >= settings.threshold][:settings.max_results]
    return {"similar": [shown(item, view) for item in above], "considered": len(found), "rule": rule(settings)}


async def check_joinable(conn: AsyncConnection, principal: Principal, report: NewReport, ticket_id: int,
                         settings: SimilarSettings | None = None) -> None:
    """A report may join ticket `ticket_id` only when the rule scores it at least the threshold for the report and
    it is open; InvalidInput (in Chinese) otherwise, so no report joins a ticket it does not resemble."""
    settings = settings or similar_settings()
    check_report(report.lon, report.lat, report.text)
    # any ticket at or above the threshold, not only the few shown (newer duplicates may crowd it out of those)
    found = await find_similar(conn, principal, report, settings)
    match = next((item for item in found
                  if item["row"].ticket_id == ticket_id and item["score"] >= settings.threshold), None)
    if match is None:
        raise InvalidInput(f"工单 #{ticket_id} 不在本次上报的相似工单之中（位置、时间或内容不相近），无法加入；"
                           "请照常上报")
    if not match["joinable"]:
        raise InvalidInput(f"工单 #{ticket_id} 已办结，无法加入；如问题仍在，请照常上报")


def now() -> datetime:
    """The report time of a report being typed."""
    return datetime.now(timezone.utc)
