"""Integrity checks of the pyramid's current versions, run as set-based SQL in PostGIS.

Fault kinds:
- invalid_geometry: not a valid (or an empty) polygon; such features are left out of the spatial checks below.
- outside_parent: more than the tolerance (1 m² by default) of a feature lies outside its parent (street in
  district, community in street, grid in community, micro-grid in grid, compound in community, building in
  micro-grid).
- overlap: two features of one layer share more than the tolerance.
- gap: part of a parent (district, street, community, grid) larger than the tolerance is covered by none of its
  children. Buildings need not cover their micro-grid, nor compounds their community.
- orphan_code: a parent (or compound) code that names no current feature, or a code that does not start with its
  parent's code.
- duplicate_code: a code with more than one current version, or with versions whose validity periods overlap.

Areas are measured in the metric system METRIC_SRID, after densifying the lon/lat edges.
"""

from __future__ import annotations

import json
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
import shapely

from gis import METRIC_SRID
from gis.db.engine import libpq_url
from gis.layers.pyramid import LAYERS

KINDS = ("invalid_geometry", "outside_parent", "overlap", "gap", "orphan_code", "duplicate_code")
KIND_NAMES_ZH = {"invalid_geometry": "图形无效", "outside_parent": "超出上级范围", "overlap": "同层重叠",
                 "gap": "覆盖缝隙", "orphan_code": "编码无所属", "duplicate_code": "编码重复"}
"""Each fault kind as the map's administrators read it."""
INVALID_REASONS_ZH = {"Self-intersection": "自相交", "Ring Self-intersection": "环自相交", "Too few points": "点数过少",
                      "Hole lies outside shell": "内环在外环之外", "Nested holes": "内环嵌套",
                      "Interior is disconnected": "内部不连通", "Nested shells": "外环嵌套",
                      "Duplicate Rings": "环重复", "Invalid Coordinate": "坐标无效", "empty geometry": "空图形"}
"""PostGIS's reasons (ST_IsValidDetail) in Chinese; another reason reads as 图形无效."""

CONTAINMENT = (
    ("street", "district", "district_code"),
    ("community", "street", "street_code"),
    ("grid", "community", "community_code"),
    ("micro_grid", "grid", "grid_code"),
    ("compound", "community", "community_code"),
    ("building", "micro_grid", "micro_grid_code"),
)
"""(child, parent, child's column holding the parent code): the child must lie inside the parent."""

COVERAGE = (
    ("district", "street", "district_code"),
    ("street", "community", "street_code"),
    ("community", "grid", "community_code"),
    ("grid", "micro_grid", "grid_code"),
)
"""(parent, child, child's column holding the parent code): the children must cover the parent."""

REFERENCES = (
    ("street", "district_code", "district", True),
    ("community", "street_code", "street", True),
    ("grid", "community_code", "community", True),
    ("micro_grid", "grid_code", "grid", True),
    ("micro_grid", "compound_code", "compound", False),
    ("compound", "community_code", "community", True),
    ("compound", "grid_code", "grid", False),
    ("building", "micro_grid_code", "micro_grid", True),
    ("building", "compound_code", "compound", False),
)
"""(layer, column, layer the column refers to, the code must start with the referred code)."""

LAYER_ORDER = ("district", "street", "community", "grid", "micro_grid", "compound", "building")


@dataclass(frozen=True)
class Fault:
    """One integrity fault: where (layer, code), what (kind, message and its Chinese `message_zh`), the other
    features involved as (layer, code) pairs, and the faulty place (EPSG:4326)."""

    layer: str
    code: str
    kind: str
    message: str
    geometry: object = None
    message_zh: str = ""
    involved: tuple = ()


def _zh(layer: str) -> str:
    return LAYERS[layer].title_zh


def _area(expression: str) -> str:
    # Stored edges are straight in lon/lat; densified first, they stay on that line in the metric system instead of
    # cutting the chord, which would turn the hairline slivers of a shared edge into square metres.
    return f"ST_Area(ST_Transform(ST_Segmentize({expression}, 0.0002), {METRIC_SRID}))"


def _valid(alias: str, layer: str) -> str:
    """Current, and not among the invalid geometries found first."""
    return (f"{alias}.valid_to IS NULL AND NOT EXISTS (SELECT 1 FROM check_invalid i "
            f"WHERE i.layer = '{layer}' AND i.id = {alias}.id)")


