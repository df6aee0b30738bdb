"""The rate budget that every interncli process of an account shares on this machine (contract
section 9): one small state file per profile and host, changed under its own ``flock``.

Requests are spread evenly by reservation: each one takes the next free slot, ``max(now,
next_free)``, and moves ``next_free`` on by ``60 / rpm`` seconds (and MARGIN); then it waits for its slot
with the lock released. Nothing is held while waiting, so a process that crashes holds nothing
(at most the one slot it had reserved goes unused). The threads of one process take their slots
one after another, so that a process has at most one slot reserved at a time and one-liners
started beside a batch get their turn among its requests.

A rate-limit answer that still arrives slows every process down together: nobody takes a slot
before the server's Retry-After has passed, and for SLOW_FOR seconds the slots are further apart
(twice as far for each further answer, up to MAX_SLOWDOWN times).

The file is shared between processes, so it holds wall-clock times (a monotonic clock is
per-process). The clock may step: a step forward only leaves past slots unused; a step back is
seen by the time of the last change to the file being in the future, and every time in the file
is moved back by the same amount, so the order of the slots survives and nobody waits for an
hour because the clock was set back an hour. Waiting itself is by durations, so a step during a
wait changes nothing."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple, TypeVar
from urllib.parse import quote

from interncli import files
from interncli.errors import MAX_RETRY_AFTER, UsageError

SLOW_FOR = 60.0  # seconds a rate-limit answer keeps the slots further apart
MAX_SLOWDOWN = 8  # slots at most this many times further apart than --rpm says
# Slots are this much further apart than --rpm says: a request sent on its slot reaches the
# server a little early or late (scheduling, the network), and an exact spacing would then put
# one over a limit counted in a window now and then.
MARGIN = 1.02
# Waits shorter than this are not worth a notice (a one-liner beside another one).
NOTICE_AFTER = 1.0
# Without a Retry-After, a rate-limit answer holds every process back this long.
DEFAULT_PAUSE = 2.0
# A longer Retry-After holds them back only this long (what the transport waits for at most): a
# server's answer must not stop every run of the account for a day.
MAX_PAUSE = MAX_RETRY_AFTER
# The state file is a few dozen bytes: anything much larger is not ours, and is started afresh.
STATE_LIMIT = 4096
# The clock may run a little back between processes (NTP slewing): not a step to correct for.
CLOCK_TOLERANCE = 1.0

T = TypeVar("T")
_HINT = "Check the state folder's permissions (XDG_STATE_HOME), or turn the budget off with --rpm 0."


def budget_path(state_dir: str, profile: str, host: str) -> str:
    """The state file of the budget of a profile and host (the account) in the state folder."""
    # quote: a profile name may hold '/' or '..'; the host is already a plain name.
    return os.path.join(state_dir, "rate", "{}@{}.json".format(quote(profile, safe=""), quote(host, safe="")))


class Budget:
    """The shared budget of one account: ``rpm`` requests a minute, at most, from all processes.

    ``clock`` gives wall time (time.time); ``sleep`` waits a duration (the app's, which a test
    replaces); ``notify`` is told, once per Budget, of a wait of NOTICE_AFTER seconds or more.
    ``unusable``: told once when the state file cannot be used (a read-only or full state
    folder, a planted symlink); the budget is then off for this run, and requests go unpaced
    rather than fail. Without it, that is an error (UsageError). ``ready``: called before each
    slot is reserved, once this thread's turn has come; it may raise to give the request up."""

    def __init__(self, path: str, rpm: float, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 notify: Optional[Callable[[float], None]] = None,
                 unusable: Optional[Callable[[UsageError], None]] = None,
                 ready: Optional[Callable[[], None]] = None) -> None:
        if rpm <= 0:
            raise ValueError("a budget needs rpm above 0")
        self.path = path
        self.rpm = rpm
        self._clock = clock
        self._sleep = sleep
        self._notify = notify
        self._told = False
        self._unusable = unusable
        self._ready = ready
        self._broken = False
        # One thread at a time reserves and waits: see the module's docstring.
        self._gate = threading.Lock()

    @property
    def interval(self) -> float:
        """Seconds between two slots at the full rate (a little over 60 / rpm: see MARGIN)."""
        return 60.0 / self.rpm * MARGIN

    def take(self) -> float:
        """Reserve the next slot and wait for it; the seconds waited."""
        with self._gate:
            if self._broken:
                return 0.0
            if self._ready is not None:
                self._ready()  # may raise: the request is given up before it holds a slot
            try:
                now, slot, after = self._reserve()
            except UsageError as err:
                self._give_up(err)
                return 0.0
            reserved = slot
            waited = 0.0
            try:
                while slot > now:
                    wait = slot - now
                    if not self._told and self._notify is not None and wait >= NOTICE_AFTER:
                        self._told = True
                        self._notify(wait)
                    self._sleep(wait)
                    waited += wait
                    # A rate-limit answer may have come while this slot was waited for: then wait
                    # until the pause it asked for is over too. The wait is taken as done even if
                    # the clock says otherwise (a sleep cut short, a clock step).
                    now = max(self._clock(), slot)
                    try:
                        slot = self._paused_until()
                    except UsageError as err:
                        self._give_up(err)
                        break
            except BaseException:
                # Given up (Ctrl-C; a stopped batch, whose every worker was queued for a turn):
                # an unused slot would push every later request of the account back by one.
                self._give_back(reserved, after)
                raise
            return waited

    def slow_down(self, retry_after: Optional[float]) -> None:
        """A rate-limit answer arrived: hold every process back for ``retry_after`` seconds
        (DEFAULT_PAUSE without one), and space the slots further apart for a while."""
        pause = min(MAX_PAUSE, retry_after) if retry_after is not None and retry_after >= 0 else DEFAULT_PAUSE

        def slow(state: Dict[str, float], now: float) -> None:
            slowed = now < state["slow_until"]
            # Answers that come while an earlier one's pause still runs are one burst (the
            # requests that were in flight together): they do not double the spacing again, or
            # a batch of N in flight would run 8 times slower for a minute after one refusal.
            if now >= state["pause_until"]:
                state["factor"] = min(MAX_SLOWDOWN, state["factor"] * 2 if slowed else 2)
            state["slow_until"] = now + SLOW_FOR
            state["pause_until"] = max(state["pause_until"], now + pause)
            state["next"] = max(state["next"], now + pause)

        if self._broken:
            return
        try:
            self._change(slow)
        except UsageError as err:
            self._give_up(err)

    def _give_up(self, err: UsageError) -> None:
        """The state file cannot be used: raise, or (with ``unusable``) say so once and turn the
        budget off for this run."""
        if self._unusable is None:
            raise err
        self._broken = True
        self._unusable(err)

    def _reserve(self) -> Tuple[float, float, float]:
        """(now, the slot reserved, the next free slot after it)."""

        def reserve(state: Dict[str, float], now: float) -> Tuple[float, float, float]:
            factor = state["factor"] if now < state["slow_until"] else 1
            slot = max(now, state["next"], state["pause_until"])
            state["next"] = slot + self.interval * factor
            return now, slot, state["next"]

        return self._change(reserve)

    def _give_back(self, slot: float, after: float) -> None:
        """Free ``slot`` again, if nobody has reserved one after it meanwhile (the next free slot
        is still the one after it); a failure to is left unsaid: the caller's own error counts."""

        def give_back(state: Dict[str, float], now: float) -> None:
            if state["next"] == after:
                state["next"] = slot

        try:
            self._change(give_back)
        except UsageError:
            pass

    def _paused_until(self) -> float:
        return self._change(lambda state, now: state["pause_until"])

    def _change(self, update: Callable[[Dict[str, float], float], T]) -> T:
        """Read the state, ``update`` it (given the time), write it back, all under the lock of
        the state file itself: it is never replaced or removed, so its lock is always the one
        others wait on, and the kernel releases it when a process dies, kill -9 included. (No
        separate lock file, as files.locked makes one per change: five times the cost.)"""
        try:
            try:
                fd = self._open()
            except FileNotFoundError:  # the first use: no state folder yet
                self._make_dir()
                fd = self._open()
            try:
                files.lock_open_file(fd, self.path)
                now = self._clock()
                raw = os.pread(fd, STATE_LIMIT + 1, 0)
                state = _load(raw, now)
                result = update(state, now)
                state["stamp"] = now
                # One small write in place: never seen half done by another process (they wait
                # for the lock), and a crash of the machine that loses it forgets only the
                # spacing of a few requests, so nothing is synced. Padded with spaces over the
                # old state, so that a run killed before the truncation leaves valid JSON.
                data = json.dumps(state, separators=(",", ":")).encode("ascii").ljust(min(len(raw), STATE_LIMIT))
                os.pwrite(fd, data, 0)
                os.ftruncate(fd, len(data))
                return result
            finally:
                os.close(fd)  # releases the lock
        except OSError as exc:
            raise UsageError("cannot use the shared rate budget {}: {}".format(self.path, exc.strerror or exc),
                             hint=_HINT) from exc

    def _make_dir(self) -> None:
        # files.make_dir's hint is about the config folder, which is not this one.
        try:
            files.make_dir(os.path.dirname(self.path))
        except UsageError as err:
            err.hint = _HINT
            raise

    def _open(self) -> int:
        # Not through a symlink: the state folder is the user's, but a planted link must not
        # make interncli write elsewhere.
        return os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)


