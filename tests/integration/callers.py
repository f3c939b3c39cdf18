"""Verified callers as the booking service's handlers get them, for tests below the gRPC layer.

A user made by the `new_user` fixture belongs to the subject of its own id, so `attendee(user_id)`
is that user's own caller.
"""

from __future__ import annotations

import math

from confbook_common.auth.bearer import Callers
from confbook_common.auth.caller import Caller, Role
from tests.fakes import CallContext
from tests.tokens import TokenForge


def attendee(subject: str) -> Caller:
    return Caller(subject=subject, roles=frozenset({Role.ATTENDEE}), expires_at=math.inf)


def organizer(subject: str) -> Caller:
    return Caller(subject=subject, roles=frozenset({Role.ATTENDEE, Role.ORGANIZER}), expires_at=math.inf)


def admin(subject: str = "root") -> Caller:
    return Caller(subject=subject, roles=frozenset({Role.ATTENDEE, Role.ADMIN}), expires_at=math.inf)


# The owner of every conference the fake conference service makes unless told otherwise.
ORGANIZER = organizer("olga")
ADMIN = admin()


def own_booking(uow, directory, user_id, conference, now):
    """`user_id`'s booking of `conference`, made by the user's own caller."""
    from services.booking.service_layer import handlers

    return handlers.book(
        uow(), directory, user_id=user_id, conference_name=conference.name, now=now, caller=attendee(user_id)
    )


# The same callers over gRPC: tokens of a test issuer, verified by the servicer as in production.
FORGE = TokenForge.generated()
CALLERS = Callers(FORGE.verifier())


def call_as(subject: str, role: str = "attendee", *metadata: tuple[str, str]) -> CallContext:
    """A call's context carrying a token of `subject` with `role`, and any other metadata."""
    return CallContext((("authorization", f"Bearer {FORGE.token(subject, role, ttl=3600)}"), *metadata))
