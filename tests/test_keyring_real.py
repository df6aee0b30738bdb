"""The installed ``interncli`` against real keyrings (issue 3, "Real parts"):

- a real Secret Service: a private D-Bus session (``dbus-run-session``) with an unlocked
  ``gnome-keyring-daemon``, where login -> chat -> status -> logout must work and the token must
  live only in the keyring;
- no keyring at all (keyring's ``fail`` backend): one clear sentence naming the keyring and the
  ways out, never "the token is wrong";
- a keyring that never answers (a locked one waiting for a prompt): bounded, exit 3.

CI installs the programs with ``apt-get install dbus gnome-keyring`` (see .ci/run).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from tests.conftest import SENTINEL

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parent.parent
MASKED = SENTINEL[:4] + "…" + SENTINEL[-2:]
OFFICIAL = "chat.intern-ai.org.cn"
MISSING = [tool for tool in ("dbus-run-session", "gnome-keyring-daemon") if shutil.which(tool) is None]




def _run_group(argv: List[str], env: Dict[str, str], timeout: float,
               stdin: Optional[str] = None) -> "subprocess.CompletedProcess[str]":
    """Run a command in its own process group; on a timeout, kill that group (the daemons it
    started with it) and fail."""
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail("{} did not finish within {:g}s\nstdout:\n{}\nstderr:\n{}".format(
            " ".join(argv), timeout, out, err))
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


# ----------------------------------------------------------------- the real Secret Service

SCRIPT = textwrap.dedent(r"""
    set -u
    # step NAME CMD...: run CMD, keeping its exit code, stdout and stderr as files in $OUT.
    step() {
        name=$1; shift
        "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
        echo $? >"$OUT/$name.rc"
    }
    # What a Python program using keyring directly sees in the Secret Service (never the token).
    probe() {
        "$PY" -c 'import json, os, keyring
    backend = keyring.get_keyring()
    stored = keyring.get_password("interncli", "default")
    print(json.dumps({"backend": type(backend).__module__ + "." + type(backend).__name__,
                      "holds_token": stored == os.environ["TOKEN"], "holds_anything": stored is not None}))'
    }

    # A non-empty password: headless, the daemon creates and unlocks the login collection with it.
    eval "$(printf 'pw' | gnome-keyring-daemon --unlock --components=secrets)"
    echo $? >"$OUT/daemon.rc"

    # A stored token belongs to the host of the base URL in effect at login: the test server's.
    printf '%s\n' "Bearer $TOKEN " | step login "$EXE" -b "$URL" auth login --with-token
    step probe_after_login probe
    # Any token file the login path wrote, in the config dir or HOME (the keyring's own
    # store is in XDG_DATA_HOME, outside both).
    grep -rl -- "$TOKEN" "$INTERNCLI_CONFIG_DIR" "$HOME" >"$OUT/token-files.txt" 2>/dev/null
    step chat "$EXE" -b "$URL" chat create -g user hi
    step status_json "$EXE" -b "$URL" auth status --json
    step status "$EXE" -b "$URL" auth status
    step token "$EXE" -b "$URL" auth token
    step logout "$EXE" auth logout
    step probe_after_logout probe
    step status_after_logout "$EXE" auth status
    step chat_without_token "$EXE" -b "$URL" chat create -g user anonymous
    ls -A "$XDG_DATA_HOME/keyrings" >"$OUT/keyrings.txt" 2>/dev/null
""")


class Steps:
    """The exit code, stdout and stderr of each step the script ran."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def rc(self, name: str) -> int:
        path = self.out / (name + ".rc")
        assert path.exists(), "step {} did not run".format(name)
        return int(path.read_text().strip())

    def stdout(self, name: str) -> str:
        return (self.out / (name + ".out")).read_text(encoding="utf-8")

    def stderr(self, name: str) -> str:
        return (self.out / (name + ".err")).read_text(encoding="utf-8")

    def show(self, name: str) -> str:
        return "step {}: exit {}\nstdout:\n{}\nstderr:\n{}".format(
            name, self.rc(name), self.stdout(name), self.stderr(name))


@pytest.mark.skipif(bool(MISSING), reason="the real Secret Service test needs {} (apt-get install dbus "
                    "gnome-keyring)".format(" and ".join(MISSING)))
