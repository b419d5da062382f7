"""Routers of the feature areas, registered here so each area stays in its own module."""

from __future__ import annotations

from fastapi import FastAPI

from api.routers import ogc, tiles


def include(app: FastAPI) -> None:
    for module in (tiles, ogc):
        app.include_router(module.router)
