"""Run the installed interncli on a real pseudo-terminal, answering its [y/N] prompt."""

from __future__ import annotations

import os
import select
import subprocess
import time
from typing import Dict, Optional, Sequence

import pytest

from tests.conftest import SENTINEL


def run_on_pty(api, args: Sequence[str], answer: Optional[bytes], env: Optional[Dict[str, str]] = None,
               stdout_on_pty: bool = False, timeout: float = 30.0):
    """The installed interncli with stdin and stderr (and stdout, if asked) on a pseudo-terminal;
    ``answer`` is typed at the [y/N] prompt. (exit code, stdout, terminal bytes, bytes up to the
    prompt or None)."""
    master, slave = os.openpty()
    environ = dict(os.environ, INTERN_API_KEY=SENTINEL, **(env or {}))
    if not env or "CI" not in env:
        environ.pop("CI", None)  # the machine running the tests may set it
    proc = subprocess.Popen(["interncli", "-b", api.base_url, *args], stdin=slave,
                            stdout=slave if stdout_on_pty else subprocess.PIPE, stderr=slave, env=environ,
                            close_fds=True)
    os.close(slave)
    seen, prompt = b"", None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every holder of the pty's other side has closed it
                    break
                if not data:
                    break
                seen += data
                if prompt is None and b"[y/N]" in seen:
                    prompt = seen
                    if answer is not None:
                        os.write(master, answer)
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail("interncli did not finish on the pty; it showed: {!r}".format(seen))
        out = proc.stdout.read() if proc.stdout else b""
        code = proc.wait(10)
    finally:
        os.close(master)
        if proc.stdout:
            proc.stdout.close()
    assert SENTINEL.encode() not in seen and SENTINEL.encode() not in out
    return code, out.decode(), seen, prompt
