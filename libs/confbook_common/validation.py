"""The input rules, in one place: every service checks its own gRPC input with them, and the gateway
checks and documents its HTTP input with the same ones (see README.md, "Input rules")."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from google.protobuf.timestamp_pb2 import Timestamp

from confbook_common.errors import InvalidInput

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# The largest integer every JSON reader holds exactly (RFC 8259, I-JSON): the HTTP API's ids stop there.
JSON_INT_MAX = 2**53 - 1

NAME_MAX_LENGTH = 100  # conference names and locations
TOPIC_MAX_LENGTH = 100
USER_ID_MAX_LENGTH = 64
CONFERENCE_TOPICS_MAX = 10
USER_TOPICS_MAX = 50
# Far above any venue; keeps counts well inside 32-bit integers.
SLOTS_MAX = 1_000_000
PAGE_SIZE_MAX = 100
RECOMMENDATIONS_DEFAULT = 10
RECOMMENDATIONS_MAX = 100
# A key to look up by may be longer than what it finds: names are compared casefolded, and one
# character can fold into three ("ß" into "ss"). Beyond these lengths nothing can be found.
NAME_LOOKUP_MAX_LENGTH = 4 * NAME_MAX_LENGTH
USER_ID_LOOKUP_MAX_LENGTH = 4 * USER_ID_MAX_LENGTH
# "<start, microseconds since the epoch>_<conference id>": 18 and 19 digits at most.
PAGE_TOKEN_MAX_LENGTH = 38
IDEMPOTENCY_KEY_MAX_LENGTH = 255
WEBHOOK_URL_MAX_LENGTH = 2000
UUID_LENGTH = 36
# What a webhook may subscribe to: the types of booking events (the booking service's EventType).
BOOKING_EVENT_TYPES = ("booking.confirmed", "booking.waitlisted", "booking.offered", "booking.canceled")

# Times the product accepts: from the Unix epoch to the last second that protobuf, Python and
# PostgreSQL all hold.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
TIME_RANGE = "between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z"

# At most this much of an input is ever quoted back in an error message: any name the product
# stores is shown whole, a longer key to look up by is cut.
SHOWN_MAX_LENGTH = NAME_MAX_LENGTH

# The same text rules as JSON Schema patterns (ECMA-262 and Python `re` read them alike). They
# can only state what is refused in ASCII and the control characters; the descriptions say the rest.
_CONTROLS = r"\u0000-\u001f\u007f-\u009f"
_ASCII_SYMBOLS = r"!-/:-@\[-`{-~"
TEXT_PATTERN = f"^[^{_CONTROLS}]*$"
_WORD_CHARACTER = f"[^{_CONTROLS}{_ASCII_SYMBOLS}]"
_WORD_CHARACTER_NOT_SPACE = f"[^{_CONTROLS}{_ASCII_SYMBOLS} ]"
# Not blank: at least one character other than a space.
WORDS_PATTERN = f"^{_WORD_CHARACTER}*{_WORD_CHARACTER_NOT_SPACE}{_WORD_CHARACTER}*$"
IDENTIFIER_PATTERN = f"^{_WORD_CHARACTER_NOT_SPACE}+$"
# Empty, or a position in the list: any such token is one (a position past the end gives an empty page).
PAGE_TOKEN_PATTERN = "^([0-9]{1,18}_[0-9]{1,19})?$"
_PAGE_TOKEN = re.compile(PAGE_TOKEN_PATTERN, re.ASCII)


def shown(value: str) -> str:
    """`value` quoted for an error message, cut short so that no message repeats a long input."""
    if len(value) <= SHOWN_MAX_LENGTH:
        return repr(value)
    return f"{value[:SHOWN_MAX_LENGTH]!r}... ({len(value)} characters)"


def _is_letter_or_digit(char: str) -> bool:
    # Unicode letters (so "Zürich" is a fine location) and decimal digits only:
    # str.isalnum() would also let through things like "½" and "²".
    category = unicodedata.category(char)
    return category.startswith("L") or category == "Nd"


def _is_unsafe(char: str) -> bool:
    # Control characters (NUL among them, which PostgreSQL refuses) and lone surrogates, which
    # are not Unicode text at all and cannot be encoded as UTF-8.
    return unicodedata.category(char) in ("Cc", "Cs")


def text(field: str, value: str, *, max_length: int) -> str:
    """What every string must be: at most max_length characters, no control characters, valid Unicode."""
    if len(value) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    if any(_is_unsafe(char) for char in value):
        raise InvalidInput(field, "must not contain control characters or invalid Unicode")
    return value


def conference_name_key(name: str) -> str:
    """Conference names are unique and looked up ignoring case (and surrounding spaces).

    The conference service keys its conferences by it, and the booking service its copies.
    """
    return name.strip().casefold()


def topic_key(topic: str) -> str:
    """Topics are compared ignoring case, as names are (a conference's and a user's alike)."""
    return topic.strip().casefold()


def words(field: str, value: str, *, max_length: int) -> str:
    """Letters, digits and spaces, not blank; surrounding spaces are dropped."""
    stripped = text(field, value, max_length=max_length).strip()
    if not stripped:
        raise InvalidInput(field, "must not be blank")
    if not all(char == " " or _is_letter_or_digit(char) for char in stripped):
        raise InvalidInput(field, "may contain only letters, digits and spaces")
    return stripped


def identifier(field: str, value: str, *, max_length: int) -> str:
    """Letters and digits only, 1 to max_length characters."""
    if not value:
        raise InvalidInput(field, "must not be empty")
    text(field, value, max_length=max_length)
    if not all(_is_letter_or_digit(char) for char in value):
        raise InvalidInput(field, "may contain only letters and digits")
    return value


def lookup_key(field: str, value: str, *, max_length: int) -> str:
    """A key to look something up by: present and safe text (what exists decides the rest)."""
    if not value.strip():
        raise InvalidInput(field, "is required")
    return text(field, value, max_length=max_length)


def page_token(field: str, value: str, *, max_length: int) -> str:
    """Empty, or a position in the list as a page gives it: `<digits>_<digits>`."""
    text(field, value, max_length=max_length)
    if not _PAGE_TOKEN.fullmatch(value):
        raise InvalidInput(field, "is not a page token (next_page_token of a previous page)")
    return value


def json_id(field: str, value: int) -> int:
    """An id as the HTTP API takes it: positive, and exact in any JSON reader."""
    if not 0 < value <= JSON_INT_MAX:
        raise InvalidInput(field, f"must be a positive integer of at most {JSON_INT_MAX}")
    return value


@dataclass(frozen=True)
class TextRule:
    """One kind of string field: how it is checked and how the HTTP API's schema states it."""

    check: Callable[..., str]
    max_length: int
    pattern: str
    description: str
    min_length: int = 0

    def __call__(self, field: str, value: str) -> str:
        return self.check(field, value, max_length=self.max_length)

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "maxLength": self.max_length, "pattern": self.pattern}
        if self.min_length:
            schema["minLength"] = self.min_length
        return {**schema, "description": self.description}


