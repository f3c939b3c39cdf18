"""gRPC plumbing shared by the services: serving, error mapping, client channels."""
