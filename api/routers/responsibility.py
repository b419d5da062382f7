"""Who is responsible here: the parties serving a point of the map."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.audit import log_personal_read
from api.deps import Engine, ReadConnection
from api.security import CurrentPrincipal
from gis.serve import responsibility

router = APIRouter(tags=["map"])


@router.get("/responsibility", responses={404: {"description": "The point lies outside the city"}})
async def responsible_here(
    request: Request,
    conn: ReadConnection,
    engine: Engine,
    principal: CurrentPrincipal,
    lon: Annotated[float, Query(description="Longitude, WGS-84 degrees")],
    lat: Annotated[float, Query(description="Latitude, WGS-84 degrees")],
) -> dict:
    """Street office, community, grid and grid workers, micro-grid, compound, building, property company
    (with its red/black list standing), owners' committee and party organisations at the point; contacts
    for staff only."""
    answer = await responsibility.responsible_parties(conn, lon, lat, principal)
    await log_personal_read(request, engine, principal, "contact", record_count=_contacts_shown(answer))
    return answer


def _contacts_shown(answer: dict) -> int:
    """How many people's contacts (name/phone objects, office phones) the answer carries."""
    shown = 0
    for value in answer.values():
        for unit in value if isinstance(value, list) else [value]:
            if isinstance(unit, dict):
                shown += sum(1 for key in ("contact", "leader", "chair", "secretary") if unit.get(key))
                shown += 1 if unit.get("office_phone") else 0
    return shown
