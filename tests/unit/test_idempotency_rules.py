"""The rules of idempotency keys: which keys are valid, and when two requests are the same one."""

import pytest

from confbook.booking.v1 import booking_pb2
from confbook_common import validation
from confbook_common.errors import InvalidInput
from confbook_common.idempotency import fingerprint
from gateway.retries import canonical_json

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("key", ["a", "~" * 255, "9f1c-4b2e_ABC.def:1/2+3=", "!\"#$%&'()*,;<>?@[\\]^`{|}"])
def test_a_key_is_1_to_255_visible_ascii_characters(key):
    assert validation.idempotency_key("Idempotency-Key", key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "tab\t", "new\nline", "ü", "\x00", "\x7f"])
def test_anything_else_is_refused_naming_the_header(key):
    with pytest.raises(InvalidInput) as refused:
        validation.idempotency_key("Idempotency-Key", key)
    assert refused.value.field == "Idempotency-Key"


BOOK = booking_pb2.BookRequest(conference_name="PyCon", user_id="ada")


def test_the_same_method_request_and_http_request_are_the_same_request():
    same = booking_pb2.BookRequest(user_id="ada", conference_name="PyCon")
    assert fingerprint("/Book", BOOK, "h") == fingerprint("/Book", same, "h")


@pytest.mark.parametrize(
    ("method", "request_", "http"),
    [
        ("/Cancel", BOOK, "h"),
        ("/Book", booking_pb2.BookRequest(conference_name="PyCon", user_id="bob"), "h"),
        ("/Book", BOOK, "other body"),
        ("/Book", BOOK, None),
    ],
)
def test_another_method_request_or_http_request_is_another_request(method, request_, http):
    assert fingerprint(method, request_, http) != fingerprint("/Book", BOOK, "h")


def test_json_bodies_equal_in_any_order_or_spacing_read_the_same():
    assert canonical_json(b'{"a": 1, "b": [1, 2]}') == canonical_json(b'{ "b":[1,2],\n"a":1 }')


@pytest.mark.parametrize("other", [b'{"a": 2}', b'{"a": 1.0}', b'{"a": "1"}', b'{"a": 1, "b": null}'])
def test_json_bodies_that_differ_do_not(other):
    assert canonical_json(b'{"a": 1}') != canonical_json(other)


def test_a_body_that_is_no_json_still_has_a_reading():
    assert canonical_json(b"[" * 5000) != canonical_json(b"[" * 4999)
