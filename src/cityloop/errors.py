"""The error vocabulary shared by every capability.

Services raise these; the HTTP layer maps them to status codes and the CLI to a sentence and a
non-zero exit. Each carries a human sentence and, where one field is at fault, its name.
"""

from __future__ import annotations


class CityloopError(Exception):
    """Base class: a problem the user can act on (never a bug)."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"error": type(self).__name__, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class InvalidInput(CityloopError):
    """A value is malformed or out of range."""

    status_code = 422


class NotFound(CityloopError):
    status_code = 404


class PermissionDenied(CityloopError):
    """The actor's role or department scope does not allow this."""

    status_code = 403


class Unauthenticated(CityloopError):
    status_code = 401


class Conflict(CityloopError):
    """The data changed underneath the caller (stale version) or a unique value is taken."""

    status_code = 409


class RuleViolation(CityloopError):
    """A domain rule refuses the operation (e.g. an action not allowed in the current state)."""

    status_code = 422


class ConfigurationError(CityloopError):
    """The city's configuration cannot answer (e.g. no holiday data for a year)."""

    status_code = 422
