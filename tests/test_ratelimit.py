"""The shared rate budget (contract section 9): its spacing, its back-off on rate-limit answers,
clock steps, a broken state file; the setting; every request of every command taking a slot; and
real processes sharing one budget."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import List

import pytest

from interncli import config
from interncli.ratelimit import MARGIN, MAX_PAUSE, MAX_SLOWDOWN, SLOW_FOR, Budget, budget_path
from tests.apiserver import Completion, err_code
from tests.conftest import SENTINEL
from tests.toolhelpers import tool_calls_reply, weather_tool, write_spec


class Clock:
    """Wall time for a budget, moved on only by its sleep (and by a test stepping it)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.slept: List[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


# The interval at 60 a minute: a second, and the margin.
SECOND = 1.0 * MARGIN


def near(seconds: float):
    return pytest.approx(seconds, abs=1e-6)


def budget(tmp_path, clock: Clock, rpm: float = 60, **kwargs) -> Budget:
    return Budget(str(tmp_path / "rate" / "default@host.json"), rpm, clock=clock, sleep=clock.sleep, **kwargs)


# ------------------------------------------------------------------ the budget itself

def test_requests_are_spread_evenly_not_sent_in_a_burst(tmp_path):
    clock = Clock()
    one = budget(tmp_path, clock, rpm=30)
    waits = [one.take() for _ in range(4)]
    assert waits == [0.0] + [pytest.approx(2.0 * MARGIN)] * 3


def test_a_request_after_a_quiet_spell_goes_at_once(tmp_path):
    clock = Clock()
    one = budget(tmp_path, clock)
    one.take()
    clock.now += 30
    assert one.take() == 0.0


def test_two_budgets_on_one_file_share_it_as_two_processes_do(tmp_path):
    clock = Clock()
    first, second = budget(tmp_path, clock, rpm=60), budget(tmp_path, clock, rpm=60)
    assert first.take() == 0.0
    assert second.take() == near(SECOND)  # the next slot, a second after the first's
    assert first.take() == near(SECOND)
    assert clock.slept == [near(SECOND), near(SECOND)]


def test_nothing_is_held_after_a_process_dies_but_its_one_reserved_slot(tmp_path):
    clock = Clock()
    budget(tmp_path, clock).take()  # a process that reserved a slot, then was killed
    after = budget(tmp_path, clock)
    assert after.take() == near(SECOND)
    assert after.take() == near(SECOND)


def test_the_state_file_is_private_and_holds_no_lock(tmp_path):
    clock = Clock()
    one = budget(tmp_path, clock)
    one.take()
    assert os.stat(one.path).st_mode & 0o777 == 0o600
    assert os.listdir(os.path.dirname(one.path)) == ["default@host.json"]
    assert set(json.loads(open(one.path).read())) == {"next", "pause_until", "slow_until", "factor", "stamp"}


def test_a_rate_limit_answer_holds_everyone_back_for_retry_after_then_slows_the_rate(tmp_path):
    clock = Clock()
    one, other = budget(tmp_path, clock), budget(tmp_path, clock)
    one.take()
    other.slow_down(5.0)
    assert one.take() == 5.0
    assert one.take() == near(2 * SECOND)  # slots twice as far apart for a while
    clock.now += SLOW_FOR
    one.take()
    assert one.take() == near(SECOND)  # and then back to the full rate


def test_more_rate_limit_answers_slow_it_down_further_but_only_so_far(tmp_path):
    clock = Clock()
    one = budget(tmp_path, clock)
    for _ in range(6):
        one.slow_down(0)
    one.take()
    assert one.take() == near(MAX_SLOWDOWN * SECOND)


def test_a_rate_limit_answer_without_retry_after_still_pauses(tmp_path):
    clock = Clock()
    one = budget(tmp_path, clock)
    one.slow_down(None)
    assert one.take() > 0


def test_a_huge_retry_after_holds_everyone_back_only_so_long(tmp_path):
    clock = Clock()
    one = budget(tmp_path, clock)
    one.slow_down(10 ** 9)
    assert one.take() == near(MAX_PAUSE)


def test_a_rate_limit_answer_during_a_wait_extends_it(tmp_path):
    clock = Clock()
    other = budget(tmp_path, clock)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.slept) == 1:  # while the first wait runs, another process is refused
            other.slow_down(10.0)

    one = Budget(other.path, 60, clock=clock, sleep=sleep)
    one.take()
    start = clock.now
    assert one.take() == near(SECOND + 10.0)  # its slot (1 s), then the pause asked for
    assert clock.now == near(start + SECOND + 10.0)


def test_a_clock_set_back_does_not_make_anyone_wait_for_the_difference(tmp_path):
    clock = Clock()
    one = budget(tmp_path, clock)
    one.take()
    clock.now -= 3600  # the clock is set back an hour
    assert one.take() == near(SECOND)
    assert one.take() == near(SECOND)


