"""Run coturn (Debian's ``turnserver``) with a configuration made from callscribe's settings.

For local use and tests: ``callscribe turn`` renders :func:`render_config` into a private temporary file and
runs ``turnserver -c`` on it. A public deployment uses ``deploy/coturn/turnserver.conf`` instead.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TURNSERVER = "turnserver"


class TurnError(Exception):
    """coturn is missing, misconfigured or failed to start (the CLI prints it as one line, like the
    :class:`server.errors.CallscribeError` family, without this package depending on ``server``)."""

    code = "turn_unavailable"


@dataclass
class CoturnConfig:
    """The options callscribe sets; everything else keeps coturn's defaults.

    ``allow_loopback_peers`` lets the relay reach a callscribe server on 127.0.0.1 (tests, one-box setups);
    coturn otherwise refuses such peers with ``403 Forbidden IP`` (coturn's turnserver.conf documentation,
    ``allow-loopback-peers``).
    """

    secret: str
    listening_ip: str = "127.0.0.1"
    port: int = 3478
    relay_ip: str | None = None
    min_port: int = 49160
    max_port: int = 49200
    realm: str = "callscribe"
    allow_loopback_peers: bool = False
    log_file: Path | None = None
    verbose: bool = False  # log each ALLOCATE / CREATE_PERMISSION / CHANNEL_BIND (proof that media was relayed)


def render_config(cfg: CoturnConfig) -> str:
    """turnserver.conf text for ``cfg``. Raises :class:`TurnError` when the secret is empty."""
    if not cfg.secret:
        raise TurnError("no TURN secret configured: set CALLSCRIBE_TURN_SECRET (the same value as coturn's "
                        "static-auth-secret)")
    lines = [
        f"listening-ip={cfg.listening_ip}",
        f"listening-port={cfg.port}",
        f"relay-ip={cfg.relay_ip or cfg.listening_ip}",
        f"min-port={cfg.min_port}",
        f"max-port={cfg.max_port}",
        f"realm={cfg.realm}",
        "use-auth-secret",
        f"static-auth-secret={cfg.secret}",
        "fingerprint",
        "no-cli",
        "no-tls",
        "no-dtls",
        "no-multicast-peers",
        "simple-log",
        f"log-file={cfg.log_file}" if cfg.log_file else "log-file=stdout",
    ]
    if cfg.allow_loopback_peers:
        lines.append("allow-loopback-peers")
    if cfg.verbose:
        lines.append("verbose")
    return "\n".join(lines) + "\n"


def turnserver_path() -> str:
    path = shutil.which(TURNSERVER)
    if path is None:
        raise TurnError("coturn is not installed: apt-get install coturn")
    return path


def start(cfg: CoturnConfig, prefix: Sequence[str] = (), **popen_kwargs) -> tuple[subprocess.Popen, Path]:
    """Start ``turnserver`` on a rendered configuration; returns the process and the config file path.

    ``prefix`` runs it through another command (tests use ``ip netns exec NAME``).

    The caller stops it (``terminate()`` then ``wait()``: coturn takes over a second to exit after SIGTERM).
    """
    binary = turnserver_path()
    conf_dir = Path(tempfile.mkdtemp(prefix="callscribe-turn-"))
    conf = conf_dir / "turnserver.conf"
    conf.touch(mode=0o600)  # it holds the shared secret
    conf.write_text(render_config(cfg))
    return subprocess.Popen([*prefix, binary, "-c", str(conf)], **popen_kwargs), conf


def wait_listening(proc: subprocess.Popen, log_file: Path, timeout_s: float = 15.0) -> None:
    """Wait until coturn logged that its listener is open (needs ``CoturnConfig.log_file``).

    Raises:
        TurnError: coturn exited or did not open its listener in time (its log is quoted).
    """
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log_file.read_text() if log_file.exists() else ""
        if "listener opened on" in text:
            return
        if proc.poll() is not None:
            raise TurnError(f"coturn exited ({proc.returncode}): {text[-1500:]}")
        time.sleep(0.2)
    raise TurnError(f"coturn did not open its listener within {timeout_s:g} s")
