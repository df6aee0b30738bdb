"""Shell integration, for real: completion in bash, zsh and fish, the man pages under man-db, the
files a ``pip install`` puts where shells and man look, and the README's way of enabling
completion by hand.

How each shell is driven is told in tests/shells.py, which holds the helpers.
"""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from typing import Dict, Iterator, List, NamedTuple, Sequence, Set, Tuple

import click
import pytest

from tests.shells import (
    BASH_BINDINGS,
    BASH_COMPLETION,
    CONFIG,
    MODELS,
    PROFILES,
    ZSH_BINDINGS,
    TabCase,
    Workspace,
    bash_complete,
    check_tabs,
    fish_complete,
    make_workspace,
    need,
    type_tab,
)

pytestmark = pytest.mark.integration

ROOT = pathlib.Path(__file__).resolve().parent.parent
COMMITTED = {"bash": ROOT / "completions" / "interncli.bash", "zsh": ROOT / "completions" / "_interncli",
             "fish": ROOT / "completions" / "interncli.fish"}
ROLES = {"system", "user", "assistant", "tool"}
SENTINEL = "sk-SENTINEL-shell-completion-42"


@pytest.fixture
def ws(tmp_path, config_dir) -> Workspace:
    """A config with profiles, files to complete, interncli first on PATH (see make_workspace)."""
    return make_workspace(tmp_path, config_dir)


# -- bash -------------------------------------------------------------------------------------------


BASH_LOADERS = {
    "generated": "source <(interncli completion bash)",
    "committed": "source " + shlex.quote(str(COMMITTED["bash"])),
}


class Case(NamedTuple):
    line: str
    expected: Set[str]
    exact: bool = True  # else: expected is a subset of what is offered


CASES = [
    Case("interncli ch", {"chat"}),
    Case("interncli chat ", {"create"}, exact=False),
    Case("interncli chat create --str", {"--stream"}),
    Case("interncli --ti", {"--timeout"}),
    Case("interncli chat create -g u", {"user"}),
    Case("interncli chat create -g user hi -g a", {"assistant"}),
    Case("interncli chat create -g user ", set()),  # the content is free text: no roles offered
    Case("interncli --profile local chat create -m m-", MODELS),
    Case("interncli --profile local tools run spec.yaml -m m-", MODELS),
    Case("interncli chat create -m ", {"intern-latest"}),  # the default profile names no models
    Case("interncli --profile ", PROFILES),
    Case("interncli --profile l", {"local"}),
    Case("interncli config set --profile w", {"work"}),
    Case("interncli chat create --tools sp", {"spec.yaml"}),
    Case("interncli chat create --conversation ta", {"talk.json"}),
    Case("interncli chat create --image ph", {"photo.png"}),
    Case("interncli completion ", {"bash", "fish", "install", "zsh"}),
    Case("interncli completion install ", {"bash", "fish", "zsh"}),
    Case("interncli completion install --pr", {"--print-path"}),
]


def check(case: Case, offered: Sequence[str]) -> None:
    got = set(offered)
    assert len(got) == len(offered), "offered twice: {}".format(offered)
    if case.exact:
        assert got == case.expected, "{!r}: expected {}, got {}".format(case.line, sorted(case.expected), offered)
    else:
        assert case.expected <= got, "{!r}: expected {} among {}".format(case.line, sorted(case.expected), offered)


@pytest.mark.parametrize("loader", sorted(BASH_LOADERS))
@pytest.mark.parametrize("case", CASES, ids=[c.line for c in CASES])
def test_bash_completes(ws, loader, case):
    check(case, bash_complete(BASH_LOADERS[loader], case.line, ws))


def test_bash_models_follow_the_profile_chosen_by_environment_or_config(ws, config_dir):
    env = dict(ws.env, INTERN_PROFILE="local")
    assert set(bash_complete(BASH_LOADERS["generated"], "interncli chat create -m m-", ws, env)) == MODELS
    (config_dir / "config.yaml").write_text("default_profile: work\n" + CONFIG, encoding="utf-8")
    assert bash_complete(BASH_LOADERS["generated"], "interncli chat create -m intern-s", ws) == ["intern-s1"]


