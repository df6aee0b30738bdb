"""Shared fixtures: an isolated environment for every test, the real test server, and a
CliRunner-based invoker that returns stdout, stderr and the exit code apart."""

from __future__ import annotations

import base64
import dataclasses
import inspect
import itertools
import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import keyring
import pytest
from click.testing import CliRunner

from interncli.cli import run
from tests.apiserver import APIServer
from tests.memkeyring import MemoryKeyring

# The per-version profile servers' fixtures (serve, profile_servers), shared by the test files
# that run interncli against them.
pytest_plugins = ["tests.servers.fixtures"]

# click 8.1 (the last for Python 3.9) mixes stderr into stdout unless told not to; 8.2 dropped the option.
_SEPARATE_STDERR = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}

# A 1x1 PNG, for image tests.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")

# A token no test output may ever contain.
SENTINEL = "sk-SENTINEL-token-0f9e8d7c6b5a"

_CLEARED = ("INTERNCLI_KEYRING_TIMEOUT", "INTERN_BASE_URL", "INTERN_API_KEY", "INTERN_PROFILE", "INTERN_TIMEOUT",
            "INTERN_MAX_RETRIES", "INTERN_API", "INTERN_RPM",
            "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
            "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "NO_COLOR")


class FreshDirs:
    """Empty folders, each new, under one folder of the session's temporary base. Named by a
    counter, not by pytest's ``mktemp``: that lists the whole base folder to find the next
    number, and with a home per test the base holds thousands of entries, so each test's
    folders cost more than the one before (4 ms each by the end of the fast suite)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._numbers = itertools.count()

    def make(self, name: str) -> Path:
        """A new empty folder whose name starts with ``name``."""
        path = self.root / "{}{}".format(name, next(self._numbers))
        path.mkdir()
        return path


class Homes:
    """Each test's HOME: an empty folder. One that a test left as it got it (empty, the same
    mode, still a folder) goes to a later test instead of a new one: most tests write nothing
    there, and each folder made costs a mkdir now and an rmdir when pytest clears old runs
    (0.3 ms a test, thousands of tests)."""

    def __init__(self, dirs: FreshDirs) -> None:
        self.dirs = dirs
        self.free: List[Tuple[Path, os.stat_result]] = []

    def take(self) -> Tuple[Path, os.stat_result]:
        """An empty folder, and its state as handed out."""
        if self.free:
            return self.free.pop()
        path = self.dirs.make("home")
        return path, path.lstat()

    def give_back(self, path: Path, state: os.stat_result) -> None:
        """``path`` is free again if it is as it was handed out."""
        try:
            now = path.lstat()
            with os.scandir(path) as entries:
                empty = next(entries, None) is None
        except OSError:
            return
        if empty and (now.st_mode, now.st_uid, now.st_gid) == (state.st_mode, state.st_uid, state.st_gid):
            self.free.append((path, state))


@pytest.fixture(scope="session")
def fresh_dirs(tmp_path_factory) -> FreshDirs:
    """Where the per-test folders (``tmp_path`` and each test's HOME) are made."""
    return FreshDirs(tmp_path_factory.mktemp("tests", numbered=False))


@pytest.fixture(scope="session")
def homes(fresh_dirs: FreshDirs) -> Homes:
    """The tests' HOME folders."""
    return Homes(fresh_dirs)


@pytest.fixture
def tmp_path(request, fresh_dirs: FreshDirs) -> Path:
    """pytest's ``tmp_path`` (an empty folder for this test, kept after the run as pytest keeps
    its own), made in O(1): see FreshDirs."""
    return fresh_dirs.make(re.sub(r"\W", "_", request.node.name)[:30])


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C works in the tests however the suite was started. A shell without job control
    starts a background command (`.ci/run &`, a CI runner's step) with SIGINT ignored; an ignored
    signal stays ignored across exec, so the interncli processes the tests interrupt would ignore
    it too, and Python would raise no KeyboardInterrupt in-process. A handler, unlike SIG_IGN, is
    reset to the default by exec."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection made (the modules, the thousands of test items) lives until the end:
    kept out of the garbage collector's reach, its full passes do not go over all of it again
    (they cost a second of the fast suite)."""
    import gc

    gc.freeze()


@pytest.fixture(autouse=True)
def isolated_env(homes, monkeypatch):
    """No test reads the user's settings, writes into the real home or touches a real keyring:
    in-process, an empty in-memory keyring; in a subprocess, keyring's 'fail' backend unless a
    test chooses another. HOME is an empty folder of its own (see Homes)."""
    home, state = homes.take()
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("INTERNCLI_CONFIG_DIR", str(home / "interncli"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield home
    keyring.set_keyring(previous)
    homes.give_back(home, state)


@pytest.fixture
def memory_keyring():
    """The in-memory keyring the in-process commands use."""
    return keyring.get_keyring()


@pytest.fixture
def config_dir(isolated_env):
    """The config dir the commands use (created)."""
    path = isolated_env / "interncli"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def module_api():
    """One API server for a whole module."""
    with APIServer() as server:
        yield server


@pytest.fixture
def api(request):
    """The API server on 127.0.0.1 for one test: a fresh one, or, in a module that sets
    SHARED_SERVER = True (starting a server per test would cost more than its tests), the
    module's, emptied of queued replies and recorded requests."""
    if not getattr(request.module, "SHARED_SERVER", False):
        with APIServer() as server:
            yield server
        return
    server = request.getfixturevalue("module_api")
    server.reset()
    yield server
    assert server.errors == []
    server.reset()


def find_interncli() -> Optional[str]:
    """The installed console script: the one beside this interpreter first (the environment
    under test), else the first on PATH."""
    search = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return shutil.which("interncli", path=search)


@pytest.fixture(scope="module")
def exe() -> str:
    """The installed `interncli`, for tests that run it in a subprocess."""
    path = find_interncli()
    if path is None:
        pytest.fail("the `interncli` command is not installed: run `pip install .[test]` first "
                    "(these tests run the installed console script)", pytrace=False)
    return path


@pytest.fixture
def closed_port_url():
    """A base URL on 127.0.0.1 whose port nothing listens on: connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "http://127.0.0.1:{}/v1".format(port)


@dataclasses.dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


class Sleeps:
    """Stands in for time.sleep between retries: records each delay asked for and waits none, so
    a test checks the exact delay instead of measuring one."""

    def __init__(self) -> None:
        self.delays: List[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    """The delays the commands run by ``cli`` asked to wait between retries."""
    return Sleeps()


def wait_until(condition: Callable[[], bool], what: str, limit: float = 5.0) -> None:
    """Return once ``condition()`` holds (looked at every 5 ms); fail the test, naming ``what``
    was awaited, if it does not within ``limit`` seconds."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.005)


def invoke(args: Sequence[str], input: Optional[str] = None, env: Optional[Dict[str, str]] = None,
           sleep: Optional[Callable[[float], None]] = None) -> Result:
    """Run a command line in-process, as the console script would, with stdout and stderr apart.
    Retries do not wait: ``sleep`` (by default one that records and returns) stands in for it."""
    runner = CliRunner(**_SEPARATE_STDERR)
    with runner.isolation(input=input, env=env) as streams:
        code = run(list(args), sleep=sleep if sleep is not None else Sleeps())
        return Result(code, streams[0].getvalue().decode("utf-8"), streams[1].getvalue().decode("utf-8"))


@pytest.fixture
def cli(api, sleeps):
    """Invoke interncli against the test server with the sentinel token; its waits between
    retries are recorded in ``sleeps``, not slept."""

    def call(*args: str, input: Optional[str] = None, env: Optional[Dict[str, str]] = None,
             globals_: Sequence[str] = ()) -> Result:
        argv: List[str] = ["-b", api.base_url, "-k", SENTINEL, *globals_, *args]
        result = invoke(argv, input=input, env=env, sleep=sleeps)
        assert SENTINEL not in result.stdout and SENTINEL not in result.stderr
        return result

    return call
