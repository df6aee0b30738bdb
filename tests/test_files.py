"""Unit tests of interncli.files' locking and writing primitives, shared by the conversation
and config files (files.locked), the batch output (batch.holding) and the rate budget."""

from __future__ import annotations

import os

import pytest

from interncli import files
from interncli.errors import UsageError


def test_a_lock_another_open_file_holds_is_in_use_without_waiting(tmp_path):
    path = str(tmp_path / "out.jsonl")
    first = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    second = os.open(path, os.O_RDWR)
    try:
        files.lock_open_file(first, path)
        with pytest.raises(UsageError, match="out.jsonl is in use by another interncli run") as caught:
            files.lock_open_file(second, path, wait=False)
        assert caught.value.hint and "Wait for it to finish" in caught.value.hint
    finally:
        os.close(first)
    files.lock_open_file(second, path, wait=False)  # closing the first released it
    os.close(second)


def test_a_lock_the_system_refuses_is_an_error_naming_the_file(tmp_path):
    path = str(tmp_path / "state.json")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)  # flock on it now fails (EBADF), as it would on a file system without locks
    with pytest.raises(UsageError, match="cannot lock .*state.json"):
        files.lock_open_file(fd, path)


def test_locked_without_waiting_refuses_a_file_another_run_is_changing(tmp_path):
    path = str(tmp_path / "conversation.json")
    with files.locked(path):
        with pytest.raises(UsageError, match="is in use by another interncli run"):
            with files.locked(path, wait=False):
                pass  # pragma: no cover - never entered
    with files.locked(path, wait=False):
        assert os.path.exists(path + ".lock")
    assert not os.path.exists(path + ".lock")


def test_write_all_writes_every_byte(tmp_path):
    path = str(tmp_path / "big")
    data = os.urandom(3 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        files.write_all(fd, data)
        files.write_all(fd, b"end")
    finally:
        os.close(fd)
    with open(path, "rb") as fh:
        assert fh.read() == data + b"end"