def test_model_completion_asks_no_server(ws):
    """-m is completed from the config alone: nothing connects to the base URL, token or not."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        server.setblocking(False)
        url = "http://127.0.0.1:{}/v1".format(server.getsockname()[1])
        env = dict(ws.env, INTERN_API_KEY=SENTINEL, INTERN_BASE_URL=url)
        load = BASH_LOADERS["generated"]
        assert bash_complete(load, "interncli -b {} chat create -m ".format(url), ws, env) == ["intern-latest"]
        assert set(bash_complete(load, "interncli --profile local -b {} chat create -m m-".format(url),
                                 ws, env)) == MODELS
        assert set(bash_complete(load, "interncli --profile local chat create -m m-", ws, env)) == MODELS
        time.sleep(0.05)
        with pytest.raises(BlockingIOError):
            peer = server.accept()
            pytest.fail("completion connected to the server: {}".format(peer))


def test_completion_does_not_import_requests_or_keyring(ws):
    """Completion runs on every Tab: it must start light (no HTTP or keyring stack)."""
    code = ("import atexit, sys\n"
            "atexit.register(lambda: sys.stderr.write('LOADED %s\\n' % sorted(\n"
            "    m for m in ('requests', 'urllib3', 'keyring') if m in sys.modules)))\n"
            "from interncli.cli import main\n"
            "sys.argv = ['interncli']\n"
            "main()\n")
    env = dict(ws.env, _INTERNCLI_COMPLETE="bash_complete", INTERN_API_KEY=SENTINEL,
               COMP_WORDS="interncli --profile local chat create -m m-", COMP_CWORD="6")
    done = subprocess.run([sys.executable, "-c", code], cwd=str(ws.cwd), env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert {"plain," + m for m in MODELS} <= set(done.stdout.splitlines())
    assert "LOADED []" in done.stderr, done.stderr


# -- fish -------------------------------------------------------------------------------------------

FISH_LOADERS = {
    "generated": "interncli completion fish | source",
    "committed": "source " + shlex.quote(str(COMMITTED["fish"])),
}
FISH_CASES = [
    Case("interncli ch", {"chat"}),
    Case("interncli chat ", {"create"}, exact=False),
    Case("interncli chat create --str", {"--stream"}),
    Case("interncli --ti", {"--timeout"}),
    Case("interncli --profile local chat create -m m-", MODELS),
    Case("interncli --profile l", {"local"}),
    Case("interncli chat create --tools sp", {"spec.yaml"}),
    Case("interncli completion ", {"bash", "fish", "install", "zsh"}),
]


@pytest.mark.parametrize("loader", sorted(FISH_LOADERS))
@pytest.mark.parametrize("case", FISH_CASES, ids=[c.line for c in FISH_CASES])
def test_fish_completes(ws, loader, case):
    check(case, fish_complete(FISH_LOADERS[loader], case.line, ws))


# -- a shell on a pseudo-terminal -----------------------------------------------------------------


# Several Tabs in one session: each must work, not only the first.
TAB_CASES = [
    TabCase("interncli ch", "interncli chat ", {"chat"}),
    TabCase("interncli --profile local chat create -m m-", "interncli --profile local chat create -m m-", MODELS),
    TabCase("interncli chat create --str", "interncli chat create --stream "),
    TabCase("interncli --profile lo", "interncli --profile local "),
    TabCase("interncli chat create --tools sp", "interncli chat create --tools spec.yaml "),
    TabCase("interncli completion ", "interncli completion ", {"bash", "fish", "install", "zsh"}),
    TabCase("interncli --profile local chat create -m m-l", "interncli --profile local chat create -m m-local "),
]


# -- zsh --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["generated", "committed"])
def test_zsh_script_parses(ws, source):
    need("zsh")
    if source == "generated":
        path = ws.tmp / "_interncli"
        path.write_text(subprocess.run(["interncli", "completion", "zsh"], env=ws.env, capture_output=True,
                                       text=True, check=True).stdout, encoding="utf-8")
    else:
        path = COMMITTED["zsh"]
    done = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert path.read_text(encoding="utf-8").startswith("#compdef interncli\n")


@pytest.mark.parametrize("how", ["fpath", "source"])
def test_zsh_completes_on_tab(ws, how):
    """A real zsh: ``zsh -f -i`` on a pseudo-terminal, ``compinit``, and Tab pressed after each
    partial line. ``fpath``: the committed ``_interncli`` in a folder on fpath, which is how the
    README and ``share/zsh/site-functions`` install it; ``source``: ``source <(interncli completion
    zsh)`` after compinit."""
    need("zsh")
    functions = ws.tmp / "site-functions"
    functions.mkdir()
    if how == "fpath":
        shutil.copy(str(COMMITTED["zsh"]), str(functions / "_interncli"))
        load = "fpath=({} $fpath)\nautoload -Uz compinit && compinit -u -d $OUT/zcompdump\n".format(
            shlex.quote(str(functions)))
    else:
        load = "autoload -Uz compinit && compinit -u -d $OUT/zcompdump\nsource <(interncli completion zsh)\n"
    typed = type_tab(["zsh", "-f", "-i"], ws.env, ws.cwd, ws.tmp / "out", load + ZSH_BINDINGS,
                     [c.line for c in TAB_CASES], wait_completed=True)
    check_tabs(TAB_CASES, typed)


# -- man pages --------------------------------------------------------------------------------------

SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES")
MAN_PAGES = sorted((ROOT / "man").glob("*.1"))


def click_tree(command: click.Command, path: Tuple[str, ...] = ("interncli",)) -> Iterator[Tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from click_tree(sub, path + (name,))


def man_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MANPATH", "MANPAGER", "PAGER", "MANOPT")}
    env.update(MANWIDTH="80", LC_ALL="C.UTF-8")
    return env


def test_one_man_page_per_command():
    from interncli.cli import cli

    expected = {"-".join(path) + ".1" for path in click_tree(cli)}
    assert "interncli.1" in expected and "interncli-chat-create.1" in expected
    assert {p.name for p in MAN_PAGES} == expected


@pytest.mark.parametrize("page", MAN_PAGES, ids=[p.name for p in MAN_PAGES])
def test_man_page_renders_without_warnings(page):
    need("man")
    done = subprocess.run(["man", "--warnings", "-P", "cat", "-l", str(page)], env=man_env(), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "man --warnings complained about {}:\n{}".format(page.name, done.stderr)
    headings = set(done.stdout.splitlines())
    missing = [s for s in SECTIONS if s not in headings]
    assert not missing, "{} lacks {}".format(page.name, missing)
    name = page.name[:-len(".1")]
    assert re.search(r"^NAME\n\s+{}\s+-\s+\S".format(re.escape(name)), done.stdout, flags=re.M), done.stdout[:400]
    if shutil.which("lexgrog"):  # what mandb reads for whatis and apropos
        whatis = subprocess.run(["lexgrog", str(page)], env=man_env(), capture_output=True, text=True, timeout=30)
        assert whatis.returncode == 0 and '"{} - '.format(name) in whatis.stdout, whatis.stdout + whatis.stderr


# -- a real install ---------------------------------------------------------------------------------

DATA_DIRS = {"bash": "share/bash-completion/completions", "zsh": "share/zsh/site-functions",
             "fish": "share/fish/vendor_completions.d"}


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> pathlib.Path:
    """interncli installed by pip (without its dependencies) into a fresh venv."""
    base = tmp_path_factory.mktemp("install")
    source = base / "src"
    shutil.copytree(str(ROOT), str(source), ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*cache", "bench"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HOME=str(base), PIP_DISABLE_PIP_VERSION_CHECK="1")
    target = base / "venv"
    started = time.monotonic()
    made = subprocess.run([sys.executable, "-m", "venv", str(target)], env=env, capture_output=True, text=True,
                          timeout=60)
    if made.returncode != 0:
        pytest.skip("python -m venv failed: " + made.stderr[-500:])
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps"]
    # Offline first (the venv's setuptools may build wheels by itself); else pip fetches the
    # build requirements (setuptools, wheel) from the configured index.
    tries = [pip + ["--no-build-isolation", "--no-index", str(source)], pip + [str(source)]]
    errors = []
    for argv in tries:
        left = 45 - (time.monotonic() - started)
        try:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=max(left, 5))
        except subprocess.TimeoutExpired:
            errors.append("{}: timed out".format(" ".join(argv[3:])))
            break
        if done.returncode == 0:
            return target
        errors.append("{}: {}".format(" ".join(argv[3:]), (done.stdout + done.stderr).strip()[-400:]))
    pytest.skip("cannot pip install into a fresh venv here (no index for the build requirements?):\n"
                + "\n".join(errors))


def test_install_puts_completions_and_man_pages_where_they_are_looked_for(venv):
    for shell, folder in DATA_DIRS.items():
        installed = venv / folder / COMMITTED[shell].name
        assert installed.is_file(), "{} is not installed in {}".format(COMMITTED[shell].name, folder)
        assert installed.read_bytes() == COMMITTED[shell].read_bytes()
    installed_man = {p.name for p in (venv / "share" / "man" / "man1").glob("*.1")}
    assert installed_man == {p.name for p in MAN_PAGES}


def test_man_finds_the_installed_pages_from_path(venv):
    """man-db looks in <dir>/../share/man for each <dir> on PATH: no MANPATH needed."""
    need("man")
    env = dict(man_env(), PATH=str(venv / "bin") + os.pathsep + os.environ.get("PATH", ""))
    where = subprocess.run(["man", "-w", "interncli"], env=env, capture_output=True, text=True, timeout=30)
    assert where.returncode == 0, where.stderr
    assert pathlib.Path(where.stdout.strip()).resolve() == (venv / "share/man/man1/interncli.1").resolve()
    for name, synopsis in (("interncli", "interncli [OPTIONS] COMMAND"),
                           ("interncli-chat-create", "interncli chat create")):
        page = subprocess.run(["man", "-P", "cat", name], env=env, capture_output=True, text=True, timeout=30)
        assert page.returncode == 0 and synopsis in page.stdout, page.stderr


def test_fish_finds_the_installed_completion(venv, ws):
    """fish reads vendor_completions.d under each of XDG_DATA_DIRS, as for any packaged program."""
    need("fish")
    system_only = dict(ws.env, XDG_DATA_DIRS="/usr/local/share:/usr/share")
    assert "chat" not in fish_complete("", "interncli ch", ws, system_only), "fish knew interncli before the install"
    env = dict(ws.env, XDG_DATA_DIRS=os.pathsep.join([str(venv / "share"), "/usr/local/share", "/usr/share"]))
    assert fish_complete("", "interncli ch", ws, env) == ["chat"]
    assert set(fish_complete("", "interncli --profile local chat create -m m-", ws, env)) == MODELS


def test_bash_completion_loads_the_installed_script(venv, ws):
    """bash-completion's on-demand loader finds share/bash-completion/completions/interncli.bash
    under XDG_DATA_DIRS, as it would for a packaged program."""
    need("bash")
    if not os.path.exists(BASH_COMPLETION):
        pytest.skip("bash-completion is not installed (apt package bash-completion)")
    env = dict(ws.env, XDG_DATA_DIRS=os.pathsep.join([str(venv / "share"), "/usr/local/share", "/usr/share"]))
    load = "source {} && __load_completion interncli".format(BASH_COMPLETION)
    assert bash_complete(load, "interncli ch", ws, env) == ["chat"]
    assert set(bash_complete(load, "interncli --profile local chat create -m m-", ws, env)) == MODELS


# -- the README ---------------------------------------------------------------------------------------

FENCE = re.compile(r"^```([A-Za-z]*)\n(.*?)^```", re.S | re.M)
SHELL_OF = {"sh": "bash", "bash": "bash", "shell": "bash", "zsh": "zsh", "fish": "fish"}


def readme_completion_blocks() -> Dict[str, List[str]]:
    """The code blocks of the README's section about completion, by shell."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = re.split(r"^(?=## )", text, flags=re.M)
    found = [s for s in sections if s.startswith("## ") and "completion" in s.splitlines()[0].lower()]
    if not found:
        pytest.fail("README.md has no section about shell completion: add a '## ...completion...' section "
                    "that tells how to enable it by hand (bash, zsh, fish)")
    blocks: Dict[str, List[str]] = {}
    for lang, code in FENCE.findall(found[0]):
        if lang in SHELL_OF:
            blocks.setdefault(SHELL_OF[lang], []).append(code)
    return blocks


