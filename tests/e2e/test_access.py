"""Who may do what, through the gateway and straight over gRPC: every token that does not count is a 401
(UNAUTHENTICATED) and changes nothing; a valid token without the right is a 403, or a 404 exactly like an
unknown id where the thing is someone else's."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import jwt
import pytest
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc
from confbook.conference.v1 import conference_pb2
from confbook.waitlist.v1 import waitlist_pb2
from confbook_common.rpc.errors import error_reason
from scripts.sandbox import Stack
from scripts.webhook_receiver import WebhookReceiver
from tests.e2e.conftest import E2E_BOUNDS, Api, assert_error, bearer
from tests.tokens import TokenForge, hs256_signed_with_public_key, tampered, unsigned
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def forge(stack: Stack) -> TokenForge:
    """Signs as the stack's issuer does, so that each bad token differs from a good one in one thing only."""
    return TokenForge.of_issuer_keys(stack.issuer_keys_path, stack.issuer_url, stack.audience)


BAD_TOKENS: dict[str, Callable[[TokenForge], str | None]] = {
    "no token": lambda forge: None,
    "alg none": lambda forge: unsigned(forge.claims("mallory", "admin")),
    "HS256 with the public key": lambda forge: hs256_signed_with_public_key(forge, forge.claims("mallory", "admin")),
    "unknown kid": lambda forge: TokenForge(
        TokenForge.generated().private_key, "unknown-kid", forge.issuer, forge.audience
    ).token("mallory", "admin"),
    "wrong iss": lambda forge: forge.token("mallory", "admin", claims={"iss": "http://127.0.0.1:1"}),
    "iss a prefix of the right one": lambda forge: forge.token("mallory", "admin", claims={"iss": forge.issuer[:-1]}),
    "iss the right one and more": lambda forge: forge.token("mallory", "admin", claims={"iss": forge.issuer + "/x"}),
    "wrong aud": lambda forge: forge.token("mallory", "admin", claims={"aud": "another-api"}),
    "expired": lambda forge: forge.token("mallory", "admin", ttl=-3600),
    "not yet valid": lambda forge: forge.token("mallory", "admin", claims={"nbf": int(time.time()) + 3600}),
    "tampered payload": lambda forge: tampered(forge.token("mallory"), roles=["admin"]),
    "an ID token": lambda forge: forge.token("mallory", "admin", header={"typ": "JWT"}, claims={"aud": "confbook-dev"}),
    "signed by another key with the issuer's kid": lambda forge: TokenForge(
        TokenForge.generated().private_key, forge.kid, forge.issuer, forge.audience
    ).token("mallory", "admin"),
}


@pytest.fixture(scope="module")
def world(http: httpx.Client, stack: Stack) -> dict[str, Any]:
    """Things that exist, owned by someone: what the hostile requests aim at."""
    api = Api(http, stack)
    conference = api.create_conference(slots=1)
    owner = api.create_user()
    waiting = api.create_user()
    confirmed = api.book(conference, owner)
    line = api.book(conference, waiting)
    webhook = api.http.post("/webhooks", json={"url": "http://127.0.0.1:9/hooks"}, headers=api.as_user(owner))
    assert webhook.status_code == 201, webhook.text
    return {
        "conference": conference,
        "owner": owner,
        "waiting": waiting,
        "booking_id": confirmed["booking_id"],
        "waiting_id": line["booking_id"],
        "webhook_id": webhook.json()["webhook_id"],
    }