def test_login_chat_status_logout_with_a_real_secret_service(api, exe, tmp_path):
    home, data, runtime, config, out = (tmp_path / n for n in ("home", "data", "runtime", "config", "out"))
    for path in (home, data, runtime, out):
        path.mkdir()
    runtime.chmod(0o700)
    (tmp_path / "script.sh").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS", "INTERN_API_KEY",
                        "GNOME_KEYRING_CONTROL")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(data), XDG_RUNTIME_DIR=str(runtime),
               XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"),
               INTERNCLI_CONFIG_DIR=str(config), OUT=str(out), TOKEN=SENTINEL, URL=api.base_url,
               EXE=exe, PY=sys.executable)
    proc = _run_group(["dbus-run-session", "--", "bash", str(tmp_path / "script.sh")], env, timeout=60)
    steps = Steps(out)
    assert (out / "daemon.rc").exists(), "the script did not run:\n{}\n{}".format(proc.stdout, proc.stderr)
    assert steps.rc("daemon") == 0, proc.stderr

    # login: stored in the Secret Service, whitespace and "Bearer " stripped, never echoed.
    assert steps.rc("login") == 0, steps.show("login")
    assert "OS keyring" in steps.stderr("login"), steps.show("login")
    probe = json.loads(steps.stdout("probe_after_login"))
    assert probe["backend"] == "keyring.backends.SecretService.Keyring", probe
    assert probe["holds_token"] is True, "the Secret Service does not hold the cleaned token: {}".format(probe)
    assert (out / "keyrings.txt").read_text().split(), "gnome-keyring wrote no keyring under XDG_DATA_HOME"

    # Only the keyring holds it: no token file under the config dir or HOME, no credentials.yaml.
    assert (out / "token-files.txt").read_text().strip() == "", "the keyring path wrote the token to a file"
    assert not (config / "credentials.yaml").exists()
    for path in list(config.rglob("*")) + list(home.rglob("*")):
        if path.is_file():
            assert SENTINEL not in path.read_bytes().decode("utf-8", errors="replace"), path

    # chat: the token read from the keyring is sent as a Bearer header.
    assert steps.rc("chat") == 0, steps.show("chat")
    assert steps.stdout("chat") == "echo: hi\n", steps.show("chat")
    chats = api.calls()
    assert len(chats) == 2, [r.headers for r in chats]
    assert chats[0].headers.get("authorization") == "Bearer " + SENTINEL

    # status: where the token comes from, masked, and the backend.
    assert steps.rc("status_json") == 0, steps.show("status_json")
    status = json.loads(steps.stdout("status_json"))
    assert status["token_source"] == "keyring", status
    assert status["token"] == MASKED, status
    assert "SecretService" in status["keyring"], status
    assert steps.rc("status") == 0 and "the OS keyring" in steps.stdout("status"), steps.show("status")
    assert steps.rc("token") == 0 and steps.stdout("token") == SENTINEL + "\n", steps.show("token")

    # logout: gone from the Secret Service; status then exits 3.
    assert steps.rc("logout") == 0, steps.show("logout")
    assert "OS keyring" in steps.stderr("logout"), steps.show("logout")
    probe = json.loads(steps.stdout("probe_after_logout"))
    assert probe["holds_anything"] is False, probe
    assert steps.rc("status_after_logout") == 3, steps.show("status_after_logout")
    assert "not logged in" in steps.stderr("status_after_logout"), steps.show("status_after_logout")

    # A private server without a token: the request goes, with no Authorization header at all.
    assert steps.rc("chat_without_token") == 0, steps.show("chat_without_token")
    assert steps.stdout("chat_without_token") == "echo: anonymous\n"
    assert "authorization" not in chats[1].headers, chats[1].headers

    # The token appears in no output but `auth token`'s.
    for name in ("login", "probe_after_login", "chat", "status_json", "status", "logout", "probe_after_logout",
                 "status_after_logout", "chat_without_token"):
        assert SENTINEL not in steps.stdout(name) + steps.stderr(name), steps.show(name)
    assert SENTINEL not in proc.stdout + proc.stderr


# --------------------------------------------------------------------- no keyring backend


