"""The call page in front of a cluster, in a real Chromium, all inside the sealed namespace: nginx with the site as
deployed (deploy/nginx/callscribe.conf, every node in its upstream, deploy/cluster/nginx-nodes.conf included: a
path per node), two ``callscribe serve`` nodes sharing one Redis (Debian's redis-server) and one database file.
The page's offer reaches a node through nginx; the node that holds the call is killed with SIGKILL; the page calls
the room again through the same origin, the offer lands on the other node, and the chat keeps what was said."""

from __future__ import annotations

import subprocess
import time

import pytest
from test_deploy import nginx_globals, nginx_main_conf, nginx_site, replace, tool

from .conftest import ARTIFACTS, ServerProcess
from .test_redial import long_talk  # noqa: F401  (the microphone fixture)

pytestmark = pytest.mark.speech
NGINX_HTTP, NGINX_HTTPS, REDIS = 8790, 8791, 8792
NODES = {"a": 8793, "b": 8794}
NODES_CONF = ARTIFACTS.parents[1] / "deploy" / "cluster" / "nginx-nodes.conf"


def _nginx_conf(tmp_path):
    """The deployed site with both nodes in its upstream and the per-node locations, on namespace loopback ports."""
    site = nginx_site(tmp_path, backend_port=NODES["a"], http_port=NGINX_HTTP, https_port=NGINX_HTTPS)
    text = replace(site.read_text(), f"server 127.0.0.1:{NODES['a']};",
                   f"server 127.0.0.1:{NODES['a']};\n    server 127.0.0.1:{NODES['b']};")
    nodes = NODES_CONF.read_text()
    for old, node in (("10.0.0.11:8080", "a"), ("10.0.0.12:8080", "b")):
        nodes = replace(nodes, old, f"127.0.0.1:{NODES[node]}")
    (tmp_path / "nginx-nodes.conf").write_text(nodes)
    last = text.rindex("    location / {")
    site.write_text(text[:last] + f"    include {tmp_path / 'nginx-nodes.conf'};\n\n" + text[last:])
    return nginx_main_conf(tmp_path, site)


def _holder(page) -> str:
    url = page.evaluate("window.callscribe.sessionUrl") or ""
    return next((n for n in NODES if f"/node/{n}/" in url), f"? ({url})")


def test_the_call_page_behind_nginx_moves_to_another_node_when_its_node_is_killed(netns, server_env, launch,
                                                                                  long_talk, tmp_path):  # noqa: F811
    nginx_bin, redis_bin = tool("nginx", "nginx-light"), tool("redis-server", "redis-server")
    origin = f"https://127.0.0.1:{NGINX_HTTPS}"
    procs = [subprocess.Popen(netns.cmd(redis_bin, "--bind", "127.0.0.1", "--port", str(REDIS), "--save", "",
                                        "--appendonly", "no", "--dir", str(tmp_path)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    conf = _nginx_conf(tmp_path)
    procs.append(subprocess.Popen(netns.cmd(nginx_bin, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                                            "-c", str(conf), "-g", nginx_globals(tmp_path) + " daemon off;"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    env = {**server_env, "CALLSCRIBE_DATABASE": str(tmp_path / "cluster.sqlite3"),
           "CALLSCRIBE_REDIS_URL": f"redis://127.0.0.1:{REDIS}/0", "CALLSCRIBE_HEARTBEAT_S": "0.5",
           "CALLSCRIBE_NODE_TTL_S": "2.0", "CALLSCRIBE_JOB_WORKERS": "0"}
    nodes = {n: ServerProcess(netns, port, env, "--node-id", n, "--public-url", f"{origin}/node/{n}")
             for n, port in NODES.items()}
    try:
        for node in nodes.values():
            node.wait_ready()
        context = launch(fake_mic_wav=long_talk).new_context(ignore_https_errors=True,  # a self-signed certificate
                                                             viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{origin}/?room=spread")
        page.fill("#caller", "Kim")
        page.click("#start")
        page.wait_for_function("() => window.callscribe.chat.finals().filter(f => f.text.trim()).length >= 2",
                               timeout=60_000)
        holder = _holder(page)
        assert holder in NODES  # the answer's session URL is the node's path on the shared origin
        other = next(n for n in NODES if n != holder)
        old_peer = page.evaluate("window.callscribe.peerId")
        nodes[holder].proc.kill()  # SIGKILL: no shutdown handler, no server_shutdown notice
        nodes[holder].proc.wait(10)
        killed = time.monotonic()
        page.wait_for_selector("#state[data-state=reconnecting]", timeout=20_000)
        before = page.evaluate("window.callscribe.chat.finals().filter(f => f.text.trim()).map(f => f.text)")
        page.wait_for_function("old => window.callscribe.ready && window.callscribe.peerId !== old", arg=old_peer,
                               timeout=45_000)
        moved_s = time.monotonic() - killed
        assert _holder(page) == other  # nginx's upstream passed the offer on; the live node took the call
        page.wait_for_function("n => window.callscribe.chat.finals().filter(f => f.text.trim()).length > n",
                               arg=len(before), timeout=60_000)
        finals = page.evaluate("window.callscribe.chat.finals().filter(f => f.text.trim())"
                               ".map(f => [f.peer_id, f.utterance_id, f.turn, f.text])")
        assert [f[3] for f in finals][: len(before)] == before  # kept, in order, not repeated by the backlog
        assert len({tuple(f[:3]) for f in finals}) == len(finals)
        assert page.get_attribute("#state", "data-state") == "live" and page.is_hidden("#banner")
        page.screenshot(path=str(ARTIFACTS / "call-page-after-node-loss.png"))
        print(f"call on node {holder}, killed; the page's new call was ready on node {other} {moved_s:.1f} s later")
    finally:
        for node in nodes.values():
            if node.proc.poll() is None:
                node.stop()
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
