"""Running the installed command with stdout and/or stderr on a real pseudo-terminal, for the
tests that depend on ``isatty()`` being true (escaping, colour)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from tests.conftest import SENTINEL

DEADLINE = 20.0


@dataclass
class TerminalRun:
    exit_code: int
    stdout: bytes
    stderr: bytes


def _channel(terminal: bool) -> Tuple[int, int]:
    """(reading end, writing end): a pty's master and slave, or a pipe."""
    return pty.openpty() if terminal else os.pipe()


def run_on_terminal(exe: str, args: Sequence[str], stdout_tty: bool = True, stderr_tty: bool = True,
                    env: Optional[Dict[str, str]] = None) -> TerminalRun:
    """Run ``exe args`` to its end with stdout and stderr each a pty or a pipe, and return what
    each received. A pty turns "\\n" into "\\r\\n" (onlcr): that is undone here."""
    out_r, out_w = _channel(stdout_tty)
    err_r, err_w = _channel(stderr_tty)
    full_env = dict(os.environ if env is None else env)
    full_env["INTERN_API_KEY"] = SENTINEL
    try:
        proc = subprocess.Popen([exe, *args], stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w,
                                env=full_env, start_new_session=True)
    finally:
        os.close(out_w)
        os.close(err_w)
    received: Dict[int, List[bytes]] = {out_r: [], err_r: []}
    open_fds = [out_r, err_r]
    end = time.monotonic() + DEADLINE
    try:
        while open_fds:
            left = end - time.monotonic()
            if left <= 0:
                proc.kill()
                raise AssertionError("the command did not finish within {:g}s".format(DEADLINE))
            ready, _, _ = select.select(open_fds, [], [], left)
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: a pty whose slave side every process has closed
                    data = b""
                if data:
                    received[fd].append(data)
                else:
                    open_fds.remove(fd)
        code = proc.wait(DEADLINE)
    finally:
        os.close(out_r)
        os.close(err_r)
    out, err = (b"".join(received[fd]) for fd in (out_r, err_r))
    if stdout_tty:
        out = out.replace(b"\r\n", b"\n")
    if stderr_tty:
        err = err.replace(b"\r\n", b"\n")
    assert SENTINEL.encode() not in out + err
    return TerminalRun(code, out, err)
