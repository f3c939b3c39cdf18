"""Offers as the waitlist service tracks them, in plain Python."""
