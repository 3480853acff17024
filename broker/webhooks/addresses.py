"""Where a webhook may be sent: refusing private networks (SSRF), at registration and at every delivery.

A URL passes when it is `https://` with a host and no credentials, and every address its host resolves
to is globally routable: not loopback, private, link-local, CGNAT-shared, multicast, reserved,
unspecified, documentation or benchmarking space, nor a deprecated range (site-local `fec0::/10`,
6bone, IPv4-compatible `::/96`, the 6to4 relay anycast), nor an IPv6 form that carries such an IPv4 address
(IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`). Numeric hosts in the old
forms `inet_aton` accepts (`2130706433`, `0177.0.0.1`, `0x7f.1`) are read as the address they are.
The delivery then connects to an address vetted here, not to whatever DNS answers a moment later
(see `broker.webhooks.delivery`), so a name that rebinds to 127.0.0.1 between the check and the
connection gains nothing.

With the development setting `webhooks_allow_private`, `http://` and private addresses are allowed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

__all__ = ["IPAddress", "Refused", "Resolver", "Target", "resolve_system", "vet"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> addresses as text

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
# Not globally reachable per the IANA special-purpose registries, or deprecated, yet passed by
# `is_global` in some Python versions (3.11 passes fec0::1): named here so no version lets them by.
_NOT_GLOBAL: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.IPv6Network("fec0::/10"), "a site-local address (deprecated, RFC 3879)"),
    (ipaddress.IPv6Network("3ffe::/16"), "a 6bone address (returned, RFC 3701)"),
    (ipaddress.IPv6Network("::/96"), "a reserved address (IPv4-compatible, deprecated)"),
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "a local-use NAT64 address (RFC 8215)"),
    (ipaddress.IPv6Network("3fff::/20"), "a documentation address (RFC 9637)"),
    (ipaddress.IPv6Network("2001:db8::/32"), "a documentation address"),
    (ipaddress.IPv6Network("5f00::/16"), "a reserved address (segment routing, RFC 9602)"),
    (ipaddress.IPv6Network("fc00::/7"), "a private address"),
    (ipaddress.IPv4Network("192.88.99.0/24"), "a 6to4 relay address (deprecated, RFC 7526)"),
    (ipaddress.IPv4Network("192.0.0.0/24"), "an address of IETF protocol assignments"),
    (ipaddress.IPv4Network("192.0.2.0/24"), "a documentation address"),
    (ipaddress.IPv4Network("198.51.100.0/24"), "a documentation address"),
    (ipaddress.IPv4Network("203.0.113.0/24"), "a documentation address"),
    (ipaddress.IPv4Network("198.18.0.0/15"), "a benchmarking address"),
    (_SHARED, "a shared (CGNAT) address"),
)


class Refused(ValueError):
    """A URL the broker will not send to; the message says why, for the person who gave it."""


@dataclass(frozen=True, slots=True)
class Target:
    """A vetted URL and the addresses its host had when it was vetted."""

    url: SplitResult
    addresses: tuple[IPAddress, ...]

    @property
    def host(self) -> str:
        """The host name as written (what Host and TLS SNI carry)."""
        assert self.url.hostname is not None  # vet() refused URLs without one
        return self.url.hostname

    @property
    def port(self) -> int:
        """The port to connect to."""
        return self.url.port or (443 if self.url.scheme == "https" else 80)


def resolve_system(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def vet(url: str, *, allow_private: bool, resolve: Resolver = resolve_system) -> Target:
    """The target of `url` if the broker may send to it; raises `Refused` saying why not."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise Refused(f"the URL is not valid ({exc})") from None
    schemes = {"https", "http"} if allow_private else {"https"}
    if parts.scheme not in schemes:
        raise Refused("the URL must start with https://")
    if not parts.hostname:
        raise Refused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise Refused("the URL must not carry a user name or password; authenticate with the signature")
    if parts.fragment:
        raise Refused("the URL must not have a #fragment")
    host = parts.hostname
    addresses = _literal(host)
    literal = addresses is not None
    if addresses is None:
        try:
            found = resolve(host, port or (443 if parts.scheme == "https" else 80))
        except (OSError, UnicodeError):
            raise Refused(f"the host '{host}' does not resolve; check the name") from None
        addresses = tuple(ipaddress.ip_address(a.split("%", 1)[0]) for a in found)
    if not addresses:
        raise Refused(f"the host '{host}' does not resolve; check the name")
    if not allow_private:
        for address in addresses:
            why = refusal(address)
            if why is not None:
                if not literal:
                    shown = f" resolves to {address}, which"
                else:
                    shown = "" if str(address) == host else f" is the address {address}, which"
                raise Refused(f"the host '{host}'{shown} is {why}; webhooks go to public addresses only")
    return Target(url=parts, addresses=addresses)


def _literal(host: str) -> tuple[IPAddress, ...] | None:
    """The address a numeric host names (in any notation the C library accepts), or None for a name."""
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass
    if host.replace(".", "").replace("x", "").replace("X", "").isalnum() and host[-1:].isdigit():
        try:
            return (ipaddress.IPv4Address(socket.inet_aton(host)),)  # 2130706433, 0177.1, 0x7f.0.0.1
        except OSError:
            return None
    return None


def refusal(address: IPAddress) -> str | None:
    """Why `address` is not a place to send webhooks, or None when it is globally routable."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(address.packed[-4:])
        if embedded is not None:
            inner = refusal(embedded)
            return None if inner is None else f"{inner} ({embedded}) in an IPv6 form"
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address (cloud metadata lives there)"),
        (address.is_multicast, "a multicast address"),
        *((address.version == net.version and address in net, why) for net, why in _NOT_GLOBAL),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    )
    return next((why for failed, why in checks if failed), None)
