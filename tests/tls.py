"""TLS for the end-to-end tests: a self-signed certificate made with the ``openssl`` command
line, and the scriptable API server (tests/apiserver.py) served over HTTPS.

    cert = make_self_signed_cert(tmp_dir)          # None when openssl is missing
    with TLSAPIServer(cert) as server:             # server.base_url is https://127.0.0.1:PORT/v1
        ...
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from typing import Any, Optional

from tests.apiserver import APIServer, _HTTPServer


@dataclass(frozen=True)
class CertPair:
    cert: str  # PEM certificate (self-signed: it is its own CA)
    key: str   # PEM private key, unencrypted


def make_self_signed_cert(directory: str, common_name: str = "127.0.0.1") -> Optional[CertPair]:
    """A one-day self-signed certificate for ``127.0.0.1`` (CN and IP subjectAltName) in
    ``directory``; None when the ``openssl`` command is not installed."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    key = os.path.join(directory, "k.pem")
    cert = os.path.join(directory, "c.pem")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "1", "-subj", "/CN=" + common_name, "-addext", "subjectAltName=IP:" + common_name],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return CertPair(cert, key)


class _TLSHTTPServer(_HTTPServer):
    """The test server's HTTP server with its listening socket wrapped in TLS. The handshake
    runs in the connection's own thread (not in the accept loop), and a client that refuses
    the certificate is a normal event in these tests, not a server error."""

    def __init__(self, api: APIServer, context: ssl.SSLContext) -> None:
        super().__init__(api)
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(10)
            request.do_handshake()
            request.settimeout(None)
        except (ssl.SSLError, OSError):
            self.api.tls_failures += 1
            return
        super().finish_request(request, client_address)


class TLSAPIServer(APIServer):
    """``APIServer`` over HTTPS with the given certificate; same scripting API and recording.
    ``tls_failures`` counts handshakes that failed (e.g. the client did not trust the cert)."""

    def __init__(self, pair: CertPair) -> None:
        super().__init__()
        self._httpd.server_close()  # the plain-HTTP server bound by APIServer: replaced
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pair.cert, pair.key)
        self.tls_failures = 0
        self._httpd = _TLSHTTPServer(self, context)
        self.port = self._httpd.server_address[1]
        self.url = "https://127.0.0.1:{}".format(self.port)
        self.base_url = self.url + "/v1"
