"""The input rules against generated hostile values: refused with InvalidInput naming the field, never
another exception, never a long message; and what a rule accepts fits what the schema states of it."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from confbook_common import validation
from confbook_common.errors import InvalidInput
from gateway import timestamps

pytestmark = pytest.mark.unit

RULES = {
    "name": validation.CONFERENCE_NAME,
    "location": validation.LOCATION,
    "topic": validation.TOPIC,
    "user_id": validation.USER_ID,
    "name_to_find": validation.NAME_LOOKUP,
    "user_id_to_find": validation.USER_ID_LOOKUP,
    "page_token": validation.PAGE_TOKEN,
}
# Longer than any rule allows, and than an error message may be.
MESSAGE_MAX_LENGTH = 300

unsafe_chars = st.characters(categories=["Cc", "Cs"])
with_unsafe_char = st.tuples(st.text(max_size=20), unsafe_chars, st.text(max_size=20)).map("".join)
any_text = st.text(max_size=200)
# Long inputs, cheap to generate: a short text repeated.
long_text = st.tuples(st.text(min_size=1, max_size=20), st.integers(100, 2000)).map(lambda parts: parts[0] * parts[1])


def refusal(rule: validation.TextRule, value: str) -> InvalidInput | None:
    try:
        rule("field", value)
    except InvalidInput as error:
        return error
    return None


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES.keys())
@given(value=with_unsafe_char)
def test_control_characters_and_lone_surrogates_are_refused_naming_the_field(rule, value):
    refused = refusal(rule, value)
    assert refused is not None
    assert refused.field == "field"


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES.keys())
@given(value=st.text(alphabet="a", min_size=1, max_size=50))
def test_anything_longer_than_the_limit_is_refused(rule, value):
    assert refusal(rule, "a" * rule.max_length + value) is not None


# Mostly what the rules accept: letters and digits of any script, spaces, a token's characters.
likely_valid = st.text(
    alphabet=st.one_of(st.characters(categories=["L", "Nd"]), st.sampled_from(" _=-")), min_size=1, max_size=120
)


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES.keys())
@given(value=st.one_of(any_text, likely_valid))
def test_what_a_rule_accepts_fits_the_schema_it_publishes(rule, value):
    if refusal(rule, value) is None:
        schema = rule.json_schema()
        assert schema.get("minLength", 0) <= len(value) <= schema["maxLength"]
        assert re.search(schema["pattern"], value), value


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES.keys())
@given(value=st.one_of(any_text, long_text))
def test_no_refusal_repeats_a_long_input(rule, value):
    refused = refusal(rule, value)
    assert refused is None or len(refused.message) <= MESSAGE_MAX_LENGTH


@given(values=st.lists(st.one_of(any_text, with_unsafe_char), max_size=60))
def test_topic_lists_are_refused_or_clean(values):
    try:
        cleaned = validation.topics("topics", values, max_count=validation.USER_TOPICS_MAX)
    except InvalidInput as error:
        assert error.field.startswith("topics")
        assert len(error.message) <= MESSAGE_MAX_LENGTH
        return
    assert len({topic.casefold() for topic in cleaned}) == len(cleaned) <= validation.USER_TOPICS_MAX


@given(value=long_text)
def test_an_input_quoted_in_a_message_is_cut_short(value):
    quoted = repr(value[: validation.SHOWN_MAX_LENGTH])
    assert validation.shown(value).startswith(quoted)
    assert len(validation.shown(value)) <= len(quoted) + 30


wire_timestamps = st.builds(
    Timestamp,
    seconds=st.integers(validation.INT64_MIN, validation.INT64_MAX),
    nanos=st.integers(validation.INT32_MIN, validation.INT32_MAX),
)


@given(stamp=wire_timestamps)
def test_any_wire_timestamp_is_a_time_in_range_or_invalid_input(stamp):
    try:
        moment = validation.timestamp("start", stamp)
    except InvalidInput as error:
        assert error.field == "start"
        return
    assert validation.EARLIEST <= moment <= validation.LATEST


def test_the_ends_of_the_range_are_accepted_and_one_second_beyond_is_not():
    for inside in (validation.EARLIEST, validation.LATEST):
        assert validation.timestamp("start", Timestamp(seconds=int(inside.timestamp()))) == inside
    for outside in (int(validation.EARLIEST.timestamp()) - 1, int(validation.LATEST.timestamp()) + 1, 2**62):
        with pytest.raises(InvalidInput):
            validation.timestamp("start", Timestamp(seconds=outside))


# Texts of the accepted shape, at the ends of the calendar and of zone offsets included.
shaped_times = st.from_regex(
    r"\A(0001|1969|1970|2030|9999)-(0\d|1[0-3])-(0\d|3[12])[T ](\d\d):(\d\d)(:\d\d)?(Z|[+-](1[2-9]|2\d|99):?\d\d)?\Z"
)


@given(text=st.one_of(shaped_times, st.text(max_size=40)))
def test_an_http_time_is_parsed_or_refused_with_value_error_only(text):
    try:
        moment = timestamps.parse(text)
    except ValueError as error:
        # A message for a person, not Python's ("Invalid isoformat string", "offset must be a timedelta")
        assert "isoformat" not in str(error) and "timedelta" not in str(error)
        return
    assert isinstance(moment, datetime) and moment.utcoffset() is not None


@pytest.mark.parametrize(
    ("rule", "low", "high"),
    [
        (validation.positive_id, 1, validation.INT64_MAX),
        (validation.slots, 1, validation.SLOTS_MAX),
        (validation.page_size, 0, validation.PAGE_SIZE_MAX),
    ],
)
@given(value=st.one_of(st.integers(), st.integers(-(2**200), 2**200)))
def test_integers_outside_their_range_are_refused(rule, low, high, value):
    if low <= value <= high:
        assert rule("n", value) == value
    else:
        with pytest.raises(InvalidInput):
            rule("n", value)
