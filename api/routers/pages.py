"""The map pages and their static assets."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from webmap import STATIC_DIR, TEMPLATES_DIR


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/map")

    @app.get("/map", response_class=HTMLResponse, include_in_schema=False)
    async def map_page() -> HTMLResponse:
        return HTMLResponse((TEMPLATES_DIR / "map.html").read_text(encoding="utf-8"))
