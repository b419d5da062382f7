"""Who is responsible here: the parties serving a point of the map."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Connection
from api.security import CurrentPrincipal
from gis import responsibility

router = APIRouter(tags=["map"])


@router.get("/responsibility")
async def responsible_here(
    conn: Connection,
    principal: CurrentPrincipal,
    lon: Annotated[float, Query(description="Longitude, WGS-84 degrees")],
    lat: Annotated[float, Query(description="Latitude, WGS-84 degrees")],
) -> dict:
    """Street office, community, grid and grid workers, micro-grid, compound, building, property company
    (with its red/black list standing), owners' committee and party organisations at the point; contacts
    for staff only."""
    return await responsibility.responsible_parties(conn, lon, lat, principal)
