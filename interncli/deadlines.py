"""Deadlines on blocking socket reads: one thread per process shuts a socket down when its
deadline passes, which makes a read blocked in it return at once.

A socket timeout bounds each read, not a whole reply: a server that sends a byte a second
never trips it (see transport.Response._pieces). Starting a thread per request to watch the
clock cost more than the request itself when many were in flight (chat batch at concurrency
64 ran at 0.7x a bare requests script), so every request's :class:`Watch` goes on one heap
that a single daemon thread serves, started on first use.

The heap is lazy: a watch whose deadline moved later, or that is paused (``deadline`` None
while its reply is with the caller), is looked at again when its entry comes up, and a stopped
watch is dropped then. Deadlines only move later while a watch is armed, so the entry's time
is never after the watch's real deadline, except while paused: a paused watch is looked at
every ``PAUSED_CHECK`` seconds, so a deadline set on resuming is seen within that. Stopped
entries are swept out once they are half the heap, so the heap stays as large as what is in
flight, whatever the timeout.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any, List, Optional, Tuple

# How often a paused watch is looked at again.
PAUSED_CHECK = 0.5
# Stopped entries are swept out when they are at least half the heap and this many.
SWEEP_AT = 64


class Watch:
    """One request's deadline. ``deadline`` is a time.monotonic() value, or None while paused;
    the owner may move it later at any time, without a lock. ``fired`` tells a failed read that
    the deadline, not the server, ended it."""

    __slots__ = ("deadline", "fired", "stopped", "_sock", "_keeper", "_queued")

    def __init__(self, keeper: "Keeper", deadline: Optional[float]) -> None:
        self.deadline = deadline
        self.fired = False
        self.stopped = False
        self._sock: Optional[socket.socket] = None
        self._keeper = keeper
        self._queued = False

    def attach(self, sock: Any) -> None:
        """Watch ``sock`` from now on (a new connection's, or a pooled one being reused); a
        watch that already fired shuts it down at once."""
        # An HTTPS proxy's TLS-in-TLS tunnel object is no socket; the socket under it is.
        plain = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)
        with self._keeper.lock:
            self._sock = plain if isinstance(plain, socket.socket) else None
            if self.fired and not self.stopped:
                _shut(self._sock)

    def stop(self) -> None:
        """The reply was read or given up on: never touch the socket again (it may go back to
        the pool for another request)."""
        self._keeper.stop(self)


class Keeper:
    """The heap of armed watches and the one thread that fires them."""

    def __init__(self, paused_check: float = PAUSED_CHECK) -> None:
        self.lock = threading.Condition(threading.Lock())
        self._paused_check = paused_check
        self._heap: List[Tuple[float, int, Watch]] = []
        self._order = itertools.count()  # ties never compare two watches
        self._stale = 0  # stopped watches still on the heap
        self._thread: Optional[threading.Thread] = None

    def watch(self, deadline: float) -> Watch:
        """A new armed watch with no socket yet (see :meth:`Watch.attach`)."""
        entry = Watch(self, deadline)
        with self.lock:
            self._push(deadline, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="interncli-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is entry:
                self.lock.notify()
        return entry

    def stop(self, entry: Watch) -> None:
        """See :meth:`Watch.stop`."""
        with self.lock:
            if entry.stopped:
                return
            entry.stopped = True
            entry._sock = None  # a stopped entry waiting on the heap must not keep a socket alive
            if entry._queued:
                self._stale += 1
                if self._stale >= SWEEP_AT and self._stale * 2 >= len(self._heap):
                    self._sweep()

    def pending(self) -> int:
        """How many entries the heap holds (stopped ones not yet swept included)."""
        with self.lock:
            return len(self._heap)

    def reset_after_fork(self) -> None:
        """In a forked child the thread is gone, and the watches are the parent's."""
        self.lock = threading.Condition(threading.Lock())
        self._heap = []
        self._stale = 0
        self._thread = None

    def _push(self, when: float, entry: Watch) -> None:
        entry._queued = True
        heapq.heappush(self._heap, (when, next(self._order), entry))

    def _sweep(self) -> None:
        self._heap = [item for item in self._heap if not item[2].stopped]
        heapq.heapify(self._heap)
        self._stale = 0

    def _serve(self) -> None:
        with self.lock:
            while True:
                if not self._heap:
                    self.lock.wait()
                    continue
                when, _, entry = self._heap[0]
                now = time.monotonic()
                if entry.stopped:
                    heapq.heappop(self._heap)
                    entry._queued = False
                    self._stale -= 1
                    continue
                if when > now:
                    self.lock.wait(when - now)
                    continue
                heapq.heappop(self._heap)
                entry._queued = False
                deadline = entry.deadline
                if deadline is None:
                    self._push(now + self._paused_check, entry)
                elif deadline > now:
                    self._push(deadline, entry)
                else:
                    # Under the lock, so a watch being stopped (its socket going back to the
                    # pool) is never shut down after stop() returned.
                    entry.fired = True
                    _shut(entry._sock)


def _shut(sock: Optional[socket.socket]) -> None:
    """Shut the connection under ``sock`` down, leaving a TLS socket's TLS in place: the
    plain socket's own method, as ssl.SSLSocket.shutdown drops the TLS state first, and a send
    racing with it in the owner's thread would then go out in clear text (SSLSocket.send falls
    back to the plain socket's). The owner's next read or write fails instead."""
    if sock is None:
        return
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


KEEPER = Keeper()
os.register_at_fork(after_in_child=KEEPER.reset_after_fork)
