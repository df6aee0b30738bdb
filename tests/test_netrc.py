"""~/.netrc is never consulted (interface.md section 2).

What requests does (2.x, Session.prepare_request): when a request has no ``auth`` and the
session trusts the environment (it must, for HTTPS_PROXY/NO_PROXY), it reads ~/.netrc (or
$NETRC) for the URL's host, and PreparedRequest.prepare_auth then *replaces* the Authorization
header we set with ``Basic user:password`` from that file. So a user with a netrc entry for the
host sends their netrc password to the server, and not the token.

The fix belongs in transport.py (not part of the secrets work): give every request an auth
callable that leaves the request as it is (``auth=lambda r: r``), which stops the netrc lookup
without turning off the environment's proxies. Until then this test is a strict xfail, so that
it fails (and asks for the marker to go) once the transport is fixed."""

from __future__ import annotations

import pytest

from tests.conftest import invoke


@pytest.mark.xfail(strict=True, reason="transport.py lets requests read ~/.netrc (see the module docstring)")
def test_a_netrc_entry_for_the_host_is_neither_sent_nor_replaces_the_token(api, isolated_env):
    netrc = isolated_env / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret-1\n")
    netrc.chmod(0o600)
    with_token = invoke(["-b", api.base_url, "-k", "tok-1234567890", "chat", "create", "-g", "user", "hi"])
    without = invoke(["-b", api.base_url, "chat", "create", "-g", "user", "hi"])
    assert with_token.exit_code == 0 and without.exit_code == 0
    assert [r.headers.get("authorization") for r in api.requests] == ["Bearer tok-1234567890", None]
