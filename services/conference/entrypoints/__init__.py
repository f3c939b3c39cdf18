"""How requests reach the conference service: gRPC and the start trigger."""
