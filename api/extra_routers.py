"""Routers of the feature areas, registered here so each area stays in its own module."""

from __future__ import annotations

from fastapi import FastAPI


def include(app: FastAPI) -> None:
    return None
