"""OGC API - Features (Part 1: Core): collections and items, with GeoJSON made by PostGIS.

Collections: every pyramid layer and compounds (current versions by default; `datetime` selects the versions
valid then), party organisations (their geometry is the unit they serve; a company branch gets the compounds of
its company), and complaints. Each is filtered by the caller's role: complaints keep to the role's scope, the
public sees them anonymised (no reporter, address, description or building; locations snapped to a ~50 m grid),
and personal data (reporters, party secretaries) only reaches callers who may see it.

A page is one SQL statement: the filtered, ordered slice of rows turned into a `features` array by
`json_agg(ST_AsGeoJSON(...))`; Python only wraps that text in the collection's envelope.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone

from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Numeric, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gis import STORAGE_SRID
from gis.access.auth import Principal, complaint_scope_sql
from gis.access.visibility import (
    Visibility,
    complaint_column_sql,
    complaint_columns,
    contacts_sql,
    place_in_box_sql,
    place_sql,
    visibility,
)
from gis.errors import InvalidInput, NotFound
from gis.layers.models import Base
from gis.layers.pyramid import LAYERS
from gis.numbers import parse_float, parse_int
from gis.serve.bbox import BBox, parse_bbox
from gis.serve.tiles import DataVersions, tile_settings
from gis.times import is_infinite, iso_text

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
COORDINATE_DECIMALS = 7
BIGINT_MAX = 2**63 - 1
RESERVED_PARAMETERS = ("limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "f")


@dataclass(frozen=True)
class Property:
    name: str
    sql: str
    kind: type
    """Python type of the values, to parse filter parameters: str, int, float, bool, date or datetime."""


@dataclass
class Query:
    """The SQL pieces of one collection as seen by one caller."""

    source: str
    fid: str
    order: tuple[str, ...]
    geom_filter: str
    """Indexed geometry column used for bbox searches."""
    geom_output: str
    properties: dict[str, Property]
    where: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    temporal: tuple[str, str | None] | None = None
    """(start, end) columns of each feature's time; end None for an instant."""
    place_view: Visibility | None = None
    """For complaints: the caller's visibility, whose place (exact or snapped) bbox searches test."""


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    tables: tuple[str, ...]
    """Tables whose changes invalidate cached counts and extents."""
    kind: str
    """'boundary', 'party' or 'complaint'."""


def _column_kind(table: str, column: str) -> type:
    sql_type = Base.metadata.tables[table].c[column].type
    for sql_kind, kind in ((Boolean, bool), (Integer, int), (Numeric, float), (Float, float), (DateTime, datetime),
                           (Date, date)):
        if isinstance(sql_type, sql_kind):
            return kind
    return str


def _collections() -> dict[str, Collection]:
    found = {
        name: Collection(name, f"{layer.title} ({layer.title_zh})",
                         f"{layer.title} boundaries; current versions unless `datetime` asks for another time.",
                         (name,), "boundary")
        for name, layer in LAYERS.items()
    }
    found["party_organisation"] = Collection(
        "party_organisation", "Party organisations (党组织)",
        "Party organisations, drawn as the unit each serves (community, grid, compound, building, or the "
        "compounds of a property company).",
        ("party_organisation", "community", "grid", "compound", "building", "property_company"), "party")
    found["complaint"] = Collection(
        "complaint", "Complaints (投诉)",
        "Residents' complaints. The public sees them anonymised: no reporter, address, description or building, "
        "and locations snapped to a grid of about 50 m.",
        ("complaint",), "complaint")
    return found


COLLECTIONS = _collections()


def get_collection(collection_id: str) -> Collection:
    """The OGC collection called `collection_id`; NotFound for any other."""
    try:
        return COLLECTIONS[collection_id]
    except KeyError:
        raise NotFound(f"no collection called {collection_id!r}") from None


def _boundary_query(collection: Collection) -> Query:
    layer = LAYERS[collection.id]
    names = tuple(dict.fromkeys((*layer.properties, "valid_from", "valid_to")))
    properties = {name: Property(name, f"t.{name}", _column_kind(layer.name, name)) for name in names}
    return Query(
        source=f"{layer.name} t",
        fid="CASE WHEN t.valid_to IS NULL THEN t.code ELSE t.code || '@' || t.valid_from END",
        order=("t.code", "t.valid_from"),
        geom_filter="t.geom",
        geom_output="t.geom",
        properties=properties,
        temporal=("t.valid_from", "t.valid_to"),
    )