_WORDS = "letters (of any script), digits and spaces, not blank; surrounding spaces are dropped"
CONFERENCE_NAME = TextRule(words, NAME_MAX_LENGTH, WORDS_PATTERN, f"{_WORDS}; unique ignoring case", 1)
LOCATION = TextRule(words, NAME_MAX_LENGTH, WORDS_PATTERN, _WORDS, 1)
TOPIC = TextRule(words, TOPIC_MAX_LENGTH, WORDS_PATTERN, f"{_WORDS}; distinct ignoring case", 1)
USER_ID = TextRule(identifier, USER_ID_MAX_LENGTH, IDENTIFIER_PATTERN, "letters (of any script) and digits", 1)
NAME_LOOKUP = TextRule(
    lookup_key, NAME_LOOKUP_MAX_LENGTH, TEXT_PATTERN, "a conference's name; case and surrounding spaces are ignored", 1
)
USER_ID_LOOKUP = TextRule(lookup_key, USER_ID_LOOKUP_MAX_LENGTH, TEXT_PATTERN, "a user's id", 1)
PAGE_TOKEN = TextRule(
    page_token,
    PAGE_TOKEN_MAX_LENGTH,
    PAGE_TOKEN_PATTERN,
    "next_page_token of the previous page; empty for the first; a position past the end gives an empty page",
)


