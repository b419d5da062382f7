"""Tile keys: a point's Web Mercator tile at zoom 20, its x and y bits interleaved (Z-order, a quadkey as one
integer).

Every tile at zoom z <= 20 holds one contiguous run of keys, so "the complaints in this tile" is a range scan of a
B-tree on the key; with the tile's attributes and the point included in that index the scan never reads the
table. A tile plus its buffer is a few such ranges (`tile_key_ranges`). The key is computed by the SQL function
`gridgov_tile_key(geometry)` (`tilekey.sql`, installed by migration 0007) and mirrored here by `tile_key` for the
tests.
"""

from __future__ import annotations

import math
from importlib.resources import files
from typing import NamedTuple

KEY_ZOOM = 20
"""Zoom of the cells the key is made of (about 30 m across at Tai'an's latitude)."""
KEY_SIDE = 1 << KEY_ZOOM
MAX_LATITUDE = 85.0511287798
REFINE_ZOOMS = 4
"""Cells partly inside the wanted area are split this many zooms below the tile before being taken whole: the
buffer then costs a sixteenth of each neighbour at most, in a few dozen ranges."""
REFINE_ZOOMS_HIGH = 2
HIGH_FROM_ZOOM = 15
"""From this zoom on a tile holds a few hundred complaints at most: a coarser split (a quarter of each neighbour,
a dozen ranges) reads a few more index entries but starts far fewer range scans."""

TILE_KEY_FUNCTION_SQL = files(__package__).joinpath("tilekey.sql").read_text(encoding="utf-8").format(
    max_latitude=MAX_LATITUDE, side=KEY_SIDE, last=KEY_SIDE - 1)
"""The key in SQL (`tilekey.sql` with the constants above), as the newest migration that installs it must
hold it; plpgsql because its simple expressions run at well under a microsecond a row."""


def _spread(value: int) -> int:
    """The bits of a 20-bit value moved apart, one zero between each (the same steps as the SQL function)."""
    value = (value | (value << 16)) & 0x0000FFFF0000FFFF
    value = (value | (value << 8)) & 0x00FF00FF00FF00FF
    value = (value | (value << 4)) & 0x0F0F0F0F0F0F0F0F
    value = (value | (value << 2)) & 0x3333333333333333
    return (value | (value << 1)) & 0x5555555555555555


def interleave(x: int, y: int) -> int:
    """The Z-order key of cell (x, y) at `KEY_ZOOM`."""
    return _spread(x) | (_spread(y) << 1)


def cell_of(lon: float, lat: float) -> tuple[int, int]:
    """The zoom-20 cell of a WGS-84 point, clamped like the SQL function."""
    lat = math.radians(min(max(lat, -MAX_LATITUDE), MAX_LATITUDE))
    x = math.floor((lon + 180.0) / 360.0 * KEY_SIDE)
    y = math.floor((1.0 - math.log(math.tan(lat) + 1.0 / math.cos(lat)) / math.pi) / 2.0 * KEY_SIDE)
    return min(max(x, 0), KEY_SIDE - 1), min(max(y, 0), KEY_SIDE - 1)


def tile_key(lon: float, lat: float) -> int:
    """The tile key of a WGS-84 point (its zoom-20 cell in Z-order), as the SQL function `gridgov_tile_key` computes
    it."""
    return interleave(*cell_of(lon, lat))


def _cell_range(z: int, x: int, y: int) -> tuple[int, int]:
    """Keys [low, high) of every zoom-20 cell inside tile z/x/y."""
    shift = KEY_ZOOM - z
    low = interleave(x << shift, y << shift)
    return low, low + (1 << (2 * shift))


class KeyRange(NamedTuple):
    """Keys [low, high); `edge` when some of its cells reach outside the wanted area (test each row)."""

    low: int
    high: int
    edge: bool


def tile_key_ranges(z: int, x: int, y: int, margin: float, sure_margin: float | None = None) -> list[KeyRange]:
    """Key ranges covering tile z/x/y grown by `margin` tile widths on every side, sorted and merged.

    The cover may hold a little more than asked (cells at the finest split are taken whole and marked as edge),
    never less. A range is marked inner only when its cells lie within the tile grown by `sure_margin` (default
    `margin`): give the smaller bound there when the margin is only known within bounds. Zooms above 20 use their
    zoom-20 ancestor's cells, all marked edge.
    """
    if z > KEY_ZOOM:
        shift = z - KEY_ZOOM
        ancestor = tile_key_ranges(KEY_ZOOM, x >> shift, y >> shift, margin / (1 << shift))
        return [cover._replace(edge=True) for cover in ancestor]
    scale = 1 << (KEY_ZOOM - z)
    grow = margin * scale
    # the wanted area in zoom-20 cell units, and the part of it surely wanted
    left, right = x * scale - grow, (x + 1) * scale + grow
    top, bottom = y * scale - grow, (y + 1) * scale + grow
    sure = (margin if sure_margin is None else min(sure_margin, margin)) * scale
    sure_left, sure_right, sure_top, sure_bottom = x * scale - sure, (x + 1) * scale + sure, y * scale - sure, (
        y + 1) * scale + sure
    deepest = min(KEY_ZOOM, z + (REFINE_ZOOMS_HIGH if z >= HIGH_FROM_ZOOM else REFINE_ZOOMS))
    found: list[KeyRange] = []

    def visit(cz: int, cx: int, cy: int) -> None:
        side = 1 << (KEY_ZOOM - cz)
        cell_left, cell_top = cx * side, cy * side
        if cell_left >= right or cell_left + side <= left or cell_top >= bottom or cell_top + side <= top:
            return
        inside = (sure_left <= cell_left and cell_left + side <= sure_right and sure_top <= cell_top
                  and cell_top + side <= sure_bottom)
        if inside or cz == deepest:
            found.append(KeyRange(*_cell_range(cz, cx, cy), edge=not inside))
            return
        for dy in (0, 1):
            for dx in (0, 1):
                visit(cz + 1, 2 * cx + dx, 2 * cy + dy)

    tiles = 1 << z
    for ty in range(max(0, y - 1), min(tiles, y + 2)):
        for tx in range(max(0, x - 1), min(tiles, x + 2)):
            visit(z, tx, ty)
    found.sort()
    merged: list[KeyRange] = []
    for cover in found:
        if merged and merged[-1].high == cover.low and merged[-1].edge == cover.edge:
            merged[-1] = merged[-1]._replace(high=cover.high)
        else:
            merged.append(cover)
    return merged
