"""How the gateway reads timestamps and maps service errors to HTTP."""

from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from gateway import timestamps
from gateway.errors import HTTP_STATUS_BY_GRPC

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-15 09:00:00", datetime(2024, 6, 15, 9, 0, tzinfo=UTC)),
        ("2024-06-15T09:00:00", datetime(2024, 6, 15, 9, 0, tzinfo=UTC)),
        ("2024-06-15T09:00:00Z", datetime(2024, 6, 15, 9, 0, tzinfo=UTC)),
        ("2024-06-15T11:00:00+02:00", datetime(2024, 6, 15, 9, 0, tzinfo=UTC)),
        ("2024-06-15T04:30:00-0430", datetime(2024, 6, 15, 9, 0, tzinfo=UTC)),
        ("2024-06-15 09:00", datetime(2024, 6, 15, 9, 0, tzinfo=UTC)),
        ("2024-06-15T09:00:00.250Z", datetime(2024, 6, 15, 9, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_accepted_timestamps_mean_utc_unless_a_zone_is_given(text, expected):
    assert timestamps.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "tomorrow", "2024-06-15", "15/06/2024 09:00", "2024-13-01 09:00:00", "2024-06-15T25:00:00Z"]
)
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError):
        timestamps.parse(text)


def test_timestamps_go_out_as_utc_with_z():
    stamp = Timestamp()
    stamp.FromDatetime(datetime(2024, 6, 14, 10, 0, 0, 123456, tzinfo=UTC))
    assert timestamps.format_utc(stamp) == "2024-06-14T10:00:00Z"


def test_status_mapping_follows_the_contract():
    assert HTTP_STATUS_BY_GRPC[grpc.StatusCode.INVALID_ARGUMENT] == 400
    assert HTTP_STATUS_BY_GRPC[grpc.StatusCode.NOT_FOUND] == 404
    assert HTTP_STATUS_BY_GRPC[grpc.StatusCode.ALREADY_EXISTS] == 409
    assert HTTP_STATUS_BY_GRPC[grpc.StatusCode.FAILED_PRECONDITION] == 409
    assert HTTP_STATUS_BY_GRPC[grpc.StatusCode.UNAVAILABLE] == 503
