"""Where the platform may be made to send a request by someone who does not manage it: a
subscription's notification endpoint, an @context to fetch. Not into its own network
(loopback, private and link-local addresses: the database, the MQTT broker, internal
services), which would let a citizen or an anonymous client reach what only the server
can (server-side request forgery), unless the address is in one of the networks the
instance allows (``DOTHI_AUTH_PRIVATE_ENDPOINTS``)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

from dothi.errors import BadRequestData, Forbidden
from dothi.settings import listed

Network = IPv4Network | IPv6Network


def networks(text: str) -> tuple[Network, ...]:
    """The networks of a comma-separated setting (CIDR)."""
    return tuple(ip_network(n) for n in listed(text))


def check_public(url: str, allowed: Sequence[Network], what: str) -> None:
    """Refuse ``url`` unless its host resolves to public addresses only (or to
    ``allowed`` networks): 403, or 400 for a host that does not resolve."""
    host = urlsplit(url).hostname or ""
    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        raise BadRequestData(f"{what}: the host {host!r} cannot be resolved") from None
    for text in found:
        address = ip_address(text.split("%")[0])
        if address.is_global or any(address in net for net in allowed):
            continue
        raise Forbidden(f"{what} {url} is on a private network ({address}): only those who "
                        "manage the platform may use one")
