"""A real HTTP endpoint on 127.0.0.1 for callback tests: records each POSTed body, answers with the statuses it is
told (then 200), optionally after a delay (a hanging endpoint). Runs on its own thread; stop() shuts it down."""

from __future__ import annotations

import http.server
import json
import threading
import time


class Webhook:
    def __init__(self, statuses: list[int] | None = None, hang_s: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.hang_s = hang_s
        self.received: list[dict] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append(json.loads(body) if body else {})
                if hook.hang_s:
                    time.sleep(hook.hang_s)
                self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
