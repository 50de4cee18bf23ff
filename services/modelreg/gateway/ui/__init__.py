"""The web UI (issue 18): server-rendered pages served by the gateway at `/`."""

from modelreg.gateway.ui.routes import install

__all__ = ["install"]
