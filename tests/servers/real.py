"""Real servers for the integration tests: LMDeploy's own api_server of two releases (torch
stubbed, a fake engine; tests/servers/real_lmdeploy/), and where the openai 2.34.0 CLI is, for the
side-by-side tests. A helper module, not a test module: test files import it, never each other."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from tests.conftest import SENTINEL

ROOT = Path(__file__).resolve().parent.parent.parent
LAUNCHER = ROOT / "tests" / "servers" / "real_lmdeploy" / "run_server.py"
INSTALL = "tests/servers/real_lmdeploy/install.sh"
MODEL = "internlm2_5-7b-chat"
# The releases run, each in its own venv (install.sh VENV RELEASE; .ci/run makes both): the newest,
# and 0.12.3 for the era before the 0.16 error rework (HTTP 200 with finish_reason "error").
NEWEST, OLD = "0.18.0", "0.12.3"
VENVS = {NEWEST: ".venv-lmdeploy", OLD: ".venv-lmdeploy-0.12"}
STARTUP_TIMEOUT = 120  # importing LMDeploy's server modules takes a few seconds on a busy machine
_RUNNING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


def lmdeploy_python(release: str) -> str:
    """The interpreter of the venv holding `release`, or skip (fail under .ci/run) saying why."""
    python = str(ROOT / VENVS[release] / "bin" / "python")
    todo = f"run {INSTALL} {VENVS[release]} {release} (.ci/run does)"
    reason = None
    if not os.path.exists(python):
        reason = f"LMDeploy {release}'s server venv is missing ({python}): {todo}"
    else:
        found = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('lmdeploy'))"],
                               capture_output=True, text=True, timeout=60)
        if found.stdout.strip() != release:
            held = found.stdout.strip() or found.stderr[-200:]
            reason = f"{python} does not hold lmdeploy {release} ({held}): {todo}"
    if reason is not None:
        if os.environ.get("INTERNCLI_REQUIRE_LMDEPLOY") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return python


class RealServer:
    """One `run_server.py` subprocess: its base URL, and its log (uvicorn's and LMDeploy's)."""

    def __init__(self, python: str, home: Path, *flags: str) -> None:
        self.process = subprocess.Popen(
            [python, str(LAUNCHER), "--model-name", MODEL, "--api-keys", SENTINEL, *flags],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
            # The server sees neither interncli's venv and settings nor the real home.
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONNOUSERSITE": "1"})
        self.log: List[str] = []
        lines: "queue.Queue[Optional[str]]" = queue.Queue()
        # Drain the log all along: a full pipe would block the server mid-request.
        threading.Thread(target=self._drain, args=(lines,), daemon=True).start()
        self.base_url = self._wait_for_url(lines)

    def _drain(self, lines: "queue.Queue[Optional[str]]") -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            lines.put(line)
        lines.put(None)

    def _wait_for_url(self, lines: "queue.Queue[Optional[str]]") -> str:
        while True:
            try:
                line = lines.get(timeout=STARTUP_TIMEOUT)
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                pytest.fail("LMDeploy's api_server did not start:\n" + "".join(self.log[-40:]), pytrace=False)
            found = _RUNNING.search(line)
            if found:
                # LMDeploy's routes are under /v1, but it announces the bare address (its HINT
                # line says http://HOST:PORT): `-b http://HOST:PORT` meets {"detail":"Not Found"}.
                return found.group(1) + "/v1"

    def stop(self) -> None:
        """End the server (ours alone, by its process)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()



# openai 2.34.0, the last release with the `openai api ...` CLI, in a venv of its own (.ci/run makes it).
OPENAI = ROOT / ".venv-openai" / "bin" / "openai"
OPENAI_RELEASE = "2.34.0"


def openai_cli_path() -> str:
    """The openai 2.34.0 command, or skip (fail under .ci/run, INTERNCLI_REQUIRE_OPENAI=1) saying why."""
    todo = "python3 -m venv .venv-openai && .venv-openai/bin/pip install openai=={} (.ci/run does)".format(
        OPENAI_RELEASE)
    reason = None
    if not OPENAI.exists():
        reason = "the openai CLI is missing ({}): {}".format(OPENAI, todo)
    else:
        found = subprocess.run([str(OPENAI), "--version"], capture_output=True, text=True, timeout=60)
        if found.stdout.strip() != "openai " + OPENAI_RELEASE:
            reason = "{} is not openai {} ({}): {}".format(OPENAI, OPENAI_RELEASE,
                                                          found.stdout.strip() or found.stderr[-200:], todo)
    if reason is not None:
        if os.environ.get("INTERNCLI_REQUIRE_OPENAI") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return str(OPENAI)


def interncli(exe: str, server: RealServer, *args: str, key: str = SENTINEL) -> subprocess.CompletedProcess:
    """The installed command against `server`, the key from the environment, no retries."""
    env: Dict[str, str] = {**os.environ, "INTERN_API_KEY": key}
    done = subprocess.run([exe, "-b", server.base_url, "--max-retries", "0", *args],
                          capture_output=True, text=True, env=env, timeout=60)
    assert SENTINEL not in done.stdout and SENTINEL not in done.stderr
    return done


def started(python: str, tmp_path_factory: pytest.TempPathFactory, *flags: str) -> Iterator[RealServer]:
    """A fixture's body: a server of ``python``'s release with ``flags``, stopped after its tests."""
    real = RealServer(python, tmp_path_factory.mktemp("lmdeploy-home"), *flags)
    yield real
    real.stop()
