"""Selecting tickets: by street, community, set of grids, compound, polygon or bounding box, and by category,
state, age, overdue and assignee. Shared by the listing, the export, the tiles and bulk assignment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gis.access.auth import Principal
from gis.access.visibility import place_in_box_sql, visibility
from gis.errors import Forbidden, InvalidInput
from gis.layers.geometry_input import area_wkb, valid_area_geojson
from gis.tickets.models import OPEN_STATES, STATES, overdue_sql
from gis.tickets.scope import mine_sql, ticket_scope_sql


@dataclass
class TicketFilter:
    states: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    street: str | None = None
    community: str | None = None
    grids: list[str] = field(default_factory=list)
    compound: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    polygon: dict | None = None
    overdue: bool | None = None
    min_age_hours: float | None = None
    max_age_hours: float | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    mine: bool = False
    ids: list[int] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not any((self.states, self.categories, self.street, self.community, self.grids, self.compound,
                        self.bbox, self.polygon, self.overdue is not None, self.min_age_hours is not None,
                        self.max_age_hours is not None, self.reported_from, self.reported_to, self.mine, self.ids))


def parse_polygon(value: str | dict | None) -> dict | None:
    """A drawn area: GeoJSON Polygon or MultiPolygon (a bare geometry or a Feature) in WGS-84 lon/lat, checked,
    bounded and repaired in the application (`gis.layers.geometry_input`); the valid geometry as a GeoJSON mapping."""
    if value is None or value == "":
        return None
    return valid_area_geojson(value)


def _state_clauses(f: TicketFilter, alias: str, clauses: list[str], params: dict) -> None:
    """States ('open' meaning every open state), categories, codes of units, grids and ids."""
    bad = sorted(set(f.states) - set(STATES) - {"open"})
    if bad:
        raise InvalidInput(f"unknown state(s) {', '.join(bad)}; states are {', '.join(STATES)} or open")
    states = set(f.states)
    if "open" in states:
        states = (states - {"open"}) | set(OPEN_STATES)
    if states:
        clauses.append(f"{alias}.state = ANY(:states)")
        params["states"] = sorted(states)
    if f.categories:
        clauses.append(f"{alias}.category_code = ANY(:categories)")
        params["categories"] = f.categories
    for column, value in (("street_code", f.street), ("community_code", f.community),
                          ("compound_code", f.compound)):
        if value:
            clauses.append(f"{alias}.{column} = :{column}")
            params[column] = value
    if f.grids:
        clauses.append(f"{alias}.grid_code = ANY(:grids)")
        params["grids"] = f.grids
    if f.ids:
        clauses.append(f"{alias}.id = ANY(:ids)")
        params["ids"] = f.ids


def _time_clauses(f: TicketFilter, alias: str, clauses: list[str], params: dict) -> None:
    """Overdue or not, age in hours and the reported time."""
    if f.overdue is True:
        clauses.append(overdue_sql(alias))
    elif f.overdue is False:
        clauses.append(f"NOT {overdue_sql(alias)}")
    if f.min_age_hours is not None:
        clauses.append(f"{alias}.reported_at <= now() - make_interval(secs => :min_age * 3600)")
        params["min_age"] = f.min_age_hours
    if f.max_age_hours is not None:
        clauses.append(f"{alias}.reported_at >= now() - make_interval(secs => :max_age * 3600)")
        params["max_age"] = f.max_age_hours
    if f.reported_from is not None:
        clauses.append(f"{alias}.reported_at >= :reported_from")
        params["reported_from"] = f.reported_from
    if f.reported_to is not None:
        clauses.append(f"{alias}.reported_at < :reported_to")
        params["reported_to"] = f.reported_to


def _area_clauses(principal: Principal, f: TicketFilter, clauses: list[str], params: dict) -> bool:
    """The bounding box and the drawn area (on the complaint's place); True when either is given."""
    if f.bbox is not None:
        # the place the caller sees decides, so a snapped place cannot be narrowed by moving the box
        clauses.append(place_in_box_sql(visibility(principal), "c.geom",
                                        "ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)"))
        params.update(zip(("minx", "miny", "maxx", "maxy"), f.bbox))
    if f.polygon is not None:
        if not principal.is_staff:
            raise Forbidden("只有登录的工作人员可以按绘制的区域筛选工单")
        # checked again here, so no path can send PostGIS a geometry it would have to repair
        clauses.append("ST_Intersects(c.geom, (SELECT ST_GeomFromWKB(:polygon, 4326)))")
        params["polygon"] = area_wkb(f.polygon)
    return f.bbox is not None or f.polygon is not None


def where_sql(principal: Principal, f: TicketFilter, alias: str = "t") -> tuple[str, dict, bool]:
    """The WHERE clause (scope first) and its parameters; the flag says whether `complaint c` must be joined."""
    scope, params = ticket_scope_sql(principal, alias)
    clauses = [scope]
    _state_clauses(f, alias, clauses, params)
    _time_clauses(f, alias, clauses, params)
    if f.mine:
        if principal.user_id is None:
            raise InvalidInput("'assigned to me' needs a signed-in user")
        mine, mine_params = mine_sql(principal, alias)
        clauses.append(mine)
        params.update(mine_params)
    needs_complaint = _area_clauses(principal, f, clauses, params)
    return " AND ".join(clauses), params, needs_complaint
