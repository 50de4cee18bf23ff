"""The command line every service process shares.

python -m modelreg.<service> serve [--port P] [--host H] [--schema S] [--no-projector]
python -m modelreg.<service> project
python -m modelreg.<service> serve --schema S --read-only   # e.g. a registry as of a past time
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable, Sequence

from modelreg.observability.logging import configure_logging
from modelreg.runtime.host import ServiceHost, ServiceSpec
from modelreg.runtime.settings import Settings


async def _run(spec: ServiceSpec, args: argparse.Namespace) -> None:
    host = ServiceHost(spec, Settings.from_env())
    project = args.command == "project" or not args.no_projector
    serve = args.command == "serve"
    await host.start(serve=serve, project=project, port=args.port, host=args.host, read_only=args.read_only)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await host.stop()


def run_service(
    *,
    name: str,
    spec: Callable[[str], ServiceSpec],
    default_schema: str,
    default_port: int,
    argv: Sequence[str] | None = None,
) -> None:
    """Parses the command line, configures logging and runs the service until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog=f"modelreg-{name}", description=f"The {name} service.")
    parser.add_argument(
        "command",
        choices=["serve", "project"],
        nargs="?",
        default="serve",
        help="serve the API (and project), or only project",
    )
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--schema", default=default_schema)
    parser.add_argument("--no-projector", action="store_true", help="serve the API only")
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="serve --schema as it stands (no projector); writes fail with FAILED_PRECONDITION",
    )
    args = parser.parse_args(argv)
    configure_logging(name)
    try:
        import uvloop
    except ImportError:  # not on Windows
        asyncio.run(_run(spec(args.schema), args))
    else:
        uvloop.run(_run(spec(args.schema), args))
