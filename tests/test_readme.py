"""The README is a manual that works: every command in it is run here, in the order a reader
meets them, against the test server, in a copy of the checkout; and CI runs exactly the
README's test command."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys

import pytest

from tests.apiserver import APIServer
from tests.conftest import PNG

pytestmark = pytest.mark.integration

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(sh|zsh|fish)\n(.*?)^```", re.S | re.M)
TOKEN = "sk-readme-token-0123456789"
PRIVATE_PORT = 23333  # the port the README's private-server examples use


def section(title: str) -> str:
    return README.split("## " + title, 1)[1].split("\n## ", 1)[0]


def setup_commands():
    return [code.strip() for _, code in BLOCK.findall(section("Set-up"))]


def usage_blocks():
    """(id, shell, code) of every shell block outside the Set-up section, in order."""
    setup = section("Set-up")
    found = []
    for match in BLOCK.finditer(README):
        if setup.find(match.group(0)) != -1:
            continue
        line = README.count("\n", 0, match.start()) + 1
        found.append(("README.md:{}".format(line), match.group(1), match.group(2)))
    return found


def test_setup_has_the_two_commands_and_ci_runs_the_test_command():
    install, test = setup_commands()
    assert "pip install ." in install and "interncli chat create" in install
    assert "pytest" in test and "'.[test]'" in test
    assert test in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def _port_free(port):
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    """A copy of the checkout with what the examples refer to, servers for the official and the
    private base URL, and the environment of a reader who has set INTERN_API_KEY."""
    work = tmp_path_factory.mktemp("reader") / "interncli"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    names = tracked.stdout.split() if tracked.returncode == 0 else []
    if not names:
        shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__"))
    for name in names:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, work / name)
    (work / "photo.png").write_bytes(PNG)
    (work / "build.log").write_text("step 1 ok\nstep 2 failed: missing file\n")
    (work / "notes.md").write_text("# Notes\n\nThe release is on Friday.\n")
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERN", "PYTHON_KEYRING"))}
    env.update({
        "PATH": os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
        "INTERNCLI_CONFIG_DIR": str(home / ".config" / "interncli"),
        "INTERN_API_KEY": TOKEN,
        "PYTHON_KEYRING_BACKEND": "tests.filekeyring.FileKeyring", "PYTHONPATH": str(ROOT),
        "INTERNCLI_TEST_KEYRING_FILE": str(home / "keyring.json"),
        "GIT_AUTHOR_NAME": "R", "GIT_AUTHOR_EMAIL": "r@example.invalid",
        "GIT_COMMITTER_NAME": "R", "GIT_COMMITTER_EMAIL": "r@example.invalid",
    })
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "a release"]):
        subprocess.run(["git"] + args, cwd=work, env=env, check=True, capture_output=True)
    (work / "notes.md").write_text("# Notes\n\nThe release is on Monday.\n")  # something for git diff
    with APIServer() as official:
        env["INTERN_BASE_URL"] = official.base_url
        private = APIServer(PRIVATE_PORT).start() if _port_free(PRIVATE_PORT) else None
        try:
            yield work, env, official, private
        finally:
            if private is not None:
                private.stop()


@pytest.mark.parametrize("where, shell, code", usage_blocks(), ids=[b[0] for b in usage_blocks()])
def test_every_readme_command_works(reader, where, shell, code):
    work, env, official, private = reader
    if shutil.which(shell) is None:
        pytest.skip("{} is not installed".format(shell))
    if str(PRIVATE_PORT) in code and private is None:
        pytest.skip("port {} is taken on this machine".format(PRIVATE_PORT))
    argv = {"sh": ["bash", "-e", "-o", "pipefail", "-c", code], "zsh": ["zsh", "-e", "-c", code],
            "fish": ["fish", "-c", code]}[shell]
    done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, "{} failed:\n{}\nstdout:\n{}\nstderr:\n{}".format(
        where, code, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_readme_commands_reached_the_servers(reader):
    # Runs after the blocks (pytest keeps file order): the examples did talk to the servers.
    work, env, official, private = reader
    assert len(official.requests) >= 10
    assert all(r.headers.get("authorization") == "Bearer " + TOKEN for r in official.requests)


def test_the_install_command_installs_and_runs_the_main_job(reader, tmp_path):
    """The README's first set-up command, verbatim, in a copy of the checkout with no venv yet."""
    work, env, official, private = reader
    fresh = tmp_path / "fresh"
    shutil.copytree(work, fresh, ignore=shutil.ignore_patterns(".venv", ".git"))
    install, _ = setup_commands()
    env = dict(env, PATH=os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                         if not p.startswith(os.path.dirname(sys.executable))))
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(["bash", "-e", "-c", install], cwd=fresh, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.endswith("echo: Hello\n")
    assert (fresh / ".venv" / "bin" / "interncli").exists()
