"""The one place where the core's typed errors become HTTP statuses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gis import errors

STATUS = {
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooManyAttempts: 429,
    errors.SetupError: 503,
}


def status_for(error: errors.GridgovError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.GridgovError)
    async def _gridgov_error(request: Request, error: errors.GridgovError) -> JSONResponse:
        headers = None
        if isinstance(error, errors.TooManyAttempts):
            headers = {"Retry-After": str(error.retry_after)}
        return JSONResponse({"detail": str(error)}, status_code=status_for(error), headers=headers)
