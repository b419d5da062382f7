"""Tile key ranges (gis/serve/tilekey.py) against a brute-force oracle over zoom-20 cells, with the cover's rules
written out here: a tile grown by `margin` tile widths is covered by the cells of the finest split (4 zooms below the
tile, 2 from zoom 15 on) that overlap it, taken whole; a cell is inner exactly when its cell of the finest split
(or a larger one) lies within the tile grown by `sure_margin`; ranges are sorted, disjoint and merged."""

from __future__ import annotations

import pytest

from gis.serve.tilekey import KeyRange, cell_of, interleave, tile_key_ranges


def _finest(z: int) -> int:
    return min(20, z + (2 if z >= 15 else 4))


def _expected(z: int, x: int, y: int, margin: float, sure_margin: float) -> tuple[set[int], set[int]]:
    """(keys covered, keys inner) by the rules, cell by cell at the finest split."""
    deepest = _finest(z)
    scale = 1 << (deepest - z)  # finest cells per tile side
    side = 1 << (20 - deepest)  # zoom-20 cells per finest cell side
    world = 1 << deepest
    left, right = x * scale - margin * scale, (x + 1) * scale + margin * scale
    top, bottom = y * scale - margin * scale, (y + 1) * scale + margin * scale
    s_left, s_right = x * scale - sure_margin * scale, (x + 1) * scale + sure_margin * scale
    s_top, s_bottom = y * scale - sure_margin * scale, (y + 1) * scale + sure_margin * scale
    covered, inner = set(), set()
    for cy in range(max(0, int(top) - 1), min(world, int(bottom) + 2)):
        for cx in range(max(0, int(left) - 1), min(world, int(right) + 2)):
            if not (cx < right and cx + 1 > left and cy < bottom and cy + 1 > top):
                continue
            keys = {interleave(cx * side + i, cy * side + j) for i in range(side) for j in range(side)}
            covered |= keys
            if s_left <= cx and cx + 1 <= s_right and s_top <= cy and cy + 1 <= s_bottom:
                inner |= keys
    return covered, inner


def _keys(ranges: list[KeyRange], edge: bool | None = None) -> set[int]:
    return {k for r in ranges if edge is None or r.edge == edge for k in range(r.low, r.high)}


@pytest.mark.parametrize(("z", "x", "y", "margin", "sure"), [
    (13, 6_762, 3_162, 0.05, 0.05), (14, 13_525, 6_325, 0.1, 0.0),
    (16, 54_100, 25_300, 0.5, 0.5), (16, 54_100, 25_300, 0.3, 0.0), (15, 27_050, 12_650, 0.05, 0.05),
    (17, 108_201, 50_601, 0.25, 0.1), (18, 216_403, 101_203, 0.5, 0.5), (20, 865_613, 404_813, 0.5, 0.2),
])
def test_cover_and_inner_cells_follow_the_rules(z, x, y, margin, sure):
    ranges = tile_key_ranges(z, x, y, margin, sure)
    covered, inner = _expected(z, x, y, margin, sure)
    assert covered and _keys(ranges) == covered
    assert _keys(ranges, edge=False) == inner
    # sorted, disjoint, and merged wherever two ranges touch with the same flag
    for a, b in zip(ranges, ranges[1:]):
        assert a.high <= b.low
        assert not (a.high == b.low and a.edge == b.edge)


def test_finer_zooms_use_their_zoom_20_ancestor_all_edge():
    """Tile 22/(4a+1)/(4b+1) grown by 2 of its widths is covered as its zoom-20 ancestor grown by half a width:
    the ancestor and its eight neighbours, every range an edge; no margin, the ancestor alone."""
    a, b = 865_613, 404_813
    ranges = tile_key_ranges(22, 4 * a + 1, 4 * b + 1, 2.0)
    assert ranges and all(r.edge for r in ranges)
    assert _keys(ranges) == {interleave(a + dx, b + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
    alone = tile_key_ranges(22, 4 * a + 1, 4 * b + 1, 0.0)
    assert alone and all(r.edge for r in alone) and _keys(alone) == {interleave(a, b)}


def test_the_world_edge_has_no_keys_beyond_it():
    z = 16
    ranges = tile_key_ranges(z, (1 << z) - 1, (1 << z) - 1, 0.5)
    assert ranges and max(r.high for r in ranges) <= 4 ** 20


def test_cells_clamp_at_the_edges_of_the_key_grid():
    assert cell_of(180.0, 0.0)[0] == (1 << 20) - 1
    assert cell_of(-180.0, 0.0)[0] == 0
    assert cell_of(0.0, -89.9)[1] == (1 << 20) - 1
    assert cell_of(0.0, 89.9)[1] == 0
