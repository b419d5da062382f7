"""The FastAPI app: the database pool lives in the lifespan; routers are one per resource."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, middleware
from api.routers import apidocs, health, layers, pages
from gis.db import async_engine


def create_app(database_url: str | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.engine = async_engine(database_url)
        try:
            yield
        finally:
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
    app.include_router(health.router)
    app.include_router(layers.router)
    app.include_router(apidocs.router)
    pages.mount(app)
    from api import extra_routers

    extra_routers.include(app)
    return app


app = create_app()