def protected_routes(world: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    name = world["conference"]["name"]
    user = world["owner"]
    booking_id = world["booking_id"]
    return [
        (
            "POST",
            "/conference",
            {
                "name": f"X{uuid.uuid4().hex[:8]}",
                "location": "Oslo",
                "start": "2031-01-01 09:00:00",
                "end": "2031-01-01 10:00:00",
                "slots": 1,
                "topics": [],
            },
        ),
        ("PATCH", f"/conference/{name}", {"slots": 5}),
        ("GET", f"/conference/{name}/bookings", None),
        ("POST", "/user", {"user_id": f"m{uuid.uuid4().hex[:10]}", "topics": []}),
        ("GET", f"/user/{user}", None),
        ("GET", f"/user/{user}/bookings", None),
        ("GET", f"/user/{user}/recommendations", None),
        ("GET", f"/user/{user}/export", None),
        ("DELETE", f"/user/{user}", None),
        ("POST", "/book", {"name": name, "user_id": user}),
        ("GET", f"/booking/{booking_id}", None),
        ("GET", f"/booking/{booking_id}/events", None),
        ("POST", "/confirm", {"booking_id": world["waiting_id"]}),
        ("POST", "/cancel", {"booking_id": booking_id}),
        ("POST", "/webhooks", {"url": "http://127.0.0.1:9/hooks"}),
        ("GET", "/webhooks", None),
        ("DELETE", f"/webhooks/{world['webhook_id']}", None),
    ]


def test_every_route_but_the_public_ones_is_in_the_list_above(http: httpx.Client, world: dict[str, Any]):
    schema = http.get("/openapi.json").json()
    public = {("GET", "/conference/{name}"), ("GET", "/conferences"), ("GET", "/healthz"), ("GET", "/readyz")}
    documented = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    tested = {(method, path) for method, path, _ in protected_routes(world)}
    assert len(documented - public) == len(tested)


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_every_protected_route_refuses_a_token_that_does_not_count(
    anonymous: httpx.Client, api: Api, forge: TokenForge, world: dict[str, Any], kind: str
):
    token = BAD_TOKENS[kind](forge)
    headers = bearer(token) if token else {}
    for method, path, body in protected_routes(world):
        response = anonymous.request(method, path, json=body, headers=headers)
        assert_error(response, 401, "UNAUTHENTICATED")
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge, (method, path, challenge)
    # and nothing changed
    assert api.http.get(f"/user/{world['owner']}").status_code == 200
    assert api.booking(world["booking_id"])["status"] == "CONFIRMED"
    assert api.booking(world["waiting_id"])["status"] == "WAITLISTED"
    assert api.conference(world["conference"]["name"])["slots"] == 1
    assert len(api.http.get("/webhooks", headers=api.as_user(world["owner"])).json()["webhooks"]) == 1


def test_a_malformed_authorization_header_is_a_401(anonymous: httpx.Client, world: dict[str, Any]):
    for value in ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer a b", "bearer", "Token abc", "Bearer " + "a" * 9000]:
        assert_error(anonymous.get(f"/booking/{world['booking_id']}", headers={"Authorization": value}), 401)


def test_the_public_routes_need_no_token(anonymous: httpx.Client, world: dict[str, Any]):
    name = world["conference"]["name"]
    public = [f"/conference/{name}", "/conferences", "/healthz", "/readyz", "/openapi.json", "/docs"]
    # The web page's files, and whom it signs in with.
    public += ["/", "/config.json", "/static/app.js", "/static/styles.css", "/static/swagger-ui/swagger-ui.css"]
    for path in public:
        assert anonymous.get(path).status_code == 200, path


def test_the_openapi_document_declares_the_bearer_scheme(anonymous: httpx.Client):
    schema = anonymous.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert any(scheme == {"type": "http", "scheme": "bearer", **scheme} for scheme in schemes.values())
    assert "security" in schema["paths"]["/book"]["post"]
    assert "security" not in schema["paths"]["/conferences"]["get"]


# --- roles and owners ------------------------------------------------------------------


def test_only_organizers_and_admins_create_conferences(api: Api):
    body = {
        "name": f"Mine {uuid.uuid4().hex[:8]}",
        "location": "Oslo",
        "start": "2031-02-01 09:00:00",
        "end": "2031-02-01 10:00:00",
        "slots": 3,
        "topics": [],
    }
    refused = api.http.post("/conference", json=body, headers=bearer(api.token("ann")))
    assert_error(refused, 403, "ROLE_REQUIRED")
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    created = api.http.post("/conference", json=body, headers=bearer(api.token("olga", "organizer")))
    assert created.status_code == 201, created.text


def test_an_organizer_manages_only_their_own_conferences(api: Api, world: dict[str, Any]):
    name = world["conference"]["name"]
    stranger = bearer(api.token("other-organizer", "organizer"))
    assert_error(api.http.patch(f"/conference/{name}", json={"slots": 9}, headers=stranger), 403, "FORBIDDEN")
    assert_error(api.http.get(f"/conference/{name}/bookings", headers=stranger), 403, "FORBIDDEN")
    unknown = api.http.get(f"/booking/{2**52}", headers=stranger)
    seen = api.http.get(f"/booking/{world['booking_id']}", headers=stranger)
    assert_error(seen, 404, "BOOKING_NOT_FOUND")
    assert seen.json()["error"]["message"] == unknown.json()["error"]["message"].replace(
        str(2**52), str(world["booking_id"])
    )
    assert api.conference(name)["slots"] == 1


def test_the_organizers_view_lists_attendees_offers_and_the_line_in_order(api: Api):
    conference = api.create_conference(slots=1)
    users = [api.create_user() for _ in range(4)]
    bookings = [api.book(conference, user)["booking_id"] for user in users]
    view = api.http.get(f"/conference/{conference['name']}/bookings", headers=api.as_organizer())
    assert view.status_code == 200, view.text
    listed = view.json()["bookings"]
    assert [b["booking_id"] for b in listed] == bookings
    assert [b["waitlist_position"] for b in listed] == [None, 1, 2, 3]
    first = api.http.get(
        f"/conference/{conference['name']}/bookings?status=WAITLISTED&page_size=2", headers=api.as_organizer()
    ).json()
    assert [b["booking_id"] for b in first["bookings"]] == bookings[1:3] and first["next_page_token"]
    rest = api.http.get(
        f"/conference/{conference['name']}/bookings",
        params={"status": "WAITLISTED", "page_size": 2, "page_token": first["next_page_token"]},
        headers=api.as_organizer(),
    ).json()
    assert [b["booking_id"] for b in rest["bookings"]] == bookings[3:] and rest["next_page_token"] == ""


def test_an_organizer_cancels_a_booking_of_their_conference_and_the_line_moves(api: Api, stack: Stack):
    conference = api.create_conference(slots=1)
    holder, next_in_line = api.create_user(), api.create_user()
    held = api.book(conference, holder)["booking_id"]
    waiting = api.book(conference, next_in_line)["booking_id"]
    canceled = api.http.post("/cancel", json={"booking_id": held}, headers=api.as_organizer())
    assert canceled.status_code == 200, canceled.text
    eventually(lambda: api.status(waiting) == "CONFIRMATION_PENDING")
    engine = create_engine(stack.infrastructure.database_url)
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT reason, actor_role, actor_subject FROM booking.booking_events "
                "WHERE booking_id = :id AND type = 'booking.canceled'"
            ),
            {"id": held},
        ).one()
        offered = connection.execute(
            text("SELECT actor_role FROM booking.booking_events WHERE booking_id = :id AND type = 'booking.offered'"),
            {"id": waiting},
        ).scalar_one()
    engine.dispose()
    assert tuple(row) == ("organizer", "organizer", "organizer-e2e")
    assert offered == "system"


