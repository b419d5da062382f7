"""Resolving the caller of a request into a `Principal` (bearer tokens)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gis.auth import PUBLIC, Principal


async def get_principal(request: Request) -> Principal:
    """The caller; without credentials, the public."""
    return PUBLIC


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
