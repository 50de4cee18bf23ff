"""The gateway process.

python -m modelreg.gateway serve [--host 127.0.0.1] [--port 5000]

Stateless: it finds the services as the SDK does (MODELREG_<SERVICE>_ADDR, else the
endpoints `make dev` wrote, else ports 50051-50055).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import uvicorn

from modelreg.gateway.app import create_app
from modelreg.gateway.settings import DEFAULT_PORT, GatewaySettings
from modelreg.observability.logging import configure_logging


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m modelreg.gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve MLflow's registry REST API")
    serve.add_argument("--host", default=os.environ.get("MODELREG_GATEWAY_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("MODELREG_GATEWAY_PORT", DEFAULT_PORT)))
    args = parser.parse_args(argv)
    configure_logging("gateway")
    app = create_app(GatewaySettings.from_env())
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