def test_one_user_per_subject(api: Api):
    subject = bearer(api.token(f"solo-{uuid.uuid4().hex[:8]}"))
    assert (
        api.http.post("/user", json={"user_id": f"a{uuid.uuid4().hex[:10]}", "topics": []}, headers=subject).status_code
        == 201
    )
    second = api.http.post("/user", json={"user_id": f"b{uuid.uuid4().hex[:10]}", "topics": []}, headers=subject)
    assert_error(second, 409, "SUBJECT_HAS_USER")


def test_another_attendees_user_and_bookings_do_not_exist_for_you(api: Api, world: dict[str, Any]):
    mallory = api.create_user()
    as_mallory = api.as_user(mallory)
    victim, booking_id = world["owner"], world["booking_id"]
    for path in [f"/user/{victim}", f"/user/{victim}/bookings", f"/user/{victim}/recommendations"]:
        theirs = api.http.get(path, headers=as_mallory)
        nobodys = api.http.get(path.replace(victim, "nobody" + uuid.uuid4().hex[:8]), headers=as_mallory)
        assert_error(theirs, 404, "USER_NOT_FOUND")
        assert theirs.json()["error"]["code"] == nobodys.json()["error"]["code"]
    for method, path, body in [
        ("GET", f"/booking/{booking_id}", None),
        ("GET", f"/booking/{booking_id}/events", None),
        ("POST", "/confirm", {"booking_id": world["waiting_id"]}),
        ("POST", "/cancel", {"booking_id": booking_id}),
        ("POST", "/cancel", {"booking_id": world["waiting_id"]}),
    ]:
        assert_error(api.http.request(method, path, json=body, headers=as_mallory), 404, "BOOKING_NOT_FOUND")
    refused = api.http.post("/book", json={"name": world["conference"]["name"], "user_id": victim}, headers=as_mallory)
    assert_error(refused, 403, "FORBIDDEN")
    unknown = api.http.post(
        "/book", json={"name": world["conference"]["name"], "user_id": "ghost1"}, headers=as_mallory
    )
    assert_error(unknown, 403, "FORBIDDEN")  # the same: whether a user exists cannot be probed
    assert api.booking(booking_id)["status"] == "CONFIRMED"
    assert api.booking(world["waiting_id"])["status"] == "WAITLISTED"