PARTY_UNIT_GEOMETRY = """
    LEFT JOIN LATERAL (
        SELECT geom FROM community WHERE p.kind = 'community_committee' AND code = p.unit_code AND valid_to IS NULL
        UNION ALL
        SELECT geom FROM grid WHERE p.kind = 'grid_branch' AND code = p.unit_code AND valid_to IS NULL
        UNION ALL
        SELECT geom FROM compound WHERE p.kind = 'compound_branch' AND code = p.unit_code AND valid_to IS NULL
        UNION ALL
        SELECT geom FROM building WHERE p.kind = 'building_group' AND code = p.unit_code AND valid_to IS NULL
        UNION ALL
        SELECT ST_Multi(ST_Union(c.geom)) FROM compound c JOIN property_company pc ON pc.id = c.property_company_id
        WHERE p.kind = 'company_branch' AND pc.credit_code = p.unit_code AND c.valid_to IS NULL
        LIMIT 1
    ) unit ON TRUE
"""


def _party_query(principal: Principal) -> Query:
    names = ["code", "kind", "name", "unit_code", "member_count", "founded_on"]
    properties = {name: Property(name, f"p.{name}", _column_kind("party_organisation", name)) for name in names}
    view = visibility(principal)
    params: dict = {}
    if view.contacts != "none":
        # the secretary's contact only for organisations in the caller's own chain of units
        shown, params = contacts_sql(view, principal, "p.unit_code")
        for name in ("secretary_name", "secretary_phone"):
            properties[name] = Property(name, f"CASE WHEN {shown} THEN p.{name} END",
                                        _column_kind("party_organisation", name))
    return Query(
        params=params,
        source=f"party_organisation p {PARTY_UNIT_GEOMETRY}",
        fid="p.code",
        order=("p.code",),
        geom_filter="unit.geom",
        geom_output="unit.geom",
        properties=properties,
    )


def _complaint_query(principal: Principal) -> Query:
    view = visibility(principal)
    properties = {name: Property(name, complaint_column_sql(view, name, "c"), _column_kind("complaint", name))
                  for name in complaint_columns(view)}
    properties["category_name"] = Property("category_name", "cat.name", str)
    scope, params = complaint_scope_sql(principal, alias="c")
    query = Query(
        source="complaint c LEFT JOIN category cat ON cat.code = c.category_code",
        fid="c.id",
        order=("c.id",),
        geom_filter="c.geom",
        geom_output="c.geom",
        properties=properties,
        where=[scope],
        params=params,
        temporal=("c.reported_at", None),
    )
    query.geom_output = place_sql(view, "c.geom")
    query.place_view = view
    return query


def collection_query(collection: Collection, principal: Principal) -> Query:
    """The SQL pieces of a collection as `principal` may see it (boundaries, party organisations or complaints)."""
    if collection.kind == "boundary":
        return _boundary_query(collection)
    if collection.kind == "party":
        return _party_query(principal)
    return _complaint_query(principal)


# -- parameters --------------------------------------------------------------------------------------------------


def parse_limit(value: str | None) -> int:
    """The `limit` parameter: DEFAULT_LIMIT when absent, larger values cut to MAX_LIMIT as the standard asks;
    InvalidInput for anything but a positive integer."""
    if value is None:
        return DEFAULT_LIMIT
    limit = parse_int(value, "limit", low=1, high=BIGINT_MAX)  # strict (gis.numbers): no '1_0', no '١٠'
    return min(limit, MAX_LIMIT)  # larger values mean the maximum, as the standard asks


def parse_offset(value: str | None) -> int:
    """The `offset` parameter: 0 when absent; InvalidInput for anything but a non-negative integer."""
    if value is None:
        return 0
    return parse_int(value, "offset", low=0, high=BIGINT_MAX)


