"""Fixtures for tests against the per-version profile servers (registered by tests/conftest.py):
one server per profile for the whole session, started on first use, emptied and its settings
restored around each test."""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List

import pytest

from tests.conftest import SENTINEL, Result, invoke
from tests.servers.lmdeploy import ProfileServer

GATEWAY_MODEL = "intern-latest"


class Pool:
    """One server per profile, started on first use; each takes the sentinel as its API key."""

    def __init__(self) -> None:
        self.servers: Dict[str, ProfileServer] = {}

    def get(self, profile: str) -> ProfileServer:
        if profile not in self.servers:
            server = ProfileServer(profile, api_keys=[SENTINEL])
            server.start()
            self.servers[profile] = server
        return self.servers[profile]


@pytest.fixture(scope="session")
def profile_servers() -> Iterator[Pool]:
    """The session's profile servers."""
    servers = Pool()
    yield servers
    for server in servers.servers.values():
        server.stop()


@pytest.fixture
def serve(profile_servers: Pool) -> Iterator[Callable[[str], ProfileServer]]:
    """``serve(profile)``: that profile's server, emptied and with its settings restored."""
    used: List[ProfileServer] = []

    def get(profile: str) -> ProfileServer:
        server = profile_servers.get(profile)
        server.reset()
        used.append(server)
        return server

    yield get
    for server in used:
        assert server.errors == []
        server.reset()


def model_of(server: ProfileServer) -> str:
    """The model a profile's server serves (the gateway's is the official one)."""
    return GATEWAY_MODEL if server.profile_name == "gateway" else server.model


@pytest.fixture(scope="session")
def openai_cli() -> str:
    """openai 2.34.0's command, for the side-by-side tests (tests/servers/real.py says where)."""
    from tests.servers.real import openai_cli_path

    return openai_cli_path()


def run_on(server: ProfileServer, *args: str, key: str = SENTINEL) -> Result:
    """interncli in-process against ``server`` (no retries, so failures are one request); the
    gateway profile, on 127.0.0.1 rather than the official host, is named by INTERN_API."""
    env = {"INTERN_API": "intern"} if server.profile_name == "gateway" else None
    result = invoke(["-b", server.base_url, "-k", key, "--max-retries", "0", *args], env=env)
    assert SENTINEL not in result.stdout and SENTINEL not in result.stderr
    return result


def create_on(server: ProfileServer, *args: str, key: str = SENTINEL) -> Result:
    """``chat create -m MODEL ARGS`` in-process against ``server``, as run_on runs it."""
    return run_on(server, "chat", "create", "-m", model_of(server), *args, key=key)
