"""gRPC plumbing shared by the services: the interceptor, auth and request context."""
