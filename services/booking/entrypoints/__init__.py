"""How requests reach the booking service: the public and the promotion gRPC APIs."""
