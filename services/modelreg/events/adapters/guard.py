"""The address guard: resolves a webhook's host and refuses non-public addresses unless
allow-listed (domain/addresses.py decides)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

from modelreg.events.domain.addresses import Address, AllowList, check_addresses

ALLOW_ENV = "MODELREG_WEBHOOK_ALLOW_HOSTS"


class ResolvingGuard:
    def __init__(self, allow: AllowList) -> None:
        self._allow = allow

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ResolvingGuard:
        return cls(AllowList.parse(environ.get(ALLOW_ENV, "")))

    async def refusal(self, url: str) -> str | None:
        """None when the URL's host may be called now; else why not."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            addresses: list[Address] = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
                )
            except OSError as exc:
                return f"{host} does not resolve: {exc}"
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        return check_addresses(host, addresses, self._allow)
