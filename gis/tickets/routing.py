"""Routing rules (派遣规则) as data: category (or the category's responsible kind) × place → responsible party.

The intake trigger applies them to every new complaint; the lowest priority number that matches wins, and a
rule only matches where its party exists (a property company only inside a compound that has one)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.errors import InvalidInput, NotFound
from gis.layers.models import RESPONSIBLE_KINDS
from gis.tickets.models import ASSIGNEE_KINDS, PLACES

RULE_COLUMNS = ("priority", "name", "category_code", "responsible_kind", "place", "assignee_kind", "department",
                "auto_dispatch", "active")


async def list_rules(conn: AsyncConnection) -> list[dict]:
    """Every routing rule, active or not, lowest priority number first."""
    rows = await conn.execute(text(f"SELECT id, {', '.join(RULE_COLUMNS)}, updated_at FROM routing_rule "
                                   "ORDER BY priority, id"))
    return [dict(row) for row in rows.mappings()]


async def _validate(conn: AsyncConnection, rule: dict) -> dict:
    rule = {key: rule.get(key) for key in RULE_COLUMNS}
    if not isinstance(rule["priority"], int):
        raise InvalidInput("priority must be an integer (lower wins)")
    if not (rule["name"] or "").strip():
        raise InvalidInput("a rule needs a name")
    if rule["place"] is None:
        rule["place"] = "any"
    if rule["place"] not in PLACES:
        raise InvalidInput(f"place must be one of {', '.join(PLACES)}")
    if rule["assignee_kind"] not in ASSIGNEE_KINDS[:4]:
        raise InvalidInput(f"assignee_kind must be one of {', '.join(ASSIGNEE_KINDS[:4])}")
    if rule["assignee_kind"] in ("street_department", "utility") and not rule["department"]:
        raise InvalidInput("a street_department or utility rule needs its department")
    if rule["responsible_kind"] is not None and rule["responsible_kind"] not in RESPONSIBLE_KINDS:
        raise InvalidInput(f"responsible_kind must be one of {', '.join(RESPONSIBLE_KINDS)}")
    if rule["category_code"] is not None:
        found = (await conn.execute(text("SELECT 1 FROM category WHERE code = :c"),
                                    {"c": rule["category_code"]})).first()
        if found is None:
            raise InvalidInput(f"no category {rule['category_code']}")
    rule["auto_dispatch"] = True if rule["auto_dispatch"] is None else bool(rule["auto_dispatch"])
    rule["active"] = True if rule["active"] is None else bool(rule["active"])
    return rule


async def create_rule(conn: AsyncConnection, rule: dict) -> dict:
    """Validate and store a new routing rule, in the caller's transaction; returns it with its id. InvalidInput for a
    bad field or an unknown category."""
    rule = await _validate(conn, rule)
    row = (await conn.execute(text(f"""
        INSERT INTO routing_rule ({', '.join(RULE_COLUMNS)})
        VALUES ({', '.join(':' + c for c in RULE_COLUMNS)}) RETURNING id"""), rule)).scalar_one()
    return {"id": row, **rule}


async def update_rule(conn: AsyncConnection, rule_id: int, rule: dict) -> dict:
    """Validate and replace a routing rule, in the caller's transaction; NotFound for an unknown rule, InvalidInput for
    a bad field."""
    rule = await _validate(conn, rule)
    done = (await conn.execute(text(f"""
        UPDATE routing_rule SET {', '.join(f'{c} = :{c}' for c in RULE_COLUMNS)}, updated_at = now()
        WHERE id = :id RETURNING id"""), {**rule, "id": rule_id})).first()
    if done is None:
        raise NotFound(f"no routing rule {rule_id}")
    return {"id": rule_id, **rule}


async def deactivate_rule(conn: AsyncConnection, rule_id: int) -> None:
    """Rules are switched off, not deleted, so tickets keep naming the rule that routed them."""
    done = (await conn.execute(text("UPDATE routing_rule SET active = false, updated_at = now() WHERE id = :id "
                                    "RETURNING id"), {"id": rule_id})).first()
    if done is None:
        raise NotFound(f"no routing rule {rule_id}")
