"""A server on 127.0.0.1 that records every request and answers each with a JSON Schema that
would accept anything: a test whose spec points a reference at it proves nothing was fetched
when its request list stays empty."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, List

from tests.apiserver import PromptShutdown


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        body = json.dumps({"type": "object"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(PromptShutdown, ThreadingHTTPServer):
    daemon_threads = True


class Recorder:
    """``with Recorder() as r: ... r.url("/x.json") ... r.paths``"""

    def __init__(self) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.paths = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return "http://127.0.0.1:{}{}".format(self.server.server_address[1], path)

    @property
    def paths(self) -> List[str]:
        return list(self.server.paths)  # type: ignore[attr-defined]

    def __enter__(self) -> "Recorder":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
