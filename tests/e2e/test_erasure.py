"""A person leaves: their data out as one document, then erased, through the gateway and over gRPC.
After an erasure no table of any schema holds anything that identifies them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc
from confbook.conference.v1 import conference_pb2, conference_pb2_grpc
from confbook_common.db import create_engine
from scripts.sandbox import Stack
from tests.e2e.conftest import Api, assert_error, bearer, grpc_channel, subject_of
from tests.waiting import eventually


@pytest.fixture(scope="module")
def admin_db(stack: Stack) -> Iterator[Engine]:
    """The whole database, every schema, as the account that created them."""
    engine = create_engine(stack.infrastructure.database_url, application_name="test-erasure")
    yield engine
    engine.dispose()


def identifying_rows(engine: Engine, needles: list[str]) -> list[tuple[str, str, str, str]]:
    """Every (schema, table, column, needle) where a text, array, JSON or bytes column of any
    table of the product's schemas holds one of `needles`."""
    found = []
    with engine.connect() as connection:
        columns = connection.execute(
            text(
                "SELECT c.table_schema, c.table_name, c.column_name, c.data_type"
                " FROM information_schema.columns AS c"
                " JOIN information_schema.tables AS t USING (table_schema, table_name)"
                " WHERE t.table_type = 'BASE TABLE'"
                " AND c.table_schema NOT IN ('pg_catalog', 'information_schema')"
                " AND c.data_type IN ('text', 'character varying', 'ARRAY', 'json', 'jsonb', 'bytea', 'USER-DEFINED')"
            )
        ).all()
        assert {schema for schema, *_ in columns} >= {"conference", "booking", "waitlist"}
        for schema, table, column, data_type in columns:
            found_in = (
                f"position(convert_to(:needle, 'UTF8') IN \"{column}\")"
                if data_type == "bytea"
                else f'strpos("{column}"::text, :needle)'
            )
            for needle in needles:
                hits = connection.execute(
                    text(f'SELECT count(*) FROM "{schema}"."{table}" WHERE {found_in} > 0'),
                    {"needle": needle},
                ).scalar()
                if hits:
                    found.append((schema, table, column, needle))
    return found


def wait_for_status(api: Api, booking_id: int, status: str) -> None:
    eventually(lambda: api.status(booking_id) == status)


