"""Where a webhook may point (SSRF protection). Pure: the resolving is the adapter's.

Private, loopback, link-local, unique-local, multicast, reserved and unspecified
addresses are refused unless the allow-list names the host or a network holding the
address (MODELREG_WEBHOOK_ALLOW_HOSTS: comma-separated hostnames, IPs or CIDRs). A
hostname or a bare IP allows URLs naming exactly that host; a CIDR allows any host that
resolves into it. So `127.0.0.1` allows `http://127.0.0.1:8080/`, not `http://localhost/`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AllowList:
    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        hosts, networks = set(), []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            if "/" in item:
                networks.append(ipaddress.ip_network(item, strict=False))
            else:
                hosts.add(item.strip("[]").lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: Address) -> bool:
        return host.strip("[]").lower().rstrip(".") in self.hosts or any(address in n for n in self.networks)


def why_refused(address: Address) -> str | None:
    """The kind of a non-public address; None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, hit in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
    ):
        if hit:
            return kind
    return None


def check_addresses(host: str, addresses: Iterable[Address], allow: AllowList) -> str | None:
    """None when every address the host resolves to may be called; else why not."""
    found = list(addresses)
    if not found:
        return f"{host} does not resolve"
    for address in found:
        kind = why_refused(address)
        if kind is not None and not allow.allows(host, address):
            return f"{host} resolves to {address}, a {kind} address (not in MODELREG_WEBHOOK_ALLOW_HOSTS)"
    return None
