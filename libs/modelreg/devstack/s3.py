"""An S3-compatible HTTP server for tests and `modelreg dev`: moto's threaded server.

moto keeps its state in process-global backends, so every MotoS3Server in one Python
process (and any ``mock_aws`` in it) sees the same buckets. Use unique bucket names.

Presigned PUTs must not be sent as ``application/x-www-form-urlencoded`` (curl --data,
requests with a dict body): the WSGI layer parses such bodies as forms and moto then
stores an empty object. Send ``Content-Type: application/octet-stream``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import structlog

from modelreg.devstack.lifecycle import Stoppable
from modelreg.devstack.ports import port_is_free, wait_for_port

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

log = structlog.get_logger(__name__)

# moto's server accepts any credentials; these are the values moto's own docs use.
_ACCESS_KEY = "testing"
_SECRET_KEY = "testing"
_REGION = "us-east-1"


class MotoS3Server(Stoppable):
    """moto's S3 API served over plain HTTP on 127.0.0.1 from a daemon thread."""

    def __init__(self, server: ThreadedMotoServer, port: int) -> None:
        self._server = server
        self.port = port
        self.endpoint = f"127.0.0.1:{port}"
        self.access_key = _ACCESS_KEY
        self.secret_key = _SECRET_KEY
        self.region = _REGION
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @classmethod
    def start(cls, port: int | None = None) -> MotoS3Server:
        from moto.server import ThreadedMotoServer

        started = time.monotonic()
        if port is not None and not port_is_free(port):
            # ThreadedMotoServer.start() would block forever if its thread fails to bind.
            raise RuntimeError(f"cannot start moto: 127.0.0.1:{port} is already in use")
        werkzeug_log = logging.getLogger("werkzeug")
        if werkzeug_log.level == logging.NOTSET:
            # Otherwise werkzeug prints an access-log line per request to stderr.
            werkzeug_log.setLevel(logging.WARNING)
        # Port 0 lets the kernel pick atomically, avoiding the free_port() race.
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port or 0, verbose=False)
        server.start()
        _, actual_port = server.get_host_and_port()
        wait_for_port("127.0.0.1", actual_port, timeout=5.0)
        log.info(
            "moto_s3.started",
            endpoint=f"127.0.0.1:{actual_port}",
            seconds=round(time.monotonic() - started, 3),
        )
        return cls(server, actual_port)

    def stop(self) -> None:
        """Shut the HTTP server down and join its thread. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._server.stop()
        log.info("moto_s3.stopped", endpoint=self.endpoint)
