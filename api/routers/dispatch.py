"""Suggested dispatch over HTTP: the suggestion kept with a complaint, and a suggestion for a text typed by staff
(a call-taker's 12345 record before it is saved)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Response
from pydantic import BaseModel

from api.deps import Connection
from api.params import QueryBool
from api.security import CurrentPrincipal
from gis.dispatch import store
from gis.errors import NotFound

router = APIRouter(prefix="/complaints", tags=["dispatch"])


class SuggestBody(BaseModel):
    text: str | None = None
    place: str | None = None


@router.post("/suggest", responses={404: {"description": "Not offered to this caller (the public, planners)"}})
async def suggest(body: SuggestBody, principal: CurrentPrincipal, conn: Connection) -> dict:
    """The newest model's top three categories and parties for a complaint text, with calibrated confidences,
    whether it is confident (else a person chooses) and the n-grams behind it; `place` (managed_compound,
    unmanaged_compound, open_space) sharpens the party. Staff only (404 for the public and planners), 400 for an
    empty text, 409 before any model is trained."""
    if not principal.is_staff:
        raise NotFound("没有这个接口")
    return await store.suggest_text(conn, body.text, body.place)


@router.get("/{complaint_id}/suggestion", response_model=None, responses={204: {"description": "no suggestion"}})
async def suggestion(complaint_id: int, principal: CurrentPrincipal, conn: Connection,
                     or_newest: QueryBool = False) -> dict | Response:
    """What the model suggested when the complaint came in (top three, confidences, the words behind it, its
    version, whether it filled the category); staff in scope only, 404 otherwise and when it has none. With
    `or_newest=true` (the map's review and dispatch views) a complaint without one gets the newest model's
    suggestion for its text now (`kept` false), and 204 when there is none at all (no model trained yet)."""
    if or_newest:
        found = await store.suggestion_to_show(conn, principal, complaint_id)
        if found is None:
            return Response(status_code=204)
        return json.loads(json.dumps(found, default=str))
    return json.loads(json.dumps(await store.stored_suggestion(conn, principal, complaint_id), default=str))