def test_a_clock_set_forward_leaves_the_past_slots_unused(tmp_path):
    clock = Clock()
    one = budget(tmp_path, clock)
    one.take()
    clock.now += 3600
    assert one.take() == 0.0
    assert one.take() == near(SECOND)


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"next": "soon"}', b"\xff\xfe", b'{"next": 1e300}',
                                     b"x" * 10000])
def test_a_broken_state_file_starts_afresh(tmp_path, content):
    clock = Clock()
    one = budget(tmp_path, clock)
    os.makedirs(os.path.dirname(one.path))
    with open(one.path, "wb") as fh:
        fh.write(content)
    assert one.take() == 0.0
    assert one.take() == near(SECOND)


def test_a_state_file_that_is_a_symlink_is_a_clear_error(tmp_path):
    from interncli.errors import UsageError

    clock = Clock()
    one = budget(tmp_path, clock)
    os.makedirs(os.path.dirname(one.path))
    os.symlink(str(tmp_path / "elsewhere"), one.path)
    with pytest.raises(UsageError, match="shared rate budget") as caught:
        one.take()
    assert "--rpm 0" in (caught.value.hint or "")
    assert not (tmp_path / "elsewhere").exists()


def test_a_wait_is_told_once(tmp_path):
    clock = Clock()
    told: List[float] = []
    one = budget(tmp_path, clock, rpm=6, notify=told.append)
    for _ in range(4):
        one.take()
    assert told == [pytest.approx(10.0 * MARGIN)]


def test_a_short_wait_is_not_told(tmp_path):
    clock = Clock()
    told: List[float] = []
    one = budget(tmp_path, clock, rpm=600, notify=told.append)
    one.take()
    assert one.take() == pytest.approx(0.1 * MARGIN)
    assert told == []


def test_each_profile_and_host_has_its_own_file(tmp_path):
    paths = {budget_path(str(tmp_path), p, h) for p in ("default", "work", "../x") for h in ("a", "b")}
    assert len(paths) == 6
    assert all(os.path.dirname(p) == str(tmp_path / "rate") for p in paths)


# ------------------------------------------------------------------ the setting

@pytest.mark.parametrize("url, expected", [(config.DEFAULT_BASE_URL, 30), ("http://127.0.0.1:23333/v1", 0),
                                           ("https://CHAT.intern-ai.org.cn./api/v1", 30)])
def test_the_default_follows_the_host(url, expected):
    assert config.default_rpm(url) == expected


@pytest.mark.parametrize("value", ["-1", "1.5", "many", "100001", True])
def test_a_bad_rpm_is_refused(value):
    from interncli.errors import UsageError

    with pytest.raises(UsageError, match="--rpm must be a whole number"):
        config.parse_rpm(value, "--rpm")


def test_a_bad_rpm_flag_is_a_usage_error(cli):
    result = cli("chat", "create", "-g", "user", "hi", globals_=["--rpm", "fast"])
    assert result.exit_code == 2
    assert "--rpm must be a whole number" in result.stderr
    assert "hint:" in result.stderr


def state_files(isolated_env) -> List[str]:
    folder = isolated_env / ".local" / "state" / "interncli" / "rate"
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_off_by_default_for_a_private_server_touches_no_file(cli, api, isolated_env, sleeps):
    for _ in range(3):
        assert cli("chat", "create", "-g", "user", "hi").exit_code == 0
    assert state_files(isolated_env) == []
    assert sleeps.delays == []


def test_rpm_from_the_flag_paces_runs_one_after_another(cli, api, isolated_env, sleeps):
    for _ in range(3):
        result = cli("chat", "create", "-g", "user", "hi", globals_=["--rpm", "6"])
        assert result.exit_code == 0, result.stderr
    assert state_files(isolated_env) == ["default@127.0.0.1.json"]
    # The second and third runs each waited for their slot, 10 s after the one before (the test's
    # sleep does not wait, so the third's slot is two intervals away).
    assert len(sleeps.delays) == 2
    assert 9 < sleeps.delays[0] <= 10 * MARGIN and 19 < sleeps.delays[1] <= 20 * MARGIN
    assert re.search(r"waiting (19|20)\.\ds", result.stderr)
    assert "shared rate budget: 6 requests a minute for profile default at 127.0.0.1" in result.stderr


def test_rpm_from_the_environment_and_the_profile(cli, api, isolated_env, sleeps, config_dir):
    (config_dir / "config.yaml").write_text("profiles:\n  default:\n    rpm: 6\n")
    assert cli("models", "list").exit_code == 0
    assert cli("models", "list").exit_code == 0
    assert len(sleeps.delays) == 1
    assert cli("models", "list", env={"INTERN_RPM": "0"}).exit_code == 0
    assert len(sleeps.delays) == 1


def test_the_wait_notice_is_json_under_json(cli, api, sleeps):
    cli("chat", "create", "-g", "user", "hi", globals_=["--rpm", "6"])
    result = cli("chat", "create", "--json", "-g", "user", "hi", globals_=["--rpm", "6"])
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert any("shared rate budget" in line.get("info", "") for line in lines)


