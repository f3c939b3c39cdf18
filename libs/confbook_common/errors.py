"""Domain errors shared by all services; each maps to one gRPC status in grpc/errors.py."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A request the domain refuses. `code` is the stable, machine-readable reason."""

    code: ClassVar[str] = "DOMAIN_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """The request breaks a validation rule (HTTP 400)."""

    code = "VALIDATION_ERROR"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(DomainError):
    """The named user, conference or booking does not exist (HTTP 404)."""


class AlreadyExists(DomainError):
    """Creating something whose identity is taken (HTTP 409)."""


class Conflict(DomainError):
    """The request clashes with the current state (HTTP 409)."""


class Unprocessable(DomainError):
    """A well-formed request that cannot be taken as sent (HTTP 422; gRPC INVALID_ARGUMENT)."""


class RecordedRefusal(DomainError):
    """A refusal given before and recorded (an idempotent retry's): `status` is sent again as it was."""

    def __init__(self, status: Any) -> None:
        super().__init__(status.details)
        self.status = status


class Unauthenticated(DomainError):
    """No credentials, or credentials that do not count: a missing, malformed, expired or foreign
    token, or an internal API called without the secret of the one service allowed to call it."""

    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    """A verified caller without the right to do this (HTTP 403; gRPC PERMISSION_DENIED)."""

    code = "FORBIDDEN"


class RoleMissing(Forbidden):
    """The caller's token lacks the role this needs (HTTP 403 with error="insufficient_scope")."""

    code = "ROLE_REQUIRED"


class DependencyUnavailable(Exception):
    """Another service or the broker did not answer in time; the work may be retried later."""
