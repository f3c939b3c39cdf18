"""Bookings, seats and the waitlist rules, in plain Python."""
