"""``chat batch``: the input checked whole, answers appended exactly once, resume and repair,
errors in the rows, rate limits retried, auth errors stopping the run, progress on stderr; and,
as real processes, kill -9 and Ctrl-C in the middle of a batch, on a pipe and on a terminal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from interncli import batch, files
from tests.apiserver import Completion, Limited, Slow, err_code
from tests.batchhelpers import request_line, rows, write_input
from tests.conftest import SENTINEL
from tests.ptyrun import run_on_pty

SHARED_SERVER = True


def by_id(path: Path) -> Dict[str, Dict[str, Any]]:
    found = rows(path)
    ids = [row["custom_id"] for row in found]
    assert len(ids) == len(set(ids)), "a custom_id answered twice"
    return {row["custom_id"]: row for row in found}


# ------------------------------------------------------------------ the happy path

def test_every_request_is_answered_once_in_the_batch_format(cli, api, tmp_path):
    source, out = write_input(tmp_path), tmp_path / "out.jsonl"
    result = cli("chat", "batch", str(source), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    answers = by_id(out)
    assert sorted(answers) == ["r0", "r1", "r2", "r3", "r4"]
    row = answers["r3"]
    assert row["id"].startswith("batch_req_") and row["error"] is None
    assert row["response"]["status_code"] == 200
    assert row["response"]["body"]["choices"][0]["message"]["content"] == "echo: hello 3"
    assert len(api.calls()) == 5
    assert "batch: 5 answered, 0 failed" in result.stderr
    assert os.stat(out).st_mode & 0o777 == 0o600


def test_the_body_is_sent_as_given_with_the_profiles_model_when_it_names_none(cli, api, tmp_path, config_dir):
    (config_dir / "config.yaml").write_text("profiles:\n  default:\n    model: my-model\n")
    source = tmp_path / "in.jsonl"
    source.write_text(request_line("a", "one", temperature=0.5, top_k=3) + "\n\n"
                      + request_line("b", "two", model="intern-s1") + "\n")
    result = cli("chat", "batch", str(source), "-o", str(tmp_path / "out.jsonl"), "--concurrency", "1")
    assert result.exit_code == 0, result.stderr
    sent = {r.json["messages"][0]["content"]: r.json for r in api.calls()}
    assert sent["one"] == {"model": "my-model", "messages": [{"role": "user", "content": "one"}],
                           "temperature": 0.5, "top_k": 3}
    assert sent["two"]["model"] == "intern-s1"


def test_a_second_run_skips_what_was_answered(cli, api, tmp_path):
    source, out = write_input(tmp_path), tmp_path / "out.jsonl"
    assert cli("chat", "batch", str(source), "-o", str(out)).exit_code == 0
    api.reset()
    source.write_text(source.read_text() + request_line("r5", "new one") + "\n")
    result = cli("chat", "batch", str(source), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert [r.json["messages"][0]["content"] for r in api.calls()] == ["new one"]
    assert len(by_id(out)) == 6
    assert "1 answered, 0 failed, 5 skipped" in result.stderr


def test_a_cut_last_line_is_repaired_and_its_request_sent_again(cli, api, tmp_path):
    source, out = write_input(tmp_path, 3), tmp_path / "out.jsonl"
    assert cli("chat", "batch", str(source), "-o", str(out), "--concurrency", "1").exit_code == 0
    whole = out.read_text().splitlines()
    cut_id = json.loads(whole[-1])["custom_id"]
    out.write_text(whole[0] + "\n" + whole[1] + "\n" + whole[2][:40])  # killed while writing the last
    api.reset()
    result = cli("chat", "batch", str(source), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert "last line was cut" in result.stderr
    assert [r.json["messages"][0]["content"] for r in api.calls()] == ["hello " + cut_id[1:]]
    assert sorted(by_id(out)) == ["r0", "r1", "r2"]


def test_an_output_that_is_not_a_batch_output_is_refused(cli, api, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("hello\n")
    result = cli("chat", "batch", str(write_input(tmp_path)), "-o", str(out))
    assert result.exit_code == 2
    assert "out.jsonl:1: not a batch answer" in result.stderr
    assert api.calls() == [] and out.read_text() == "hello\n"


def test_the_output_may_not_be_the_input(cli, api, tmp_path):
    source = write_input(tmp_path)
    result = cli("chat", "batch", str(source), "-o", str(source))
    assert result.exit_code == 2 and "overwrite the input" in result.stderr


def test_an_output_another_run_is_writing_is_refused(cli, api, tmp_path):
    out = tmp_path / "out.jsonl"
    with files.locked(str(out)):
        result = cli("chat", "batch", str(write_input(tmp_path)), "-o", str(out))
    assert result.exit_code == 2
    assert "in use by another interncli run" in result.stderr
    assert api.calls() == []


# ------------------------------------------------------------------ bad input

def test_bad_input_names_every_bad_line_and_sends_nothing(cli, api, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([
        request_line("a", "fine"),
        "{not json",
        json.dumps({"method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{}]}}),
        json.dumps({"custom_id": "c", "url": "/v1/embeddings", "body": {"messages": [{}]}}),
        request_line("a", "again"),
        json.dumps({"custom_id": "d", "url": "/v1/chat/completions", "body": {"messages": []}}),
        json.dumps({"custom_id": "e", "url": "/v1/chat/completions", "body": {"messages": [{}], "stream": True}}),
        "[1, 2]",
    ]) + "\n")
    result = cli("chat", "batch", str(source), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    problems = [line for line in lines if line.startswith(str(source) + ":")]
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4", "5", "6", "7", "8"]
    assert "not valid JSON" in problems[0]
    assert "custom_id must be a non-empty string" in problems[1]
    assert "url must be /v1/chat/completions" in problems[2]
    assert "custom_id 'a' is used already, on line 1" in problems[3]
    assert "body.messages must be a non-empty list" in problems[4]
    assert "body.stream" in problems[5]
    assert "not a JSON object" in problems[6]
    assert "7 bad lines; nothing was sent" in result.stderr and "hint:" in result.stderr
    assert api.calls() == []
    assert not (tmp_path / "out.jsonl").exists()


def test_bad_input_under_json_is_json_lines(cli, api, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(request_line("a", "x") + "\n" + request_line("a", "y") + "\n")
    result = cli("chat", "batch", "--json", str(source), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    found = [json.loads(line) for line in result.stderr.splitlines()]
    assert found[0] == {"problem": "custom_id 'a' is used already, on line 1", "path": str(source), "line": 2}
    assert found[1]["error"]["exit_code"] == 2


@pytest.mark.parametrize("content, message", [("", "holds no request"), ("\n\n", "holds no request")])
def test_an_empty_input_is_refused(cli, api, tmp_path, content, message):
    source = tmp_path / "in.jsonl"
    source.write_text(content)
    result = cli("chat", "batch", str(source), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2 and message in result.stderr


def test_a_missing_input_is_a_usage_error(cli, api, tmp_path):
    result = cli("chat", "batch", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2 and "cannot read" in result.stderr and "hint:" in result.stderr


def test_a_bad_concurrency_is_a_usage_error(cli, api, tmp_path):
    result = cli("chat", "batch", str(write_input(tmp_path)), "-o", str(tmp_path / "o"), "--concurrency", "0")
    assert result.exit_code == 2 and api.calls() == []


# ------------------------------------------------------------------ errors

def test_a_failed_request_is_a_row_with_its_error_and_the_batch_goes_on(cli, api, tmp_path):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(request_line("good", "hi") + "\n" + request_line("bad", "hi", model="no-such-model") + "\n")
    result = cli("chat", "batch", str(source), "-o", str(out))
    assert result.exit_code == 1
    answers = by_id(out)
    assert answers["good"]["error"] is None
    error = answers["bad"]["error"]
    assert error["code"] == -20013 and error["exit_code"] == 5 and error["meaning"] == "rejected"
    assert error["http_status"] == 400 and answers["bad"]["response"]["status_code"] == 400
    assert "1 of 2 requests failed" in result.stderr and "--retry-failed" in result.stderr

    # Run again: the failed one is not sent again, unless asked.
    api.reset()
    assert cli("chat", "batch", str(source), "-o", str(out)).exit_code == 1
    assert api.calls() == []
    source.write_text(request_line("good", "hi") + "\n" + request_line("bad", "hi", model="intern-s1") + "\n")
    result = cli("chat", "batch", str(source), "-o", str(out), "--retry-failed")
    assert result.exit_code == 0, result.stderr
    assert len(api.calls()) == 1
    answers = by_id(out)  # one row per custom_id: the failed one was replaced
    assert answers["bad"]["error"] is None


def test_a_network_failure_is_a_row_with_no_response(cli, tmp_path, closed_port_url):
    from tests.conftest import invoke

    result = invoke(["-b", closed_port_url, "-k", SENTINEL, "--max-retries", "0", "chat", "batch",
                     str(write_input(tmp_path, 1)), "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 1
    row = rows(tmp_path / "out.jsonl")[0]
    assert row["response"] is None and row["error"]["exit_code"] == 6 and row["error"]["meaning"] == "network"


def test_rate_limit_answers_mid_batch_are_retried_never_written_as_failures(cli, api, tmp_path, sleeps):
    api.add(Completion("first"))
    api.add(err_code(-20053, "Exceeded frequency limit", status=429, headers={"Retry-After": "3"}), times=4)
    source, out = write_input(tmp_path, 4), tmp_path / "out.jsonl"
    result = cli("chat", "batch", str(source), "-o", str(out), "--concurrency", "1")
    assert result.exit_code == 0, result.stderr
    assert all(row["error"] is None for row in by_id(out).values()) and len(by_id(out)) == 4
    assert len(api.calls()) == 8
    assert sleeps.delays.count(3.0) >= 2  # the retries honoured Retry-After
    assert "[-20053]" not in result.stderr  # counted in the progress, not a notice per retry


def test_a_rate_limit_that_never_ends_stops_the_batch_unwritten(cli, api, tmp_path):
    api.add(err_code(-20053, "Exceeded frequency limit", status=429), times=1000)
    out = tmp_path / "out.jsonl"
    result = cli("chat", "batch", str(write_input(tmp_path, 3)), "-o", str(out), "--concurrency", "1",
                 globals_=["--max-retries", "0"])
    assert result.exit_code == 4
    assert len(api.calls()) == batch.RATE_LIMIT_ROUNDS
    assert out.read_text() == ""
    assert "run the same command later to resume" in result.stderr


def test_an_auth_error_stops_the_batch(cli, api, tmp_path):
    api.add(err_code("A0202", "invalid token", status=401), times=1000)
    out = tmp_path / "out.jsonl"
    result = cli("chat", "batch", str(write_input(tmp_path, 20)), "-o", str(out), "--concurrency", "2")
    assert result.exit_code == 3
    assert len(api.calls()) <= 2  # each worker's first request, and no more
    assert out.read_text() == ""  # nothing written: a run with the right token sends them all
    assert "[A0202] invalid token" in result.stderr and "not sent" in result.stderr


def test_the_token_is_in_no_row(cli, api, tmp_path):
    api.add(err_code(500, "token {} rejected".format(SENTINEL), status=500), times=3)
    out = tmp_path / "out.jsonl"
    cli("chat", "batch", str(write_input(tmp_path, 1)), "-o", str(out))
    assert SENTINEL not in out.read_text()


def test_an_output_that_cannot_be_written_stops_the_batch(cli, api, tmp_path, monkeypatch):
    def full(self, row):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(batch.AnswerLog, "append", full)
    result = cli("chat", "batch", str(write_input(tmp_path, 5)), "-o", str(tmp_path / "out.jsonl"),
                 "--concurrency", "1")
    assert result.exit_code == 1
    assert "cannot write" in result.stderr and "No space left on device" in result.stderr
    assert len(api.calls()) == 1  # stopped after the first answer could not be kept


# ------------------------------------------------------------------ the budget and progress

def test_the_batch_takes_its_slots_from_the_shared_budget(cli, api, tmp_path, sleeps):
    out = tmp_path / "out.jsonl"
    result = cli("chat", "batch", str(write_input(tmp_path, 4)), "-o", str(out), "--rpm", "60")
    assert result.exit_code == 0, result.stderr
    waits = sorted(sleeps.delays)
    assert len(waits) == 3 and waits[0] > 0.5 and waits[-1] <= 3.1  # a second apart each
    assert "shared rate budget: 60 requests a minute" in result.stderr


def test_progress_and_summary_under_json(cli, api, tmp_path):
    result = cli("chat", "batch", "--json", str(write_input(tmp_path, 2)), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 0
    summary = [json.loads(line) for line in result.stderr.splitlines()][-1]["summary"]
    assert summary["succeeded"] == 2 and summary["failed"] == 0 and summary["skipped"] == 0


class FakePool:
    total, succeeded, failed, rate_limited = 100, 0, 0, 0

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed


def test_plain_progress_is_a_line_every_few_seconds_with_rate_and_eta(tmp_path):
    import io

    from interncli.commands.batch import PROGRESS_EVERY, Progress
    from interncli.iostreams import IOStreams

    now = [0.0]
    err = io.StringIO()
    pool: Any = FakePool()
    progress = Progress(IOStreams(None, io.StringIO(), err, {}), pool, clock=lambda: now[0])
    for second in range(1, 11):
        now[0] = float(second)
        pool.succeeded, pool.failed = second * 2, second // 5
        progress.tick()
    lines = err.getvalue().splitlines()
    assert len(lines) == int(10 // PROGRESS_EVERY)
    assert lines[0] == "interncli: batch: 11/100 done, 1 failed, 132.0/min; ETA 40s"
    assert lines[1] == "interncli: batch: 22/100 done, 2 failed, 132.0/min; ETA 35s"


# ------------------------------------------------------------------ real processes

def run_batch(exe: str, api, source: Path, out: Path, *flags: str,
              env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    environ = dict(os.environ, INTERN_API_KEY=SENTINEL, **(env or {}))
    return subprocess.Popen([exe, "-b", api.base_url, "chat", "batch", str(source), "-o", str(out), *flags],
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(out: Path, count: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= count:
            return
        time.sleep(0.05)
    pytest.fail("the batch wrote fewer than {} rows".format(count))


@pytest.mark.integration
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_an_interrupted_batch_resumes_and_finishes_exactly_once(exe, api, tmp_path, how):
    api.add(Slow(0.3), times=1000)
    source, out = write_input(tmp_path, 12), tmp_path / "out.jsonl"
    proc = run_batch(exe, api, source, out, "--concurrency", "2")
    wait_for_rows(out, 3, proc)
    proc.send_signal(how)
    _, stderr = proc.communicate(timeout=30)
    if how == signal.SIGINT:
        assert proc.returncode == 130
        assert "interrupted" in stderr and "not sent" in stderr
    else:
        assert proc.returncode == -signal.SIGKILL
    first = by_id(out)
    assert 3 <= len(first) < 12
    sent_before = len(api.calls())
    proc = run_batch(exe, api, source, out, "--concurrency", "2")
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    answers = by_id(out)
    assert sorted(answers) == sorted("r{}".format(i) for i in range(12))
    assert all(row["error"] is None for row in answers.values())
    # What had been answered was not sent again: only the rest, and what was in flight.
    assert len(api.calls()) - sent_before == 12 - len(first)
    assert sent_before - len(first) <= 2


@pytest.mark.integration
def test_progress_in_a_pipe_is_plain_lines(exe, api, tmp_path):
    proc = run_batch(exe, api, write_input(tmp_path, 3), tmp_path / "out.jsonl")
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert stdout == ""
    assert "\r" not in stderr and "\x1b" not in stderr
    assert stderr.splitlines()[-1].startswith("interncli: batch: 3 answered, 0 failed in ")


@pytest.mark.integration
def test_progress_on_a_terminal_is_a_bar(api, tmp_path):
    code, stdout, seen, _ = run_on_pty(api, ["chat", "batch", str(write_input(tmp_path, 3)),
                                             "-o", str(tmp_path / "out.jsonl")], None)
    assert code == 0, seen
    assert b"batch  [" in seen and b"3/3" in seen
    assert b"interncli: batch: 3 answered, 0 failed" in seen
    assert len(by_id(tmp_path / "out.jsonl")) == 3


@pytest.mark.integration
def test_a_batch_and_one_liners_beside_it_stay_under_the_limit_together(exe, api, tmp_path):
    """A server that refuses more than 6 requests in any 3 s (120 a minute, in short windows);
    a batch at 100 a minute and two one-liners started while it runs share the one budget, so
    nothing is refused: the one-liners wait for their turns between the batch's requests."""
    limited = Limited(120, window=3.0)
    api.add(limited, times=1000)
    source, out = write_input(tmp_path, 8), tmp_path / "out.jsonl"
    env = {"INTERN_RPM": "100"}
    proc = run_batch(exe, api, source, out, "--concurrency", "4", env=env)
    wait_for_rows(out, 2, proc)
    environ = dict(os.environ, INTERN_API_KEY=SENTINEL, **env)
    singles = [subprocess.Popen([exe, "-b", api.base_url, "chat", "create", "-g", "user", "beside {}".format(i)],
                                env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    results = [p.communicate(timeout=60) for p in singles]
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert [p.returncode for p in singles] == [0, 0], results
    assert sorted(stdout for stdout, _ in results) == ["echo: beside 0\n", "echo: beside 1\n"]
    assert limited.rejected == 0 and limited.accepted == 10
    assert len(by_id(out)) == 8