def _load(raw: bytes, now: float) -> Dict[str, float]:
    """The state in ``raw`` (a fresh one if it is empty or not a state), its times moved back
    if the clock has stepped back since the file was last changed."""
    state = {"next": 0.0, "pause_until": 0.0, "slow_until": 0.0, "factor": 1.0, "stamp": now}
    found = _parse(raw)
    if found is None:
        return state
    state.update(found)
    step = state["stamp"] - now
    if step > CLOCK_TOLERANCE:  # the clock went back: so do the times in the file
        for key in ("next", "pause_until", "slow_until"):
            state[key] -= step
    return state


def _parse(raw: bytes) -> Optional[Dict[str, float]]:
    """The numbers of a state file, or None for anything that is not one."""
    if len(raw) > STATE_LIMIT:
        return None
    try:
        obj: Any = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    keys = ("next", "pause_until", "slow_until", "factor", "stamp")
    if not isinstance(obj, dict) or not all(type(obj.get(k)) in (int, float) for k in keys):
        return None
    values = {k: float(obj[k]) for k in keys}
    if not all(v == v and abs(v) < 1e12 for v in values.values()):  # no NaN, no absurd times
        return None
    values["factor"] = min(float(MAX_SLOWDOWN), max(1.0, values["factor"]))
    return values
