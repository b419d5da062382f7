"""Routers of the feature areas, one per resource."""

from __future__ import annotations

from fastapi import FastAPI

from api.routers import (
    analytics,
    audit,
    auth,
    complaints,
    ogc,
    open311,
    responsibility,
    tickets,
    tiles,
    users,
)

ROUTERS = (responsibility, tiles, ogc, analytics, auth, users, tickets, open311, complaints, audit)


def include(app: FastAPI) -> None:
    for module in ROUTERS:
        app.include_router(module.router)
