"""A time limit on a block of pure computation (a schema check, a backtracking regular
expression), by SIGALRM: what a model or a spec sends must not hold a run for hours."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

# After a time limit's first alarm, the next ones until the block is left (see time_limit).
ALARM_AGAIN = 0.05


class TooSlow(BaseException):
    """Checking a value against a schema (a call's arguments, a --schema reply) ran out of time
    (a BaseException, so that no ``except Exception`` on the way, ours or jsonschema's, takes it
    for a broken schema)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TooSlow inside the block after ``seconds``: Python's re checks for signals while
    it backtracks, so SIGALRM stops a runaway match. Only where setitimer exists and on the main
    thread (signals are delivered there); elsewhere there is no limit."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(_signum: int, _frame: Any) -> None:
        # Again and again until the block is left: a handler's exception raised while a
        # finaliser runs (a __del__, a weakref callback, run by the garbage collector at any
        # moment) is swallowed and only printed, and a single alarm was then lost for good: a
        # check that should stop after 5 s ran for hours (seen under pytest-xdist).
        signal.setitimer(signal.ITIMER_REAL, ALARM_AGAIN)
        raise TooSlow()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
