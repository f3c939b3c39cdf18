"""The web page in a real browser (Debian's Chromium) against the whole stack: people book, wait, see their
offer arrive and confirm it; an organiser creates a conference and watches its line; /docs works with
nothing from elsewhere. Screenshots of the pages land in .run/test/screenshots."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from scripts.sandbox import Stack
from tests.browser import PHONE, Page, chromium
from tests.conftest import E2E_WINDOW_SECONDS
from tests.e2e.conftest import SCREENSHOTS, SCREENSHOTS_TAKEN, Api

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browsers(stack: Stack, request: pytest.FixtureRequest) -> Iterator[list[Page]]:
    """Two browsers of their own, as two people at two machines would have (nothing shared between them)."""
    drivers = [chromium(), chromium()]
    request.config.stash[SCREENSHOTS_TAKEN] = True
    try:
        yield [Page(driver, stack.base_url) for driver in drivers]
    finally:
        for driver in drivers:
            driver.quit()


@pytest.fixture
def alice(browsers: list[Page]) -> Page:
    return browsers[0]


@pytest.fixture
def bob(browsers: list[Page]) -> Page:
    return browsers[1]


def person(name: str) -> str:
    """A subject no other test uses; the page suggests it (its letters and digits) as the user id."""
    return f"{name}{uuid.uuid4().hex[:8]}"


def register(page: Page, topics: str = "Python") -> None:
    page.go("#/interests")
    page.field("Topics you care about").send_keys(topics)
    page.button("Register").click()
    page.wait_for_text("h1", "Recommended for you")


def book_from_catalogue(page: Page, conference: str) -> str:
    """Finds the conference by searching its name, books it; the page's message."""
    page.go("#/")
    search = page.field("Search by name or topic")
    search.send_keys(conference, Keys.ENTER)
    page.wait_for_text(".summary", "1 conference match")
    card = page.wait_for_text("article.card", conference)
    page.button("Book", within=card).click()
    message = card.find_element(By.CSS_SELECTOR, ".message")
    return str(page.until(lambda _: message.text, f"no answer to booking {conference}"))


def booking_card(page: Page, booking_id: int) -> Any:
    return page.find(f'article.booking[data-booking-id="{booking_id}"]')


def my_booking_id(api: Api, user_id: str) -> int:
    reply = api.http.get(f"/user/{user_id}/bookings").json()
    return int(reply["bookings"][-1]["booking_id"])


def test_two_people_one_cancels_and_the_other_sees_the_offer_arrive_live_and_confirms_it(alice, bob, api):
    conference = api.create_conference(slots=1)
    name = conference["name"]
    alice_id, bob_id = person("alice"), person("bob")
    alice.sign_in(alice_id)
    register(alice)
    assert "confirmed" in book_from_catalogue(alice, name).lower()
    ahead = api.create_user()  # someone who joined the line before Bob
    assert api.book(conference, ahead)["status"] == "WAITLISTED"

    bob.sign_in(bob_id)
    register(bob)
    assert "number 2 on the waitlist" in book_from_catalogue(bob, name)
    bob.screenshot(SCREENSHOTS, "catalogue")
    # Signed in and booking, yet no token (a JWT begins eyJ) in the browser's storage or cookies.
    kept = bob.driver.execute_script("return JSON.stringify([{...localStorage}, {...sessionStorage}, document.cookie])")
    assert "eyJ" not in kept, kept
    bob_booking = my_booking_id(api, bob_id)
    bob.go("#/bookings")
    assert "number 2 in line" in booking_card(bob, bob_booking).find_element(By.CSS_SELECTOR, ".status").text

    # The one ahead leaves: Bob's position moves without his doing anything.
    assert api.cancel(my_booking_id(api, ahead)).status_code == 200
    bob.wait_for_text(".booking .status", "number 1 in line", timeout=5)
    bob.screenshot(SCREENSHOTS, "my-bookings-waiting")

    # Alice, in her own browser, gives up her seat.
    alice.go("#/bookings")
    alice.press("Cancel booking", f'article.booking[data-booking-id="{my_booking_id(api, alice_id)}"]')
    alice.wait_for_text(".booking .status", "Canceled")

    # Bob's page shows the offer the moment it is made, with its countdown, and he confirms in the window.
    card = f'article.booking[data-booking-id="{bob_booking}"]'
    bob.wait_for_text(f"{card} .status", "Seat offered", timeout=3)
    bob.wait_for_text(f"{card} [role=timer]", "0:0", timeout=1)  # the seconds left, counting down
    bob.press("Confirm", card, timeout=1)
    bob.wait_for_text(f"{card} .status", "Confirmed", timeout=E2E_WINDOW_SECONDS)
    assert api.status(bob_booking) == "CONFIRMED"


def test_an_offer_left_alone_expires_on_screen(alice, bob, api):
    conference = api.create_conference(slots=1)
    holder = api.create_user()
    held = api.book(conference, holder)
    bob_id = person("bob")
    bob.sign_in(bob_id)
    register(bob)
    book_from_catalogue(bob, conference["name"])
    bob_booking = my_booking_id(api, bob_id)
    bob.go("#/bookings")
    booking_card(bob, bob_booking)

    assert api.cancel(held["booking_id"]).status_code == 200
    bob.wait_for_text(".booking .status", "Seat offered", timeout=3)
    bob.screenshot(SCREENSHOTS, "my-bookings-offer")
    # Nobody confirms: the deadline passes on screen, and the expiry the service decides is said.
    bob.wait_for_text(".booking .note", "An offer expired unconfirmed", timeout=E2E_WINDOW_SECONDS + 5)
    bob.screenshot(SCREENSHOTS, "my-bookings-expired")


