"""What identifies a person in the booking schema, read for an export and removed by an erasure.

A user is identified by its id and topics, and its subject (the token's) also appears in the
events it caused, its idempotency keys and its webhooks; its id also appears in answers recorded
for idempotency keys and in published outbox messages (`OfferMade` names the user). Erasure keeps
the bookings, under a pseudonym, for the counts organizers need (docs/adr/0024).
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, insert, select, text, update

from confbook_common.idempotency import forget_caller
from confbook_common.validation import shown
from services.booking.adapters.tables import (
    booking_events,
    bookings,
    conference_seats,
    idempotency_keys,
    users,
    webhooks,
)


def _protobuf_string(value: str) -> bytes:
    """`value` as a protobuf string field carries it (length, then UTF-8), without the field's tag:
    what finds a user id inside serialized messages without matching every id it is part of."""
    data = value.encode()
    length, prefix = len(data), bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        prefix.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(prefix) + data


class PersonalData:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def conferences_owned(self, subject: str) -> list[str]:
        """The names of the subject's conferences this service has copied (a scan: exports are rare)."""
        return list(
            self._connection.execute(
                select(conference_seats.c.name)
                .where(conference_seats.c.owner_subject == subject)
                .order_by(conference_seats.c.conference_id)
            ).scalars()
        )

    def pseudonymize(self, user_id: str, subject: str | None, pseudonym: str) -> int:
        """Move the user's bookings to `pseudonym` and remove the user and what names it or its
        subject; returns how many bookings were kept. The caller holds the user's lock, and has
        canceled its active bookings first. Rare, so the scans below are acceptable: each table
        scanned is bounded by its lifetime (docs/adr/0024)."""
        connection = self._connection
        connection.execute(insert(users).values(user_id=pseudonym, topics=[], subject=None, erased_at=func.now()))
        kept = connection.execute(
            update(bookings).where(bookings.c.user_id == user_id).values(user_id=pseudonym)
        ).rowcount
        if subject is not None:
            # The events it caused carry the pseudonym instead (its own cancels by this erasure too).
            connection.execute(
                update(booking_events).where(booking_events.c.actor_subject == subject).values(actor_subject=pseudonym)
            )
            connection.execute(delete(webhooks).where(webhooks.c.owner_subject == subject))
            connection.execute(
                update(conference_seats).where(conference_seats.c.owner_subject == subject).values(owner_subject=None)
            )
            forget_caller(connection, idempotency_keys, subject)
        # Answers recorded for others' keys that name the user (an admin's requests for it), and the
        # published messages that do; one not yet published is sent first, then goes with its lifetime.
        named = {"named": _protobuf_string(user_id), "quoted": shown(user_id).encode()}
        connection.execute(_ANSWERS_NAMING, named)
        connection.execute(_MESSAGES_NAMING, named)
        connection.execute(delete(users).where(users.c.user_id == user_id))
        return kept or 0


_ANSWERS_NAMING = text(
    "DELETE FROM booking.idempotency_keys"
    " WHERE position(:named IN response) > 0 OR position(:quoted IN error_status) > 0"
)
_MESSAGES_NAMING = text("DELETE FROM booking.outbox WHERE published_at IS NOT NULL AND position(:named IN payload) > 0")
