"""The gRPC servicer and the proto mapping."""