def test_your_own_things_are_yours(api: Api, world: dict[str, Any]):
    as_owner = api.as_user(world["owner"])
    assert api.http.get(f"/booking/{world['booking_id']}", headers=as_owner).status_code == 200
    assert api.http.get(f"/user/{world['owner']}/bookings", headers=as_owner).status_code == 200


def test_forged_identity_headers_beside_a_valid_token_change_nothing(api: Api, world: dict[str, Any]):
    mallory = api.create_user()
    forged = {
        **api.as_user(mallory),
        "X-User": world["owner"],
        "X-User-Id": world["owner"],
        "X-Forwarded-User": world["owner"],
        "X-Auth-Request-User": world["owner"],
        "X-Subject": f"sub-{world['owner']}",
        "X-Roles": "admin",
    }
    assert_error(api.http.get(f"/booking/{world['booking_id']}", headers=forged), 404)
    assert_error(api.http.get(f"/user/{world['owner']}", headers=forged), 404)


def test_an_idempotency_key_belongs_to_its_caller(api: Api):
    conference = api.create_conference(slots=5)
    first, second, third = api.create_user(), api.create_user(), api.create_user()
    key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}

    def book(user_id: str, caller: str) -> httpx.Response:
        body = {"name": conference["name"], "user_id": user_id}
        return api.http.post("/book", json=body, headers={**api.as_user(caller), **key})

    one = book(first, first)
    assert one.status_code == 201, one.text
    # The same key from another caller for its own booking: its own request, not a reuse of the first's key.
    two = book(second, second)
    assert two.status_code == 201, two.text
    assert two.json()["booking_id"] != one.json()["booking_id"] and "Idempotent-Replayed" not in two.headers
    # The first's very request (same key, method, path, body) from a third caller: never the first's answer.
    stolen = book(first, third)
    assert_error(stolen, 403, "FORBIDDEN")
    assert "Idempotent-Replayed" not in stolen.headers
    assert book(first, first).headers["Idempotent-Replayed"] == "true"


def test_webhooks_are_their_creators_and_deliver_only_what_they_may_read(api: Api):
    receiver = WebhookReceiver().start()
    try:
        conference = api.create_conference(slots=2)
        watcher, other = api.create_user(), api.create_user()
        created = api.http.post("/webhooks", json={"url": receiver.url}, headers=api.as_user(watcher))
        assert created.status_code == 201, created.text
        webhook_id = created.json()["webhook_id"]
        assert [
            w["webhook_id"] for w in api.http.get("/webhooks", headers=api.as_user(watcher)).json()["webhooks"]
        ] == [webhook_id]
        assert api.http.get("/webhooks", headers=api.as_user(other)).json()["webhooks"] == []
        assert webhook_id not in [w["webhook_id"] for w in api.http.get("/webhooks").json()["webhooks"]]
        assert_error(api.http.delete(f"/webhooks/{webhook_id}", headers=api.as_user(other)), 404, "WEBHOOK_NOT_FOUND")
        others = api.book(conference, other)["booking_id"]
        mine = api.book(conference, watcher)["booking_id"]
        delivered = receiver.wait_for(1, timeout=10)
        time.sleep(1.5)  # long enough for the other user's event to have arrived, had it been sent
        bookings = [json.loads(each.body)["data"]["booking"]["booking_id"] for each in receiver.received]
        assert bookings == [mine], (bookings, others)
        assert json.loads(delivered[0].body)["data"]["by"] == "attendee"
    finally:
        receiver.stop()


