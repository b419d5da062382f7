"""Typed errors of the core; the API maps each to one HTTP status in one place."""


class GridgovError(Exception):
    """Base of gridgov's own errors."""


class SetupError(GridgovError):
    """The environment is not ready (missing packages, database down)."""


class NotFound(GridgovError):
    """The thing asked for does not exist, or is outside the caller's scope (existence must not leak)."""


class InvalidInput(GridgovError):
    """Input that cannot be accepted; the message says why."""


class Conflict(GridgovError):
    """A concurrent change won; the caller should reload and retry."""


class Forbidden(GridgovError):
    """Authenticated, but the role may not do this at all."""


class Unauthorized(GridgovError):
    """No valid credentials."""


class TooManyAttempts(GridgovError):
    """Refused for a while after too many failed attempts; `retry_after` is in whole seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
