"""ICE configuration shared by every aiortc peer of the process (server peers and the Python client).

- ``Settings.ice_servers`` → ``RTCConfiguration(iceServers=[...])``. An empty list is passed explicitly:
  ``RTCConfiguration()`` without ``iceServers`` makes aiortc contact a public STUN server (notes/webrtc.md).
- ``Settings.ice_host_addresses`` restricts the local addresses ICE gathers host candidates on. aioice has no
  option for this and leaves loopback out (``aioice.ice.get_host_addresses``); the restriction replaces that
  module-level function for this process (a runtime hook, not an edit of the installed package), so a
  multi-homed host can pin ICE to one interface and sealed tests can run on 127.0.0.1 alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from .settings import Settings

_original_get_host_addresses = None


def rtc_configuration(ice_servers: Sequence[dict], relay_only: bool = False) -> RTCConfiguration:
    """Build aiortc's configuration; each dict has ``urls`` and optional ``username``/``credential``.

    aiortc uses only the first TURN URL of each server (notes/webrtc.md). ``relay_only`` keeps relay
    candidates alone (``iceTransportPolicy: "relay"``), e.g. to force media through TURN.
    """
    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
               for s in ice_servers]
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


def ice_servers_for(settings: Settings, user: str) -> list[dict]:
    """The configured ICE servers plus the TURN URLs with credentials minted now for ``user``.

    Raises:
        ValueError: TURN URLs are configured without a secret.
    """
    servers = list(settings.ice_servers)
    if settings.turn_urls:
        from turn.credentials import ice_servers

        if not settings.turn_secret:
            raise ValueError("CALLSCRIBE_TURN_URLS is set but CALLSCRIBE_TURN_SECRET is not")
        servers += ice_servers(settings.turn_urls, settings.turn_secret, user, settings.turn_ttl_s)
    return servers


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