def _parse_instant(value: str, end: bool) -> datetime:
    """An RFC 3339 date or date-time as an instant in UTC; a date means its first (or, for an end, last) moment.
    Instants beyond what Python holds in UTC (9999-12-31 ends, far zones) are clamped to the first or last one."""
    value = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value, re.ASCII):
            moment = datetime.combine(date.fromisoformat(value), time.max if end else time.min, tzinfo=timezone.utc)
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ][0-9:.]+([Zz]|[+-]\d{2}:?\d{2})?", value, re.ASCII):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        else:
            raise ValueError
    except ValueError:
        raise InvalidInput(f"datetime {value[:60]!r} 不是 RFC 3339 日期或日期时间") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        return (datetime.max if moment.year > 1 else datetime.min).replace(tzinfo=timezone.utc)


def parse_datetime(value: str | None) -> tuple[datetime | None, datetime | None] | None:
    """An instant or a closed or half-open interval ('a/b', '../b', 'a/..'), as (start, end)."""
    if value is None:
        return None
    if "/" in value:
        parts = value.split("/")
        if len(parts) != 2:
            raise InvalidInput("datetime interval must be start/end")
        start = None if parts[0] in ("", "..") else _parse_instant(parts[0], end=False)
        finish = None if parts[1] in ("", "..") else _parse_instant(parts[1], end=True)
        if start is None and finish is None:
            raise InvalidInput("datetime interval must have at least one end")
        if start and finish and start > finish:
            raise InvalidInput("datetime interval starts after it ends")
        return start, finish
    return _parse_instant(value, end=False), _parse_instant(value, end=True)


def _parse_value(prop: Property, value: str):
    try:
        if prop.kind is bool:
            if value.lower() not in ("true", "false"):
                raise ValueError
            return value.lower() == "true"
        if prop.kind is int:
            return parse_int(value, prop.name, low=-BIGINT_MAX - 1, high=BIGINT_MAX)
        if prop.kind is float:
            return parse_float(value, prop.name)
        if prop.kind is date:
            return date.fromisoformat(value)
        if prop.kind is datetime:
            return _parse_instant(value, end=False)
    except ValueError:
        raise InvalidInput(f"{prop.name} must be a {prop.kind.__name__}, not {value!r}") from None
    return value


@dataclass
class ItemsRequest:
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: BBox | None = None
    interval: tuple[datetime | None, datetime | None] | None = None
    equals: dict[str, str] = field(default_factory=dict)


def items_request(collection: Collection, principal: Principal, params: dict[str, str]) -> ItemsRequest:
    """Validate the query parameters of an items request (unknown parameters are refused, as Core asks)."""
    query = collection_query(collection, principal)
    unknown = [name for name in params if name not in RESERVED_PARAMETERS and name not in query.properties]
    if unknown:
        raise InvalidInput(f"unknown parameter(s) {', '.join(sorted(unknown))}; this collection accepts "
                           f"{', '.join(RESERVED_PARAMETERS + tuple(query.properties))}")
    if params.get("crs") not in (None, CRS84):
        raise InvalidInput(f"crs must be {CRS84}: features are served in lon/lat only")
    if params.get("bbox-crs") not in (None, CRS84):
        raise InvalidInput(f"bbox-crs must be {CRS84}")
    if params.get("f") not in (None, "json", "geojson", "application/json", "application/geo+json"):
        raise InvalidInput("f must be json or geojson")
    return ItemsRequest(
        limit=parse_limit(params.get("limit")),
        offset=parse_offset(params.get("offset")),
        # in CRS84, with heights or across the antimeridian as the standard allows (gis.serve.bbox)
        bbox=parse_bbox(params.get("bbox"), heights=True, antimeridian=True),
        interval=parse_datetime(params.get("datetime")),
        equals={name: value for name, value in params.items() if name in query.properties},
    )


