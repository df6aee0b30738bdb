"""interncli against each server profile (tests/servers/lmdeploy.py) for every reply and error
shape: error bodies shown as message and code, failed replies (finish_reason error, abort,
parse_error), a full context, empty replies, fewer choices than -n, and the messages that help
(issue 10; tests/servers/README.md "Known wrong today")."""

from __future__ import annotations

import json
from typing import Callable, Dict, Iterator, List

import pytest

from tests.apiserver import Json, Raw
from tests.conftest import SENTINEL, Result, invoke
from tests.servers.lmdeploy import ProfileServer

ERROR = "interncli: error: "


class Pool:
    """One server per profile for the whole session, started on first use."""

    def __init__(self) -> None:
        self.servers: Dict[str, ProfileServer] = {}

    def get(self, profile: str) -> ProfileServer:
        if profile not in self.servers:
            self.servers[profile] = ProfileServer(profile, api_keys=[SENTINEL]).start()
        return self.servers[profile]


@pytest.fixture(scope="session")
def replies_pool() -> Iterator[Pool]:
    servers = Pool()
    yield servers
    for server in servers.servers.values():
        server.stop()


@pytest.fixture
def serve(replies_pool: Pool) -> Iterator[Callable[[str], ProfileServer]]:
    """``serve(profile)``: that profile's server, emptied and with its settings restored."""
    used: List[ProfileServer] = []

    def get(profile: str) -> ProfileServer:
        server = replies_pool.get(profile)
        server.reset()
        used.append(server)
        return server

    yield get
    for server in used:
        assert server.errors == []
        server.reset()


def model_of(server: ProfileServer) -> str:
    return "intern-latest" if server.profile_name == "gateway" else server.model


def run(server: ProfileServer, *args: str, key: str = SENTINEL) -> Result:
    """interncli in-process against ``server`` (no retries: a failure is one request)."""
    result = invoke(["-b", server.base_url, "-k", key, "--max-retries", "0", *args])
    assert SENTINEL not in result.stdout and SENTINEL not in result.stderr
    return result


def create(server: ProfileServer, *args: str, key: str = SENTINEL) -> Result:
    return run(server, "chat", "create", "-m", model_of(server), *args, key=key)


def lines(text: str) -> List[str]:
    return text.splitlines()


# ------------------------------------------------------------------------ error bodies (#1)


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.10"])
def test_wrapped_401_is_its_message_and_code(serve: Callable[[str], ProfileServer], profile: str) -> None:
    result = create(serve(profile), "-g", "user", "hi", key="sk-wrong-token")
    assert (result.exit_code, result.stdout) == (3, "")
    assert lines(result.stderr)[0] == ERROR + "[invalid_api_key] Please request with valid api key!"


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.10"])
def test_wrapped_401_under_json_is_not_a_string_of_json(serve: Callable[[str], ProfileServer], profile: str) -> None:
    result = create(serve(profile), "--json", "-g", "user", "hi", key="sk-wrong-token")
    error = json.loads(lines(result.stderr)[0])["error"]
    assert (error["code"], error["message"], error["exit_code"]) == (
        "invalid_api_key", "Please request with valid api key!", 3)


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.10", "lmdeploy-0.12"])
def test_validation_errors_are_one_item_each_never_the_body(serve: Callable[[str], ProfileServer],
                                                            profile: str) -> None:
    # A wrong type for a known field reaches LMDeploy's validation; 0.10+ echo the request as `body`.
    server = serve(profile)
    server.add(Raw(json.dumps({"detail": [{"type": "int_type", "loc": ["body", "n"], "msg": "Input should be a "
                                           "valid integer", "input": "x"}],
                               "body": {"messages": [{"role": "user", "content": "the secret prompt"}]}}).encode(),
                   422, "application/json"))
    result = create(server, "-g", "user", "the secret prompt")
    assert (result.exit_code, result.stdout) == (5, "")
    assert lines(result.stderr)[0] == ERROR + "[422] n: Input should be a valid integer"
    assert "secret" not in result.stderr


@pytest.mark.parametrize("status", [200, 400])
def test_gateway_envelope_is_its_code_at_any_status(serve: Callable[[str], ProfileServer], status: int) -> None:
    server = serve("gateway")
    server.envelope_status = status
    server.fail("token_expired")
    result = create(server, "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (3, "")
    assert lines(result.stderr)[0] == ERROR + "[A0211] token expired"
    assert "traceId" in lines(result.stderr)[1]


@pytest.mark.parametrize("stream", [False, True])
def test_lmdeploy_proxy_error_at_200(serve: Callable[[str], ProfileServer], stream: bool) -> None:
    server = serve("lmdeploy-0.10")
    body = {"error_code": 10402, "text": "Failed to get response after a period of time"}
    server.add(Json(body) if not stream else Raw(json.dumps(body).encode() + b"\n", 200, "text/event-stream"))
    result = create(server, *(["--stream"] if stream else []), "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (1, "")
    assert lines(result.stderr)[0] == ERROR + "[10402] Failed to get response after a period of time"


@pytest.mark.parametrize("profile", ["lmdeploy-0.16", "lmdeploy-0.18"])
def test_in_stream_error_event_before_any_text(serve: Callable[[str], ProfileServer], profile: str) -> None:
    server = serve(profile)
    server.fail("engine")
    result = create(server, "--stream", "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (1, "")
    assert lines(result.stderr)[0] == ERROR + "[500] An internal server error occurred."
