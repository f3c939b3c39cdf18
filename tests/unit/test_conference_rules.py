"""What makes a valid new conference."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from confbook_common import validation
from confbook_common.errors import InvalidInput
from services.conference.domain.model import name_key, new_conference
from services.conference.service_layer import handlers

pytestmark = pytest.mark.unit

NOW = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
START = datetime(2030, 6, 15, 9, 0, tzinfo=UTC)


def conference(**changes):
    fields: dict[str, Any] = dict(
        name="Tech Conference 2030",
        location="San Francisco",
        start=START,
        end=START + timedelta(hours=8),
        slots=100,
        topics=["AI", "Machine Learning"],
        now=NOW,
    )
    fields.update(changes)
    return new_conference(**fields)


def refused_field(**changes):
    with pytest.raises(InvalidInput) as refused:
        conference(**changes)
    return refused.value.field


def test_a_valid_conference_keeps_its_fields():
    created = conference()
    assert created.name == "Tech Conference 2030"
    assert created.topics == ("AI", "Machine Learning")


def test_exactly_twelve_hours_is_allowed():
    assert conference(end=START + timedelta(hours=12)).end == START + timedelta(hours=12)


def test_a_second_more_than_twelve_hours_is_not():
    assert refused_field(end=START + timedelta(hours=12, seconds=1)) == "end"


def test_the_end_must_come_after_the_start():
    assert refused_field(end=START) == "end"
    assert refused_field(end=START - timedelta(minutes=1)) == "end"


def test_the_start_must_be_in_the_future():
    assert refused_field(start=NOW, end=NOW + timedelta(hours=1)) == "start"


def test_start_and_end_are_required():
    assert refused_field(start=None) == "start"
    assert refused_field(end=None) == "end"


@pytest.mark.parametrize("slots", [0, -1, 1_000_001])
def test_slots_must_be_positive_and_sane(slots):
    assert refused_field(slots=slots) == "slots"


def test_name_and_location_follow_the_text_rules():
    assert refused_field(name="Tech@Conf") == "name"
    assert refused_field(location="") == "location"
    assert refused_field(name="x" * 101) == "name"


def test_at_most_ten_topics():
    assert len(conference(topics=[f"Topic {i}" for i in range(10)]).topics) == 10
    assert refused_field(topics=[f"Topic {i}" for i in range(11)]) == "topics"


def test_names_are_compared_ignoring_case_and_surrounding_spaces():
    assert name_key(" Tech Conference ") == name_key("tech conference")


def test_a_page_token_past_the_last_possible_conference_reads_as_the_end_of_the_list():
    start, conference_id = handlers._decode_token("9" * 18 + "_" + "9" * 19)
    assert (start, conference_id) == (validation.LATEST, validation.INT64_MAX)
