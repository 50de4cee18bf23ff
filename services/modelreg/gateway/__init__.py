"""The HTTP gateway: MLflow's model registry REST API 2.0 (and the web UI, under `ui/`) over
the registry's gRPC services. It holds no state of its own: restart it at any time."""
