"""Outbound webhooks (alert rules, requeue notices) that cannot be aimed at our own network.

A webhook URL is typed by a project member, so without a guard the server would POST wherever it
is told: loopback admin ports, the cloud metadata service, hosts of the private network. The
address is checked when the connection is made, on the address actually dialled (a name that
resolves to a public address at save time and a private one later is still refused), redirects
are never followed, and at most a few bytes of the answer are read.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# Shared address space (carrier-grade NAT) is not "private" to Python, and is internal all the same.
EXTRA_BLOCKED = [ipaddress.ip_network("100.64.0.0/10")]


class BlockedAddressError(ValueError):
    """The webhook's host is, or resolves to, an address of a local or private network."""


def is_blocked_address(address: str) -> bool:
    """Pure: loopback, private, link-local (the metadata service), multicast, reserved,
    unspecified or shared addresses, IPv4-mapped IPv6 ones included."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or any(ip in network for network in EXTRA_BLOCKED)
    )


def _vetted_address(host: str, port: int) -> str:
    """The first address of `host`, refused when any of them is blocked (a name with one public
    and one private address could be dialled at the private one by the next lookup)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    blocked = [a for a in addresses if is_blocked_address(a)]
    if blocked:
        raise BlockedAddressError(
            f"webhooks may not reach {host} ({blocked[0]}): a local or private network address"
        )
    return addresses[0]


class _GuardedConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        self._dns_host = _vetted_address(self._dns_host, self.port)
        return super()._new_conn()


class _GuardedHTTPSConnection(urllib3.connection.HTTPSConnection):
    # TLS still checks the certificate against the name (self.host), not the dialled address.
    def _new_conn(self) -> socket.socket:
        self._dns_host = _vetted_address(self._dns_host, self.port)
        return super()._new_conn()


class _GuardedPool(HTTPConnectionPool):
    ConnectionCls = _GuardedConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedPool, "https": _GuardedHTTPSPool}


def post(
    url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool
) -> int:
    """POST and return the status code. Raises BlockedAddressError, requests exceptions or
    ValueError (a URL that is not http(s)). The answer's body is not read."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("a webhook URL starts with http:// or https://")
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment: it would dial for us
        if not allow_private:
            session.mount("http://", _GuardedAdapter())
            session.mount("https://", _GuardedAdapter())
        try:
            response = session.post(
                url,
                data=body,
                headers=headers,
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.ConnectionError as exc:
            blocked = _blocked_cause(exc)
            if blocked is not None:
                raise blocked from exc
            raise
        response.close()
        return response.status_code


def _blocked_cause(exc: BaseException) -> BlockedAddressError | None:
    seen: BaseException | None = exc
    while seen is not None:
        for candidate in (seen, *getattr(seen, "args", ())):
            if isinstance(candidate, BlockedAddressError):
                return candidate
            reason = getattr(candidate, "reason", None)
            if isinstance(reason, BlockedAddressError):
                return reason
        seen = seen.__cause__ or seen.__context__
    return None
