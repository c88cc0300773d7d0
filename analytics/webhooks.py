"""Outbound webhooks (alert rules, requeue notices) that cannot be aimed at our own network.

A webhook URL is typed by a project member, so without a guard the server would POST wherever it
is told: loopback admin ports, the cloud metadata service, hosts of the private network. The
address is checked when the connection is made, on the address actually dialled (a name that
resolves to a public address at save time and a private one later is still refused), redirects
are never followed, the answer's body is never read, and the whole call (connect, send, the
answer's headers) must end within one deadline, however slowly the receiver trickles bytes.
"""

from __future__ import annotations

import contextvars
import ipaddress
import socket
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Policy:
    deadline: float  # time.monotonic() by which the call must be over
    allow_private: bool


# Set by post() for the connections it opens: they are made in its own thread.
_policy: contextvars.ContextVar[_Policy] = contextvars.ContextVar("webhook_policy")


class DeadlineExceededError(TimeoutError):
    """The webhook call took longer than its total deadline. A socket timeout, so urllib3 and
    requests report it as a read timeout (requests.Timeout)."""


class _DeadlineSocket:
    """A connected socket whose every read and write must end by one deadline: a per-read
    timeout alone lets a receiver that sends a byte every few seconds hold the worker for ever."""

    def __init__(self, sock: Any, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def _arm(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceededError("the webhook did not answer within its deadline")
        timeout = self._sock.gettimeout()
        self._sock.settimeout(remaining if timeout is None else min(timeout, remaining))

    def recv_into(self, buffer: Any, *args: Any) -> int:
        self._arm()
        return int(self._sock.recv_into(buffer, *args))

    def recv(self, *args: Any) -> bytes:
        self._arm()
        return bytes(self._sock.recv(*args))

    def send(self, data: Any, *args: Any) -> int:
        self._arm()
        return int(self._sock.send(data, *args))

    def sendall(self, data: Any, *args: Any) -> None:
        self._arm()
        self._sock.sendall(data, *args)

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        # http.client reads the answer through this file: its reads must come through _arm.
        # Not a socket subclass (it wraps one), and `mode` is a plain str: hence call-overload.
        return socket.socket.makefile(self, mode, *args, **kwargs)  # type: ignore[call-overload]


class _GuardedConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        if not _policy.get().allow_private:
            self._dns_host = _vetted_address(self._dns_host, self.port)
        return super()._new_conn()

    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock, _policy.get().deadline)


class _GuardedHTTPSConnection(urllib3.connection.HTTPSConnection):
    # TLS still checks the certificate against the name (self.host), not the dialled address.
    def _new_conn(self) -> socket.socket:
        if not _policy.get().allow_private:
            self._dns_host = _vetted_address(self._dns_host, self.port)
        return super()._new_conn()

    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock, _policy.get().deadline)


class _GuardedPool(HTTPConnectionPool):
    ConnectionCls = _GuardedConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedPool, "https": _GuardedHTTPSPool}


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    allow_private: bool,
    deadline: float | None = None,
) -> int:
    """POST and return the status code. `timeout` bounds each connect and read; `deadline`
    (seconds, default 2 x timeout) bounds the whole call. Raises BlockedAddressError, requests
    exceptions (requests.Timeout when past the deadline) or ValueError (a URL that is not http(s)).
    The answer's body is not read."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("a webhook URL starts with http:// or https://")
    total = 2 * timeout if deadline is None else deadline
    token = _policy.set(_Policy(time.monotonic() + total, allow_private))
    try:
        with requests.Session() as session:
            session.trust_env = False  # no proxy from the environment: it would dial for us
            session.mount("http://", _GuardedAdapter())
            session.mount("https://", _GuardedAdapter())
            response = session.post(
                url,
                data=body,
                headers=headers,
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
            )
            response.close()
            return response.status_code
    except requests.ConnectionError as exc:
        blocked = _blocked_cause(exc)
        if blocked is not None:
            raise blocked from exc
        raise
    finally:
        _policy.reset(token)


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
