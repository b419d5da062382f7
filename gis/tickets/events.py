"""A ticket's history (工单流转记录): one append-only `ticket_event` row per action, with who acted."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal


def actor_name(principal: Principal) -> str:
    """The name the history records for the one who acted."""
    return principal.username


async def record_event(
    conn: AsyncConnection, principal: Principal, ticket_id: int, action: str,
    from_state: str | None, to_state: str | None, note: str | None = None, data: dict | None = None,
) -> int:
    """Append one event to the ticket's history in the caller's transaction; returns its id."""
    return (await conn.execute(
        text("""INSERT INTO ticket_event (ticket_id, actor_user_id, actor, action, from_state, to_state, note, data)
                VALUES (:t, :uid, :actor, :action, :from_state, :to_state, :note, CAST(:data AS jsonb))
                RETURNING id"""),
        {"t": ticket_id, "uid": principal.user_id, "actor": actor_name(principal), "action": action,
         "from_state": from_state, "to_state": to_state, "note": note,
         "data": json.dumps(data, ensure_ascii=False) if data is not None else None},
    )).scalar_one()
