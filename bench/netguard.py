"""Keep a benchmark process off the network: refuse connects, datagrams and name lookups (standard library only, so
a peer's own virtual environment can use it too, as ``bench/peer_whisperlive.py``'s WhisperLive server does)."""

from __future__ import annotations

import socket

NET_ATTEMPTS: list[str] = []
"""Every refused connect / sendto / name lookup of this process, as ``"what address"``."""

_LOOPBACK = {"127.0.0.1", b"127.0.0.1"}


def _refused(what: str, report) -> None:
    NET_ATTEMPTS.append(what)
    if report is not None:
        report(what)


def _is_loopback(address) -> bool:
    return isinstance(address, tuple) and len(address) >= 2 and address[0] in _LOOPBACK


def guard_network(script: str, allow_loopback: bool = False, report=None) -> None:
    """Refuse IP connects, datagram sends and name lookups of this process and record each in NET_ATTEMPTS.

    ``allow_loopback``: 127.0.0.1 (address or name) stays reachable; otherwise every IP address is refused.
    Unix sockets are never affected. ``script`` names the caller in the error messages; ``report``, if given, is
    also called with each refusal's ``"what address"``.
    """
    real_connect, real_connect_ex, real_sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def _check(sock, address, what):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not (allow_loopback and _is_loopback(address)):
            _refused(f"{what} {address!r}", report)
            if allow_loopback:
                raise OSError(f"{script}: only 127.0.0.1 may be contacted, not {address!r}")
            raise OSError(f"network access is disabled in {script}")

    def connect(self, address):
        _check(self, address, "connect")
        return real_connect(self, address)

    def connect_ex(self, address):
        _check(self, address, "connect")
        return real_connect_ex(self, address)

    def sendto(self, data, *args):
        _check(self, args[-1], "sendto")
        return real_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        if allow_loopback and host in _LOOPBACK:
            return real_getaddrinfo(host, *args, **kwargs)
        _refused(f"getaddrinfo {host!r}", report)
        if allow_loopback:
            raise socket.gaierror(f"{script}: no name lookups ({host!r})")
        raise socket.gaierror(f"network access is disabled in {script}")

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.sendto = sendto
    socket.getaddrinfo = getaddrinfo
