"""The process around the command: a stderr that is closed or full changes no exit code, and a
Ctrl-C while interncli is still importing ends with exit 130 and no traceback. Both need the
installed command in a real process."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from typing import List, Tuple

import pytest

from tests.apiserver import Completion, Hang, err_code
from tests.conftest import SENTINEL

pytestmark = pytest.mark.integration

PROCESS_TIMEOUT = 30.0


def _env() -> dict:
    env = dict(os.environ)
    env["INTERN_API_KEY"] = SENTINEL
    return env


# --------------------------------------------------------------- a closed or full stderr


def exit_code_with_stderr(exe: str, args: List[str], redirect: str) -> Tuple[int, str]:
    """(exit code, stdout) of ``exe args`` run by bash with stderr redirected as ``redirect``
    (``2>&-`` closes it; ``2>/dev/full`` makes every write fail with ENOSPC)."""
    script = '"$@" {}; echo "exit=$?"'.format(redirect)
    proc = subprocess.run(["bash", "-c", script, "bash", exe, *args], stdin=subprocess.DEVNULL,
                          capture_output=True, env=_env(), timeout=PROCESS_TIMEOUT)
    out = proc.stdout.decode()
    match = re.search(r"exit=(\d+)\n\Z", out)
    assert match, out
    return int(match.group(1)), out[:match.start()]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("redirect", ["2>&-", "2>/dev/full"])
def test_a_usage_error_keeps_exit_2(exe, redirect):
    assert exit_code_with_stderr(exe, ["chat", "create", "--no-such-flag"], redirect)[0] == 2


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("redirect", ["2>&-", "2>/dev/full"])
def test_a_server_error_keeps_its_exit_code(exe, api, redirect):
    api.add(err_code(-20013, "Requested model does not exist", status=400))
    code, out = exit_code_with_stderr(exe, ["-b", api.base_url, "chat", "create", "-g", "user", "hi"], redirect)
    assert (code, out) == (5, "")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("redirect", ["2>&-", "2>/dev/full"])
def test_success_with_a_warning_keeps_exit_0(exe, api, redirect):
    # The warning (cut at max_tokens) and the reasoning go to a stderr that cannot take them.
    api.add(Completion(content="partial", reasoning="thinking", finish_reason="length"))
    args = ["-b", api.base_url, "chat", "create", "-g", "user", "hi", "--show-reasoning"]
    assert exit_code_with_stderr(exe, args, redirect) == (0, "partial\n")


# ------------------------------------------------------------ Ctrl-C during start-up


def interrupt_while_importing(command: List[str], anchor: str, delay: float) -> Tuple[int, str]:
    """Start ``command`` under ``python -X importtime``, wait for the first import that follows
    the module ``anchor``'s (so: interncli code is running), then ``delay`` seconds, and send
    SIGINT.

    Timed from there, not from the start: Python itself takes tens of milliseconds (site, .pth
    files) before any interncli code runs, and a Ctrl-C then is the interpreter's to report
    ("Fatal Python error: init_import_site"), as is one inside the console script's own
    ``from interncli.__main__ import main`` or runpy's reading of __main__: no package can change
    those. From there on, interncli.cli and its dependencies are being imported (about 45 ms)."""
    proc = subprocess.Popen([sys.executable, "-X", "importtime", *command], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    seen = b""
    end = time.monotonic() + PROCESS_TIMEOUT
    fd = proc.stderr.fileno()
    after = re.compile(rb"\|\s*" + re.escape(anchor.encode()) + rb"\nimport time:[^\n]*\n")
    try:
        while not after.search(seen):
            left = end - time.monotonic()
            assert left > 0, "no import after {}: {!r}".format(anchor, seen[-2000:])
            if select.select([fd], [], [], left)[0]:
                data = os.read(fd, 65536)
                assert data, "stderr closed before an import after {}: {!r}".format(anchor, seen[-2000:])
                seen += data
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=PROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, (seen + err).decode("utf-8", errors="replace")


# The console script imports the entry module, then calls main(); python -m runs the entry
# module without an import line of its own, right after importing the package.
ANCHORS = {"console script": "interncli.__main__", "python -m": "interncli"}


@pytest.mark.parametrize("how", sorted(ANCHORS))
def test_ctrl_c_in_the_first_milliseconds_exits_130_without_a_traceback(exe, api, how):
    # Tried: the signal lands 20-40 imports into interncli.cli's 45, where old code printed a
    # traceback (and Python re-raised SIGINT), or, inside one of importlib's weakref callbacks,
    # printed "Exception ignored ... Traceback" and went on.
    # A run that got as far as sending would wait here until interrupted.
    api.add(Hang(30), times=100)
    target = [exe] if how == "console script" else ["-m", "interncli"]
    command = [*target, "-b", api.base_url, "chat", "create", "-g", "user", "hi"]
    runs = 20
    for step in range(runs):
        delay = 0.001 + 0.019 * step / (runs - 1)  # 1 to 20 ms
        code, err = interrupt_while_importing(command, ANCHORS[how], delay)
        assert "Traceback" not in err, err[-3000:]
        assert code == 130 and "interncli: interrupted" in err, (code, err[-3000:])
