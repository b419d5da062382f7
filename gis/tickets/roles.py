"""Which roles may take which part in a ticket's closed loop; the state machine (`workflow`) and assignment by
area (`assignment`) both check against these sets."""

from __future__ import annotations

DISPATCHERS = frozenset({"admin", "street", "community"})
"""Register, reject, dispatch (one ticket or in bulk), reopen and merge."""
HANDLERS = frozenset({"admin", "street", "community", "property_company"})
"""Accept, return and handle a dispatched ticket."""
VERIFIERS = frozenset({"admin", "street", "community", "grid_worker"})
"""Verify and close, send back, and record a resident's rating from a call-back."""
COMMENTERS = frozenset({"admin", "street", "community", "grid_worker", "property_company"})
"""Comment and add photos."""
