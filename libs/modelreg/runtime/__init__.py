"""Hosting a service process: configuration, bootstrap, projectors and the gRPC server."""