def pick_time(page: Page, label: str, moment: datetime) -> None:
    """A datetime-local field set to `moment` in the browser's time zone (the machine's), as its picker would:
    what keys it takes depends on the browser's locale."""
    field = page.field(label)
    value = moment.astimezone().strftime("%Y-%m-%dT%H:%M")
    page.driver.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', {bubbles: true}))",
        field,
        value,
    )


def test_an_organiser_creates_a_conference_raises_its_capacity_and_the_head_of_the_line_is_offered_at_once(
    alice, api, stack
):
    organiser = person("organiser")
    alice.sign_in(organiser, "organizer")
    alice.go("#/organise")
    name = f"Web Conf {uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=20)
    alice.field("Name").send_keys(name)
    alice.field("Location").send_keys("Lyon")
    pick_time(alice, "Starts (your time)", start)
    pick_time(alice, "Ends (your time)", start + timedelta(hours=13))
    alice.field("Seats").send_keys("1")
    alice.field("Topics").send_keys("Python, Databases")
    alice.button("Create conference").click()

    # The API's own message, next to the field it names, and the focus there.
    error = alice.find("input[aria-invalid=true] + .field-error")
    assert "12 hours" in error.text, error.text
    end = alice.field("Ends (your time)")
    assert alice.driver.switch_to.active_element == end
    alice.screenshot(SCREENSHOTS, "organise-validation")
    pick_time(alice, "Ends (your time)", start + timedelta(hours=8))
    alice.button("Create conference").click()
    alice.wait_for_text("h1", name)

    # Two people book through the API: one gets the seat, one waits.
    conference = {"name": name}
    seated, waiting = api.create_user(), api.create_user()
    api.book(conference, seated)
    queued = api.book(conference, waiting)
    alice.wait_for_text(".list.waitlisted", waiting, timeout=5)
    alice.wait_for_text(".list.confirmed", seated)

    capacity = alice.field("Seats")
    capacity.clear()
    capacity.send_keys("2")
    alice.button("Save capacity").click()
    alice.wait_for_text(".list.confirmation_pending", waiting, timeout=2)
    alice.screenshot(SCREENSHOTS, "organise-conference")
    assert api.status(queued["booking_id"]) == "CONFIRMATION_PENDING"

    # The organiser cancels a booking from the list.
    seat = my_booking_id(api, seated)
    alice.press("Cancel", f'.list.confirmed tr[data-booking-id="{seat}"]')
    alice.wait_for_text("[role=status].message", f"Booking {seat} of {seated} canceled")
    assert api.status(seat) == "CANCELED"


def test_the_pages_pass_the_accessibility_check_and_fit_a_phone(alice, api, stack):
    conference = api.create_conference(slots=1)
    holder = api.create_user()
    api.book(conference, holder)
    alice.sign_in(person("carol"))
    register(alice)
    book_from_catalogue(alice, conference["name"])
    for route in ("#/", "#/bookings", "#/recommendations", "#/interests"):
        alice.go(route)
        alice.find("main h1")
        assert alice.axe_violations() == [], route
    alice.driver.set_window_size(*PHONE)
    try:
        alice.go("#/bookings")
        alice.find(".booking .status")
        fits = alice.driver.execute_script(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        alice.screenshot(SCREENSHOTS, "phone-my-bookings")
        assert fits, "the page scrolls sideways on a phone-sized screen"
    finally:
        alice.driver.set_window_size(1280, 900)


def test_the_signed_out_catalogue_and_the_sign_in_page_pass_the_accessibility_check(bob):
    bob.open("/")
    bob.find("main h1")
    assert bob.axe_violations() == []
    # The keyboard goes through the page in reading order: from the heading a view focuses as it opens, on
    # through the content to the end, then (past the browser's own controls) from the skip link on.
    bob.open("/#/bookings")  # content that other tests' conferences do not change
    bob.wait_for_text("main", "Sign in to see this.")
    visited = []
    for _ in range(10):
        bob.driver.switch_to.active_element.send_keys(Keys.TAB)
        visited.append(bob.driver.switch_to.active_element.accessible_name)
    assert [name for name in visited if name] == [
        "Sign in",
        "API documentation",
        "Skip to content",
        "Confbook",
        "Conferences",
        "My bookings",
        "Interests",
        "Recommendations",
        "Sign in",
    ], visited
    bob.button("Sign in").click()
    bob.field("Subject")
    assert bob.axe_violations() == []


def test_the_docs_render_from_the_gateway_alone_and_call_the_api_with_a_token(bob, api, stack):
    user_id = api.create_user()
    token = api.token(f"sub-{user_id}")
    bob.open("/docs")
    bob.wait_for_text(".swagger-ui .info .title", "Conference booking")
    bob.screenshot(SCREENSHOTS, "docs")
    # Everything came from the gateway: the policy allows nothing else, and nothing was refused.
    refused = [entry for entry in bob.console() if "Content Security Policy" in entry.get("message", "")]
    assert refused == []
    resources = bob.driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(url.startswith(stack.base_url) for url in resources), resources

    bob.find("button.authorize").click()
    bob.find(".modal-ux input").send_keys(token)
    bob.button("Authorize", within=bob.find(".modal-ux")).click()
    bob.button("Close", within=bob.find(".modal-ux")).click()
    operation = bob.find("#operations-users-get_user_user__user_id__get")
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    bob.button("Try it out", within=operation).click()
    operation.find_element(By.CSS_SELECTOR, 'input[placeholder="user_id"]').send_keys(user_id)
    bob.button("Execute", within=operation).click()
    bob.wait_for_text(".live-responses-table .response-col_status", "200")
    bob.wait_for_text(".live-responses-table .response-col_description", f'"user_id": "{user_id}"')
