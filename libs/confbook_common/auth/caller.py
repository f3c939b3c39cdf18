"""The verified caller of a request: a subject and the roles its token grants."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    ATTENDEE = "attendee"  # any valid token
    ORGANIZER = "organizer"
    ADMIN = "admin"


@dataclass(frozen=True)
class Caller:
    subject: str
    roles: frozenset[Role]
    # When the token stops counting (seconds since the epoch).
    expires_at: float

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @property
    def may_organize(self) -> bool:
        return Role.ORGANIZER in self.roles or self.is_admin

    @property
    def role(self) -> Role:
        """The strongest role, as a change records who caused it."""
        if self.is_admin:
            return Role.ADMIN
        if Role.ORGANIZER in self.roles:
            return Role.ORGANIZER
        return Role.ATTENDEE


# What a booking event records when no person caused the change (an expiry, a start, an offer).
SYSTEM = "system"
