"""``callscribe serve`` as a real process on loopback, for tests that kill it (SIGKILL) or restart it.

:func:`start_serve` runs ``python -m server.cli serve --port PORT --ice-host 127.0.0.1 [ARGS…]`` with ``env``
and returns the process once ``GET /readyz`` answers 200 (a bounded wait: the models load in well under a
minute); a process that exits first fails the test with the end of its stderr.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request


def start_serve(env: dict, port: int, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port),
                             "--ice-host", "127.0.0.1", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    for _ in range(240):
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("serve did not become ready")
