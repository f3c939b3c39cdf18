"""The waitlist schema, the message topology, and the booking service client."""
