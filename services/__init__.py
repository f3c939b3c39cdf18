"""The confbook services: conference, booking and waitlist, each a gRPC server with its own schema."""
