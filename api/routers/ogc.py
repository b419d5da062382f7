"""OGC API - Features (Part 1: Core, GeoJSON, OpenAPI 3.0) under /ogc."""

from __future__ import annotations

import copy
import json
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.audit import log_personal_read
from api.deps import Engine, ReadEngine
from api.security import CurrentPrincipal
from gis.errors import InvalidInput
from gis.serve import features

router = APIRouter(prefix="/ogc", tags=["ogc"])

GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI_30 = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
METADATA_PARAMETERS = ("f",)
PERSONAL_KINDS = ("complaint", "party")
"""Collections whose staff view carries people's names and phones (reporters, party secretaries)."""


def _service(request: Request) -> features.FeatureService:
    service = getattr(request.app.state, "feature_service", None)
    if service is None:
        service = request.app.state.feature_service = features.FeatureService()
    return service


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _check_metadata_parameters(request: Request) -> None:
    unknown = [name for name in request.query_params if name not in METADATA_PARAMETERS]
    if unknown:
        raise InvalidInput(f"unknown parameter(s) {', '.join(unknown)}")
    if request.query_params.get("f") not in (None, "json", "application/json"):
        raise InvalidInput("f must be json")


def _link(href: str, rel: str, media_type: str, title: str) -> dict:
    return {"href": href, "rel": rel, "type": media_type, "title": title}


@router.get("")
async def landing_page(request: Request) -> dict:
    """Landing page: where the API definition, conformance declaration and collections are."""
    _check_metadata_parameters(request)
    base = _base(request)
    return {
        "title": "gridgov OGC API - Features",
        "description": "The grid-governance pyramid, compounds, party organisations and complaints.",
        "links": [
            _link(base, "self", JSON, "This document"),
            _link(f"{base}/api", "service-desc", OPENAPI_30, "The API definition (OpenAPI 3.0)"),
            _link(str(request.base_url) + "docs", "service-doc", "text/html", "The API documentation"),
            _link(f"{base}/conformance", "conformance", JSON, "Conformance classes implemented"),
            _link(f"{base}/collections", "data", JSON, "The feature collections"),
        ],
    }


@router.get("/conformance")
async def conformance(request: Request) -> dict:
    """The OGC API - Features conformance classes implemented (Core, GeoJSON, OpenAPI 3.0); 400 for any query parameter
    but f=json."""
    _check_metadata_parameters(request)
    return {"conformsTo": CONFORMANCE}


