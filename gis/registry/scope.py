"""Which units a caller may read and change in the registry: the administrator the whole city, a street office
its street's communities and everything in them, a community its own; other roles may not use the registry.

A code outside the scope is treated as a code that does not exist (the reason and the 404 are the same), so
the registry does not tell a street what another street holds.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis.access.auth import Principal
from gis.errors import Forbidden

REGISTRY_ROLES = ("admin", "street", "community")

_UNITS = {
    "community": "SELECT code FROM community WHERE valid_to IS NULL AND code = ANY(:communities)",
    "grid": "SELECT code FROM grid WHERE valid_to IS NULL AND community_code = ANY(:communities)",
    "compound": "SELECT code FROM compound WHERE valid_to IS NULL AND community_code = ANY(:communities)",
    "building": """SELECT b.code FROM building b
                   JOIN micro_grid m ON m.code = b.micro_grid_code AND m.valid_to IS NULL
                   JOIN grid g ON g.code = m.grid_code AND g.valid_to IS NULL
                   WHERE b.valid_to IS NULL AND g.community_code = ANY(:communities)""",
}


def require_registry_role(principal: Principal) -> None:
    """Forbidden unless the caller is the administrator, a street office or a community."""
    if principal.role not in REGISTRY_ROLES:
        raise Forbidden("登记信息仅限管理员、街道和社区用户维护")


class Scope:
    """The caller's units, each level read once on first use."""

    def __init__(self, conn: Connection, principal: Principal):
        require_registry_role(principal)
        self.conn = conn
        self.principal = principal
        self._codes: dict[str, set[str]] = {}

    @property
    def whole_city(self) -> bool:
        """Whether the caller is the administrator."""
        return self.principal.role == "admin"

    def communities(self) -> list[str]:
        """The community codes in scope."""
        if self.principal.role == "admin":
            sql, params = "SELECT code FROM community WHERE valid_to IS NULL", {}
        elif self.principal.role == "street":
            sql = "SELECT code FROM community WHERE valid_to IS NULL AND street_code = ANY(:streets)"
            params = {"streets": list(self.principal.scope)}
        else:
            sql = "SELECT code FROM community WHERE valid_to IS NULL AND code = ANY(:codes)"
            params = {"codes": list(self.principal.scope)}
        return [code for (code,) in self.conn.execute(text(sql), params)]

    def codes(self, level: str) -> set[str]:
        """The codes of `level` (community, grid, compound, building) in scope."""
        if level not in self._codes:
            if level == "community":
                self._codes[level] = set(self.communities())
            else:
                communities = sorted(self.codes("community"))
                self._codes[level] = {code for (code,) in self.conn.execute(text(_UNITS[level]),
                                                                             {"communities": communities})}
        return self._codes[level]
