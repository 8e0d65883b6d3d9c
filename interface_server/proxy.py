"""Trusted proxies: whose ``X-Forwarded-*`` headers to believe, and what they say.

With ``proxy_headers`` on, the client address and scheme of a request come
from ``X-Forwarded-For`` / ``-Port`` / ``-Proto`` -- but only when the peer
that sent the request is a trusted proxy (``proxy_headers_from``, loopback
by default, as gunicorn's ``forwarded_allow_ips`` and uvicorn's). A proxy
*appends* the address it got the request from, so everything left of the
entries the trusted proxies added may have been written by the client; the
client is therefore the rightmost entry that is not itself a trusted proxy.

Peers on a UNIX socket have no address; only processes the socket file's
permissions let in can connect, so they are trusted (as gunicorn does).
Kept free of Twisted.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Sequence

__all__ = ["TRUST_ALL", "TrustedProxies", "parse_trusted"]

TRUST_ALL = "*"
"""The ``proxy_headers_from`` entry that trusts every peer (the leftmost entry is then the client)."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_CACHE_SIZE = 1024


def parse_trusted(entries: str | Sequence[str]) -> tuple[str, ...]:
    """Check and normalise a ``proxy_headers_from`` value.

    Args:
        entries: addresses and CIDR networks (``"127.0.0.1"``,
            ``"10.0.0.0/8"``, ``"::1"``), or ``"*"`` for every peer; a
            sequence, or one comma-separated string.

    Returns:
        The entries as a tuple of stripped strings.

    Raises:
        TypeError: ``entries`` is neither a string nor a sequence of strings.
        ValueError: an entry is not an address, a network or ``"*"`` (the
            message names it).
    """
    if isinstance(entries, str):
        entries = entries.split(",")
    if not isinstance(entries, (list, tuple)):
        raise TypeError(f"proxy_headers_from must be a list of addresses or networks, not {entries!r}")
    result = []
    for entry in entries:
        if not isinstance(entry, str):
            raise TypeError(f"proxy_headers_from entries must be strings, not {entry!r}")
        entry = entry.strip()
        if not entry:
            continue
        if entry != TRUST_ALL:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"proxy_headers_from entry {entry!r} is not an IP address, a network "
                                 f"(like 10.0.0.0/8) or '*'") from None
        result.append(entry)
    return tuple(result)


def _host_of(entry: str) -> str:
    """Return the host of an ``X-Forwarded-For`` entry (``[v6]:port`` and ``v4:port`` lose the port)."""
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry


def _split(value: bytes | None) -> list[str]:
    if not value:
        return []
    return [part for part in (p.strip() for p in value.decode("latin-1").split(",")) if part]


class TrustedProxies:
    """Decides which peers are trusted proxies, and the client they forward for.

    Args:
        entries: as for :func:`parse_trusted`.

    Raises:
        TypeError, ValueError: as :func:`parse_trusted`.
    """

    def __init__(self, entries: str | Sequence[str]) -> None:
        entries = parse_trusted(entries)
        self.trust_all = TRUST_ALL in entries
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(e, strict=False) for e in entries if e != TRUST_ALL)
        # Parsing an address costs microseconds; a server sees few distinct proxies.
        self._known: dict[str, bool] = {}

    def trusts(self, host: str | None) -> bool:
        """True if ``host`` (a peer or an ``X-Forwarded-For`` entry) is a trusted proxy.

        ``None`` -- a peer on a UNIX socket -- is trusted; a host that is not
        an IP address is not (unless everything is).
        """
        if host is None or self.trust_all:
            return True
        known = self._known.get(host)
        if known is not None:
            return known
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            trusted = False
        else:
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
            trusted = any(address in network for network in self.networks)
        if len(self._known) >= _CACHE_SIZE:
            self._known.clear()
        self._known[host] = trusted
        return trusted

    def forwarded(self, forwarded_for: bytes | None, forwarded_port: bytes | None,
                  forwarded_proto: bytes | None, client: list[Any] | None, scheme: str) -> tuple[Any, str]:
        """Return the ``(client, scheme)`` of a request, after its proxy headers if the peer is trusted.

        Args:
            forwarded_for, forwarded_port, forwarded_proto: the values of the
                ``X-Forwarded-*`` headers (repeated headers joined with
                commas), or ``None``.
            client: the peer, ``[host, port]``, or ``None`` for a UNIX socket.
            scheme: ``"http"`` or ``"https"``, as the connection is.

        Returns:
            ``client`` and ``scheme`` unchanged when the peer is not trusted;
            otherwise ``[host, port]`` of the rightmost ``X-Forwarded-For``
            entry that is not a trusted proxy (the leftmost if all are, or
            with ``"*"``), the port from the ``X-Forwarded-Port`` entry in the
            same position (the last one if the lists differ in length; 0 if
            none), and the ``X-Forwarded-Proto`` entry chosen alike when it is
            ``http`` or ``https``.
        """
        if not self.trusts(client[0] if client else None):
            return client, scheme
        hosts = _split(forwarded_for)
        index = -1
        if hosts:
            index = 0
            if not self.trust_all:
                for position in range(len(hosts) - 1, -1, -1):
                    if not self.trusts(_host_of(hosts[position])):
                        index = position
                        break
            port = 0
            ports = _split(forwarded_port)
            if ports:
                chosen = ports[index] if len(ports) == len(hosts) else ports[-1]
                port = int(chosen) if chosen.isascii() and chosen.isdigit() and len(chosen) <= 5 else 0
            client = [_host_of(hosts[index]), port]
        protos = _split(forwarded_proto)
        if protos:
            proto = (protos[index] if index >= 0 and len(protos) == len(hosts) else protos[-1]).lower()
            if proto in ("http", "https"):
                scheme = proto
        return client, scheme