def outboxes_drained(engine: Engine) -> bool:
    with engine.connect() as connection:
        return not any(
            connection.execute(text(f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL")).scalar()
            for schema in ("conference", "booking", "waitlist")
        )


def test_a_user_exports_everything_then_erases_themselves_and_nothing_identifies_them(
    api: Api, stack: Stack, admin_db: Engine
):
    topic = f"Knitting {uuid.uuid4().hex[:8]}"
    leaving = api.create_user(topics=[topic])
    me = api.as_user(leaving)
    subject = subject_of(leaving)
    # Everything a person leaves behind: a seat others wait for, an offer once made, a keyed
    # request, a webhook, and (organizing too) a conference of their own.
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    full = api.create_conference(slots=1, start=soon)
    seat = api.book(full, leaving)["booking_id"]
    waiting = api.create_user()
    queued = api.book(full, waiting)["booking_id"]
    offered_at = api.create_conference(slots=1, start=soon + timedelta(days=1))
    holder = api.create_user()
    held = api.book(offered_at, holder)["booking_id"]
    offer = api.book(offered_at, leaving)["booking_id"]
    assert api.cancel(held).status_code == 200
    wait_for_status(api, offer, "CONFIRMATION_PENDING")
    keyed = api.http.post(
        "/book",
        json={"name": api.create_conference(slots=3, start=soon + timedelta(days=2))["name"], "user_id": leaving},
        headers={**me, "Idempotency-Key": f"leaving-{uuid.uuid4()}"},
    )
    assert keyed.status_code == 201, keyed.text
    hook_url = f"http://127.0.0.1:9/{uuid.uuid4().hex}"
    assert api.http.post("/webhooks", json={"url": hook_url}, headers=me).status_code == 201
    own = api.http.post(
        "/conference",
        json={
            "name": f"Own {uuid.uuid4().hex[:10]}",
            "location": "Oslo",
            "start": "2031-01-01 09:00:00",
            "end": "2031-01-01 10:00:00",
            "slots": 5,
            "topics": [],
        },
        headers=bearer(api.token(subject, "organizer")),
    )
    assert own.status_code == 201, own.text

    exported = api.http.get(f"/user/{leaving}/export", headers=me)
    assert exported.status_code == 200, exported.text
    document: dict[str, Any] = exported.json()
    assert document["user"]["user_id"] == leaving and document["user"]["topics"] == [topic]
    assert document["subject"] == subject
    bookings = {booking["booking_id"]: booking for booking in document["bookings"]}
    assert set(bookings) == {seat, offer, keyed.json()["booking_id"]}
    assert [event["type"] for event in bookings[offer]["history"]] == ["booking.waitlisted", "booking.offered"]
    assert [hook["url"] for hook in document["webhooks"]] == [hook_url] and "secret" not in document["webhooks"][0]
    assert document["conferences_owned"] == [own.json()["name"]]

    erased = api.http.delete(f"/user/{leaving}", headers=me)
    assert erased.status_code == 204, erased.text

    # The seat goes to the head of the line at once, as after a cancel; the event says why.
    wait_for_status(api, queued, "CONFIRMATION_PENDING")
    gone = api.booking(seat)
    assert gone["status"] == "CANCELED" and gone["user_id"].startswith("erased") and gone["user_id"] != leaving
    assert {api.booking(each)["user_id"] for each in (seat, offer)} == {gone["user_id"]}
    organizers_view = api.http.get(f"/conference/{full['name']}/bookings", headers=api.as_organizer())
    assert [each["booking_id"] for each in organizers_view.json()["bookings"]] == [queued]
    # Nothing left to find, for the user or an admin; the conference is the admins' now.
    assert_error(api.http.get(f"/user/{leaving}", headers=me), 404, "USER_NOT_FOUND")
    assert_error(api.http.get(f"/user/{leaving}"), 404, "USER_NOT_FOUND")
    assert_error(api.http.delete(f"/user/{leaving}", headers=me), 404, "USER_NOT_FOUND")
    assert_error(api.http.get(f"/user/{leaving}/export", headers=me), 404, "USER_NOT_FOUND")
    assert api.http.get("/webhooks", headers=me).json()["webhooks"] == []
    own_bookings = api.http.get(
        f"/conference/{own.json()['name']}/bookings", headers=bearer(api.token(subject, "organizer"))
    )
    assert_error(own_bookings, 403)

    eventually(lambda: outboxes_drained(admin_db))
    assert identifying_rows(admin_db, [leaving, subject, topic, hook_url]) == []
    # The same walk finds a user who is still there, and where.
    assert ("booking", "bookings", "user_id", waiting) in identifying_rows(admin_db, [waiting])

    # The same person may come back, even under the same user id.
    again = api.http.post("/user", json={"user_id": leaving, "topics": []}, headers=me)
    assert again.status_code == 201, again.text
    assert api.http.get(f"/user/{leaving}/bookings", headers=me).json()["bookings"] == []


def test_only_the_user_or_an_admin_may_export_or_erase_and_others_get_404(api: Api):
    owner, stranger = api.create_user(), api.create_user()
    for response in (
        api.http.get(f"/user/{owner}/export", headers=api.as_user(stranger)),
        api.http.delete(f"/user/{owner}", headers=api.as_user(stranger)),
        api.http.delete(f"/user/nobody{uuid.uuid4().hex[:8]}", headers=api.as_user(stranger)),
    ):
        assert_error(response, 404, "USER_NOT_FOUND")
    assert api.http.get(f"/user/{owner}", headers=api.as_user(owner)).status_code == 200
    assert api.http.get(f"/user/{owner}/export").status_code == 200  # an admin
    assert api.http.delete(f"/user/{owner}").status_code == 204
    assert_error(api.http.get(f"/user/{owner}", headers=api.as_user(owner)), 404, "USER_NOT_FOUND")


def test_export_and_erasure_over_grpc(api: Api, stack: Stack):
    conference = api.create_conference(slots=2)
    user, stranger = api.create_user(), api.create_user()
    booking = api.book(conference, user)["booking_id"]
    own = booking_pb2_grpc.BookingServiceStub(grpc_channel(stack, "booking", api.token(subject_of(user))))
    other = booking_pb2_grpc.BookingServiceStub(grpc_channel(stack, "booking", api.token(subject_of(stranger))))
    with pytest.raises(grpc.RpcError) as refused:
        other.ExportUser(booking_pb2.ExportUserRequest(user_id=user), timeout=5)
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as refused:
        other.EraseUser(booking_pb2.EraseUserRequest(user_id=user), timeout=5)
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND

    # A subject's conferences are forgotten only by that subject or an admin.
    conferences = conference_pb2_grpc.ConferenceServiceStub(
        grpc_channel(stack, "conference", api.token(subject_of(stranger)))
    )
    with pytest.raises(grpc.RpcError) as refused:
        conferences.ForgetOwner(conference_pb2.ForgetOwnerRequest(subject=subject_of(user)), timeout=5)
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED

    export = own.ExportUser(booking_pb2.ExportUserRequest(user_id=user), timeout=5)
    assert export.user.user_id == user and export.subject == subject_of(user)
    assert [each.booking.booking_id for each in export.bookings] == [booking]
    assert [event.type for event in export.bookings[0].history] == ["booking.confirmed"]

    erased = own.EraseUser(booking_pb2.EraseUserRequest(user_id=user), timeout=5)
    assert (erased.bookings_canceled, erased.bookings_kept) == (1, 1)
    with pytest.raises(grpc.RpcError) as again:
        own.EraseUser(booking_pb2.EraseUserRequest(user_id=user), timeout=5)
    assert again.value.code() is grpc.StatusCode.NOT_FOUND
    canceled = api.booking(booking)
    assert canceled["status"] == "CANCELED" and canceled["user_id"].startswith("erased")