# --- straight over gRPC ---------------------------------------------------------------------

PUBLIC_METHODS = {
    "/confbook.conference.v1.ConferenceService/GetConference",
    "/confbook.conference.v1.ConferenceService/ListConferences",
    "/confbook.conference.v1.ConferenceService/FindConferencesByTopics",
    "/confbook.booking.v1.BookingService/GetSeatAvailability",
    "/confbook.booking.v1.BookingService/ListSeatAvailability",
}
GUARDED = [
    ("conference", conference_pb2.DESCRIPTOR.services_by_name["ConferenceService"]),
    ("booking", booking_pb2.DESCRIPTOR.services_by_name["BookingService"]),
    ("waitlist", waitlist_pb2.DESCRIPTOR.services_by_name["WaitlistService"]),
]
GUARDED_METHODS = [
    (service, method)
    for service, descriptor in GUARDED
    for method in descriptor.methods
    if f"/{descriptor.full_name}/{method.name}" not in PUBLIC_METHODS
]


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _call(channel: grpc.Channel, method: MethodDescriptor, request: Any, metadata: tuple[tuple[str, str], ...]) -> Any:
    from google.protobuf.message_factory import GetMessageClass

    response_class = GetMessageClass(method.output_type)
    if method.server_streaming:
        stream = channel.unary_stream(
            _path(method),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        return next(iter(stream(request, metadata=metadata, timeout=5)))
    unary = channel.unary_unary(
        _path(method),
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    return unary(request, metadata=metadata, timeout=5)


@pytest.fixture(scope="module")
def channels(stack: Stack) -> Iterator[dict[str, grpc.Channel]]:
    opened = {name: grpc.insecure_channel(stack.grpc_target(name)) for name in ("conference", "booking", "waitlist")}
    yield opened
    for channel in opened.values():
        channel.close()


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_every_guarded_grpc_method_refuses_a_token_that_does_not_count(
    channels: dict[str, grpc.Channel], forge: TokenForge, world: dict[str, Any], api: Api, kind: str
):
    from google.protobuf.message_factory import GetMessageClass

    token = BAD_TOKENS[kind](forge)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    for service, method in GUARDED_METHODS:
        request = GetMessageClass(method.input_type)()
        with pytest.raises(grpc.RpcError) as refused:
            _call(channels[service], method, request, metadata)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED, (_path(method), refused.value.details())
    assert api.booking(world["booking_id"])["status"] == "CONFIRMED"


def test_grpc_health_and_reflection_need_no_token(channels: dict[str, grpc.Channel]):
    for channel in channels.values():
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_over_grpc_another_attendees_booking_does_not_exist(
    channels: dict[str, grpc.Channel], api: Api, world: dict[str, Any]
):
    stub = booking_pb2_grpc.BookingServiceStub(channels["booking"])
    mallory = (("authorization", f"Bearer {api.token('sub-' + api.create_user())}"),)
    booking_id = world["booking_id"]
    for call in [
        lambda: stub.GetBooking(booking_pb2.GetBookingRequest(booking_id=booking_id), metadata=mallory),
        lambda: stub.CancelBooking(booking_pb2.CancelBookingRequest(booking_id=booking_id), metadata=mallory),
        lambda: next(iter(stub.WatchBooking(booking_pb2.WatchBookingRequest(booking_id=booking_id), metadata=mallory))),
        lambda: stub.GetUser(booking_pb2.GetUserRequest(user_id=world["owner"]), metadata=mallory),
    ]:
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as refused:
        stub.ChangeCapacity(
            booking_pb2.ChangeCapacityRequest(conference_name=world["conference"]["name"], slots=9), metadata=mallory
        )
    assert (refused.value.code(), error_reason(refused.value)) == (grpc.StatusCode.PERMISSION_DENIED, "FORBIDDEN")
    owner = (("authorization", f"Bearer {api.token('sub-' + world['owner'])}"),)
    assert (
        stub.GetBooking(booking_pb2.GetBookingRequest(booking_id=booking_id), metadata=owner).booking_id == booking_id
    )


def test_a_rotated_issuer_key_is_fetched_and_its_tokens_count(api: Api, stack: Stack):
    rotated = httpx.post(f"{stack.issuer_url}/rotate", timeout=5)
    assert rotated.status_code == 200, rotated.text
    fresh = stack.token("after-rotation", "organizer", ttl=300)
    assert jwt.get_unverified_header(fresh)["kid"] == rotated.json()["kid"]
    # Through the gateway and the booking service, each of which meets the new kid for the first time.
    eventually(lambda: api.http.get("/webhooks", headers=bearer(fresh)).status_code == 200, timeout=5)
    # A process that fetched the keys less than a cooldown ago (for an earlier test's unknown kid) may refuse
    # the new kid until the cooldown is over; after it, every process meeting the kid fetches the keys.
    time.sleep(float(E2E_BOUNDS["OIDC_JWKS_REFRESH_COOLDOWN_SECONDS"]) + 0.1)
    for _ in range(8):  # enough to reach every gateway process and, through them, every booking process
        assert api.http.get("/webhooks", headers=bearer(fresh)).json() == {"webhooks": []}


# --- generated: whatever an Authorization header holds, only a valid token passes -----------------

_TOKEN_CHARACTERS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=", max_size=300)


def _jwt_shaped(forge: TokenForge) -> st.SearchStrategy[str]:
    """Three parts like a JWT, any of them swapped for generated bytes or another token's."""
    real = forge.token("mallory", "admin").split(".")
    part = st.one_of(_TOKEN_CHARACTERS, st.sampled_from(real), st.binary(max_size=60).map(lambda b: b.hex()))
    return st.lists(part, min_size=1, max_size=5).map(".".join).filter(lambda token: token != ".".join(real))


@given(data=st.data())
def test_a_generated_authorization_header_is_a_401_that_changes_nothing(
    anonymous: httpx.Client, forge: TokenForge, world: dict[str, Any], data: st.DataObject
):
    scheme = data.draw(st.sampled_from(["Bearer ", "bearer ", "BEARER  ", "Basic ", "", "Bearer"]))
    token = data.draw(st.one_of(_jwt_shaped(forge), _TOKEN_CHARACTERS))
    method, path, body = data.draw(st.sampled_from(protected_routes(world)))
    value = (scheme + token).strip()  # a header value has no space at either end (the client refuses one)
    response = anonymous.request(method, path, json=body, headers={"Authorization": value} if value else {})
    assert_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_forged_identity_metadata_beside_a_valid_token_changes_nothing_over_grpc(
    channels: dict[str, grpc.Channel], api: Api, world: dict[str, Any]
):
    stub = booking_pb2_grpc.BookingServiceStub(channels["booking"])
    mallory = api.create_user()
    forged = (
        ("authorization", f"Bearer {api.token('sub-' + mallory)}"),
        ("x-user-id", world["owner"]),
        ("x-subject", f"sub-{world['owner']}"),
        ("x-roles", "admin"),
        ("x-forwarded-user", world["owner"]),
    )
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetBooking(booking_pb2.GetBookingRequest(booking_id=world["booking_id"]), metadata=forged)
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND


def test_an_organizer_of_another_conference_is_refused_over_grpc(
    channels: dict[str, grpc.Channel], api: Api, world: dict[str, Any]
):
    stub = booking_pb2_grpc.BookingServiceStub(channels["booking"])
    other = (("authorization", f"Bearer {api.token('other-organizer', 'organizer')}"),)
    name = world["conference"]["name"]
    for call in [
        lambda: stub.ListConferenceBookings(
            booking_pb2.ListConferenceBookingsRequest(conference_name=name), metadata=other
        ),
        lambda: stub.ChangeCapacity(booking_pb2.ChangeCapacityRequest(conference_name=name, slots=7), metadata=other),
    ]:
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as hidden:
        stub.CancelBooking(booking_pb2.CancelBookingRequest(booking_id=world["booking_id"]), metadata=other)
    assert hidden.value.code() is grpc.StatusCode.NOT_FOUND
    owner = (("authorization", f"Bearer {api.token('organizer-e2e', 'organizer')}"),)
    listed = stub.ListConferenceBookings(
        booking_pb2.ListConferenceBookingsRequest(conference_name=name), metadata=owner
    )
    assert [each.booking_id for each in listed.bookings] == [world["booking_id"], world["waiting_id"]]
