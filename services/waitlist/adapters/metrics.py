"""The waitlist service's own metrics: how fast freed seats are offered, how late offers expire."""

from __future__ import annotations

from prometheus_client import Histogram

# Seconds; the promise is well under one.
PROMOTION_DELAY = Histogram(
    "confbook_promotion_delay_seconds",
    "From a seat's release (the booking service's clock) to its offer to the head of the line",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
# Seconds past the deadline; the timers aim at zero, the sweeper catches up within about one.
EXPIRY_LATENESS = Histogram(
    "confbook_offer_expiry_lateness_seconds",
    "From an offer's deadline to its expiry",
    ["via"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
