"""``callscribe serve`` as an operator runs it: a real process, TLS with a certificate, clear errors."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    return tmp_path / "cert.pem", tmp_path / "key.pem"


@pytest.fixture
def env(tmp_path, model_cache):
    inherited = {k: v for k, v in os.environ.items()
                 if k not in ("CALLSCRIBE_API_KEY", "CALLSCRIBE_TOKEN_SECRET", "CALLSCRIBE_INSECURE_NO_AUTH")}
    return {**inherited, "CALLSCRIBE_DATABASE": str(tmp_path / "p.sqlite3"),
            "CALLSCRIBE_MODEL_CACHE_DIR": str(model_cache)}


def test_serve_over_tls(tmp_path, env):
    cert, key = self_signed(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--cert", str(cert),
                             "--key", str(key), "--ice-host", "127.0.0.1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ctx = ssl.create_default_context(cafile=str(cert))
    try:
        body = None
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"https://localhost:{port}/readyz", context=ctx, timeout=2) as r:
                    body = r.read().decode()
                    break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
        assert body is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert '"ready": true' in body
        with pytest.raises(OSError):  # plain http on the TLS port is refused
            urllib.request.urlopen(f"http://localhost:{port}/healthz", timeout=2).read()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert f"serving on https://127.0.0.1:{port}/" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("args,message", [
    (["--cert", "/nonexistent/cert.pem"], "--cert and --key go together"),
    (["--cert", "/nonexistent/cert.pem", "--key", "/nonexistent/key.pem"], "cannot load the TLS certificate"),
    (["--ice-host", "not-an-ip"], "not-an-ip"),
])
def test_serve_configuration_errors(env, args, message):
    proc = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--port", str(free_port()), *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr


# --- access control: an open server is refused on any address but loopback ----------------------------------------
# These runs bind nothing and send nothing: the check comes before the models load and before the socket opens.
@pytest.mark.parametrize("args,message", [
    (["--host", "0.0.0.0"], "refusing to serve 0.0.0.0 without access control"),
    (["--host", "::"], "refusing to serve :: without access control"),
    (["--host", "0.0.0.0", "--api-key", "too-short"], "the API key is too short"),
])
def test_serve_refuses_a_reachable_address_without_a_key(env, args, message):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--port", str(free_port()), *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    if "refusing" in message:
        assert "CALLSCRIBE_API_KEY" in proc.stderr and "--insecure-no-auth" in proc.stderr
    assert "serving on" not in proc.stdout
    assert time.monotonic() - started < 60  # refused up front, not after loading models


def test_insecure_no_auth_passes_the_check_loudly(env):
    """With --insecure-no-auth the server goes on (stopped as soon as it has said so, before it binds)."""
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--host", "0.0.0.0", "--port",
                             str(free_port()), "--insecure-no-auth"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert "WARNING" in first and "NO ACCESS CONTROL" in first and "0.0.0.0" in first
