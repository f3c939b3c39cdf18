"""Text rules shared by the services that accept names, ids and topics."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from confbook_common.errors import InvalidInput


def _is_letter_or_digit(char: str) -> bool:
    # Unicode letters (so "Zürich" is a fine location) and decimal digits only:
    # str.isalnum() would also let through things like "½" and "²".
    category = unicodedata.category(char)
    return category.startswith("L") or category == "Nd"


def conference_name_key(name: str) -> str:
    """Conference names are unique and looked up ignoring case (and surrounding spaces).

    The conference service keys its conferences by it, and the booking service its copies.
    """
    return name.strip().casefold()


def words(field: str, value: str, *, max_length: int) -> str:
    """Letters, digits and spaces, not blank; surrounding spaces are dropped."""
    text = value.strip()
    if not text:
        raise InvalidInput(field, "must not be blank")
    if len(text) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    if not all(char == " " or _is_letter_or_digit(char) for char in text):
        raise InvalidInput(field, "may contain only letters, digits and spaces")
    return text


def identifier(field: str, value: str, *, max_length: int) -> str:
    """Letters and digits only, 1 to max_length characters."""
    if not value:
        raise InvalidInput(field, "must not be empty")
    if len(value) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    if not all(_is_letter_or_digit(char) for char in value):
        raise InvalidInput(field, "may contain only letters and digits")
    return value


def topics(field: str, values: Sequence[str], *, max_count: int, max_length: int = 100) -> list[str]:
    """A list of distinct topics (case ignored), each following `words`."""
    if len(values) > max_count:
        raise InvalidInput(field, f"at most {max_count} topics are allowed, got {len(values)}")
    cleaned: list[str] = []
    seen: set[str] = set()
    for index, value in enumerate(values):
        topic = words(f"{field}[{index}]", value, max_length=max_length)
        key = topic.casefold()
        if key in seen:
            raise InvalidInput(f"{field}[{index}]", f"duplicate topic {topic!r}")
        seen.add(key)
        cleaned.append(topic)
    return cleaned


def positive_id(field: str, value: int) -> int:
    if value <= 0:
        raise InvalidInput(field, "must be a positive integer")
    return value


def required(field: str, value: str, *, max_length: int) -> str:
    """A key to look something up by: present and of sane length (what exists decides the rest)."""
    if not value.strip():
        raise InvalidInput(field, "is required")
    if len(value) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    return value
