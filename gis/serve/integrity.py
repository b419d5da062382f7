"""The integrity faults of the pyramid, exactly as `gridgov check` finds them (gis/layers/checks.py), as the
administrators' map layer: each fault a GeoJSON feature with its kind in Chinese, the features involved and a
place to draw — the part outside the parent, the shared area of an overlap, the uncovered pieces of a gap, and a
point for a fault that has no area of its own (an invalid geometry's location, an orphan or duplicate code's
feature)."""

from __future__ import annotations

import json

import shapely

from gis.layers.checks import KIND_NAMES_ZH, Fault, run_checks
from gis.layers.pyramid import LAYERS

POINT_KINDS = frozenset({"invalid_geometry", "orphan_code", "duplicate_code"})
"""Faults drawn as a point inside the feature: the feature itself is not the fault's place."""


def _place(fault: Fault):
    geometry = fault.geometry
    if geometry is None or geometry.is_empty:
        return None
    if fault.kind in POINT_KINDS and geometry.geom_type != "Point":
        geometry = shapely.point_on_surface(geometry) if geometry.is_valid else geometry.centroid
    return json.loads(shapely.to_geojson(shapely.set_precision(geometry, 1e-7)))


def fault_feature(fault: Fault, number: int) -> dict:
    """One fault as a map feature; `number` is its place in the check's order (its id)."""
    involved = [(fault.layer, fault.code), *fault.involved]
    return {
        "type": "Feature", "id": number, "geometry": _place(fault),
        "properties": {
            "kind": fault.kind, "kind_zh": KIND_NAMES_ZH[fault.kind], "layer": fault.layer,
            "layer_zh": LAYERS[fault.layer].title_zh, "code": fault.code, "message_zh": fault.message_zh,
            "involved": [{"layer": layer, "layer_zh": LAYERS[layer].title_zh, "code": code}
                         for layer, code in involved],
        },
    }


def integrity_geojson(url: str, tolerance_m2: float = 1.0) -> dict:
    """Every fault of the current pyramid as a FeatureCollection, in the check's order, with the kinds' names."""
    faults = run_checks(url, tolerance_m2=tolerance_m2)
    return {"type": "FeatureCollection", "features": [fault_feature(f, n) for n, f in enumerate(faults, 1)],
            "faults": len(faults), "kinds_zh": KIND_NAMES_ZH, "tolerance_m2": tolerance_m2}
