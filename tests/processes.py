"""Whether a process a tool started still runs, for the tests that check nothing outlives a call."""

from __future__ import annotations

import os
import time


def is_gone(pid: int) -> bool:
    """The process no longer runs (gone, or a zombie waiting for its reaper)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open("/proc/{}/stat".format(pid)) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_gone(pid: int, limit: float) -> bool:
    """Whether the process is gone within ``limit`` seconds (a bound, not a speed goal)."""
    deadline = time.monotonic() + limit
    while not is_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return is_gone(pid)
