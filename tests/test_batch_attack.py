"""``chat batch`` and the shared rate budget under attack: outputs that are not this batch's, a
disk that fills up in the middle of a line, a hostile server's error codes, and a budget whose
waiters give up."""

from __future__ import annotations

import json
import os

import pytest

from tests.apiserver import Completion, err_code
from tests.batchhelpers import request_line, rows, write_input
from tests.conftest import SENTINEL

SHARED_SERVER = True


def test_an_output_that_is_the_input_under_another_name_is_refused(cli, api, tmp_path):
    source = write_input(tmp_path, 3)
    os.link(source, tmp_path / "out.jsonl")  # a hard link: another path, the same file
    result = cli("chat", "batch", str(source), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2 and "overwrite the input" in result.stderr
    assert api.calls() == []


def test_a_copy_of_the_input_given_as_output_is_not_taken_for_answers(cli, api, tmp_path):
    source = write_input(tmp_path, 3)
    out = tmp_path / "out.jsonl"
    out.write_text(source.read_text())  # the wrong file given to -o
    result = cli("chat", "batch", str(source), "-o", str(out))
    assert result.exit_code == 2
    assert "out.jsonl:1: not a batch answer" in result.stderr
    assert api.calls() == [] and out.read_text() == source.read_text()


def test_a_servers_error_code_holding_the_token_is_redacted_in_the_row(cli, api, tmp_path):
    api.add(err_code("bad key " + SENTINEL, "rejected", status=400))
    out = tmp_path / "out.jsonl"
    result = cli("chat", "batch", str(write_input(tmp_path, 1)), "-o", str(out))
    assert result.exit_code == 1
    assert SENTINEL not in out.read_text()
    assert rows(out)[0]["error"]["code"] is not None


def test_a_write_cut_short_by_a_full_disk_leaves_only_whole_lines(tmp_path):
    """A full disk takes part of a line, then fails: that part is taken back at once, so that a
    row written later (space freed meanwhile, by another worker of the run) does not follow it
    on the same line, which would make the output unreadable for the run that resumes it."""
    import resource

    from interncli import batch

    out = tmp_path / "out.jsonl"
    log = batch.AnswerLog(str(out))
    assert log.append({"id": "1", "custom_id": "a", "response": None, "error": None})
    size = out.stat().st_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, hard))  # room for 10 bytes more
    try:
        big = {"id": "2", "custom_id": "b", "response": {"body": "x" * 1000}, "error": None}
        try:
            log.append(big)
        except OSError:
            pass
        else:
            raise AssertionError("the write did not fail")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert not log.append({"id": "3", "custom_id": "c", "response": None, "error": None})  # the batch stops
    log.close()
    text = out.read_text()
    assert text.endswith("\n")
    assert [row["custom_id"] for row in rows(out)] == ["a"]


class Clock:
    """Wall time for a budget, moved on only by its sleep."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class GaveUp(Exception):
    """A wait given up (Ctrl-C; a stopped batch's worker)."""


def test_a_slot_given_up_while_waiting_for_it_goes_to_the_next_request(tmp_path):
    """A batch stopped by an auth error has a worker per --concurrency queued for its turn: each
    reserved a slot on its way out, and pushed every later request of the account (the next run,
    with the right token) one slot further back. A slot whose wait is given up is handed back."""
    from interncli.ratelimit import MARGIN, Budget

    clock = Clock()
    path = str(tmp_path / "rate" / "default@host.json")

    def give_up(seconds: float) -> None:
        raise GaveUp()

    assert Budget(path, 60, clock=clock, sleep=clock.sleep).take() == 0.0
    quitter = Budget(path, 60, clock=clock, sleep=give_up)
    for _ in range(5):
        try:
            quitter.take()
        except GaveUp:
            pass
        else:
            raise AssertionError("the wait was not given up")
    assert Budget(path, 60, clock=clock, sleep=clock.sleep).take() == pytest.approx(MARGIN)


def test_a_huge_bad_value_is_named_not_printed_whole(cli, api, tmp_path):
    """A bad method or url is quoted in the problem's line: a megabyte of it, on each of many
    lines, flooded the terminal with 50 MB."""
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"custom_id": "r{}".format(i), "method": method, "url": url,
                                          "body": {"messages": [{"role": "user", "content": "hi"}]}}) + "\n"
                              for i, (method, url) in enumerate([("POST", "/v1/" + "x" * 100000),
                                                                 ("P" * 100000, "/v1/chat/completions")])))
    result = cli("chat", "batch", str(source), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith(str(source) + ":")]
    assert len(problems) == 2 and all(len(line) < 400 for line in problems)
    assert "url must be /v1/chat/completions" in problems[0] and "method must be POST" in problems[1]


