"""The waitlist service: drives promotion. Reacts to freed seats, offers, expiries and starts."""
