"""The test server on another loopback address (127.0.0.2, ...), so that tests can have two
servers on different hosts without leaving this machine: Linux routes all of 127.0.0.0/8 to
the loopback interface, so any of its addresses can be bound without setup."""

from __future__ import annotations

from tests.apiserver import APIServer, _HTTPServer


class _OnHost(_HTTPServer):
    host = "127.0.0.1"

    def server_bind(self) -> None:
        self.server_address = (self.host, self.server_address[1])
        super().server_bind()


class HostAPIServer(APIServer):
    """An APIServer listening on ``host`` instead of 127.0.0.1; ``base_url`` names the host as
    ``name`` (e.g. ``localhost`` for a server on 127.0.0.1) when given."""

    def __init__(self, host: str, name: str = "") -> None:
        super().__init__()
        self._httpd.server_close()
        bound = type("_Bound", (_OnHost,), {"host": host})
        self._httpd = bound(self, 0)
        self.port = self._httpd.server_address[1]
        self.url = "http://{}:{}".format(name or host, self.port)
        self.base_url = self.url + "/v1"
