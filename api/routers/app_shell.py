"""The installable field app's shell: the service worker at the site's root (so its scope covers /map) with the
list of files it precaches, and the web app manifest. Neither touches the database."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from webmap import STATIC_DIR, TEMPLATES_DIR

router = APIRouter(include_in_schema=False)

MANIFEST_PLACEHOLDER = "self.__WB_MANIFEST"
SHELL_EXTRAS = ("vendor/leaflet/images/*.png", "icons/*.png")
"""Static files the page needs that map.html does not name: Leaflet's control images, the icons."""

MANIFEST = {
    "name": "gridgov 网格治理",
    "short_name": "网格治理",
    "description": "网格员现场工作：本网格地图、待办工单、上报与离线处理",
    "lang": "zh-CN",
    "start_url": "/map",
    "scope": "/",
    "display": "standalone",
    "orientation": "any",
    "background_color": "#ffffff",
    "theme_color": "#c62828",
    "icons": [
        {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
        {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
        {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
    ],
}


def _revision(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def shell_files() -> list[dict]:
    """The app shell as Workbox's precache list, [{url, revision}]: the map page, every static file it names,
    every module under static/map/ and the extras; a revision is the start of the file's SHA-256."""
    page = TEMPLATES_DIR / "map.html"
    entries = {"/map": _revision(page)}
    named = re.findall(r"""(?:src|href)="/static/([^"?#]+)\"""", page.read_text(encoding="utf-8"))
    paths = [STATIC_DIR / name for name in named]
    paths += sorted((STATIC_DIR / "map").rglob("*.js"))
    for pattern in SHELL_EXTRAS:
        paths += sorted(STATIC_DIR.glob(pattern))
    for path in paths:
        if path.is_file():
            entries[f"/static/{path.relative_to(STATIC_DIR).as_posix()}"] = _revision(path)
    manifest_body = json.dumps(MANIFEST, ensure_ascii=False, sort_keys=True).encode()
    entries["/manifest.webmanifest"] = hashlib.sha256(manifest_body).hexdigest()[:16]
    return [{"url": url, "revision": revision} for url, revision in entries.items()]


@router.get("/sw.js")
async def service_worker() -> Response:
    """The service worker with its precache list written in; never cached by HTTP, so an update is seen."""
    script = (STATIC_DIR / "sw.js").read_text(encoding="utf-8")
    body = script.replace(MANIFEST_PLACEHOLDER, json.dumps(shell_files()), 1)
    return Response(body, media_type="text/javascript",
                    headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})


@router.get("/manifest.webmanifest")
async def web_app_manifest() -> Response:
    """The web app manifest: Chinese name, start at the map, the icons served from static/icons/."""
    return Response(json.dumps(MANIFEST, ensure_ascii=False), media_type="application/manifest+json",
                    headers={"Cache-Control": "no-cache"})
