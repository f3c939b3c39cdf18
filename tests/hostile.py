"""Generated hostile values, as an outsider would send them: each breaks some input rule."""

from __future__ import annotations

from hypothesis import strategies as st

from confbook_common import validation

unsafe_chars = st.one_of(st.sampled_from("\x00\x01\x07\t\n\r\x1b\x7f\x85"), st.characters(categories=["Cc", "Cs"]))
with_unsafe_char = st.tuples(st.text(max_size=10), unsafe_chars, st.text(max_size=10)).map("".join)
# Longer than any string rule allows (the longest is a conference name to look up).
overlong = st.tuples(st.sampled_from(["a", "ß", "Ä", " ", "😀", "a1"]), st.integers(1, 8)).map(
    lambda parts: parts[0] * (validation.NAME_LOOKUP_MAX_LENGTH + parts[1] * 50)
)
bad_text = st.one_of(with_unsafe_char, overlong)
# Over gRPC a string is UTF-8 on the wire, which no surrogate survives (raw bytes test that instead).
with_control_char = st.tuples(st.text(max_size=10), st.characters(categories=["Cc"]), st.text(max_size=10)).map("".join)
bad_wire_text = st.one_of(with_control_char, overlong).map(lambda text: text.encode("utf-8", "replace").decode())

beyond_int64 = st.one_of(
    st.integers(max_value=validation.INT64_MIN - 1), st.integers(min_value=validation.INT64_MAX + 1)
)
# Ids that cannot name anything: not positive, or far beyond any id a test run hands out.
unknown_ids = st.one_of(st.integers(validation.INT64_MIN, 0), st.integers(2**40, validation.INT64_MAX))
# (A whole float is an integer in JSON and JSON Schema: 2.0 is 2.)
not_an_int = st.one_of(
    st.floats(allow_nan=False).filter(lambda number: not number.is_integer()),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
# Not a string at all, for a field that should be one.
not_a_string = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

# Path segments as raw bytes: NUL, a UTF-8-encoded lone surrogate, bytes that are no UTF-8, controls.
bad_path_bytes = st.one_of(
    st.tuples(
        st.binary(max_size=5),
        st.sampled_from([b"\x00", b"\xed\xa0\x80", b"\xff", b"\x1b", b"\xc3"]),
        st.binary(max_size=5),
    ).map(b"".join),
    st.integers(validation.NAME_LOOKUP_MAX_LENGTH + 1, 3000).map(lambda length: b"a" * length),
)

# Idempotency keys that break the rule (1 to 255 visible ASCII characters), as a header or metadata
# can carry them: empty, too long, or with a space, a tab or a Latin-1 letter inside (HTTP drops them
# at the ends).
bad_idempotency_keys = st.one_of(
    st.just(""),
    st.text(alphabet="ab~!", min_size=validation.IDEMPOTENCY_KEY_MAX_LENGTH + 1, max_size=600),
    st.tuples(
        st.text(alphabet="xyz-", min_size=1, max_size=10),
        st.sampled_from([" ", "\t", "é", "\xa0"]),
        st.text(alphabet="q", min_size=1, max_size=3),
    ).map("".join),
)