def _apply_filters(collection: Collection, query: Query, request: ItemsRequest) -> tuple[list[str], dict]:
    where = list(query.where)
    params = dict(query.params)
    if collection.kind == "boundary" and request.interval is None:
        where.append("t.valid_to IS NULL")
    if request.bbox is not None:
        minx, miny, maxx, maxy = request.bbox
        boxes = [(minx, maxx)] if minx <= maxx else [(minx, 180.0), (-180.0, maxx)]
        tests = []
        for index, (west, east) in enumerate(boxes):
            envelope = f"ST_MakeEnvelope(:w{index}, :miny, :e{index}, :maxy, {STORAGE_SRID})"
            params.update({f"w{index}": west, f"e{index}": east})
            if query.place_view is None:
                tests.append(f"{query.geom_filter} && {envelope}")
            else:
                # the place the caller sees decides (gis.access.visibility), so the box cannot narrow a snapped place
                tests.append(place_in_box_sql(query.place_view, query.geom_filter, envelope))
        params.update(miny=miny, maxy=maxy)
        where.append("(" + " OR ".join(tests) + ")")
    if request.interval is not None:
        if query.temporal is None:
            raise InvalidInput(f"collection {collection.id} has no time; datetime cannot be used")
        start_column, end_column = query.temporal
        start, finish = request.interval
        if collection.kind == "boundary":
            # versions are dated: a version counts when its validity overlaps the interval
            if finish is not None:
                where.append(f"{start_column} <= :t_end")
                params["t_end"] = finish.date()
            if start is not None:
                where.append(f"({end_column} IS NULL OR {end_column} > :t_start)")
                params["t_start"] = start.date()
        else:
            if start is not None:
                where.append(f"{start_column} >= :t_start")
                params["t_start"] = start
            if finish is not None:
                where.append(f"{start_column} <= :t_end")
                params["t_end"] = finish
    for index, (name, value) in enumerate(request.equals.items()):
        prop = query.properties[name]
        where.append(f"{prop.sql} = :p{index}")
        params[f"p{index}"] = _parse_value(prop, value)
    return where or ["TRUE"], params


def _feature_sql(query: Query) -> str:
    props = ", ".join(f"'{name}', {name}" for name in query.properties)
    return (f"json_build_object('type', 'Feature', 'id', fid, "
            f"'geometry', ST_AsGeoJSON(geom, {COORDINATE_DECIMALS})::json, "
            f"'properties', json_build_object({props}))")


def _select_sql(query: Query) -> str:
    props = ", ".join(f"{prop.sql} AS {name}" for name, prop in query.properties.items())
    orders = ", ".join(f"{column} AS _o{index}" for index, column in enumerate(query.order))
    return f"SELECT {query.fid} AS fid, {query.geom_output} AS geom, {props}, {orders} FROM {query.source}"


