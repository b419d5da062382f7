"""What part of the tickets a principal may see: every ticket query goes through `ticket_scope_sql`."""

from __future__ import annotations

from gis.access.auth import Principal, complaint_scope_sql


def ticket_scope_sql(principal: Principal, alias: str = "t") -> tuple[str, dict]:
    """A WHERE fragment over `ticket` (which carries the complaint's codes). The public sees no rejected
    reports; what the public sees of the rest is anonymised by the query that selects it."""
    scope, params = complaint_scope_sql(principal, alias)
    if principal.role == "public":
        return f"{alias}.state <> 'rejected'", {}
    return scope, params


def mine_sql(principal: Principal, alias: str = "t") -> tuple[str, dict]:
    """Tickets assigned to the caller: to itself as a user, or named as the person of its organisation, or to its
    unit."""
    parts = [f"({alias}.assignee_kind = 'user' AND {alias}.assignee_code = :me_id)",
             f"({alias}.assignee_user_id::text = :me_id)"]
    params: dict = {"me_id": str(principal.user_id)}
    if principal.role == "property_company":
        parts.append(f"({alias}.assignee_kind = 'property_company' AND {alias}.assignee_code = :me_company)")
        params["me_company"] = str(principal.company_id)
    elif principal.role == "community":
        parts.append(f"({alias}.assignee_kind = 'community' AND {alias}.assignee_code = ANY(:me_units))")
        params["me_units"] = list(principal.scope)
    elif principal.role == "street":
        parts.append(f"({alias}.assignee_kind = 'street_department' AND {alias}.assignee_code = ANY(:me_units))")
        params["me_units"] = list(principal.scope)
    return "(" + " OR ".join(parts) + ")", params
