"""The HTTP gateway: the documented JSON endpoints, translated to gRPC calls to the services."""
