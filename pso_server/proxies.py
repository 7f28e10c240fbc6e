"""Which address a request comes from, for the per-address limits (sign-in failures, request rate).

By default it is the TCP peer: a header such as ``X-Forwarded-For`` is written by the client and proves nothing.
Behind a load balancer or reverse proxy every request has the proxy's address, so a per-address limit would
count the whole hospital as one client. IT then names its proxies (``pso-server serve --trusted-proxy``): for a
request whose peer is one of them, the client is the nearest address in ``X-Forwarded-For`` (read from the
right, the end the proxies append to) that is not itself a trusted proxy. Entries left of it were written by the
client and are never used; an entry that is not an IP address stops the walk at the hop before it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.types import Scope

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_HEADER = b"x-forwarded-for"


class ProxySettingInvalid(ValueError):
    """A --trusted-proxy value that is not an IP address or network."""


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``10.0.0.5``, ``10.0.0.0/24`` or ``fd00::/8`` → networks. Raises ProxySettingInvalid naming the rule."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ProxySettingInvalid(
                "A trusted proxy must be an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)."
            ) from None
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` is believed (none by default)."""

    def __init__(self, networks: Sequence[IPNetwork] = ()) -> None:
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip.version == n.version and ip in n for n in self._networks)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The client's address: ``peer`` unless it is a trusted proxy, then the nearest untrusted hop of
        ``forwarded_for`` (the header values, in the order received)."""
        current = peer or "unknown"
        if not self._networks or not self.trusts(current):
            return current
        hops = [hop for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                break  # not an address: nothing left of it can be believed
            current = str(ip)
            if not self.trusts(current):
                break
        return current

    def client_of_scope(self, scope: Scope) -> str:
        """:meth:`client` for an ASGI HTTP scope."""
        client = scope.get("client")
        peer = str(client[0]) if client else None
        if not self._networks:
            return peer or "unknown"
        values = [bytes(v).decode("latin-1") for k, v in scope.get("headers") or () if bytes(k).lower() == _HEADER]
        return self.client(peer, values)