def _invalid_sql(layer: str) -> str:
    return f"""
        WITH detail AS (
            SELECT id, code, geom, ST_IsEmpty(geom) AS empty,
                   CASE WHEN ST_IsEmpty(geom) THEN NULL ELSE ST_IsValidDetail(geom) END AS d
            FROM {layer} WHERE valid_to IS NULL
        )
        SELECT id, code, CASE WHEN empty THEN 'empty geometry' ELSE (d).reason END,
               ST_AsBinary(coalesce((d).location, ST_PointOnSurface(ST_Envelope(geom))))
        FROM detail WHERE empty OR NOT (d).valid
    """


def _outside_sql(child: str, parent: str, column: str) -> str:
    return f"""
        WITH loose AS (
            SELECT c.code, p.code AS parent_code, ST_Difference(c.geom, p.geom) AS outside
            FROM {child} c JOIN {parent} p ON p.code = c.{column}
            WHERE {_valid('c', child)} AND {_valid('p', parent)} AND NOT ST_CoveredBy(c.geom, p.geom)
        )
        SELECT code, parent_code, {_area('outside')} AS area, ST_AsBinary(outside)
        FROM loose WHERE {_area('outside')} > %(tolerance)s
    """


def _overlap_sql(layer: str) -> str:
    return f"""
        WITH touching AS (
            SELECT a.code AS a_code, b.code AS b_code, ST_Intersection(a.geom, b.geom) AS shared
            -- "+ 0" keeps the planner from an id index range scan per row (quadratic on 200,000 buildings)
            FROM {layer} a JOIN {layer} b ON a.geom && b.geom AND a.id + 0 < b.id + 0
            WHERE {_valid('a', layer)} AND {_valid('b', layer)} AND ST_Relate(a.geom, b.geom, '2********')
        )
        SELECT least(a_code, b_code), greatest(a_code, b_code), {_area('shared')}, ST_AsBinary(shared)
        FROM touching WHERE {_area('shared')} > %(tolerance)s
    """


def _gap_sql(parent: str, child: str, column: str) -> str:
    return f"""
        WITH cover AS (
            SELECT p.code, p.geom, ST_Union(c.geom) AS children
            FROM {parent} p LEFT JOIN {child} c ON c.{column} = p.code AND {_valid('c', child)}
            WHERE {_valid('p', parent)}
            GROUP BY p.id, p.code, p.geom
        ), pieces AS (
            SELECT code, (ST_Dump(CASE WHEN children IS NULL THEN geom
                                       ELSE ST_Difference(geom, children) END)).geom AS piece
            FROM cover
        ), large AS (
            SELECT code, piece, {_area('piece')} AS area FROM pieces
        )
        SELECT code, sum(area), count(*), ST_AsBinary(ST_Collect(piece))
        FROM large WHERE area > %(tolerance)s GROUP BY code
    """


def _reference_sql(layer: str, column: str, target: str, prefixed: bool) -> str:
    prefix_test = f"OR NOT starts_with(c.code, c.{column})" if prefixed else ""
    return f"""
        SELECT c.code, c.{column}, t.code IS NOT NULL AS target_exists, ST_AsBinary(c.geom)
        FROM {layer} c LEFT JOIN {target} t ON t.code = c.{column} AND t.valid_to IS NULL
        WHERE c.valid_to IS NULL AND c.{column} IS NOT NULL AND (t.code IS NULL {prefix_test})
    """


def _duplicate_sql(layer: str) -> str:
    return f"""
        SELECT a.code, a.valid_from, a.valid_to, b.valid_from, b.valid_to,
               ST_AsBinary(ST_Collect(a.geom, b.geom))
        FROM {layer} a JOIN {layer} b ON a.code = b.code AND a.id < b.id
        WHERE daterange(a.valid_from, a.valid_to) && daterange(b.valid_from, b.valid_to)
    """