def _one_sentence_error(stderr: str) -> str:
    """The message of a contract error (one error line, one hint line), checked for shape."""
    lines = stderr.splitlines()
    assert len(lines) == 2, "expected an error line and a hint line:\n" + stderr
    assert lines[0].startswith("interncli: error: "), stderr
    assert lines[1].startswith("hint: "), stderr
    assert "Traceback" not in stderr
    message = lines[0][len("interncli: error: "):]
    assert ". " not in message.rstrip("."), "more than one sentence: " + message
    return message


def _run(exe: str, args: List[str], env: Dict[str, str], stdin: Optional[str] = None,
         timeout: float = 20) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([exe] + args, input=stdin if stdin is not None else "", capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture
def fail_env(isolated_env, api) -> Dict[str, str]:
    """keyring's 'fail' backend (no keyring works), and every HTTP(S) request sent through the
    test server as a proxy, so that a request to the official service would be seen."""
    env = dict(os.environ)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env["HTTPS_PROXY"] = env["HTTP_PROXY"] = api.url
    return env


def test_login_without_a_keyring_says_so_and_how_to_proceed(exe, fail_env):
    config_dir = Path(fail_env["INTERNCLI_CONFIG_DIR"])
    proc = _run(exe, ["auth", "login", "--with-token"], fail_env, stdin=SENTINEL + "\n")
    assert proc.returncode == 3, proc.stderr
    message = _one_sentence_error(proc.stderr)
    assert "keyring" in message, message
    hint = proc.stderr.splitlines()[1]
    assert "INTERN_API_KEY" in hint and "--insecure-storage" in hint, hint
    assert SENTINEL not in proc.stdout + proc.stderr
    assert proc.stdout == ""
    # It fails closed: no silent fallback to a plain-text file.
    assert not (config_dir / "credentials.yaml").exists()
    # The way out it names works.
    proc = _run(exe, ["auth", "login", "--with-token", "--insecure-storage"], fail_env, stdin=SENTINEL + "\n")
    assert proc.returncode == 0, proc.stderr
    assert (config_dir / "credentials.yaml").exists()


def test_chat_without_a_keyring_blames_the_keyring_not_the_token(exe, fail_env, api):
    proc = _run(exe, ["chat", "create", "-g", "user", "hi"], fail_env)
    assert proc.returncode == 3, proc.stderr
    message = _one_sentence_error(proc.stderr)
    assert "keyring" in message and "not available" in message, message
    lowered = proc.stderr.lower()
    for wrong in ("check the token", "invalid", "expired", "a0202", "401"):
        assert wrong not in lowered, "blames the token: " + proc.stderr
    hint = proc.stderr.splitlines()[1]
    assert "INTERN_API_KEY" in hint and "--insecure-storage" in hint, hint
    assert not api.requests, "nothing may be sent without a token to the official service"


def test_status_without_a_keyring_exits_3_naming_the_keyring(exe, fail_env):
    proc = _run(exe, ["auth", "status"], fail_env)
    assert proc.returncode == 3, proc.stderr
    assert "keyring" in _one_sentence_error(proc.stderr)
    assert "unavailable" in proc.stdout, proc.stdout


# ---------------------------------------------------------------- a keyring that never answers


@pytest.fixture
def hanging_env(isolated_env, api) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHON_KEYRING_BACKEND="tests.memkeyring.HangingKeyring", PYTHONPATH=str(REPO_ROOT),
               INTERNCLI_KEYRING_TIMEOUT="0.5", HTTPS_PROXY=api.url, HTTP_PROXY=api.url)
    return env


# (Not `auth login`: tests.memkeyring.HangingKeyring's set_password is its get_password, which
# takes one argument too few, so it fails with a TypeError instead of hanging.)
@pytest.mark.parametrize("args", [["auth", "status"], ["chat", "create", "-g", "user", "hi"]], ids=" ".join)
def test_a_keyring_that_never_answers_is_given_up_on(exe, hanging_env, api, args):
    started = time.monotonic()
    proc = _run(exe, args, hanging_env, timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed < 5, "took {:.1f}s with INTERNCLI_KEYRING_TIMEOUT=0.5".format(elapsed)
    assert proc.returncode == 3, proc.stderr
    message = _one_sentence_error(proc.stderr)
    assert "keyring did not answer within 0.5s" in message, message
    assert SENTINEL not in proc.stdout + proc.stderr
    assert not api.requests