def topics(field: str, values: Sequence[str], *, max_count: int, rule: TextRule = TOPIC) -> list[str]:
    """A list of distinct topics (case ignored), each following `rule`."""
    if len(values) > max_count:
        raise InvalidInput(field, f"at most {max_count} topics are allowed, got {len(values)}")
    cleaned: list[str] = []
    seen: set[str] = set()
    for index, value in enumerate(values):
        topic = rule(f"{field}[{index}]", value)
        key = topic_key(topic)
        if key in seen:
            raise InvalidInput(f"{field}[{index}]", f"duplicate topic {shown(topic)}")
        seen.add(key)
        cleaned.append(topic)
    return cleaned


def idempotency_key(field: str, value: str) -> str:
    """1 to 255 visible ASCII characters (no spaces, no controls)."""
    if not 1 <= len(value) <= IDEMPOTENCY_KEY_MAX_LENGTH:
        raise InvalidInput(field, f"must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters")
    if not all("!" <= char <= "~" for char in value):
        raise InvalidInput(field, "may contain only visible ASCII characters")
    return value


def positive_id(field: str, value: int) -> int:
    if not 0 < value <= INT64_MAX:
        raise InvalidInput(field, "must be a positive integer")
    return value


def ids(field: str, values: Sequence[int], *, max_count: int) -> list[int]:
    if len(values) > max_count:
        raise InvalidInput(field, f"at most {max_count} are allowed, got {len(values)}")
    return [positive_id(f"{field}[{index}]", value) for index, value in enumerate(values)]


def slots(field: str, value: int) -> int:
    if value <= 0:
        raise InvalidInput(field, "must be greater than 0")
    if value > SLOTS_MAX:
        raise InvalidInput(field, f"must be at most {SLOTS_MAX}")
    return value


def page_size(field: str, value: int) -> int:
    if not 0 <= value <= PAGE_SIZE_MAX:
        raise InvalidInput(field, f"must be between 0 and {PAGE_SIZE_MAX}")
    return value


def recommendation_limit(field: str, value: int) -> int:
    """How many recommendations: 1 to 100."""
    if not 1 <= value <= RECOMMENDATIONS_MAX:
        raise InvalidInput(field, f"must be between 1 and {RECOMMENDATIONS_MAX}")
    return value


def moment(field: str, value: datetime) -> datetime:
    """A time the product accepts (timezone-aware)."""
    if not EARLIEST <= value <= LATEST:
        raise InvalidInput(field, f"must be {TIME_RANGE}")
    return value


def timestamp(field: str, stamp: Timestamp) -> datetime:
    """A protobuf Timestamp from a caller, as a UTC datetime; any value the wire allows may arrive."""
    if not 0 <= stamp.nanos <= 999_999_999:
        raise InvalidInput(field, "nanos must be between 0 and 999999999")
    if not EARLIEST.timestamp() <= stamp.seconds <= LATEST.timestamp():
        raise InvalidInput(field, f"must be {TIME_RANGE}")
    return stamp.ToDatetime(tzinfo=UTC)


def webhook_url(field: str, url: str) -> str:
    """An absolute http(s) URL with a host. Where it points is the booking service's to check."""
    text(field, url, max_length=WEBHOOK_URL_MAX_LENGTH)
    if not url or any(char.isspace() for char in url):
        raise InvalidInput(field, "must be an http or https URL without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        raise InvalidInput(field, "is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(field, "must start with http:// or https://")
    if not parts.hostname:
        raise InvalidInput(field, "must name a host")
    if port == 0:
        raise InvalidInput(field, "port must be between 1 and 65535")
    return url


def event_types(field: str, values: Sequence[str]) -> list[str]:
    """Distinct booking event types; an empty list stands for all of them."""
    for index, value in enumerate(values):
        text(f"{field}[{index}]", value, max_length=50)
        if value not in BOOKING_EVENT_TYPES:
            raise InvalidInput(f"{field}[{index}]", f"must be one of {', '.join(BOOKING_EVENT_TYPES)}")
        if value in values[:index]:
            raise InvalidInput(f"{field}[{index}]", f"repeats {shown(value)}")
    return list(values)


def uuid_text(field: str, value: str) -> str:
    """A UUID in its usual form (123e4567-e89b-12d3-a456-426614174000), as the services issue them."""
    text(field, value, max_length=UUID_LENGTH)
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise InvalidInput(field, "must be a UUID like 123e4567-e89b-12d3-a456-426614174000") from None
    if len(value) != UUID_LENGTH:
        raise InvalidInput(field, "must be a UUID like 123e4567-e89b-12d3-a456-426614174000")
    return str(parsed)
