"""`api models.list`, `api models.retrieve` and `api completions.create` (issue 14), the installed
command against LMDeploy's REAL api_server (0.18.0 and 0.12.3, fake engine): how
tests/test_real_lmdeploy.py runs it, and why, is said there. The fake model's script is the
prompt (tests/servers/real_lmdeploy/script.py); a plain prompt is echoed in 3-character "tokens".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Iterator

import pytest

from tests.conftest import SENTINEL
from tests.servers.real import MODEL, NEWEST, OLD, RealServer, interncli, lmdeploy_python

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=[NEWEST, OLD])
def real(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """`lmdeploy serve api_server MODEL --api-keys KEY` of each release, no parsers."""
    server = RealServer(lmdeploy_python(request.param), tmp_path_factory.mktemp("lmdeploy-home"))
    server.release = request.param  # type: ignore[attr-defined]
    yield server
    server.stop()


def complete(exe: str, server: RealServer, *args: str, prompt: object = "hello there",
             key: str = SENTINEL) -> subprocess.CompletedProcess:
    """`api completions.create -m MODEL -p PROMPT ARGS` (a dict prompt is a script, sent as JSON)."""
    text = prompt if isinstance(prompt, str) else json.dumps(prompt)
    return interncli(exe, server, "api", "completions.create", "-m", MODEL, "-p", text, *args, key=key)


def test_models_list_prints_the_card_as_openai_does(exe: str, real: RealServer) -> None:
    done = interncli(exe, real, "api", "models.list")
    assert done.returncode == 0, done.stderr
    card = json.loads(done.stdout)
    assert list(card)[:4] == ["id", "created", "object", "owned_by"]
    assert (card["id"], card["object"], card["owned_by"], card["root"]) == (MODEL, "model", "lmdeploy", MODEL)
    assert done.stdout.startswith('{\n  "id": "%s",\n  "created": ' % MODEL)


def test_models_retrieve_says_lmdeploy_has_no_such_route(exe: str, real: RealServer) -> None:
    done = interncli(exe, real, "api", "models.retrieve", "-i", MODEL)
    assert (done.returncode, done.stdout) == (5, "")
    assert "no route for a single model" in done.stderr.splitlines()[0]


def test_models_retrieve_without_the_key_is_exit_3(exe: str, real: RealServer) -> None:
    # 0.12.2+'s middleware answers an unknown path with 401 before routing.
    assert interncli(exe, real, "api", "models.retrieve", "-i", MODEL, key="sk-wrong").returncode == 3


@pytest.mark.parametrize("stream", [[], ["--stream"]])
def test_plain_completion(exe: str, real: RealServer, stream: list) -> None:
    done = complete(exe, real, *stream)
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello there\n", "")


@pytest.mark.parametrize("stream", [[], ["--stream"]])
def test_max_tokens_cuts_with_a_warning(exe: str, real: RealServer, stream: list) -> None:
    done = complete(exe, real, "-M", "2", *stream)
    assert (done.returncode, done.stdout) == (0, "hello \n")
    assert "cut at max_tokens (finish_reason: length)" in done.stderr


def test_the_flags_are_accepted(exe: str, real: RealServer) -> None:
    done = complete(exe, real, "-t", "0.5", "-P", "0.9", "-n", "1", "--stop", "zzz", "--user", "u",
                    "--frequency_penalty", "0.1", "--presence_penalty", "0.1", "--logprobs", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello there\n"


def test_unknown_model_is_exit_5(exe: str, real: RealServer) -> None:
    done = interncli(exe, real, "api", "completions.create", "-m", "no-such-model", "-p", "hi")
    assert (done.returncode, done.stdout) == (5, "")
    assert "The model 'no-such-model' does not exist." in done.stderr.splitlines()[0]


def test_a_null_prompt_is_exit_5(exe: str, real: RealServer) -> None:
    # Without -p the openai CLI sends "prompt": null, and so does interncli; LMDeploy refuses it.
    done = interncli(exe, real, "api", "completions.create", "-m", MODEL)
    assert (done.returncode, done.stdout) == (5, "")
    assert "prompt" in done.stderr.splitlines()[0]


def test_a_wrong_key_is_exit_3(exe: str, real: RealServer) -> None:
    assert complete(exe, real, key="sk-wrong").returncode == 3


@pytest.mark.parametrize("stream", [[], ["--stream"]])
def test_an_engine_failure_is_exit_1(exe: str, real: RealServer, stream: list) -> None:
    # 0.18: a 500 error body, or an {"error": ...} event after the text; 0.12: finish_reason "error"
    # with the error text, which is never printed as the answer.
    done = complete(exe, real, *stream, prompt={"text": "partial ", "fail": "engine"})
    assert done.returncode == 1, done.stderr
    assert done.stdout in ("", "partial ")
    assert "internal error" not in done.stdout
    assert done.stderr.startswith("interncli: error: ")


def test_logprobs_without_the_engine_s_logprobs_mode_is_exit_5(exe: str, real: RealServer) -> None:
    done = complete(exe, real, "--logprobs", "1")
    assert (done.returncode, done.stdout) == (5, "")
    assert "logprobs" in done.stderr.splitlines()[0]


@pytest.mark.parametrize("args", [["-p", "hello there"], ["-p", "hello there", "--stream"],
                                  ["-p", "hello there", "-M", "2"], ["-p", "hello", "--echo", "--stop", "zzz"],
                                  ["-p", "hello", "-n", "2"], ["-p", "hello", "--stream", "-M", "3"]])
def test_the_same_stdout_as_openai(exe: str, real: RealServer, openai_cli: str, args: list) -> None:
    env = {**os.environ, "OPENAI_API_KEY": SENTINEL, "OPENAI_BASE_URL": real.base_url}
    theirs = subprocess.run([openai_cli, "api", "completions.create", "-m", MODEL, *args], capture_output=True,
                            text=True, env=env, timeout=120)
    ours = interncli(exe, real, "api", "completions.create", "-m", MODEL, *args)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (0, ours.stdout), theirs.stderr


def test_the_same_model_card_as_openai(exe: str, real: RealServer, openai_cli: str) -> None:
    # Each card is made per request: its times (and 0.18's permission id) are new each time.
    env = {**os.environ, "OPENAI_API_KEY": SENTINEL, "OPENAI_BASE_URL": real.base_url}
    theirs = subprocess.run([openai_cli, "api", "models.list"], capture_output=True, text=True, env=env, timeout=120)
    ours = interncli(exe, real, "api", "models.list")
    assert (ours.returncode, theirs.returncode) == (0, 0)
    fresh = re.compile(r'"(created|id)": ("modelperm-[^"]*"|\d+)')
    assert fresh.sub(r'"\1": _', ours.stdout) == fresh.sub(r'"\1": _', theirs.stdout)