def test_retries_take_a_slot_too_and_a_rate_limit_answer_backs_everyone_off(cli, api, isolated_env, sleeps):
    api.add(err_code(-20053, "too many requests", status=429, headers={"Retry-After": "7"}))
    api.add(Completion("fine"))
    result = cli("chat", "create", "-g", "user", "hi", globals_=["--rpm", "600"])
    assert result.exit_code == 0, result.stderr
    assert "retrying in 7.0s" in result.stderr
    path = isolated_env / ".local" / "state" / "interncli" / "rate" / "default@127.0.0.1.json"
    state = json.loads(path.read_text())
    assert state["factor"] == 2 and state["pause_until"] > state["stamp"]
    # The retry slept the Retry-After and then took its slot; the next run waits out the pause.
    assert sleeps.delays[0] == 7.0
    before = len(sleeps.delays)
    assert cli("chat", "create", "-g", "user", "hi", globals_=["--rpm", "600"]).exit_code == 0
    assert len(sleeps.delays) == before + 1 and sleeps.delays[-1] > 5


def test_a_rate_limit_in_a_200_body_backs_off_too(cli, api, isolated_env, sleeps):
    api.add(err_code(-20053, "too many requests"), times=3)
    result = cli("chat", "create", "-g", "user", "hi", globals_=["--rpm", "600"])
    assert result.exit_code == 4
    path = isolated_env / ".local" / "state" / "interncli" / "rate" / "default@127.0.0.1.json"
    # Backed off: the spacing doubled. Once only: the recorded sleeps do not move the clock, so
    # the three answers came within the first one's pause, as a burst does.
    assert json.loads(path.read_text())["factor"] == 2


def test_tools_run_turns_take_slots(cli, api, isolated_env, sleeps, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(tool_calls_reply(("t1", "get_current_weather", '{"location": "Paris"}')))
    api.add(Completion("sunny"))
    result = cli("tools", "run", str(spec), "--yes", "weather?", globals_=["--rpm", "6"])
    assert result.exit_code == 0, result.stderr
    assert len(api.calls()) == 2
    assert len(sleeps.delays) == 1 and 9 < sleeps.delays[0] <= 10 * MARGIN  # the second turn waited its slot


def test_the_token_is_not_in_the_state_folder(cli, api, isolated_env):
    cli("chat", "create", "-g", "user", "hi", globals_=["--rpm", "6"])
    folder = isolated_env / ".local" / "state" / "interncli"
    for root, _, names in os.walk(folder):
        for name in names:
            assert SENTINEL not in open(os.path.join(root, name)).read()
            assert SENTINEL not in name


# ------------------------------------------------------------------ real processes

@pytest.mark.integration
def test_parallel_processes_share_one_budget(exe, api, isolated_env):
    """xargs -P 4 interncli chat create ...: four processes at once, one budget of 60 a minute:
    the requests reach the server a second apart, not in a burst."""
    env = dict(os.environ, INTERN_API_KEY=SENTINEL, INTERN_RPM="60")
    procs = [subprocess.Popen([exe, "-b", api.base_url, "chat", "create", "-g", "user", "hi {}".format(i)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    arrivals = sorted(r.at for r in api.calls())
    assert len(arrivals) == 4
    # Three intervals of a second between the first and the last (less a margin for start-up jitter).
    assert arrivals[-1] - arrivals[0] > 2.5
    assert any("shared rate budget" in err for _, err in outputs)


def test_a_state_file_that_cannot_be_used_turns_the_budget_off_once_when_told_to(tmp_path):
    # With ``unusable`` (what the commands give), a planted symlink or a read-only folder is said
    # once and the run goes on unpaced; nothing is written through the link.
    clock = Clock()
    told: List[str] = []
    one = budget(tmp_path, clock)
    one = Budget(one.path, 60, clock=clock, sleep=clock.sleep, unusable=lambda err: told.append(err.message))
    os.makedirs(os.path.dirname(one.path))
    os.symlink(str(tmp_path / "elsewhere"), one.path)
    assert [one.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    one.slow_down(30.0)
    assert one.take() == 0.0
    assert len(told) == 1 and "shared rate budget" in told[0]
    assert not (tmp_path / "elsewhere").exists()


def test_answers_of_one_burst_slow_it_down_once(tmp_path):
    # Eight requests in flight refused together: one doubling of the spacing, not the most.
    clock = Clock()
    one = budget(tmp_path, clock)
    for _ in range(8):
        one.slow_down(5.0)
    assert one.take() == pytest.approx(5.0)  # the pause
    assert one.take() == near(2 * SECOND)


def test_a_request_given_up_before_its_turn_reserves_nothing(tmp_path):
    # A stopped batch's queued workers: ``ready`` raises once their turn comes, before any slot
    # is reserved, so the next request of the account is not pushed back.
    clock = Clock()
    one = budget(tmp_path, clock)
    one.take()

    def stopped() -> None:
        raise KeyboardInterrupt()

    gone = Budget(one.path, 60, clock=clock, sleep=clock.sleep, ready=stopped)
    for _ in range(5):
        with pytest.raises(KeyboardInterrupt):
            gone.take()
    assert one.take() == near(SECOND)  # the slot after the first, as if the five never asked
