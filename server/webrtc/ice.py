"""ICE configuration shared by every aiortc peer of the process (server peers and the Python client).

- :class:`IceServers` → ``RTCConfiguration(iceServers=[...])``. An empty list is passed explicitly:
  ``RTCConfiguration()`` without ``iceServers`` makes aiortc use Google's public STUN server
  (``RTCIceGatherer.getDefaultIceServers`` in ``aiortc/rtcicetransport.py``, aiortc 1.16). TURN credentials are minted
  per user by a function the composition root passes in (:func:`turn.credentials.ice_servers`), so this
  package does not depend on :mod:`turn`.
- ``Settings.ice_host_addresses`` restricts the local addresses ICE gathers host candidates on. aioice has no
  option for this and leaves loopback out (``aioice.ice.get_host_addresses``); the restriction replaces that
  module-level function for this process (a runtime hook, not an edit of the installed package), so a
  multi-homed host can pin ICE to one interface and sealed tests can run on 127.0.0.1 alone.
- :func:`use_loopback_when_alone` (serve time, when no addresses are configured): on a host whose only
  interface is loopback aioice finds no host address at all, so no candidate is gathered and calls from a
  browser on that same host never connect; with it, such a host offers 127.0.0.1 (``::1``) instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

_original_get_host_addresses = None


def rtc_configuration(ice_servers: Sequence[dict], relay_only: bool = False) -> RTCConfiguration:
    """Build aiortc's configuration; each dict has ``urls`` and optional ``username``/``credential``.

    aiortc uses only the first STUN and the first TURN URL it is given ("only a single TURN server is
    supported", ``connection_kwargs`` in ``aiortc/rtcicetransport.py``, aiortc 1.16). ``relay_only`` keeps relay
    candidates alone (``iceTransportPolicy: "relay"``), e.g. to force media through TURN.
    """
    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
               for s in ice_servers]
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


HostDiscovery = Callable[[bool, bool], list[str]]
"""``(use_ipv4, use_ipv6) → addresses``, the signature of ``aioice.ice.get_host_addresses``."""

TurnMinter = Callable[[str], list[dict]]
"""``user → RTCIceServer dicts`` with fresh time-limited TURN credentials for that user."""


class IceServers:
    """The ICE servers handed to every peer: the configured ones plus, when a TURN minter is given, TURN URLs
    with credentials minted for the peer's user name.

    Args:
        static: ``RTCIceServer`` dicts used as they are (``Settings.ice_servers``).
        turn: the TURN minter, or None when no TURN relay is configured.
    """

    def __init__(self, static: Sequence[dict] = (), turn: TurnMinter | None = None) -> None:
        self.static = list(static)
        self.turn = turn

    def for_user(self, user: str) -> list[dict]:
        """The servers for ``user`` (credentials minted now)."""
        return self.static + (self.turn(user) if self.turn is not None else [])


def restrict_host_addresses(addresses: Sequence[str] | None) -> None:
    """Gather ICE host candidates only on ``addresses`` (None restores aioice's own discovery).

    Raises:
        ValueError: an entry is not an IP address.
    """
    import aioice.ice

    global _original_get_host_addresses
    if _original_get_host_addresses is None:
        _original_get_host_addresses = aioice.ice.get_host_addresses
    if addresses is None:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        return
    parsed = [ipaddress.ip_address(a) for a in addresses]

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [str(a) for a in parsed if (a.version == 4 and use_ipv4) or (a.version == 6 and use_ipv6)]

    aioice.ice.get_host_addresses = get_host_addresses


def with_loopback_fallback(discover: HostDiscovery) -> HostDiscovery:
    """``discover``, but answering loopback (127.0.0.1 / ::1, as asked) when it finds no address at all."""

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        found = list(discover(use_ipv4, use_ipv6))
        if found:
            return found
        return [a for a, wanted in (("127.0.0.1", use_ipv4), ("::1", use_ipv6)) if wanted]

    return get_host_addresses


def use_loopback_when_alone(discover: HostDiscovery | None = None) -> HostDiscovery:
    """Make ICE gather loopback host candidates when ``discover`` (default: aioice's own discovery, asked at
    every gathering) finds no other address; installs it for this process and returns the installed function.

    For ``callscribe serve`` when ``Settings.ice_host_addresses`` is None (an explicit list is exact:
    :func:`restrict_host_addresses`); ``restrict_host_addresses(None)`` undoes it.
    """
    import aioice.ice

    global _original_get_host_addresses
    if _original_get_host_addresses is None:
        _original_get_host_addresses = aioice.ice.get_host_addresses
    installed = with_loopback_fallback(discover or _original_get_host_addresses)
    aioice.ice.get_host_addresses = installed
    return installed


def configure_host_addresses(addresses: Sequence[str] | None) -> None:
    """The host-candidate policy of a process from ``Settings.ice_host_addresses``: exactly ``addresses`` when
    given (:func:`restrict_host_addresses`), else aioice's own discovery with the loopback fallback
    (:func:`use_loopback_when_alone`), so a host whose only interface is loopback can still take calls.

    Raises:
        ValueError: an entry is not an IP address.
    """
    if addresses is not None:
        restrict_host_addresses(addresses)
    else:
        use_loopback_when_alone()