def reader(ws: Workspace) -> Tuple[pathlib.Path, Dict[str, str]]:
    """A fresh home for someone following the README."""
    home = ws.tmp / "reader"
    home.mkdir()
    env = dict(ws.env, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local" / "share"))
    env.pop("ZDOTDIR", None)
    return home, env


def run_block(argv: List[str], code: str, ws: Workspace, env: Dict[str, str]) -> None:
    done = subprocess.run(argv + [code], cwd=str(ws.cwd), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, "the README's block failed:\n{}\n{}{}".format(code, done.stdout, done.stderr)


README_TABS = [
    TabCase("interncli ch", "interncli chat "),
    TabCase("interncli chat create --tools sp", "interncli chat create --tools spec.yaml "),
    TabCase("interncli --profile local chat create -m m-l", "interncli --profile local chat create -m m-local "),
    TabCase("interncli --profile lo", "interncli --profile local "),
]


def test_readme_enables_completion_in_bash(ws):
    """The README's bash lines, run as written; then its eval line makes this session complete,
    and Tab completes in a fresh interactive bash."""
    need("bash")
    blocks = readme_completion_blocks().get("bash")
    assert blocks, "the README's completion section has no ```sh block for bash"
    home, env = reader(ws)
    for code in blocks:
        run_block(["bash", "-e", "-c"], code, ws, env)
    evals = [line for code in blocks for line in code.splitlines() if line.lstrip().startswith("eval ")]
    assert evals, "the README shows no eval line to enable completion in the current bash"
    assert bash_complete("\n".join(evals), "interncli ch", ws, env) == ["chat"]
    typed = type_tab(["bash", "-i"], env, ws.cwd, ws.tmp / "out", BASH_BINDINGS,
                     [c.line for c in README_TABS], wait_completed=False)
    check_tabs(README_TABS, typed)


def test_readme_enables_completion_in_zsh(ws):
    """The README's zsh lines, run as written; then Tab completes in a fresh interactive zsh."""
    need("zsh")
    blocks = readme_completion_blocks().get("zsh")
    if not blocks:
        pytest.skip("the README's completion section has no zsh block")
    home, env = reader(ws)
    for code in blocks:
        run_block(["zsh", "-e", "-c"], code, ws, env)
    typed = type_tab(["zsh", "-i"], env, ws.cwd, ws.tmp / "out", ZSH_BINDINGS,
                     [c.line for c in README_TABS], wait_completed=True)
    check_tabs(README_TABS, typed)


def test_readme_enables_completion_in_fish(ws):
    """The README's fish lines, run as written; then a fresh fish completes."""
    need("fish")
    blocks = readme_completion_blocks().get("fish")
    if not blocks:
        pytest.skip("the README's completion section has no fish block")
    home, env = reader(ws)
    for code in blocks:
        run_block(["fish", "-c"], code, ws, env)
    assert fish_complete("", "interncli ch", ws, env) == ["chat"]
    assert set(fish_complete("", "interncli --profile local chat create -m m-", ws, env)) == MODELS
