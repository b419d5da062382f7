"""The FastAPI app: the database pool lives in the lifespan; routers are one per resource.

The OpenAPI document is built here from the routes and completed with what a client meets: the bearer scheme and
each operation's security, the error answers (api/errors.py) and, for a method a path does not have, 405 with
the path's real methods in Allow (OPTIONS answers them with 204)."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from api import errors, middleware, read_routing
from api.deps import get_connection, get_engine, get_read_connection, get_read_engine
from api.routers import (
    analytics,
    apidocs,
    app_shell,
    audit,
    auth,
    basemap,
    complaints,
    dispatch,
    evaluation,
    field,
    health,
    integrity,
    layers,
    ogc,
    open311,
    pages,
    registry,
    reports,
    responsibility,
    supervision,
    tickets,
    tiles,
    users,
)
from api.security import get_principal, operation_security
from gis.db.engine import async_engine
from webmap import STATIC_DIR

DATABASE_DEPENDENCIES = (get_engine, get_connection, get_read_engine, get_read_connection, get_principal)

ROUTERS = (
    health.router,          # /health
    layers.router,          # /layers
    apidocs.router,         # /docs
    pages.site,             # / and the map page /map
    app_shell.router,       # /sw.js and /manifest.webmanifest: the installable field app
    pages.router,           # /map/... the map's own reads
    integrity.router,       # /map/integrity.geojson: the administrators' integrity layer
    responsibility.router,  # /responsibility
    tiles.router,           # /tiles
    basemap.router,         # /basemap.json and /basemap/{z}/{x}/{y}: the city's own base map
    ogc.router,             # /ogc
    analytics.router,       # /analytics
    evaluation.router,      # /evaluation
    auth.router,            # /auth
    users.router,           # /users
    tickets.router,         # /tickets
    open311.router,         # /open311/v2
    complaints.router,      # /complaints
    dispatch.router,        # /complaints/suggest and /complaints/{id}/suggestion: suggested dispatch
    audit.router,           # /audit
    supervision.router,     # /supervision
    reports.router,         # /reports
    registry.router,        # /registry
    field.router,           # /field: the grid worker's phone
)
"""Every router of the API, included in this order; the map's static files are mounted at /static beside them."""


def create_app(database_url: str | None = None) -> FastAPI:
    """The FastAPI application: one engine for `database_url` (the settings' URL when None) opened and disposed with the
    app, the error handlers, middleware, static files and every router."""
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.engine = async_engine(database_url)
        app.state.read_router = await read_routing.open_router(app.state.engine)  # None without read URLs
        try:
            yield
        finally:
            await read_routing.close_router(app.state.read_router)
            await app.state.engine.dispose()

    app = FastAPI(
        title="gridgov",
        summary="Grid-governance GIS: the community–grid–building pyramid, complaints and tickets.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    middleware.install(app)
    read_routing.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    for router in ROUTERS:
        app.include_router(router)
    _install_methods(app)
    app.openapi = lambda: _openapi(app)
    return app


# --- allowed methods ------------------------------------------------------------------------------------------

def _route_table(app: FastAPI) -> list[tuple]:
    """(path regex, methods, path as documented, route) of every route, included routers flattened."""
    table = getattr(app.state, "route_table", None)
    if table is None:
        table = []
        for context in iter_route_contexts(app.routes):
            if context.path and context.methods:
                regex = compile_path(context.path)[0]
                table.append((regex, set(context.methods), context.path_format, context.original_route))
        app.state.route_table = table
    return table


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of `app` answers on `path`, sorted, OPTIONS included; empty for no route."""
    methods = set()
    for regex, route_methods, _, _ in _route_table(app):
        if regex.match(path):
            methods |= route_methods
    return sorted(methods | {"OPTIONS"}) if methods else []


def _install_methods(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code != 405:
            return await http_exception_handler(request, error)
        allow = ", ".join(allowed_methods(app, request.url.path))
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": allow})
        return JSONResponse({"detail": f"此路径不支持 {request.method} 方法，可用的方法：{allow}"},
                            status_code=405, headers={"Allow": allow})


# --- the OpenAPI document -------------------------------------------------------------------------------------

def _dependency_calls(route: APIRoute) -> set:
    calls, stack = set(), [route.dependant]
    while stack:
        dependant = stack.pop()
        calls.add(dependant.call)
        stack.extend(dependant.dependencies)
    return calls


def _openapi(app: FastAPI) -> dict:
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes,
                           openapi_version=app.openapi_version)
    routes = {}
    for _, methods, path_format, route in _route_table(app):
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in methods:
                routes[(path_format, method.lower())] = route
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            route = routes.get((path, method))
            if route is None:
                continue
            security = operation_security(route)
            if security is None:
                operation.pop("security", None)
            else:
                operation["security"] = security

    def statuses_of(path: str, method: str, operation: dict) -> set[int]:
        route = routes.get((path, method))
        calls = _dependency_calls(route) if route else set()
        statuses = {400}
        if operation.get("security"):
            statuses |= {401, 403}
        if "{" in path:
            statuses.add(404)
        if method in errors.WRITE_METHODS:
            statuses.add(409)
        if "requestBody" in operation:
            statuses.add(413)
        if calls & set(DATABASE_DEPENDENCIES):
            statuses |= {503, 504}
        return statuses

    errors.document_errors(document, statuses_of)
    app.openapi_schema = document
    return document


app = create_app()
