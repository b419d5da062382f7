"""Who is asking: principals, roles and the scope each role may see.

Roles: administrator, street office (its street), community (its community), grid worker (its grids),
property company (its compounds), planner (read only, no personal data), public (anonymised reports only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("admin", "street", "community", "grid_worker", "property_company", "planner", "public")
STAFF_ROLES = ("admin", "street", "community", "grid_worker", "property_company")


@dataclass(frozen=True)
class Principal:
    """The caller of a request. `scope` holds the codes the role is limited to (street, community or grid
    codes, or compound codes for a property company); the administrator and planner see the whole city."""

    role: str
    username: str = "public"
    user_id: int | None = None
    scope: tuple[str, ...] = field(default_factory=tuple)

    @property
    def sees_personal_data(self) -> bool:
        """Names and phone numbers of reporters and contacts: staff only, never planners or the public."""
        return self.role in STAFF_ROLES

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


PUBLIC = Principal(role="public")


def complaint_scope_sql(principal: Principal, alias: str = "complaint") -> tuple[str, dict]:
    """A WHERE fragment limiting complaints (or tickets joined to them) to what `principal` may see."""
    column = {
        "street": "street_code",
        "community": "community_code",
        "grid_worker": "grid_code",
        "property_company": "compound_code",
    }.get(principal.role)
    if column is None:
        return "TRUE", {}
    return f"{alias}.{column} = ANY(:scope_codes)", {"scope_codes": list(principal.scope)}
