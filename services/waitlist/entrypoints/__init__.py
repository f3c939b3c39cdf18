"""How work reaches the waitlist service: events, the overdue-offer sweeper, gRPC."""
