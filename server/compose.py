"""The composition root: the one place that wires the layers together.

The CLI (:mod:`server.cli`) and the tests build the server through these functions; below this module no
package reaches sideways (``server`` never imports :mod:`turn`, and ``turn`` never imports ``server``; the
import-linter contracts in ``pyproject.toml`` hold every other package to its layer).
"""

from __future__ import annotations

import functools

from aiohttp import web

from turn import credentials

from .compute.runtime import SpeechRuntime
from .compute.workpool import JobObserver
from .errors import CallscribeError
from .rooms.hub import RoomHub
from .rooms.memory import MemoryRoomHub
from .settings import Settings
from .speaker.clusters import AnonymousSpeakers
from .stream.processor import StreamObserver
from .webrtc.ice import IceServers


def build_runtime(settings: Settings, *, load_asr: bool = True, observer: JobObserver | None = None) -> SpeechRuntime:
    """The speech runtime with the real models and the SQLite profile store.

    Raises:
        ModelError, StoreError: a model or the database cannot be loaded.
    """
    return SpeechRuntime.from_settings(settings, load_asr=load_asr, observer=observer)


def ice_servers(settings: Settings) -> IceServers:
    """The configured ICE servers, plus coturn credentials minted per user when TURN URLs are set.

    Raises:
        CallscribeError: TURN URLs are configured without a secret.
    """
    turn = None
    if settings.turn_urls:
        if not settings.turn_secret:
            raise CallscribeError("CALLSCRIBE_TURN_URLS is set but CALLSCRIBE_TURN_SECRET is not")
        turn = functools.partial(_mint, settings.turn_urls, settings.turn_secret, settings.turn_ttl_s)
    return IceServers(settings.ice_servers, turn)


def _mint(urls: list[str], secret: str, ttl_s: float, user: str) -> list[dict]:
    return credentials.ice_servers(urls, secret, user, ttl_s)


def create_app(runtime: SpeechRuntime, settings: Settings | None = None, *, ice: IceServers | None = None,
               rooms: RoomHub | None = None, observer: StreamObserver | None = None) -> web.Application:
    """The signaling app over ``runtime`` with its collaborators: ``ice`` (default: :func:`ice_servers` of
    ``settings``, itself defaulting to the runtime's), the in-process room hub (:func:`room_hub`) unless another
    is given, and an
    optional stream observer."""
    from signaling.app import build_app

    settings = settings or runtime.settings
    return build_app(runtime, settings, ice=ice or ice_servers(settings), rooms=rooms or room_hub(settings),
                     observer=observer)


def room_hub(settings: Settings) -> MemoryRoomHub:
    """The in-process room hub; each room clusters anonymous speakers with the configured thresholds (or not
    at all when ``Settings.anonymous_speakers`` is off)."""
    return MemoryRoomHub(lambda: AnonymousSpeakers.from_settings(settings) if settings.anonymous_speakers else None)
