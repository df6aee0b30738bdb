"""Unit tests of interncli.deadlines: one thread shuts sockets down at their deadlines.

Each test has a Keeper of its own and a real socket pair; a read that the keeper should end is
given a socket timeout of its own as well, so a keeper that failed would fail the test with
socket.timeout rather than hang it. Nothing here asserts how long anything took: only whether
the read ended because the watch fired, or not at all.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterator, Tuple

import pytest

from interncli.deadlines import SWEEP_AT, Keeper
from tests.conftest import wait_until

SAFETY = 10.0  # seconds: only reached if the keeper did not do its job


@pytest.fixture
def pair() -> Iterator[Tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(SAFETY)
    try:
        yield ours, theirs
    finally:
        ours.close()
        theirs.close()


def test_a_read_blocked_past_the_deadline_ends_and_the_watch_says_why(pair):
    ours, _ = pair
    keeper = Keeper()
    watch = keeper.watch(time.monotonic() + 0.05)
    watch.attach(ours)
    assert ours.recv(10) == b""  # the shut-down socket, not the server, ended the read
    assert watch.fired


def test_a_stopped_watch_never_touches_its_socket(pair):
    ours, theirs = pair
    keeper = Keeper()
    watch = keeper.watch(time.monotonic() + 0.05)
    watch.attach(ours)
    watch.stop()
    gone = keeper.watch(time.monotonic() + 0.1)  # a later watch firing shows the first one's time passed
    wait_until(lambda: gone.fired, "the keeper to fire", SAFETY)
    theirs.sendall(b"still open")
    assert ours.recv(10) == b"still open" and not watch.fired


def test_a_deadline_moved_later_is_honoured(pair):
    ours, theirs = pair
    keeper = Keeper()
    watch = keeper.watch(time.monotonic() + 0.05)
    watch.attach(ours)
    watch.deadline = time.monotonic() + SAFETY * 3  # moved before the keeper looked
    marker = keeper.watch(time.monotonic() + 0.2)
    wait_until(lambda: marker.fired, "the keeper to fire", SAFETY)
    assert not watch.fired
    theirs.sendall(b"x")
    assert ours.recv(1) == b"x"
    watch.stop()


def test_a_paused_watch_waits_and_fires_once_resumed_past_its_deadline(pair):
    ours, _ = pair
    keeper = Keeper(paused_check=0.02)
    watch = keeper.watch(time.monotonic() + 0.01)
    watch.deadline = None  # the reply is with the caller: no deadline while it holds it
    watch.attach(ours)
    time.sleep(0.1)  # several looks at the paused watch
    assert not watch.fired
    watch.deadline = time.monotonic()  # reading again, with no budget left
    assert ours.recv(10) == b""
    assert watch.fired


def test_attaching_a_socket_to_a_watch_that_fired_shuts_it_at_once(pair):
    ours, _ = pair
    keeper = Keeper()
    watch = keeper.watch(time.monotonic())
    # Fired while no socket was attached yet (a connect under way).
    wait_until(lambda: watch.fired, "the keeper to fire", SAFETY)
    watch.attach(ours)
    assert ours.recv(10) == b""


def test_a_watch_can_move_to_a_pooled_socket(pair):
    ours, theirs = pair
    keeper = Keeper()
    first, second = socket.socketpair()
    try:
        watch = keeper.watch(time.monotonic() + 0.05)
        watch.attach(first)  # a new connection's socket ...
        watch.attach(ours)  # ... replaced by the pooled one the request really used
        assert ours.recv(10) == b""
        second.sendall(b"y")
        assert first.recv(1) == b"y"
    finally:
        first.close()
        second.close()


def test_many_watches_share_one_thread():
    keeper = Keeper()
    before = threading.active_count()
    watches = [keeper.watch(time.monotonic() + 60) for _ in range(200)]
    assert threading.active_count() == before + 1
    for watch in watches:
        watch.stop()


def test_stopped_watches_do_not_pile_up_whatever_the_timeout():
    keeper = Keeper()
    for _ in range(20 * SWEEP_AT):
        keeper.watch(time.monotonic() + 600).stop()  # one request after another, each read whole
    assert keeper.pending() <= 2 * SWEEP_AT
    live = [keeper.watch(time.monotonic() + 600) for _ in range(3 * SWEEP_AT)]
    for _ in range(20 * SWEEP_AT):
        keeper.watch(time.monotonic() + 600).stop()
    assert keeper.pending() <= len(live) * 2 + 2 * SWEEP_AT
    assert not any(watch.stopped for watch in live)