class FeatureService:
    """Items, single features and collection metadata; counts and extents are cached per data version."""

    def __init__(self):
        self.versions = DataVersions(tile_settings().version_check_seconds)
        self._cache: dict = {}

    async def _version(self, engine: AsyncEngine, collection: Collection) -> tuple:
        versions = await self.versions.current(engine)
        return tuple(versions.get(table, 0) for table in collection.tables)

    def _remember(self, key, value):
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = value
        return value

    async def items(self, engine: AsyncEngine, collection_id: str, principal: Principal,
                    request: ItemsRequest, read_engine: AsyncEngine | None = None) -> tuple[str, int, int]:
        """(features JSON array text, number returned, number matched). The page is read on `read_engine` (a read
        replica) when given; its count is cached under the primary's data version only when that replica had
        replayed the primary's position of the version, so a count a replica made before replaying a change is
        never kept as the count after it."""
        collection = get_collection(collection_id)
        query = collection_query(collection, principal)
        where, params = _apply_filters(collection, query, request)
        params.update(limit=request.limit, offset=request.offset)
        order = list(query.order) if collection.kind != "boundary" or request.interval else ["t.code"]
        where_sql = " AND ".join(where)
        order_out = ", ".join(f"_o{query.order.index(column)}" for column in order)
        count_key = (collection.id, visibility(principal).role, principal.role, principal.scope, where_sql,
                     tuple(sorted((k, str(v)) for k, v in params.items() if k not in ("limit", "offset"))),
                     await self._version(engine, collection))
        matched = self._cache.get(count_key)
        count_sql = "NULL" if matched is not None else f"(SELECT count(*) FROM {query.source} WHERE {where_sql})"
        sql = f"""
            WITH page AS (
                {_select_sql(query)} WHERE {where_sql} ORDER BY {', '.join(order)} LIMIT :limit OFFSET :offset
            )
            SELECT (SELECT coalesce(json_agg({_feature_sql(query)} ORDER BY {order_out}), '[]'::json)::text
                    FROM page),
                   (SELECT count(*) FROM page),
                   {count_sql},
                   coalesce(NOT pg_is_in_recovery()
                            OR pg_last_wal_replay_lsn() >= CAST(CAST(:_versions_at AS text) AS pg_lsn), false)
        """
        params["_versions_at"] = self.versions.position
        async with (read_engine or engine).connect() as conn:
            features, returned, counted, caught_up = (await conn.execute(text(sql), params)).one()
        if matched is None:
            matched = int(counted)
            if caught_up:
                self._remember(count_key, matched)
        return features, int(returned), matched

    async def feature(self, engine: AsyncEngine, collection_id: str, feature_id: str, principal: Principal) -> str:
        """One feature as GeoJSON text; NotFound when absent or outside the caller's scope."""
        collection = get_collection(collection_id)
        query = collection_query(collection, principal)
        where, params = list(query.where), dict(query.params)
        if collection.kind == "boundary":
            code, _, valid_from = feature_id.partition("@")
            where.append("t.code = :code")
            params["code"] = code
            if valid_from:
                try:
                    params["valid_from"] = date.fromisoformat(valid_from)
                except ValueError:
                    raise NotFound(f"no feature {feature_id!r} in {collection_id}") from None
                where.append("t.valid_from = :valid_from AND t.valid_to IS NOT NULL")
            else:
                where.append("t.valid_to IS NULL")
        elif collection.kind == "party":
            where.append("p.code = :code")
            params["code"] = feature_id
        else:
            if not feature_id.isdigit() or len(feature_id) > 18:
                raise NotFound(f"no feature {feature_id!r} in {collection_id}")
            where.append("c.id = :id")
            params["id"] = int(feature_id)
        sql = f"SELECT {_feature_sql(query)}::text FROM ({_select_sql(query)} WHERE {' AND '.join(where)}) f"
        async with engine.connect() as conn:
            row = (await conn.execute(text(sql), params)).first()
        if row is None:
            raise NotFound(f"no feature {feature_id!r} in {collection_id}")
        return row[0]

    async def extent(self, engine: AsyncEngine, collection_id: str, principal: Principal) -> dict:
        """Spatial (CRS84 bbox of what the caller may see) and temporal extent of a collection."""
        collection = get_collection(collection_id)
        query = collection_query(collection, principal)
        key = ("extent", collection.id, principal.role, principal.scope, await self._version(engine, collection))
        if key in self._cache:
            return self._cache[key]
        where = " AND ".join(query.where or ["TRUE"])
        if collection.kind == "boundary":
            # space from the current versions; time from every version, open-ended while one is current
            space, first, last = ("ST_Extent(t.geom) FILTER (WHERE t.valid_to IS NULL)", "min(t.valid_from)",
                                  "CASE WHEN bool_or(t.valid_to IS NULL) THEN NULL ELSE max(t.valid_to) END")
        elif collection.kind == "complaint":
            space, first, last = f"ST_Extent({query.geom_output})", "min(c.reported_at)", "max(c.reported_at)"
        else:
            space, first, last = f"ST_Extent({query.geom_output})", "NULL", "NULL"
        sql = (f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), t0, t1 FROM ("
               f"SELECT {space} AS e, {first} AS t0, {last} AS t1 FROM {query.source} WHERE {where}) s")
        async with engine.connect() as conn:
            row = (await conn.execute(text(sql), query.params)).one()
        extent: dict = {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]], "crs": CRS84}}
        if row[0] is not None:
            extent["spatial"]["bbox"] = [[round(float(v), 7) for v in row[:4]]]
        if query.temporal is not None:
            extent["temporal"] = {"interval": [[_iso(row[4]), _iso(row[5])]],
                                  "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
        return self._remember(key, extent)


def _iso(value) -> str | None:
    """An end of a temporal extent: UTC text, or None (open) for no value and for ±infinity (gis.times)."""
    if isinstance(value, datetime) and not is_infinite(value):
        try:
            return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        except (OverflowError, ValueError):
            return value.isoformat()
    return iso_text(value, timezone.utc, z=True)


def feature_collection(features: str, returned: int, matched: int, links: list[dict]) -> bytes:
    """The items response, wrapping the features text made by PostGIS without parsing it again."""
    stamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    head = json.dumps({"type": "FeatureCollection", "numberMatched": matched, "numberReturned": returned,
                       "timeStamp": stamp, "links": links}, ensure_ascii=False)
    return (head[:-1] + ', "features": ' + features + "}").encode()
