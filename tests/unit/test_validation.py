"""The text rules every service applies to names, ids and topics."""

import pytest

from confbook_common import validation
from confbook_common.errors import InvalidInput

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text", ["Tech Conference 2024", "Zürich", "AI", "a" * 100])
def test_words_accept_letters_digits_and_spaces(text):
    assert validation.words("name", text, max_length=100) == text


def test_words_drop_surrounding_spaces():
    assert validation.words("name", "  PyCon  ", max_length=100) == "PyCon"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "must not be blank"),
        ("   ", "must not be blank"),
        ("Tech-Conf", "may contain only letters, digits and spaces"),
        ("Conf!", "may contain only letters, digits and spaces"),
        ("½ day", "may contain only letters, digits and spaces"),
        ("tab\there", "must not contain control characters or invalid Unicode"),
        ("a" * 101, "must be at most 100 characters"),
    ],
)
def test_words_refuse_anything_else(text, problem):
    with pytest.raises(InvalidInput) as refused:
        validation.words("name", text, max_length=100)
    assert refused.value.field == "name"
    assert refused.value.problem == problem


@pytest.mark.parametrize("user_id", ["john123", "J", "ü" * 64])
def test_identifiers_are_letters_and_digits(user_id):
    assert validation.identifier("user_id", user_id, max_length=64) == user_id


@pytest.mark.parametrize("user_id", ["", "john 123", "john_123", "a" * 65])
def test_identifiers_refuse_spaces_symbols_and_length(user_id):
    with pytest.raises(InvalidInput):
        validation.identifier("user_id", user_id, max_length=64)


def test_topics_are_limited_in_number():
    ten = [f"topic {i}" for i in range(10)]
    assert validation.topics("topics", ten, max_count=10) == ten
    with pytest.raises(InvalidInput, match="at most 10 topics"):
        validation.topics("topics", [f"t{i}" for i in range(11)], max_count=10)


def test_topics_name_the_offending_entry():
    with pytest.raises(InvalidInput) as refused:
        validation.topics("topics", ["AI", "Web-Dev"], max_count=10)
    assert refused.value.field == "topics[1]"


def test_duplicate_topics_are_refused_ignoring_case():
    with pytest.raises(InvalidInput, match="duplicate topic"):
        validation.topics("topics", ["AI", "ai"], max_count=10)


def test_positive_ids():
    assert validation.positive_id("booking_id", 7) == 7
    with pytest.raises(InvalidInput):
        validation.positive_id("booking_id", 0)


@pytest.mark.parametrize("token", ["", "0_0", "1733212800000000_42", "9" * 18 + "_" + "9" * 19])
def test_a_page_token_is_empty_or_a_position_in_the_list(token):
    assert validation.page_token("page_token", token, max_length=validation.PAGE_TOKEN_MAX_LENGTH) == token


@pytest.mark.parametrize("token", ["garbage!", "1_", "_1", "1-2", "1_2_3", "9" * 19 + "_1", "1_2\n", "\uff11_2"])
def test_anything_else_is_no_page_token(token):
    with pytest.raises(InvalidInput, match="page_token"):
        validation.page_token("page_token", token, max_length=validation.PAGE_TOKEN_MAX_LENGTH)


def test_the_http_ids_stop_at_the_integers_exact_in_json():
    assert validation.json_id("booking_id", validation.JSON_INT_MAX) == validation.JSON_INT_MAX
    for value in (0, -1, validation.JSON_INT_MAX + 1):
        with pytest.raises(InvalidInput, match="booking_id"):
            validation.json_id("booking_id", value)