def _nullable(schema):
    """Rewrite the OpenAPI 3.1 constructs FastAPI emits into their OpenAPI 3.0 equivalents."""
    if isinstance(schema, list):
        return [_nullable(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: _nullable(value) for key, value in schema.items()}
    for combinator in ("anyOf", "oneOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [option for option in options if option != {"type": "null"}]
            schema.pop(combinator)
            if len(rest) == 1:
                schema.update(rest[0])
            else:
                schema[combinator] = rest
            schema["nullable"] = True
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if "examples" in schema and isinstance(schema["examples"], list) and "in" not in schema:
        examples = schema.pop("examples")
        if examples:
            schema["example"] = examples[0]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(schema.get(bound), (int, float)) and not isinstance(schema.get(bound), bool):
            schema[limit] = schema.pop(bound)
            schema[bound] = True
    return schema


@router.get("/api", response_class=JSONResponse,
            responses={200: {"content": {OPENAPI_30: {}}}})
async def api_definition(request: Request) -> JSONResponse:
    """The application's OpenAPI document, in OpenAPI 3.0 form (FastAPI writes 3.1)."""
    document = _nullable(copy.deepcopy(request.app.openapi()))
    document["openapi"] = "3.0.3"
    document.pop("jsonSchemaDialect", None)
    document.pop("webhooks", None)
    return JSONResponse(document, media_type=OPENAPI_30)


async def _collection_document(request: Request, engine, collection: features.Collection, principal) -> dict:
    base = _base(request)
    href = f"{base}/collections/{collection.id}"
    return {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "itemType": "feature",
        "crs": [features.CRS84],
        "storageCrs": features.CRS84,
        "extent": await _service(request).extent(engine, collection.id, principal),
        "links": [
            _link(href, "self", JSON, collection.title),
            _link(f"{href}/items", "items", GEOJSON, f"{collection.title}: features"),
        ],
    }


@router.get("/collections")
async def collections(request: Request, engine: Engine, principal: CurrentPrincipal) -> dict:
    """Every feature collection with its extent and links, as the caller may see them; 400 for any query parameter but
    f=json."""
    _check_metadata_parameters(request)
    base = _base(request)
    return {
        "links": [_link(f"{base}/collections", "self", JSON, "The feature collections")],
        "collections": [await _collection_document(request, engine, collection, principal)
                        for collection in features.COLLECTIONS.values()],
    }


@router.get("/collections/{collection_id}")
async def collection(collection_id: str, request: Request, engine: Engine, principal: CurrentPrincipal) -> dict:
    """One feature collection's description, extent and links; 404 for an unknown collection, 400 for any query
    parameter but f=json."""
    _check_metadata_parameters(request)
    return await _collection_document(request, engine, features.get_collection(collection_id), principal)


ITEMS_PARAMETERS = [
    {"name": "limit", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "Features per page (larger values mean the maximum)",
     "schema": {"type": "integer", "minimum": 1, "maximum": features.MAX_LIMIT, "default": features.DEFAULT_LIMIT}},
    {"name": "offset", "in": "query", "required": False, "description": "Features to skip (paging)",
     "schema": {"type": "integer", "minimum": 0, "default": 0}},
    {"name": "bbox", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "minlon,minlat,maxlon,maxlat in CRS84",
     "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}},
    {"name": "datetime", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "An RFC 3339 instant or interval (start/end, '..' for open)", "schema": {"type": "string"}},
    {"name": "f", "in": "query", "required": False, "schema": {"type": "string", "enum": ["json", "geojson"]}},
]


@router.get(
    "/collections/{collection_id}/items",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}, 400: {"description": "Bad parameter"}},
    openapi_extra={"parameters": ITEMS_PARAMETERS},
)
async def items(collection_id: str, request: Request, engine: Engine, principal: CurrentPrincipal,
                read: ReadEngine) -> Response:
    """A page of features; property filters are `name=value` for any property the caller can see."""
    collection = features.get_collection(collection_id)
    params = dict(request.query_params)
    asked = features.items_request(collection, principal, params)
    body_features, returned, matched = await _service(request).items(engine, collection_id, principal, asked,
                                                                      read_engine=read)
    href = f"{_base(request)}/collections/{collection_id}/items"

    def page(offset: int) -> str:
        return href + "?" + urlencode({**params, "offset": offset, "limit": asked.limit})

    links = [
        _link(page(asked.offset), "self", GEOJSON, "This page"),
        _link(f"{_base(request)}/collections/{collection_id}", "collection", JSON, collection.title),
    ]
    if asked.offset + returned < matched and returned > 0:
        links.append(_link(page(asked.offset + returned), "next", GEOJSON, "Next page"))
    if asked.offset > 0:
        links.append(_link(page(max(asked.offset - asked.limit, 0)), "prev", GEOJSON, "Previous page"))
    body = features.feature_collection(body_features, returned, matched, links)
    if collection.kind in PERSONAL_KINDS:
        await log_personal_read(request, engine, principal, collection.id, record_count=returned)
    return Response(body, media_type=GEOJSON, headers={"Vary": "Authorization"})


@router.get("/collections/{collection_id}/items/{feature_id}", response_class=Response,
            responses={200: {"content": {GEOJSON: {}}}, 404: {"description": "No such feature"}})
async def feature(collection_id: str, feature_id: str, request: Request, engine: Engine,
                  principal: CurrentPrincipal, read: ReadEngine) -> Response:
    """One feature as GeoJSON with its self and collection links, in the caller's view; 404 for an unknown collection or
    feature, 400 for any query parameter but f=json. Reads of complaints and party organisations are logged."""
    _check_metadata_parameters(request)
    body = await _service(request).feature(read, collection_id, feature_id, principal)
    base = _base(request)
    links = [
        _link(f"{base}/collections/{collection_id}/items/{feature_id}", "self", GEOJSON, "This feature"),
        _link(f"{base}/collections/{collection_id}", "collection", JSON, "The collection"),
    ]
    payload = body[:-1] + ', "links": ' + json.dumps(links) + "}"
    if features.get_collection(collection_id).kind in PERSONAL_KINDS:
        await log_personal_read(request, engine, principal, collection_id, [feature_id])
    return Response(payload.encode(), media_type=GEOJSON, headers={"Vary": "Authorization"})
