"""The ``--conversation`` file and the lock files behind every read-change-write: concurrent
runs keep every turn, bad paths are refused before anything is sent, errors name the file, and
no ``.lock`` file is left behind."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import threading
from typing import Any, List

import pytest

from interncli.files import locked, write_atomic
from tests.apiserver import Recorded, Reply, default_reply
from tests.conftest import PNG, SENTINEL

PROCESS_TIMEOUT = 30.0


class Together(Reply):
    """The default echo, sent only once ``count`` requests have arrived (at most ``timeout`` s):
    so every run has read the conversation file before any of them writes it back."""

    def __init__(self, count: int, timeout: float = 10.0) -> None:
        self.barrier = threading.Barrier(count, timeout=timeout)

    def respond(self, h: Any, req: Recorded) -> None:
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:  # a run never came: answer anyway, the test will say why
            pass
        default_reply(req).respond(h, req)


def _env() -> dict:
    env = dict(os.environ)
    env["INTERN_API_KEY"] = SENTINEL
    return env


# ------------------------------------------------------------------------- concurrency


@pytest.mark.integration
def test_two_concurrent_runs_on_one_file_keep_both_turns(exe, api, tmp_path):
    path = tmp_path / "talk.json"
    path.write_text(json.dumps([{"role": "user", "content": "zero"}, {"role": "assistant", "content": "echo: zero"}]))
    api.add(Together(2), times=2)
    procs = [subprocess.Popen([exe, "-b", api.base_url, "chat", "create", "--conversation", str(path),
                               "-g", "user", word], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=_env())
             for word in ("one", "two")]
    results = [p.communicate(timeout=PROCESS_TIMEOUT) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    # Both runs sent the history as it was before either of them wrote: they really overlapped.
    assert [len(r.json["messages"]) for r in api.calls()] == [3, 3]
    saved = json.loads(path.read_text())
    assert saved[:2] == [{"role": "user", "content": "zero"}, {"role": "assistant", "content": "echo: zero"}]
    turns = [saved[2:4], saved[4:6]]
    expected = [[{"role": "user", "content": w}, {"role": "assistant", "content": "echo: " + w}]
                for w in ("one", "two")]
    assert sorted(turns, key=json.dumps) == sorted(expected, key=json.dumps)
    assert sorted(os.listdir(tmp_path)) == ["talk.json"]  # no lock file, no temporary file


def test_concurrent_writers_under_the_lock_serialise(tmp_path):
    # Each writer reads, waits a little and writes back: without the lock, or with a lock that a
    # waiter may hold on a lock file already unlinked (no same-inode check), increments are lost
    # (tried: 30-40 of 100 kept when the check is left out).
    path = str(tmp_path / "counter")
    write_atomic(path, "0")
    errors: List[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(25):
                with locked(path):
                    with open(path) as fh:
                        value = int(fh.read())
                    threading.Event().wait(0.001)
                    write_atomic(path, str(value + 1))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and not any(t.is_alive() for t in threads)
    with open(path) as fh:
        assert fh.read() == "100"
    assert os.listdir(tmp_path) == ["counter"]


def test_a_lock_file_left_by_an_earlier_run_is_removed(cli, api, tmp_path):
    path = tmp_path / "talk.json"
    (tmp_path / "talk.json.lock").write_text("")  # as every earlier version left them
    assert cli("chat", "create", "--conversation", str(path), "-g", "user", "x").exit_code == 0
    assert os.listdir(tmp_path) == ["talk.json"]


def test_config_set_leaves_no_lock_file(cli, config_dir):
    assert cli("config", "set", "model", "m").exit_code == 0
    assert os.listdir(config_dir) == ["config.yaml"]


# ------------------------------------------------------------------------ refused paths


@pytest.mark.parametrize("name", ["", "-"])
def test_an_empty_name_or_dash_is_refused(cli, api, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    result = cli("chat", "create", "--conversation", name, "-g", "user", "x")
    assert result.exit_code == 2 and "--conversation" in result.stderr and "hint:" in result.stderr
    assert api.requests == [] and os.listdir(tmp_path) == []  # no file named "-"


def test_a_read_only_file_is_refused_before_sending(cli, api, tmp_path):
    path = tmp_path / "talk.json"
    path.write_text("[]")
    path.chmod(0o444)
    result = cli("chat", "create", "--conversation", str(path), "-g", "user", "x")
    assert result.exit_code == 2 and "read-only" in result.stderr and str(path) in result.stderr
    assert api.requests == [] and path.read_text() == "[]"


def test_a_file_in_a_read_only_folder_is_refused_before_sending(cli, api, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = cli("chat", "create", "--conversation", str(folder / "talk.json"), "-g", "user", "x")
    finally:
        folder.chmod(0o755)
    assert result.exit_code == 2 and "not writable" in result.stderr
    assert api.requests == [] and os.listdir(folder) == []


# ----------------------------------------------------------------------------- contents


def test_a_file_with_a_byte_order_mark_is_accepted(cli, api, tmp_path):
    path = tmp_path / "talk.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([{"role": "user", "content": "zero"}]).encode())
    result = cli("chat", "create", "--conversation", str(path), "-g", "user", "one")
    assert result.exit_code == 0, result.stderr
    assert api.last.json["messages"] == [{"role": "user", "content": "zero"}, {"role": "user", "content": "one"}]
    assert json.loads(path.read_bytes())[-1] == {"role": "assistant", "content": "echo: one"}


@pytest.mark.integration
def test_an_error_writing_the_file_names_it_and_keeps_the_old_one(exe, api, tmp_path):
    path = tmp_path / "talk.json"
    old = json.dumps([{"role": "user", "content": "zero " * 100}], ensure_ascii=False, indent=2) + "\n"
    path.write_text(old)

    def small_files() -> None:  # in the child: files may not grow past the current one's size
        # Python ignores SIGXFSZ, so an oversized write fails with EFBIG ("File too large").
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(old), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    proc = subprocess.run([exe, "-b", api.base_url, "chat", "create", "--conversation", str(path), "-g", "user",
                           "one"], stdin=subprocess.DEVNULL, capture_output=True, env=_env(),
                          preexec_fn=small_files, timeout=PROCESS_TIMEOUT)
    stderr = proc.stderr.decode()
    assert proc.returncode == 2, stderr
    assert "cannot write {}".format(path) in stderr and "stdout" not in stderr
    assert proc.stdout == b"echo: one\n"  # the reply was printed before the file was written
    assert path.read_text() == old and sorted(os.listdir(tmp_path)) == ["talk.json"]


def test_an_image_never_goes_to_a_message_from_the_history(cli, api, tmp_path):
    path = tmp_path / "talk.json"
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "echo: earlier"}]
    path.write_text(json.dumps(history))
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    result = cli("chat", "create", "--conversation", str(path), "-g", "system", "x", "--image", str(image))
    assert result.exit_code == 2 and "user message" in result.stderr and api.requests == []
    result = cli("chat", "create", "--conversation", str(path), "-g", "user", "this", "--image", str(image))
    assert result.exit_code == 0
    sent = api.last.json["messages"]
    assert sent[:2] == history and isinstance(sent[2]["content"], list)


def test_a_lock_file_that_is_a_symlink_is_not_followed(cli, api, tmp_path):
    # In a shared folder another user could plant talk.json.lock -> a file of yours.
    victim = tmp_path / "victim"
    victim.write_text("keep")
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "talk.json.lock").symlink_to(victim)
    result = cli("chat", "create", "--conversation", str(folder / "talk.json"), "-g", "user", "x")
    assert result.exit_code == 2 and "cannot lock" in result.stderr
    assert victim.read_text() == "keep" and (folder / "talk.json.lock").is_symlink()


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_the_folder_is_synced_after_the_rename(exe, api, tmp_path):
    # Without it, a crash just after the rename can bring back the old file (ext4, xfs).
    path = tmp_path / "talk.json"
    log = tmp_path / "strace.log"
    proc = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat,fsync,rename", "-o", str(log), exe,
                           "-b", api.base_url, "chat", "create", "--conversation", str(path), "-g", "user", "x"],
                          stdin=subprocess.DEVNULL, capture_output=True, env=_env(), timeout=PROCESS_TIMEOUT)
    if proc.returncode != 0 and b"ptrace" in proc.stderr:
        pytest.skip("strace cannot trace here: " + proc.stderr.decode()[:200])
    assert proc.returncode == 0, proc.stderr
    calls = [line.split(None, 1)[1] for line in log.read_text().splitlines() if " " in line]
    renamed = next(i for i, call in enumerate(calls) if call.startswith("rename(") and '"{}")'.format(path) in call)
    opened = re.compile(r'openat\(AT_FDCWD, "{}", O_RDONLY[^)]*\) = (\d+)'.format(re.escape(str(tmp_path))))
    folder_fds = [m.group(1) for m in (opened.match(call) for call in calls[renamed:]) if m]
    synced = re.compile(r"fsync\({}\)\s+= 0".format(folder_fds[0] if folder_fds else "-"))  # strace pads
    assert folder_fds and any(synced.match(call) for call in calls[renamed:])
