"""Erasing a person (docs/adr/0024): what replaces the user id in what is kept."""

from __future__ import annotations

import secrets

PSEUDONYM_PREFIX = "erased"


def new_pseudonym() -> str:
    """A new user id for an erased user's bookings: random, so that nobody can tell from it whose
    they were (a hash of the id could be reversed by trying ids), and letters and digits like any
    user id. The same one for all the bookings of one erasure, so that they still count as one person's."""
    return PSEUDONYM_PREFIX + secrets.token_hex(12)
