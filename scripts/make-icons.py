"""Draws the installable app's icons (webmap/static/icons/) with Pillow: no download, no font.

A red square with a white 3 × 3 grid (网格) and a gold mark in the middle cell; the drawing keeps inside the
central 80 %, so the same picture serves as a maskable icon. Run from the checkout: `python scripts/make-icons.py`.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ICONS = Path(__file__).resolve().parent.parent / "webmap" / "static" / "icons"
RED, WHITE, GOLD = (198, 40, 40), (255, 255, 255), (255, 196, 0)


def draw(size: int) -> Image.Image:
    """The icon at `size` × `size` pixels."""
    image = Image.new("RGB", (size, size), RED)
    pen = ImageDraw.Draw(image)
    low, high = size * 0.22, size * 0.78
    width = max(2, round(size * 0.035))
    for step in range(4):
        at = low + (high - low) * step / 3
        pen.line([(low, at), (high, at)], fill=WHITE, width=width)
        pen.line([(at, low), (at, high)], fill=WHITE, width=width)
    cell = (high - low) / 3
    centre, radius = size / 2, cell * 0.3
    pen.ellipse([centre - radius, centre - radius, centre + radius, centre + radius], fill=GOLD)
    return image


def main() -> None:
    """Writes the icons the manifest names."""
    ICONS.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        draw(size).save(ICONS / f"icon-{size}.png", optimize=True)
    draw(180).save(ICONS / "apple-touch-icon.png", optimize=True)


if __name__ == "__main__":
    main()
