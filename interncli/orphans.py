"""Processes a tool leaves behind after it has exited: found and stopped, on Linux.

A tool can escape its process group (``setsid``, a double fork), so stopping the group is not
enough. On Linux the process running the tools becomes a child subreaper (prctl
PR_SET_CHILD_SUBREAPER): orphans of its descendants are reparented to it instead of to init,
so after each call every new child of ours is a leftover of the tool; it and its own
descendants (found through /proc) are killed and reaped. Elsewhere a process that leaves the
tool's process group can outlive the call; that limit is documented.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any, Dict, Optional, Set

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
_ROUNDS = 50  # a tool forking as fast as it is killed cannot keep the sweep going forever
REAP_WAIT = 5.0


def _prctl() -> Optional[Any]:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def become_subreaper() -> Optional[int]:
    """Make this process the reaper of its descendants' orphans; the previous setting (to
    give :func:`restore_subreaper`), or None where that is not possible."""
    import ctypes

    prctl = _prctl()
    if prctl is None:
        return None
    previous = ctypes.c_int(0)
    if prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0) != 0:
        return None
    if prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        return None
    return previous.value


def restore_subreaper(previous: Optional[int]) -> None:
    """Put back the setting :func:`become_subreaper` changed."""
    prctl = _prctl()
    if previous is not None and prctl is not None:
        prctl(PR_SET_CHILD_SUBREAPER, previous, 0, 0, 0)


def _parents() -> Dict[int, int]:
    """Every process's parent, from /proc; empty where there is no /proc."""
    parents = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open("/proc/{}/stat".format(entry), "rb") as fh:
                # The name, in parentheses, may hold spaces and ')': the fields follow its last ')'.
                fields = fh.read().rsplit(b")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return parents


def children() -> Set[int]:
    """The pids of this process's children now."""
    me = os.getpid()
    return {pid for pid, parent in _parents().items() if parent == me}


def stop_leftovers(before: Set[int]) -> int:
    """Kill and reap every child of ours that was not one ``before`` (a tool's orphan,
    reparented to us), and all of its descendants; how many were stopped."""
    me = os.getpid()
    stopped = 0
    for _ in range(_ROUNDS):
        parents = _parents()
        leftovers = {pid for pid, parent in parents.items() if parent == me} - before
        if not leftovers:
            break
        doomed = set(leftovers)
        grew = True
        while grew:  # their descendants too, so none is left to fork again
            more = {pid for pid, parent in parents.items() if parent in doomed} - doomed
            doomed |= more
            grew = bool(more)
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _reap(leftovers)
        stopped += len(leftovers)
    return stopped


def _reap(pids: Set[int]) -> None:
    """Wait for killed children of ours (reaped here, or they would stay zombies), for at most
    REAP_WAIT seconds: one stuck in the kernel (D state) is left rather than hanging the run."""
    deadline = time.monotonic() + REAP_WAIT
    pending = set(pids)
    while pending:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                pending.discard(pid)
        if pending:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
