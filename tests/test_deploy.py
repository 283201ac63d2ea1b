"""deploy/: the operator's configurations, checked by the tools that read them.

- nginx (``deploy/nginx/callscribe.conf``): ``nginx -t`` on the site as written (certificate and log paths
  moved to a temporary folder), then a real nginx on loopback ports in front of a stub backend: redirect,
  proxy headers, security headers, body limits, the /metrics allowlist.
- systemd (``deploy/systemd/``): ``systemd-analyze verify`` on the unit and on Debian's coturn.service with
  our drop-in, plus the settings the unit and the env example must carry (the env example against
  :class:`server.settings.Settings`).
- coturn (``deploy/coturn/turnserver.conf``): ``turnserver`` started on loopback with the file (placeholders
  and listeners replaced), then STUN/TURN requests: time-limited credentials made with the shared secret are
  accepted, wrong ones refused, private peers denied and the allowed peer permitted.

Tools that are not installed skip their tests, saying which Debian package provides them. Nothing binds a
non-loopback address and nothing outside is contacted.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SITE = DEPLOY / "nginx" / "callscribe.conf"
UNIT = DEPLOY / "systemd" / "callscribe.service"
ENV_EXAMPLE = DEPLOY / "systemd" / "callscribe.env.example"
COTURN_DROPIN = DEPLOY / "systemd" / "coturn.service.d" / "callscribe.conf"
TURNSERVER_CONF = DEPLOY / "coturn" / "turnserver.conf"
HOSTNAME = "callscribe.example.org"


def tool(name: str, package: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip(f"{name} is not installed (Debian package: {package})")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(folder: Path, hostname: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def replace(text: str, old: str, new: str) -> str:
    """``text.replace`` that fails the test when the deploy file no longer contains ``old``."""
    assert old in text, f"expected {old!r} in the deploy file"
    return text.replace(old, new)


# --- nginx ---------------------------------------------------------------------------------------------

def nginx_site(tmp_path: Path, *, backend_port: int | None = None, http_port: int | None = None,
               https_port: int | None = None) -> Path:
    """The site file with certificate, log and webroot paths in ``tmp_path``; ports replaced when given."""
    cert, key = self_signed(tmp_path / "tls", HOSTNAME)
    text = SITE.read_text()
    text = replace(text, f"/etc/letsencrypt/live/{HOSTNAME}/fullchain.pem", str(cert))
    text = replace(text, f"/etc/letsencrypt/live/{HOSTNAME}/privkey.pem", str(key))
    text = replace(text, "/var/log/nginx/", f"{tmp_path}/")
    text = replace(text, "/var/www/certbot", str(tmp_path / "webroot"))
    if backend_port is not None:
        text = replace(text, "server 127.0.0.1:8080;", f"server 127.0.0.1:{backend_port};")
    if http_port is not None:
        text = replace(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
        text = replace(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
        text = re.sub(r"^\s*listen \[::\].*$", "", text, flags=re.M)  # loopback only
    site = tmp_path / "callscribe.conf"
    site.write_text(text)
    return site


def nginx_main_conf(tmp_path: Path, site: Path) -> Path:
    """A minimal nginx.conf that includes the site like Debian's sites-enabled/, everything in tmp_path."""
    temp = "\n".join(f"    {kind}_temp_path {tmp_path}/{kind}_temp;" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
events {{ worker_connections 64; }}
http {{
{temp}
    access_log {tmp_path}/access.log;
    include {site};
}}
""")
    return conf


def nginx_globals(tmp_path: Path) -> str:
    return f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log info;"


def test_nginx_site_passes_nginx_t(tmp_path):
    """``nginx -t`` accepts the site as written (listen 80/443 and [::]), only the files moved to tmp."""
    nginx = tool("nginx", "nginx-light")
    conf = nginx_main_conf(tmp_path, nginx_site(tmp_path))
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf),
                             "-g", nginx_globals(tmp_path)], capture_output=True, text=True, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "syntax is ok" in output and "test is successful" in output, output
    assert "[warn]" not in output and "[emerg]" not in output, output


def test_cluster_locations_pass_nginx_t_inside_the_site(tmp_path):
    """``nginx -t`` accepts deploy/cluster/nginx-nodes.conf included in the HTTPS server block, as its header says."""
    nginx = tool("nginx", "nginx-light")
    site = nginx_site(tmp_path)
    nodes = Path(__file__).resolve().parents[1] / "deploy" / "cluster" / "nginx-nodes.conf"
    text = site.read_text()
    last = text.rindex("    location / {")
    site.write_text(text[:last] + f"    include {nodes};\n\n" + text[last:])
    conf = nginx_main_conf(tmp_path, site)
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf),
                             "-g", nginx_globals(tmp_path)], capture_output=True, text=True, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[warn]" not in output and "[emerg]" not in output, output


class _Backend(http.server.BaseHTTPRequestHandler):
    """Stands in for `callscribe serve`: answers every request with what it received, as JSON."""

    seen: ClassVar[list[dict]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        remaining = length
        while remaining:
            remaining -= len(self.rfile.read(min(remaining, 1 << 20)))
        record = {"method": self.command, "path": self.path, "length": length,
                  "headers": {k.lower(): v for k, v in self.headers.items()}}
        self.seen.append(record)
        body = json.dumps(record).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def proxy(tmp_path):
    """A real nginx with the site on loopback ports, in front of the stub backend."""
    nginx = tool("nginx", "nginx-light")
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    _Backend.seen = []
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    http_port, https_port = free_port(), free_port()
    site = nginx_site(tmp_path, backend_port=backend.server_address[1], http_port=http_port, https_port=https_port)
    conf = nginx_main_conf(tmp_path, site)
    # master_process off: one process, as the user running the test, so the temp folders stay writable
    proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf),
                             "-g", nginx_globals(tmp_path) + " daemon off; master_process off;"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (tmp_path / "error.log").read_text() if (tmp_path / "error.log").exists() else ""
                    pytest.fail(f"nginx did not start: {proc.poll()=}\n{log}")
                time.sleep(0.1)
        yield {"http": http_port, "https": https_port, "cert": tmp_path / "tls" / "cert.pem", "seen": _Backend.seen}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        backend.shutdown()
        backend.server_close()


def https_request(proxy, method: str, path: str, body: bytes | None = None, *, source: str = "127.0.0.1",
                  max_tls: ssl.TLSVersion | None = None) -> tuple[int, dict, bytes]:
    ctx = ssl.create_default_context(cafile=str(proxy["cert"]))
    ctx.check_hostname = False  # connecting to 127.0.0.1; the certificate is still verified
    if max_tls is not None:
        ctx.maximum_version = max_tls
    conn = http.client.HTTPSConnection("127.0.0.1", proxy["https"], context=ctx, timeout=30,
                                       source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers={"Host": HOSTNAME})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_nginx_redirects_http_to_https(proxy):
    conn = http.client.HTTPConnection("127.0.0.1", proxy["http"], timeout=10)
    conn.request("GET", "/room/abc?x=1", headers={"Host": HOSTNAME})
    response = conn.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"https://{HOSTNAME}/room/abc?x=1"
    assert proxy["seen"] == []  # plain HTTP never reaches the server


@pytest.mark.parametrize("max_tls", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_nginx_proxies_with_forwarded_and_security_headers(proxy, max_tls):
    status, headers, body = https_request(proxy, "GET", "/readyz", max_tls=max_tls)
    assert status == 200
    seen = json.loads(body)
    assert seen["path"] == "/readyz"
    assert seen["headers"]["host"] == HOSTNAME
    assert seen["headers"]["x-forwarded-proto"] == "https"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["x-content-type-options"] == "nosniff"
    assert "microphone=(self)" in headers["permissions-policy"]


def test_nginx_body_limits(proxy):
    """Voice uploads up to the server's 20 MiB (+ multipart overhead) pass; other API bodies stay small."""
    status, _, body = https_request(proxy, "POST", "/api/profiles", b"\0" * (20 * 1024 * 1024 + 512 * 1024))
    assert status == 200
    assert json.loads(body)["length"] == 20 * 1024 * 1024 + 512 * 1024
    status, _, _ = https_request(proxy, "POST", "/api/profiles", b"\0" * (22 * 1024 * 1024))
    assert status == 413
    status, _, _ = https_request(proxy, "POST", "/api/offer", b"{}" * (64 * 1024))  # an SDP offer is <= 64 KiB
    assert status == 200
    status, headers, _ = https_request(proxy, "POST", "/api/offer", b"\0" * (2 * 1024 * 1024))
    assert status == 413
    assert "strict-transport-security" in headers  # "always": error pages carry the headers too
    status, _, _ = https_request(proxy, "POST", "/api/identify/batch", b"\0" * (20 * 1024 * 1024))  # uploads too
    assert status == 200
    assert [r["path"] for r in proxy["seen"]] == ["/api/profiles", "/api/offer", "/api/identify/batch"]


def test_nginx_metrics_only_from_the_allowlist(proxy):
    status, _, body = https_request(proxy, "GET", "/metrics")
    assert status == 200 and json.loads(body)["path"] == "/metrics"
    # 127.0.0.2 is a loopback address too, but not on the allowlist: what any other client sees
    status, _, _ = https_request(proxy, "GET", "/metrics", source="127.0.0.2")
    assert status == 403
    status, _, _ = https_request(proxy, "GET", "/healthz", source="127.0.0.2")
    assert status == 200
    assert [r["path"] for r in proxy["seen"]] == ["/metrics", "/healthz"]


# --- systemd -------------------------------------------------------------------------------------------

def unit_entries(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd unit file → {section: {key: [values, in order]}} (keys may repeat, unlike configparser)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def env_example() -> dict[str, str]:
    """Every CALLSCRIBE_* line of the env example, commented-out examples included, unquoted like systemd."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"#?(CALLSCRIBE_[A-Z0-9_]+)=(.*)", line.strip())
        if match:
            value = match[2]
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            values[match[1]] = value
    return values


def systemd_verify(unit: Path, unit_path: Path | None = None) -> str:
    analyze = tool("systemd-analyze", "systemd")
    env = {**os.environ, "SYSTEMD_LOG_COLOR": "0"}
    if unit_path is not None:
        env["SYSTEMD_UNIT_PATH"] = f"{unit_path}:"  # trailing colon: and the default search path
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, env=env, timeout=60)
    return result.stdout + result.stderr + (f"\nexit status {result.returncode}" if result.returncode else "")


def test_callscribe_unit_passes_systemd_analyze_verify(tmp_path):
    """``systemd-analyze verify``: no unknown keys or bad values; ExecStart points at a stand-in binary."""
    fake = tmp_path / "callscribe"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    unit = tmp_path / "callscribe.service"
    unit.write_text(replace(UNIT.read_text(), "ExecStart=/opt/callscribe/.venv/bin/callscribe serve",
                            f"ExecStart={fake} serve"))
    output = systemd_verify(unit)
    ours = [line for line in output.splitlines() if "callscribe" in line or "exit status" in line]
    assert not ours, output


WORKER_UNIT = DEPLOY / "cluster" / "callscribe-worker@.service"


def test_worker_template_passes_systemd_analyze_verify_and_its_command_parses(tmp_path):
    """The worker template, instantiated as ``callscribe-worker@2``: ``systemd-analyze verify`` is clean, and its
    ExecStart (``%H``, ``%i`` expanded) is a command line the real ``callscribe`` parser accepts."""
    from server.cli import build_parser

    fake = tmp_path / "callscribe"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    (units / WORKER_UNIT.name).write_text(replace(WORKER_UNIT.read_text(), "ExecStart=/opt/callscribe/.venv/bin/"
                                                  "callscribe worker", f"ExecStart={fake} worker"))
    output = systemd_verify(Path("callscribe-worker@2.service"), units)
    ours = [line for line in output.splitlines() if "callscribe" in line or "exit status" in line]
    assert not ours, output
    service = unit_entries(WORKER_UNIT)["Service"]
    command = service["ExecStart"][-1].replace("%H", "host1").replace("%i", "2").split()
    assert command[0] == "/opt/callscribe/.venv/bin/callscribe"
    args = build_parser().parse_args(command[1:])
    assert (args.command, args.node_id) == ("worker", "host1/worker-2")
    # the node's hardening and the same settings file
    node = {key: values[-1] for key, values in unit_entries(UNIT)["Service"].items()}
    for key in ("EnvironmentFile", "User", "ProtectSystem", "NoNewPrivileges", "ReadWritePaths", "StateDirectory",
                "CacheDirectory", "SystemCallFilter", "CapabilityBoundingSet"):
        assert service[key][-1] == node[key], key


def test_callscribe_unit_settings():
    service = unit_entries(UNIT)["Service"]
    one = {key: values[-1] for key, values in service.items()}
    assert one["ExecStart"] == "/opt/callscribe/.venv/bin/callscribe serve"
    assert one["User"] == one["Group"] == "callscribe"
    assert one["EnvironmentFile"] == "/etc/callscribe/callscribe.env"
    assert one["Restart"] == "on-failure"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                       "ProtectHome": "yes", "CapabilityBoundingSet": ""}.items():
        assert one[key] == value, key
    writable = one["ReadWritePaths"].split()
    env = env_example()
    # the database and the model cache of the env example are writable despite ProtectSystem=strict
    for setting in ("CALLSCRIBE_DATABASE", "CALLSCRIBE_MODEL_CACHE_DIR"):
        assert any(Path(env[setting]).is_relative_to(p) for p in writable), setting
    assert "/var/lib/callscribe" in writable and one["StateDirectory"] == "callscribe"
    assert "/var/cache/callscribe" in writable and one["CacheDirectory"] == "callscribe"
    assert unit_entries(UNIT)["Install"]["WantedBy"] == ["multi-user.target"]


def test_env_example_names_real_settings_with_valid_values(monkeypatch, tmp_path):
    from server.settings import Settings

    env = env_example()
    for name in ("HOST", "PORT", "API_KEY", "DATABASE", "MODEL_CACHE_DIR", "MAX_PEERS", "ICE_SERVERS",
                 "ICE_HOST_ADDRESSES", "TURN_URLS", "TURN_SECRET", "TURN_TTL_S"):
        assert f"CALLSCRIBE_{name}" in env, name
    unknown = [k for k in env if k.removeprefix("CALLSCRIBE_").lower() not in Settings.model_fields]
    assert not unknown, f"not settings of server/settings.py: {unknown}"
    for key in [k for k in os.environ if k.startswith("CALLSCRIBE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # every value, the commented examples included, parses and validates
    assert settings.host == "127.0.0.1" and settings.port == 8080  # behind nginx, loopback only
    assert settings.turn_urls and all(url.startswith(("turn:", "turns:")) for url in settings.turn_urls)
    assert settings.ice_host_addresses == ["203.0.113.10"]


def test_coturn_dropin_passes_systemd_analyze_verify(tmp_path):
    """Debian's coturn.service with our drop-in: systemd reads the drop-in without complaint."""
    debian_unit = Path("/lib/systemd/system/coturn.service")
    if not debian_unit.is_file():
        pytest.skip("Debian's coturn.service is not installed (Debian package: coturn)")
    units = tmp_path / "units"
    (units / "coturn.service.d").mkdir(parents=True)
    shutil.copy(debian_unit, units / "coturn.service")
    shutil.copy(COTURN_DROPIN, units / "coturn.service.d" / "callscribe.conf")
    output = systemd_verify(units / "coturn.service", units)
    ours = [line for line in output.splitlines() if "callscribe.conf" in line or "exit status" in line]
    assert not ours, output
    assert unit_entries(COTURN_DROPIN)["Service"]["LimitNOFILE"] == ["65536"]


# --- coturn --------------------------------------------------------------------------------------------

MAGIC = 0x2112A442
SECRET = "test-only-shared-secret"
PRIVATE_PEER, ALLOWED_PEER = "10.1.2.3", "198.51.100.20"  # the latter is the allowed-peer-ip placeholder


def stun_attrs(message: bytes) -> dict[int, bytes]:
    attrs, pos = {}, 20
    while pos + 4 <= len(message):
        kind, length = struct.unpack_from("!HH", message, pos)
        attrs.setdefault(kind, message[pos + 4:pos + 4 + length])
        pos += 4 + length + (-length % 4)
    return attrs


def stun_request(sock: socket.socket, method: int, attrs: list[tuple[int, bytes]],
                 key: bytes | None = None) -> tuple[int, dict[int, bytes]]:
    """Send one STUN request (with MESSAGE-INTEGRITY when ``key``) and return (message type, attributes)."""
    txid = os.urandom(12)
    body = b"".join(struct.pack("!HH", k, len(v)) + v + b"\0" * (-len(v) % 4) for k, v in attrs)
    if key is not None:
        header = struct.pack("!HHI", method, len(body) + 24, MAGIC) + txid
        body += struct.pack("!HH", 0x0008, 20) + hmac.new(key, header + body, hashlib.sha1).digest()
    sock.send(struct.pack("!HHI", method, len(body), MAGIC) + txid + body)
    while True:
        reply = sock.recv(4096)
        if reply[8:20] == txid:
            return struct.unpack_from("!H", reply)[0], stun_attrs(reply)


def error_code(attrs: dict[int, bytes]) -> int:
    value = attrs[0x0009]
    return value[2] * 100 + value[3]


def xor_address(ip: str, port: int = 0) -> bytes:
    xored = struct.unpack("!I", socket.inet_aton(ip))[0] ^ MAGIC
    return struct.pack("!BBHI", 0, 1, port ^ (MAGIC >> 16), xored)  # XOR-PEER-ADDRESS, IPv4


@pytest.fixture
def coturn(tmp_path):
    """turnserver with deploy/coturn/turnserver.conf, on 127.0.0.1 only, files in tmp_path."""
    turnserver = tool("turnserver", "coturn")
    cert, key = self_signed(tmp_path / "tls", "turn.example.org")
    port, tls_port = free_port(socket.SOCK_DGRAM), free_port()
    text = TURNSERVER_CONF.read_text()
    text = replace(text, "\nlistening-port=3478\n", f"\nlistening-port={port}\n")
    text = replace(text, "\ntls-listening-port=5349\n", f"\ntls-listening-port={tls_port}\n")
    text = replace(text, "\nstatic-auth-secret=CHANGE_ME_SECRET\n", f"\nstatic-auth-secret={SECRET}\n")
    text = replace(text, "\ncert=/etc/coturn/certs/turn.example.org.fullchain.pem\n", f"\ncert={cert}\n")
    text = replace(text, "\npkey=/etc/coturn/certs/turn.example.org.privkey.pem\n", f"\npkey={key}\n")
    text = replace(text, "\nsyslog\n", f"\nlog-file={tmp_path}/turn.log\nsimple-log\n")
    text += (f"\n# test only: loopback, private files\nlistening-ip=127.0.0.1\nrelay-ip=127.0.0.1\n"
             f"pidfile={tmp_path}/turn.pid\nuserdb={tmp_path}/turndb\n")
    conf = tmp_path / "turnserver.conf"
    conf.write_text(text)
    proc = subprocess.Popen([turnserver, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.5)
    try:
        deadline = time.monotonic() + 10
        while True:  # wait for a STUN Binding success
            try:
                if stun_request(sock, 0x0001, [])[0] == 0x0101:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"turnserver did not answer: {proc.poll()=}\n{(tmp_path / 'turn.log').read_text()}")
        sock.settimeout(5)
        yield sock, tmp_path / "turn.log"
    finally:
        sock.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_turnserver_reads_the_config_without_complaint(coturn):
    _, log = coturn
    text = log.read_text()
    assert "Default realm: turn.example.org" in text
    assert "Certificate file found" in text and "Private key file found" in text  # TLS listener configured
    assert "White listing: 198.51.100.20" in text and "Black listing: 10.0.0.0-10.255.255.255" in text
    bad = [line for line in text.splitlines() if re.search(r"Bad configuration|CONFIG ERROR|ERROR|cannot", line)]
    assert not bad, text


def turn_client(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(5)
    return sock


def rest_credentials(expiry: float, user: str = "alice", secret: str = SECRET) -> tuple[str, str]:
    """The shared-secret scheme (coturn use-auth-secret): expiry:user, base64(HMAC-SHA1(secret, username))."""
    username = f"{int(expiry)}:{user}"
    return username, base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


TRANSPORT_UDP = (0x0019, bytes([17, 0, 0, 0]))  # REQUESTED-TRANSPORT


def allocate(sock: socket.socket, username: str, password: str) -> tuple[int, dict[int, bytes], bytes, bytes]:
    """Allocate: first unauthenticated (401 with realm and nonce), then with the long-term credential."""
    kind, attrs = stun_request(sock, 0x0003, [TRANSPORT_UDP])
    assert kind == 0x0113 and error_code(attrs) == 401
    realm, nonce = attrs[0x0014], attrs[0x0015]
    key = hashlib.md5(f"{username}:{realm.decode()}:{password}".encode()).digest()
    kind, attrs = stun_request(sock, 0x0003, [TRANSPORT_UDP, (0x0006, username.encode()), (0x0014, realm),
                                              (0x0015, nonce)], key)
    return kind, attrs, realm, nonce


@pytest.mark.parametrize("case", ["wrong secret", "expired"])
def test_turn_refuses_bad_credentials(coturn, case):
    sock, _ = coturn
    port = sock.getpeername()[1]
    username, password = (rest_credentials(time.time() + 600, secret="not-the-secret") if case == "wrong secret"
                          else rest_credentials(time.time() - 10))
    with turn_client(port) as client:
        kind, attrs, realm, _ = allocate(client, username, password)
    assert realm == b"turn.example.org"
    assert kind == 0x0113 and error_code(attrs) == 401


def test_turn_rest_credentials_and_peer_rules(coturn):
    """Credentials made with the shared secret work; private peers are denied, the allowed peer is not."""
    sock, _ = coturn
    username, password = rest_credentials(time.time() + 600)
    with turn_client(sock.getpeername()[1]) as client:
        kind, attrs, realm, nonce = allocate(client, username, password)
        assert kind == 0x0103, attrs.get(0x0009)
        relay_port = struct.unpack_from("!H", attrs[0x0016], 2)[0] ^ (MAGIC >> 16)
        assert 49160 <= relay_port <= 49200  # min-port / max-port
        key = hashlib.md5(f"{username}:{realm.decode()}:{password}".encode()).digest()

        def permission(peer: str) -> tuple[int, dict[int, bytes]]:  # CreatePermission
            return stun_request(client, 0x0008, [(0x0012, xor_address(peer)), (0x0006, username.encode()),
                                                 (0x0014, realm), (0x0015, nonce)], key)

        kind, attrs = permission(PRIVATE_PEER)
        assert kind == 0x0118 and error_code(attrs) == 403  # Forbidden IP: the relay does not reach private nets
        kind, attrs = permission("127.0.0.1")
        assert kind == 0x0118 and error_code(attrs) == 403
        kind, attrs = permission(ALLOWED_PEER)
        assert kind == 0x0108, attrs.get(0x0009)  # the callscribe server's address (allowed-peer-ip)
        kind, attrs = permission("8.8.8.8")  # a public peer: a permission only, nothing is sent to it
        assert kind == 0x0108, attrs.get(0x0009)