def test_a_retry_after_longer_than_interncli_waits_stops_the_batch_at_once(cli, api, tmp_path):
    """A server that asks for a wait of 1e9 s: retrying it ten times (each after a pause of two
    minutes with the budget on) kept a batch busy for twenty minutes before it said so."""
    api.add(err_code(-20053, "Exceeded frequency limit", status=429, headers={"Retry-After": "1e9"}), times=1000)
    out = tmp_path / "out.jsonl"
    result = cli("chat", "batch", str(write_input(tmp_path, 3)), "-o", str(out), "--concurrency", "1")
    assert result.exit_code == 4
    assert len(api.calls()) == 1
    assert "Retry-After" in result.stderr and "try again later" in result.stderr
    assert out.read_text() == ""


@pytest.mark.integration
def test_two_runs_writing_one_output_by_two_names_do_not_answer_twice(exe, api, tmp_path):
    """The lock of a run that writes an output is the lock file beside its path: a run given
    another name of the same file (a hard link) took its own, and both sent every request."""
    import subprocess

    from tests.apiserver import Slow

    api.add(Slow(0.2), times=1000)
    source, out, other = write_input(tmp_path, 10), tmp_path / "out.jsonl", tmp_path / "link.jsonl"
    out.write_text("")
    os.link(out, other)
    environ = dict(os.environ, INTERN_API_KEY=SENTINEL)
    runs = [subprocess.Popen([exe, "-b", api.base_url, "chat", "batch", str(source), "-o", str(path),
                              "--concurrency", "2"], env=environ, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for path in (out, other)]
    results = [(run.wait(60), run.stderr.read() if run.stderr else "") for run in runs]
    for run in runs:
        for stream in (run.stdout, run.stderr):
            if stream:
                stream.close()
    ids = [row["custom_id"] for row in rows(out)]
    assert sorted(ids) == sorted(set(ids)) == ["r{}".format(i) for i in range(10)], results
    assert all(code == 0 or (code == 2 and "in use by another interncli run" in err) for code, err in results)


def test_a_line_with_nan_is_bad_input_found_before_anything_is_sent(cli, api, tmp_path):
    """Python's JSON reader takes NaN and Infinity, which JSON has not: such a line passed the
    check, and its request failed later, as a row, after the rest had been sent."""
    source = tmp_path / "in.jsonl"
    good = request_line("a", "hi")
    source.write_text(good + "\n" + good.replace('"a"', '"b"').replace("]}}", '], "temperature": NaN}}') + "\n"
                      + good.replace('"a"', '"c"').replace("]}}", '], "top_p": -Infinity}}') + "\n")
    result = cli("chat", "batch", str(source), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith(str(source) + ":")]
    assert [p.split(":")[1] for p in problems] == ["2", "3"]
    assert "NaN" in problems[0] and "-Infinity" in problems[1]
    assert api.calls() == []


def test_a_line_with_a_lone_surrogate_in_its_body_is_bad_input(cli, api, tmp_path):
    """A \\ud800 with no pair is valid JSON text but no UTF-8 request can carry it: found when
    the line is checked, not when its turn comes."""
    source = tmp_path / "in.jsonl"
    source.write_text(request_line("a", "hi") + "\n" + request_line("b", "x\ud800y") + "\n"
                      + request_line("c", "pair \U0001f600 and \\ud800 written out") + "\n")
    result = cli("chat", "batch", str(source), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith(str(source) + ":")]
    assert [p.split(":")[1] for p in problems] == ["2"] and "not valid Unicode" in problems[0]
    assert api.calls() == []


def test_a_state_file_left_between_its_write_and_its_truncation_still_holds_the_pause(tmp_path, monkeypatch):
    """The state is written in place, then cut to its length: a run killed between the two left
    the new state followed by the tail of a longer old one, which is no JSON, so the next run
    started afresh and sent at once, inside the pause a Retry-After had asked every run for."""
    from interncli import ratelimit
    from interncli.errors import UsageError
    from interncli.ratelimit import Budget

    clock = Clock()
    path = tmp_path / "rate" / "default@host.json"
    path.parent.mkdir()
    # An old state written with long numbers; the new one (a pause) is shorter.
    path.write_text(json.dumps({"next": 0.123456789012345, "pause_until": 0.123456789012345,
                                "slow_until": 0.123456789012345, "factor": 1.0, "stamp": clock.now}))
    first = Budget(str(path), 60, clock=clock, sleep=clock.sleep)

    def killed(fd: int, length: int) -> None:
        raise OSError(4, "killed before the truncation")

    monkeypatch.setattr(ratelimit.os, "ftruncate", killed)
    try:
        first.slow_down(30.0)
    except UsageError:
        pass
    monkeypatch.undo()
    assert Budget(str(path), 60, clock=clock, sleep=clock.sleep).take() == pytest.approx(30.0)


@pytest.mark.integration
def test_an_auth_error_ends_the_batch_without_waiting_out_the_turns_queued(exe, api, tmp_path):
    """At one request a minute, a worker waits most of a minute for its turn; the batch stopped
    by an auth error still waited for it to end before it exited: a stopped run that looked
    hung for a minute (and up to eight, slowed down). The bound here is half that minute."""
    import subprocess

    api.add(err_code("A0202", "invalid token", status=401), times=1000)
    source, out = write_input(tmp_path, 4), tmp_path / "out.jsonl"
    environ = dict(os.environ, INTERN_API_KEY=SENTINEL, INTERN_RPM="1")
    proc = subprocess.Popen([exe, "-b", api.base_url, "chat", "batch", str(source), "-o", str(out),
                             "--concurrency", "2"], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the stopped batch was still waiting for a turn after 30 s")
    assert proc.returncode == 3, stderr
    assert "[A0202] invalid token" in stderr and len(api.calls()) == 1


def test_an_input_file_name_with_escape_sequences_does_not_reach_the_terminal(cli, api, tmp_path):
    """``for f in *.jsonl`` over files from elsewhere: a bad line is named with its file's name,
    which may hold an escape sequence (here one that sets the terminal's title)."""
    source = tmp_path / "in\x1b]0;owned\x07.jsonl"
    source.write_text("{not json\n")
    result = cli("chat", "batch", str(source), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "not valid JSON" in result.stderr


def test_concurrency_is_capped_where_the_replies_held_stay_under_a_gigabyte(cli, api, tmp_path):
    """Each request in flight may hold a 4 MiB reply, parsed and then written: about 9 MiB at
    its peak. 256 of them came to 2.3 GB against a local server; 64 stay under one."""
    result = cli("chat", "batch", str(write_input(tmp_path, 1)), "-o", str(tmp_path / "o"), "--concurrency", "65")
    assert result.exit_code == 2 and "1<=x<=64" in result.stderr and api.calls() == []


def test_a_state_folder_that_cannot_be_made_is_named_with_the_right_fix(cli, api, tmp_path):
    """The budget's folder is made on first use; when it cannot be (here under /proc, where
    nobody can make one, root included), the hint named the config folder's variable
    (INTERNCLI_CONFIG_DIR), which does not move it. And every request failed with exit 2: a
    read-only home (a container's CI step) stopped all of them; now they go unpaced, with one
    warning that says how to fix it."""
    api.add(Completion("one"))
    result = cli("chat", "create", "-g", "user", "hi", globals_=["--rpm", "30"],
                 env={"XDG_STATE_HOME": "/proc/no-such-folder"})
    assert (result.exit_code, result.stdout) == (0, "one\n")
    assert "INTERNCLI_CONFIG_DIR" not in result.stderr
    warning = [line for line in result.stderr.splitlines() if line.startswith("interncli: warning:")]
    assert len(warning) == 1 and "the shared rate budget is off for this run" in warning[0]
    assert "XDG_STATE_HOME" in warning[0] and "--rpm 0" in warning[0]
    assert len(api.calls()) == 1


def test_retry_failed_leaves_one_row_for_an_id_that_failed_and_succeeded(tmp_path):
    # A hand-merged output may hold both rows of one id: its failed row was kept beside the
    # answer, two rows for one custom_id.
    from interncli import batch

    out = tmp_path / "out.jsonl"
    ok = {"id": "r1", "custom_id": "a", "response": {"status_code": 200, "body": {}}, "error": None}
    bad = {"id": "r2", "custom_id": "a", "response": None, "error": {"code": 500, "message": "x"}}
    other = {"id": "r3", "custom_id": "b", "response": None, "error": {"code": 500, "message": "x"}}
    out.write_text("".join(json.dumps(r) + "\n" for r in (bad, ok, other)))
    answered = batch.read_output(str(out), retry_failed=True)
    assert answered.succeeded == {"a"} and answered.rewritten
    assert [(r["custom_id"], r["error"]) for r in rows(out)] == [("a", None)]