def _faults(conn: psycopg.Connection, job: tuple, tolerance: float) -> list[Fault]:
    kind, args = job[0], job[1:]
    parameters = {"tolerance": tolerance}
    faults = []
    if kind == "outside_parent":
        child, parent, column = args
        for code, parent_code, area, wkb in conn.execute(_outside_sql(child, parent, column), parameters):
            faults.append(Fault(child, code, kind, f"{area:,.1f} m² lies outside its {parent} {parent_code}",
                                shapely.from_wkb(wkb), f"有 {area:,.1f} m² 超出所属{_zh(parent)} {parent_code}",
                                ((parent, parent_code),)))
    elif kind == "overlap":
        (layer,) = args
        for first, second, area, wkb in conn.execute(_overlap_sql(layer), parameters):
            faults.append(Fault(layer, first, kind, f"overlaps {layer} {second} by {area:,.1f} m²",
                                shapely.from_wkb(wkb), f"与{_zh(layer)} {second} 重叠 {area:,.1f} m²",
                                ((layer, second),)))
    elif kind == "gap":
        parent, child, column = args
        for code, area, pieces, wkb in conn.execute(_gap_sql(parent, child, column), parameters):
            faults.append(Fault(parent, code, kind,
                                f"{area:,.1f} m² in {pieces} piece{'s' if pieces > 1 else ''} "
                                f"covered by no {child}", shapely.from_wkb(wkb),
                                f"有 {area:,.1f} m²（{pieces} 处）未被任何{_zh(child)}覆盖"))
    elif kind == "orphan_code":
        layer, column, target, prefixed = args
        for code, reference, exists, wkb in conn.execute(_reference_sql(layer, column, target, prefixed)):
            message = (f"{column} {reference}: no current {target} has that code" if not exists
                       else f"code does not start with its {column} {reference}")
            message_zh = (f"所属{_zh(target)}编码 {reference} 没有对应的现行{_zh(target)}" if not exists
                          else f"编码不以所属{_zh(target)}编码 {reference} 开头")
            faults.append(Fault(layer, code, kind, message, shapely.from_wkb(wkb), message_zh,
                                ((target, reference),)))
    elif kind == "duplicate_code":
        (layer,) = args
        for code, a_from, a_to, b_from, b_to, wkb in conn.execute(_duplicate_sql(layer)):
            if a_to is None and b_to is None:
                message = f"two current versions (valid from {a_from} and {b_from})"
                message_zh = f"有两个现行版本（分别自 {a_from} 和 {b_from} 起有效）"
            else:
                message = (f"versions overlap in time: {a_from}–{a_to or 'now'} and {b_from}–{b_to or 'now'}")
                message_zh = (f"两个版本的有效期重叠：{a_from}–{a_to or '至今'} 与 {b_from}–{b_to or '至今'}")
            faults.append(Fault(layer, code, kind, message, shapely.from_wkb(wkb), message_zh))
    return faults


def _jobs() -> list[tuple]:
    jobs: list[tuple] = []
    jobs += [("outside_parent", *pair) for pair in CONTAINMENT]
    jobs += [("overlap", layer) for layer in LAYER_ORDER]
    jobs += [("gap", *pair) for pair in COVERAGE]
    jobs += [("orphan_code", *reference) for reference in REFERENCES]
    jobs += [("duplicate_code", layer) for layer in LAYER_ORDER]
    return jobs


def run_checks(url: str, tolerance_m2: float = 1.0, workers: int = 2) -> list[Fault]:
    """Every fault of the current pyramid, ordered by layer, kind and code."""
    faults: list[Fault] = []
    invalid_rows: list[tuple[str, int]] = []
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for layer in LAYER_ORDER:
            for row_id, code, reason, wkb in conn.execute(_invalid_sql(layer)):
                invalid_rows.append((layer, row_id))
                faults.append(Fault(layer, code, "invalid_geometry", reason, shapely.from_wkb(wkb),
                                    f"图形无效：{INVALID_REASONS_ZH.get(reason, '不是有效的多边形')}"))

    pending: queue.SimpleQueue = queue.SimpleQueue()
    for job in _jobs():
        pending.put(job)

    def work() -> list[Fault]:
        found: list[Fault] = []
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            # Each connection keeps its own copy of the invalid rows, to leave them out of the spatial checks.
            conn.execute("CREATE TEMP TABLE check_invalid (layer text, id bigint, PRIMARY KEY (layer, id))")
            with conn.cursor().copy("COPY check_invalid FROM STDIN") as copy:
                for row in invalid_rows:
                    copy.write_row(row)
            conn.execute("ANALYZE check_invalid")
            while True:
                try:
                    job = pending.get_nowait()
                except queue.Empty:
                    return found
                found.extend(_faults(conn, job, tolerance_m2))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for found in [pool.submit(work) for _ in range(max(1, workers))]:
            faults.extend(found.result())
    rank = {layer: position for position, layer in enumerate(LAYER_ORDER)}
    faults.sort(key=lambda fault: (rank[fault.layer], KINDS.index(fault.kind), fault.code, fault.message))
    return faults


def faults_geojson(faults: list[Fault]) -> dict:
    """The faults as a GeoJSON FeatureCollection of their places, for the map."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": json.loads(shapely.to_geojson(fault.geometry)) if fault.geometry is not None else None,
                "properties": {"layer": fault.layer, "code": fault.code, "kind": fault.kind,
                               "message": fault.message},
            }
            for fault in faults
        ],
    }
