"""ICE host addresses: the loopback fallback for hosts whose only interface is loopback."""

from __future__ import annotations

import asyncio

import aioice.ice

from server.webrtc import ice


def test_loopback_only_when_discovery_finds_nothing():
    calls = []

    def nothing(use_ipv4, use_ipv6):
        calls.append((use_ipv4, use_ipv6))
        return []

    fallback = ice.with_loopback_fallback(nothing)
    assert fallback(True, False) == ["127.0.0.1"]
    assert fallback(True, True) == ["127.0.0.1", "::1"]
    assert fallback(False, True) == ["::1"]
    assert calls == [(True, False), (True, True), (False, True)]  # asked every time (interfaces change)


def test_real_addresses_are_kept_as_they_are():
    fallback = ice.with_loopback_fallback(lambda v4, v6: ["192.0.2.10"] + (["2001:db8::1"] if v6 else []))
    assert fallback(True, False) == ["192.0.2.10"]
    assert fallback(True, True) == ["192.0.2.10", "2001:db8::1"]


def test_installed_for_aioice_and_undone():
    original = aioice.ice.get_host_addresses
    try:
        installed = ice.use_loopback_when_alone(lambda v4, v6: [])
        assert aioice.ice.get_host_addresses is installed
        # what aioice's gathering now sees: a loopback host candidate instead of none
        conn = aioice.ice.Connection(ice_controlling=True, use_ipv6=False)
        assert [c.host for c in asyncio.run(_gather(conn))] == ["127.0.0.1"]
    finally:
        ice.restrict_host_addresses(None)
    assert aioice.ice.get_host_addresses is original


async def _gather(conn):
    try:
        await conn.gather_candidates()
        return list(conn.local_candidates)
    finally:
        await conn.close()
