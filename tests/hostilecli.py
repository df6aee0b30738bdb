"""Running interncli against a hostile server, for test_hostile and test_attack_net: in-process
with its one error line checked, or the installed command with its peak memory measured. Holds
no tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import List, Tuple

import pytest

NO_RETRY = ("--max-retries", "0")
# Peak memory a run may reach against any server (interface.md section 1: tens of MiB).
MEMORY_LIMIT_KIB = 100 * 1024
# How long a run may take before the test calls it hung: generous, not a speed goal.
HUNG = 60.0


def chat(cli, stream: bool, *globals_: str):
    args = ["chat", "create", "-g", "user", "x"] + (["--stream"] if stream else [])
    return cli(*args, globals_=globals_ or NO_RETRY)


def error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("interncli: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


# Runs argv[2:] and writes its exit code and peak RSS (KiB) to the file argv[1]. Linux keeps
# the memory high-water mark of a forked child's copied address space and carries it across
# exec, so a child forked straight from pytest reports at least pytest's own peak. Forked from
# this small, freshly exec'd launcher, the command reports only its own (and the launcher's
# ~10 MiB as a floor).
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write("%d %d" % (os.waitstatus_to_exitcode(status), usage.ru_maxrss))
"""


def run_measured(exe: str, args: List[str], tmp_path) -> Tuple[int, str, int]:
    """Run the installed command; return its exit code, its stderr and its peak RSS in KiB
    (``os.wait4`` gives the rusage of that one process: ru_maxrss is in KiB on Linux)."""
    report, errors = tmp_path / "peak", tmp_path / "stderr"
    with open(os.devnull, "wb") as out, open(errors, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(report), exe, *args], stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(HUNG)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail("interncli {} did not end within {}s".format(" ".join(args), HUNG))
    code, peak = (int(word) for word in report.read_text().split())
    return code, errors.read_text(errors="replace"), peak
