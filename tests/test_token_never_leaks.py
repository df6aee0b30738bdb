"""The token never leaks (interface.md section 3, issue 3).

Every command that exists -- found by walking the click tree, so a command added later is run
too -- is run with a sentinel token coming from each source in turn (the -k flag,
INTERN_API_KEY, the OS keyring, the --insecure-storage file), with and without -v, and then
through error paths (a 401 quoting the token, a 500, a cut stream, a redirect, an HTML page
echoing the request headers). After every run the sentinel (and its ``Bearer`` form, and its
middle part, which a truncated copy would still hold) must be in no stdout or stderr (except
``auth token`` and ``auth status --show-token``), in no file under the config dir or HOME
(except credentials.yaml when --insecure-storage was chosen), and in no environment variable.
A subprocess variant runs the installed command and checks its environment at exit too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import click
import pytest

from interncli.cli import cli as ROOT
from tests.apiserver import (
    CHAT_PATH,
    MODELS_PATH,
    APIServer,
    Completion,
    Json,
    Raw,
    Reply,
    Stream,
    err_code,
    err_msgcode,
    err_openai,
    stream_chunks,
)
from tests.conftest import SENTINEL, find_interncli, invoke

REPO_ROOT = Path(__file__).resolve().parent.parent
# What must not appear: the token, its header form, and its middle (a truncated or partly
# rewritten copy still gives most of the token away).
MARKERS = (SENTINEL, "Bearer " + SENTINEL, SENTINEL[3:-3])
MASKED = SENTINEL[:4] + "…" + SENTINEL[-2:]
SOURCES = ("flag", "env", "keyring", "file")
RA0 = {"Retry-After": "0"}


# ------------------------------------------------------------------------- the command tree


def _walk(group: click.Group, path: Tuple[str, ...] = ()) -> Iterator[Tuple[Tuple[str, ...], click.Command]]:
    ctx = click.Context(group, info_name=path[-1] if path else "interncli")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, "list_commands names {!r} but get_command has none".format(path + (name,))
        yield path + (name,), command
        if isinstance(command, click.Group):
            yield from _walk(command, path + (name,))


TREE = list(_walk(ROOT))
LEAVES = [path for path, command in TREE if not isinstance(command, click.Group)]
GROUPS = [()] + [path for path, command in TREE if isinstance(command, click.Group)]


class Variant:
    """One way to run a command: its arguments (``{url}``/``{home}`` filled in), stdin, the exit
    code expected (None: any), text stdout must hold, whether it talks to the server, whether
    it must or may print the token, commands to run first (checked the same way), files to
    write under HOME first, replies to queue on the server, and a file it must create."""

    def __init__(self, args: Sequence[str] = (), stdin: Optional[str] = None, code: Optional[int] = 0,
                 expect: Optional[str] = None, sends: bool = False, must_show: bool = False,
                 may_show: bool = False, insecure: bool = False,
                 setup: Sequence[Sequence[str]] = (), files: Optional[Dict[str, str]] = None,
                 replies: Sequence[Reply] = (), creates: Optional[str] = None) -> None:
        self.args, self.stdin, self.code, self.expect = tuple(args), stdin, code, expect
        self.sends, self.must_show, self.may_show, self.insecure = sends, must_show, may_show or must_show, insecure
        self.setup = [tuple(s) for s in setup]
        self.files, self.replies, self.creates = dict(files or {}), list(replies), creates


HI = ("-g", "user", "hi")
CHAT_VARIANTS = [
    Variant(HI, sends=True, expect="echo: hi"),
    Variant(HI + ("--stream",), sends=True, expect="echo: hi"),
    Variant(HI + ("--json",), sends=True, expect="echo: hi"),
    Variant(HI + ("--stream", "--json"), sends=True, expect='"chat.completion.chunk"'),
    Variant(HI + ("--dry-run",), expect="Bearer ***"),
    Variant(HI + ("--dry-run", "--json"), expect="Bearer ***"),
    Variant(HI + ("--dry-run", "--stream"), expect="Bearer ***"),
    Variant(("--conversation", "{home}/conversation.json") + HI, sends=True, expect="echo: hi"),
]

# A tool that writes its whole environment to a file in its folder (under HOME, so the file
# scan sees it) and prints it (so it goes back to the server, whose request bodies are checked);
# -S as the test tools have it: no site-packages to set up, a quarter of the start-up time.
DUMP_ENV = ("import json, os; text = json.dumps(dict(os.environ)); "
            "open('tool-env.json', 'w').write(text); print(text)")
TOOL_SPEC = json.dumps({"tools": [{"name": "env_dump", "description": "Show the environment",
                                   "parameters": {"type": "object", "properties": {}},
                                   "command": [sys.executable, "-S", "-c", DUMP_ENV], "timeout": 20}]})
TOOL_FILES = {"tools/spec.yaml": TOOL_SPEC}  # JSON is YAML
SPEC_PATH = "{home}/tools/spec.yaml"
BATCH_FILES = {"batch/in.jsonl": json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                                             "body": {"messages": [{"role": "user", "content": "hi"}]}}) + "\n"}
BATCH = ("{home}/batch/in.jsonl", "-o", "{home}/batch/out.jsonl")

ARGS: Dict[Tuple[str, ...], List[Variant]] = {
    ("api", "chat.completions.create"): CHAT_VARIANTS,
    ("api", "models.list"): [Variant((), sends=True, expect='"id": "intern-latest"')],
    # A model the test server does not list is a 404, whose error quotes the URL.
    ("api", "models.retrieve"): [Variant(("-i", "intern-latest"), sends=True, expect='"id": "intern-latest"'),
                                 Variant(("-i", "no-such-model"), sends=True, code=5)],
    ("api", "completions.create"): [Variant(("-m", "m", "-p", "hi"), sends=True, expect="echo: hi"),
                                    Variant(("-m", "m", "-p", "hi", "--stream"), sends=True, expect="echo: hi"),
                                    Variant(("-m", "m", "-p", "hi", "--dry-run"), expect="Bearer ***")],
    ("chat", "create"): CHAT_VARIANTS,
    ("chat", "repl"): [Variant((), stdin="hi\nmore\n", sends=True, expect="echo: more"),
                       Variant(("--conversation", "{home}/conversation.json"), stdin="hi\n", sends=True,
                               expect="echo: hi")],
    ("models", "list"): [Variant((), sends=True, expect="intern-latest"),
                         Variant(("--json",), sends=True, expect="intern-latest")],
    ("auth", "status"): [Variant((), expect=MASKED), Variant(("--json",), expect=MASKED),
                         Variant(("--show-token",), may_show=True),
                         Variant(("--show-token", "--json"), may_show=True)],
    ("auth", "token"): [Variant((), must_show=True)],
    ("auth", "login"): [Variant(("--with-token",), stdin=SENTINEL + "\n"),
                        Variant(("--with-token", "--insecure-storage"), stdin="Bearer " + SENTINEL + " \n",
                                insecure=True)],
    ("auth", "logout"): [Variant(())],
    ("config", "set"): [Variant(("model", "intern-s1")), Variant(("base_url", "{url}")),
                        Variant(("--profile", "local", "base_url", "http://127.0.0.1:23333/v1"))],
    ("config", "get"): [Variant(("model",), setup=[("config", "set", "model", "intern-s1")], expect="intern-s1"),
                        Variant(("base_url",), code=1)],
    ("config", "unset"): [Variant(("model",), setup=[("config", "set", "model", "intern-s1")])],
    ("config", "list"): [Variant(()), Variant(("--json",))],
    ("config", "path"): [Variant((), expect="config.yaml")],
    **{("completion", shell): [Variant((), expect="_INTERNCLI_COMPLETE")] for shell in ("bash", "zsh", "fish")},
    # zsh and fish only: their folders follow HOME and XDG_CONFIG_HOME, which the isolated
    # environment moves; bash's follows XDG_DATA_HOME, which it does not.
    ("completion", "install"): [Variant(("zsh",), creates=".zfunc/_interncli"),
                                Variant(("fish",), creates=".config/fish/completions/interncli.fish")],
    ("chat", "batch"): [Variant(BATCH, files=BATCH_FILES, sends=True, creates="batch/out.jsonl"),
                        Variant(BATCH + ("--json", "--rpm", "6"), files=BATCH_FILES, sends=True,
                                creates="batch/out.jsonl")],
    ("tools", "validate"): [Variant((SPEC_PATH,), files=TOOL_FILES, expect="ok, 1 tool")],
    ("tools", "list"): [Variant((SPEC_PATH,), files=TOOL_FILES, expect="env_dump"),
                        Variant((SPEC_PATH, "--json"), files=TOOL_FILES, expect="env_dump")],
    ("tools", "run"): [Variant((SPEC_PATH, "--yes", "what is in the environment?"), files=TOOL_FILES, sends=True,
                               replies=[Completion(None, tool_calls=[("call_1", "env_dump", "{}")])],
                               expect="echo: what is in the environment?", creates="tools/tool-env.json"),
                       Variant((SPEC_PATH, "--yes", "--json", "what is in the environment?"), files=TOOL_FILES,
                               sends=True, replies=[Completion(None, tool_calls=[("call_1", "env_dump", "{}")])],
                               expect='"tool_runs"', creates="tools/tool-env.json")],
}


def variants_for(path: Tuple[str, ...]) -> List[Variant]:
    """The variants of a command; one not in the table (a new command) is run bare, any exit code."""
    return ARGS.get(path, [Variant((), code=None)])


def test_the_walk_finds_every_known_command():
    """The tree walk is what makes the other tests cover every command: it must see at least
    the commands of the contract, and each must be in the table of sensible arguments."""
    assert set(ARGS) <= set(LEAVES), "commands in the table but not in the tree: {}".format(set(ARGS) - set(LEAVES))
    missing = [" ".join(p) for p in LEAVES if p not in ARGS]
    assert not missing, "new commands without sensible arguments in ARGS: {} (they are run bare meanwhile)".format(
        missing)


# ------------------------------------------------------------------------------ fixtures


SHARED_SERVER = True  # see conftest.api


class Harness:
    """Sets up a token source, runs commands in-process, and checks every output and file."""

    def __init__(self, source: str, home: Path, keyring_backend: Any, server: APIServer) -> None:
        self.source, self.home, self.keyring, self.api = source, home, keyring_backend, server
        self.config_dir = Path(os.environ["INTERNCLI_CONFIG_DIR"])
        # HOME and the keyring as the login of the first reset left them (keyring and file).
        self._after_login: Optional[Tuple[Path, Dict[Tuple[str, str], str]]] = None

    # --- state
    def reset(self) -> None:
        """Nothing from an earlier run: an empty HOME, keyring and server log; then the source.
        The login is run (and checked) at the first reset of a test; later resets put back the
        files and keyring entries it left, which is the same state without another run."""
        for child in self.home.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(str(child))
            else:
                child.unlink()
        self.keyring.passwords.clear()
        self.api.reset()
        if self._after_login is not None:
            saved, passwords = self._after_login
            shutil.copytree(str(saved), str(self.home), dirs_exist_ok=True)  # copy2: modes kept (0600)
            self.keyring.passwords.update(passwords)
            return
        # A stored token belongs to the host it was stored for: logging in with -b stores it for
        # the test server's host, which every run then names with -b.
        if self.source == "keyring":
            result = invoke(["-b", self.api.base_url, "auth", "login", "--with-token"], input=SENTINEL + "\n")
            assert result.exit_code == 0, result.stderr
            self.check(result, "auth login (setup)")
            assert self.keyring.get_password("interncli", "default") == SENTINEL
        elif self.source == "file":
            result = invoke(["-b", self.api.base_url, "auth", "login", "--insecure-storage", "--with-token"],
                            input="Bearer " + SENTINEL + " \n")
            assert result.exit_code == 0, result.stderr
            self.check(result, "auth login --insecure-storage (setup)", insecure=True)
            assert SENTINEL in (self.config_dir / "credentials.yaml").read_text(encoding="utf-8")
        if self.source in ("keyring", "file"):
            saved = Path(tempfile.mkdtemp(dir=str(self.home.parent), prefix=self.home.name + "-after-login-"))
            shutil.copytree(str(self.home), str(saved), dirs_exist_ok=True)
            self._after_login = (saved, dict(self.keyring.passwords))

    def prefix(self) -> List[str]:
        return ["-k", SENTINEL] if self.source == "flag" else []

    def env(self) -> Optional[Dict[str, str]]:
        return {"INTERN_API_KEY": SENTINEL} if self.source == "env" else None

    # --- running
    def run(self, args: Sequence[str], stdin: Optional[str] = None, *, globals_: Sequence[str] = (),
            must_show: bool = False, may_show: bool = False, insecure: bool = False) -> Any:
        argv = ["-b", self.api.base_url] + self.prefix() + list(globals_) + list(args)
        result = invoke(argv, input=stdin, env=self.env())
        self.check(result, " ".join(argv), must_show=must_show, may_show=may_show, insecure=insecure)
        return result

    def fill(self, args: Sequence[str]) -> List[str]:
        return [a.format(url=self.api.base_url, home=self.home) for a in args]

    # --- checking
    def check(self, result: Any, what: str, *, must_show: bool = False, may_show: bool = False,
              insecure: bool = False) -> None:
        where = "{} [token from {}]".format(what, self.source)
        if must_show:
            assert result.stdout.strip() == SENTINEL, "{} must print the token alone: {!r}".format(where, result.stdout)
        elif not may_show:
            assert_no_marker(result.stdout, "stdout of " + where)
        assert_no_marker(result.stderr, "stderr of " + where)
        for name, value in os.environ.items():
            assert_no_marker(value, "environment variable {} after {}".format(name, where))
        allow_file = insecure or self.source == "file"
        for path in files_under(self.home, self.config_dir):
            if allow_file and path == self.config_dir / "credentials.yaml":
                assert (path.stat().st_mode & 0o777) == 0o600, "credentials.yaml must be 0600"
                continue
            text = path.read_bytes().decode("utf-8", errors="replace")
            assert_no_marker(text, "file {} after {}".format(path, where))


def assert_no_marker(text: str, where: str) -> None:
    for marker in MARKERS:
        assert marker not in text, "the token leaked into {}:\n{}".format(where, text)


def files_under(*roots: Path) -> List[Path]:
    found: set = set()
    for root in roots:
        if root.exists():
            found.update(p for p in root.rglob("*") if p.is_file())
    return sorted(found)


@pytest.fixture
def harness_for(isolated_env, memory_keyring, api):
    def make(source: str) -> Harness:
        return Harness(source, isolated_env, memory_keyring, api)

    return make


# ------------------------------------------------------------------------- every command


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_no_command_leaks_the_token(harness_for, source, path):
    h = harness_for(source)
    for variant in variants_for(path):
        for globals_ in ((), ("-v",)):
            h.reset()
            for step in variant.setup:
                assert h.run(h.fill(step)).exit_code == 0
            for name, text in variant.files.items():
                (h.home / name).parent.mkdir(parents=True, exist_ok=True)
                (h.home / name).write_text(text, encoding="utf-8")
            h.api.reset()
            for reply in variant.replies:
                h.api.add(reply)
            args = list(path) + h.fill(variant.args)
            result = h.run(args, variant.stdin, globals_=globals_, must_show=variant.must_show,
                           may_show=variant.may_show, insecure=variant.insecure)
            label = " ".join(list(globals_) + args)
            if variant.code is not None:
                assert result.exit_code == variant.code, "{}: exit {}\n{}".format(
                    label, result.exit_code, result.stderr)
            if variant.expect is not None:
                assert variant.expect in result.stdout, "{}: {!r} not in stdout:\n{}".format(
                    label, variant.expect, result.stdout)
            if variant.may_show and not variant.must_show:
                assert SENTINEL in result.stdout, "{} shows the whole token".format(label)
            if variant.sends:
                # The token really was in use (so the source was set up), and only in the header.
                assert h.api.requests, label
                for request in h.api.requests:
                    assert request.headers.get("authorization") == "Bearer " + SENTINEL, label
                    assert SENTINEL.encode() not in request.body, label
            if variant.creates is not None:
                assert (h.home / variant.creates).exists(), "{} did not create {}".format(label, variant.creates)
            if globals_ and variant.sends:
                assert "Authorization: Bearer ***" in result.stderr, "{}: no redacted trace".format(label)


@pytest.mark.parametrize("source", SOURCES)
def test_no_help_text_leaks_the_token(harness_for, source):
    h = harness_for(source)
    h.reset()
    for path in GROUPS + LEAVES:
        result = h.run(list(path) + ["--help"])
        assert result.exit_code == 0, (path, result.stderr)
        assert "Usage:" in result.stdout + result.stderr, path


# ---------------------------------------------------------------------------- error paths


# Where a CLI might cut a long body or message for its error line.
CUTS = (200, 256, 400, 500, 1000, 1500, 2000, 4000, 4096, 8000, 8192)
HTTP_502_LEAD = "HTTP 502 Bad Gateway: "  # what the message puts before the body's snippet


def _token_at_cuts(text: str, shift: int = 0) -> str:
    """``text`` followed by copies of the token, each after ``Authorization: Bearer``, placed so
    that cutting the result at any of CUTS minus ``shift`` characters (whitespace collapsed)
    leaves all but the last two characters of a copy: a cut made before the redaction would
    leak most of the token."""
    head = " Authorization: Bearer "
    for cut in CUTS:
        start = cut - shift - (len(SENTINEL) - 2)
        assert len(text) + len(head) <= start, "CUTS too close together"
        text += "!" * (start - len(text) - len(head)) + head + SENTINEL
        assert text.rindex(SENTINEL) + len(SENTINEL) - 2 == cut - shift
    return text + " User-Agent: interncli"


def _html_echo_page(shift: int) -> Raw:
    """A proxy's error page that echoes the request headers, the token at every cut (of the
    body, or with ``shift``, of the message that quotes the body)."""
    return Raw(_token_at_cuts("<html><body><h1>502 Bad Gateway</h1><p>upstream failed; the request headers were:",
                              shift) + "</p></body></html>", status=502)


def _stream_then_error() -> Stream:
    return Stream(stream_chunks(["Hel"])[:1] + [{"error": {"message": "token " + SENTINEL + " was revoked",
                                                             "code": "A0211"}}], done=False)


# id -> (replies to queue as (reply, path, method, times), command, exit code, text stderr must hold)
ERROR_CASES: Dict[str, Tuple[List[Tuple[Reply, str, str, int]], List[str], int, Optional[str]]] = {
    "401-quotes-token": ([(err_msgcode("A0202", "bad token " + SENTINEL, status=401), CHAT_PATH, "POST", 1)],
                         ["chat", "create"] + list(HI), 3, "A0202"),
    "401-quotes-bearer-stream": ([(err_msgcode("A0202", "bad token Bearer " + SENTINEL, status=401),
                                   CHAT_PATH, "POST", 1)], ["chat", "create", "--stream"] + list(HI), 3, "A0202"),
    "401-api-alias": ([(err_msgcode("A0202", "bad token " + SENTINEL, status=401), CHAT_PATH, "POST", 1)],
                      ["api", "chat.completions.create"] + list(HI), 3, "A0202"),
    "401-models": ([(err_msgcode("A0202", "bad token " + SENTINEL, status=401), MODELS_PATH, "GET", 1)],
                   ["models", "list"], 3, "A0202"),
    "401-header-echo": ([(Json({"msgCode": "A0202", "msg": "bad token"}, 401,
                               {"WWW-Authenticate": 'Bearer error="invalid_token" token="' + SENTINEL + '"'}),
                          CHAT_PATH, "POST", 1)], ["chat", "create"] + list(HI), 3, "A0202"),
    "500-retried": ([(err_code(500, "internal error checking " + SENTINEL, status=500, headers=RA0),
                      CHAT_PATH, "POST", 2)], ["--max-retries", "1", "chat", "create"] + list(HI), 1, "retrying"),
    "cut-stream": ([(Stream(stream_chunks(["Hel", "lo"]), cut=True), CHAT_PATH, "POST", 1)],
                   ["--max-retries", "0", "chat", "create", "--stream"] + list(HI), 6, "cut"),
    "error-event-in-stream": ([(_stream_then_error(), CHAT_PATH, "POST", 1)],
                              ["--max-retries", "0", "chat", "create", "--stream"] + list(HI), 3, "A0211"),
    "redirect-with-token": ([(Raw("", status=307, headers={"Location": "https://elsewhere.example/v1?key=" + SENTINEL}),
                              CHAT_PATH, "POST", 1)], ["chat", "create"] + list(HI), 5, "redirects"),
    "error-code-quotes-token": ([(err_openai("invalid api key", code="invalid_api_key:" + SENTINEL, status=401),
                                  CHAT_PATH, "POST", 1)], ["chat", "create"] + list(HI), 3, "invalid api key"),
    "html-page-echoes-headers": ([(_html_echo_page(0), CHAT_PATH, "POST", 1)],
                                 ["--max-retries", "0", "chat", "create"] + list(HI), 1, "502"),
    "html-page-echoes-headers-message-cuts": ([(_html_echo_page(len(HTTP_502_LEAD)), CHAT_PATH, "POST", 1)],
                                              ["--max-retries", "0", "chat", "create"] + list(HI), 1, "502"),
    "401-long-message-quotes-token": ([(err_msgcode("A0202", _token_at_cuts("bad token;"), status=401),
                                        CHAT_PATH, "POST", 1)], ["chat", "create"] + list(HI), 3, "A0202"),
}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_error_paths_do_not_leak_the_token(harness_for, source, case):
    replies, args, code, expect = ERROR_CASES[case]
    h = harness_for(source)
    for globals_ in ((), ("-v",), ("--debug",)):
        for as_json in (False, True):
            h.reset()
            for reply, path, method, times in replies:
                h.api.add(reply, path=path, method=method, times=times)
            argv = list(args) + (["--json"] if as_json else [])
            result = h.run(argv, globals_=globals_)
            label = "{} {}".format(" ".join(globals_), " ".join(argv))
            assert result.exit_code == code, "{}: exit {}\n{}".format(label, result.exit_code, result.stderr)
            if expect is not None:
                assert expect in result.stderr, "{}: {!r} not in stderr:\n{}".format(label, expect, result.stderr)
            assert h.api.requests and all(r.headers.get("authorization") == "Bearer " + SENTINEL
                                          for r in h.api.requests), label


@pytest.mark.parametrize("source", SOURCES)
def test_a_malformed_token_is_refused_without_being_echoed(harness_for, source, isolated_env):
    """A token with a space in it (a paste gone wrong) is refused, and not quoted back."""
    bad = SENTINEL + " and more"
    h = harness_for(source)
    h.reset()
    env = None
    argv = ["-b", h.api.base_url]
    if source == "flag":
        argv += ["-k", bad]
    elif source == "env":
        env = {"INTERN_API_KEY": bad}
    elif source == "keyring":
        h.keyring.set_password("interncli", "default", bad)
    else:
        h.config_dir.mkdir(parents=True, exist_ok=True)
        (h.config_dir / "credentials.yaml").write_text("profiles:\n  default:\n    token: '{}'\n".format(bad))
    for args in (["chat", "create"] + list(HI), ["auth", "status"], ["models", "list"]):
        result = invoke(argv + args, env=env)
        assert result.exit_code == 3, (args, result.stderr)
        assert "not valid" in result.stderr, result.stderr
        h.check(result, " ".join(args))
    assert not h.api.requests, "a malformed token must not be sent"


def test_login_reading_a_token_never_echoes_it(harness_for):
    """Login with INTERN_API_KEY also set warns, without quoting either token."""
    h = harness_for("keyring")
    h.reset()
    h.keyring.passwords.clear()
    other = "sk-OTHER-token-1a2b3c4d5e6f"
    result = invoke(["auth", "login", "--with-token"], input=SENTINEL + "\n", env={"INTERN_API_KEY": other})
    assert result.exit_code == 0, result.stderr
    assert "INTERN_API_KEY is set" in result.stderr
    assert other not in result.stdout + result.stderr
    h.check(result, "auth login with INTERN_API_KEY set")
    assert h.keyring.get_password("interncli", "default") == SENTINEL


# ---------------------------------------------------------------------------- subprocess

# Imported by the interpreter at start-up (it is first on PYTHONPATH): at exit it writes the
# process's environment, as os.environ then holds it, to the file named by LEAKCHECK_ENV_DUMP.
SITECUSTOMIZE = textwrap.dedent("""\
    import atexit, json, os
    _PATH = os.environ.get("LEAKCHECK_ENV_DUMP")
    def _dump():
        if _PATH:
            with open(_PATH, "w") as fh:
                json.dump(dict(os.environ), fh)
    atexit.register(_dump)
