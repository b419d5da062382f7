"""The API's browsable documentation, with Swagger UI served from this app (FastAPI's default loads a CDN)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from webmap import TEMPLATES_DIR

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
async def api_docs() -> HTMLResponse:
    """The interactive API documentation page (Swagger UI served from the app's own static files)."""
    return HTMLResponse((TEMPLATES_DIR / "apidocs.html").read_text(encoding="utf-8"))
