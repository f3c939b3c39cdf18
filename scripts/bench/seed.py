"""Untimed setup. Users go straight into booking.users, bypassing the API: creating tens of thousands through
it would take minutes. Conferences are created through the API (by the bench's organizer), since the booking
service learns of them there."""

from __future__ import annotations

import io
from collections.abc import Sequence

from sqlalchemy.engine import make_url

from scripts import infra
from scripts.bench.api import Gateway, concurrently

SETUP_CLIENTS = 16


def user_ids(prefix: str, count: int) -> list[str]:
    """The ids the wrk scripts hand out: prefix0, prefix1, ..."""
    return [f"{prefix}{n}" for n in range(count)]


def insert_users(database_url: str, ids: Sequence[str]) -> None:
    """COPY the users in, with the owner account: one statement however many there are. Each belongs to the
    subject named like it, as if that subject's token had created it (scripts/bench/tokens.py)."""
    rows = io.StringIO("".join(f"{user_id}\t{{Benchmarks}}\t{user_id}\n" for user_id in ids))
    connection = infra.connect_postgres(make_url(database_url))
    try:
        with connection, connection.cursor() as cursor:
            cursor.copy_expert("COPY booking.users (user_id, topics, subject) FROM STDIN", rows)
    finally:
        connection.close()


async def create_conferences(gateway: Gateway, names: Sequence[str], slots: int) -> dict[str, int]:
    """Each name's conference_id."""
    burst = await concurrently(lambda name: gateway.new_conference(slots, name=name), names, SETUP_CLIENTS)
    ids = {conference["name"]: conference["conference_id"] for conference in burst.results}
    return {name: ids[name] for name in names}  # in the order given, not the order they were answered