""")


@pytest.mark.integration
@pytest.mark.parametrize("source", SOURCES)
def test_the_installed_command_leaks_nothing_not_even_into_its_environment(api, tmp_path, isolated_env, source):
    exe = find_interncli()
    if exe is None:
        pytest.fail("the `interncli` command is not installed (pip install -e .)", pytrace=False)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    config_dir = Path(os.environ["INTERNCLI_CONFIG_DIR"])
    keyring_file = tmp_path / "keyring.json"  # outside HOME and the config dir, as a real keyring's store
    env = dict(os.environ)
    env.update(PYTHONPATH=os.pathsep.join([str(hooks), str(REPO_ROOT)]),
               PYTHON_KEYRING_BACKEND="tests.filekeyring.FileKeyring",
               INTERNCLI_TEST_KEYRING_FILE=str(keyring_file))
    prefix = ["-b", api.base_url]
    if source == "flag":
        prefix += ["-k", SENTINEL]
    elif source == "env":
        env["INTERN_API_KEY"] = SENTINEL
    count = [0]

    def run(args: Sequence[str], stdin: Optional[str] = None, code: int = 0, show: bool = False,
            insecure: bool = False) -> subprocess.CompletedProcess:
        count[0] += 1
        dump = tmp_path / "env-{}.json".format(count[0])
        proc = subprocess.run([exe] + prefix + list(args), input=stdin, capture_output=True, text=True,
                              env=dict(env, LEAKCHECK_ENV_DUMP=str(dump)), timeout=30)
        label = " ".join(args)
        assert proc.returncode == code, "{}: exit {}\n{}".format(label, proc.returncode, proc.stderr)
        if show:
            assert proc.stdout.strip() == SENTINEL
        else:
            assert_no_marker(proc.stdout, "stdout of " + label)
        assert_no_marker(proc.stderr, "stderr of " + label)
        assert dump.exists(), "the environment check did not run"
        for name, value in json.loads(dump.read_text()).items():
            if source == "env" and name == "INTERN_API_KEY":
                continue  # where the user put it
            assert_no_marker(value, "the environment ({}) of `interncli {}`".format(name, label))
        for path in files_under(isolated_env, config_dir):
            if (insecure or source == "file") and path == config_dir / "credentials.yaml":
                continue
            assert_no_marker(path.read_bytes().decode("utf-8", errors="replace"), "file {}".format(path))
        return proc

    if source == "keyring":
        run(["auth", "login", "--with-token"], stdin="Bearer " + SENTINEL + "\n")
        assert SENTINEL in keyring_file.read_text(), "the token went to the (test) keyring"
    elif source == "file":
        run(["auth", "login", "--insecure-storage", "--with-token"], stdin=SENTINEL + "\n", insecure=True)
    run(["chat", "create"] + list(HI))
    run(["-v", "chat", "create", "--stream"] + list(HI))
    run(["chat", "create", "--dry-run"] + list(HI))
    assert MASKED in run(["auth", "status", "--json"]).stdout
    run(["auth", "token"], show=True)
    api.add(err_msgcode("A0202", "bad token " + SENTINEL, status=401))
    assert "A0202" in run(["-v", "chat", "create"] + list(HI), code=3).stderr
    chats = api.calls(CHAT_PATH)
    assert len(chats) == 3 and all(r.headers.get("authorization") == "Bearer " + SENTINEL for r in chats)
    run(["auth", "logout"])


# ------------------------------------------------------------ the token in other clothes

def _b64(data: str, urlsafe: bool = False) -> str:
    import base64

    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(data.encode()).decode()


# What a server, a gateway or a proxy's error page may quote back instead of the token as sent:
# name -> (the text quoted, pieces of the token that must not be shown).
ENCODED: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "percent-encoded": ("".join("%{:02X}".format(b) for b in SENTINEL.encode()), ()),
    "percent-encoded-lower": ("".join("%{:02x}".format(b) for b in SENTINEL.encode()), ()),
    "json-escaped-first-char": ("\\u0073" + SENTINEL[1:], ()),
    "json-escaped-all": ("".join("\\u{:04x}".format(ord(c)) for c in SENTINEL), ()),
    "base64": (_b64(SENTINEL), ()),
    "base64-unpadded": (_b64(SENTINEL).rstrip("="), ()),
    "base64-urlsafe": (_b64(SENTINEL, urlsafe=True), ()),
    "base64-bearer": (_b64("Bearer " + SENTINEL), ()),
    "base64-inside-a-header-dump": (_b64("Authorization: Bearer " + SENTINEL + "\r\nHost: x"),
                                    (_b64("Authorization: Bearer " + SENTINEL + "\r\nHost: x")[40:60],)),
    "split-by-a-newline": (SENTINEL[:12] + "\n" + SENTINEL[12:], (SENTINEL[12:],)),
    "split-by-spaces": (SENTINEL[:7] + " " + SENTINEL[7:20] + "   " + SENTINEL[20:], (SENTINEL[7:20],)),
    "split-by-an-escaped-newline": (SENTINEL[:12] + "\\n" + SENTINEL[12:], (SENTINEL[12:],)),
}


@pytest.mark.parametrize("name", sorted(ENCODED))
@pytest.mark.parametrize("shape", ["json-401", "text-502"])
def test_an_encoded_or_split_token_quoted_back_is_redacted(api, name, shape):
    quoted, pieces = ENCODED[name]
    for globals_ in ((), ("-v",)):
        for as_json in (False, True):
            api.reset()
            if shape == "json-401":
                api.add(err_msgcode("A0202", "bad token: " + quoted, status=401))
            else:
                api.add(Raw("<pre>upstream refused: " + quoted + "</pre>", status=502, content_type="text/plain"))
            argv = ["-b", api.base_url, "-k", SENTINEL, "--max-retries", "0", *globals_, "chat", "create", *HI]
            result = invoke(argv + (["--json"] if as_json else []))
            assert result.exit_code == (3 if shape == "json-401" else 1), result.stderr
            for shown in (quoted, " ".join(quoted.split())) + pieces + MARKERS:
                assert shown not in result.stderr, "{} {}: the token leaked:\n{}".format(name, argv, result.stderr)
            assert "***" in result.stderr


@pytest.mark.parametrize("code", [{"token": SENTINEL}, [SENTINEL, 1], {"nested": [{"k": "Bearer " + SENTINEL}]}],
                         ids=["dict", "list", "nested"])
def test_an_error_code_that_is_not_a_string_is_redacted(api, code):
    for as_json in (False, True):
        api.reset()
        api.add(err_openai("invalid api key", code=code, status=401))
        result = invoke(["-b", api.base_url, "-k", SENTINEL, "chat", "create", *HI] + (["--json"] if as_json else []))
        assert result.exit_code == 3, result.stderr
        assert_no_marker(result.stderr, "stderr with a code of {!r}".format(code))
        assert "***" in result.stderr


@pytest.mark.parametrize("argv", [
    ["-k", SENTINEL, SENTINEL],
    ["--api-key", SENTINEL, SENTINEL],
    ["--api-key=" + SENTINEL, SENTINEL],
    ["-vk" + SENTINEL, SENTINEL],
    ["-k", SENTINEL, SENTINEL, "--json"],
], ids=["-k T T", "--api-key T T", "--api-key=T T", "-vkT T", "json"])
def test_a_usage_error_before_the_options_are_stored_does_not_quote_the_token(argv):
    # click resolves the sub-command before the root's callback stores the options, so these
    # errors are raised while nothing knows the -k value yet: cli.run reads it from argv.
    result = invoke(argv)
    assert result.exit_code == 2 and "***" in result.stderr, result.stderr
    assert_no_marker(result.stdout + result.stderr, "the usage error of {}".format(argv))
