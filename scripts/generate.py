"""Regenerate completions/ and man/ from the click command tree.

    python scripts/generate.py          # write the files
    python scripts/generate.py --check  # exit 1 if a committed copy is stale
"""

from __future__ import annotations

import argparse
import inspect
import pathlib
import sys
from typing import Dict, Iterator, List, Tuple

import click
from click.shell_completion import get_completion_class

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from interncli import __version__  # noqa: E402
from interncli.cli import cli  # noqa: E402

COMPLETION_FILES = {"bash": "interncli.bash", "zsh": "_interncli", "fish": "interncli.fish"}

ENVIRONMENT = [
    ("INTERN_API_KEY", "The API token (preferred over -k, which other users can see in ps)."),
    ("INTERN_BASE_URL", "The API base URL."),
    ("INTERN_PROFILE", "The config profile."),
    ("INTERN_TIMEOUT", "Seconds to wait for the server."),
    ("INTERN_MAX_RETRIES", "Retries on rate limits, 5xx replies and connection failures."),
    ("INTERNCLI_CONFIG_DIR", "The config directory."),
    ("HTTPS_PROXY, HTTP_PROXY, NO_PROXY", "Proxy settings, as for any requests-based program."),
    ("REQUESTS_CA_BUNDLE, SSL_CERT_FILE", "CA certificates to trust."),
    ("NO_COLOR", "Turns colour off."),
]
EXIT_STATUS = [
    ("0", "success"), ("1", "other failure: a server error, an unknown error body"),
    ("2", "usage: a bad flag, an unreadable file, bad YAML or a bad tools spec"),
    ("3", "authentication or account (A0202, A0211, C1114, -20004, -20035, 401, 403, no token)"),
    ("4", "rate limited after the retries (-20053, 429)"),
    ("5", "request rejected (-10002, -20013, -20018, 400, 404, 422)"),
    ("6", "network: connection, DNS, TLS, timeout; a stream cut or malformed"),
    ("7", "a tool call was refused or could not run"), ("130", "interrupted"),
]
EXAMPLES = [
    'interncli chat create -g user "Hello"',
    'git diff | interncli chat create -g system "Review this diff" -g user -',
    "interncli chat create --json -g user hi | jq -r '.choices[0].message.content'",
    "interncli -b http://127.0.0.1:23333/v1 chat create -g user hi",
]


def walk(command: click.Command,
         path: Tuple[str, ...] = ("interncli",)) -> Iterator[Tuple[Tuple[str, ...], click.Command]]:
    """Every command of the tree with its full name, groups included."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                yield from walk(sub, path + (name,))


def roff(text: str) -> str:
    """Text made safe for roff: backslashes, and leading dots or quotes."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line if line[:1] in (".", "'") else line) for line in text.splitlines())


def man_page(path: Tuple[str, ...], command: click.Command) -> str:
    """One man page in roff."""
    name = "-".join(path)
    ctx = click.Context(command, info_name=" ".join(path))
    short = command.get_short_help_str(limit=80)
    lines = ['.TH "{}" "1" "" "interncli {}" "User Commands"'.format(name.upper(), __version__),
             ".SH NAME", "{} \\- {}".format(roff(name), roff(short)),
             ".SH SYNOPSIS", ".B {}".format(roff(" ".join(path))), roff(" ".join(command.collect_usage_pieces(ctx))),
             ".SH DESCRIPTION"]
    for paragraph in inspect.cleandoc(command.help or short).split("\n\n"):
        if paragraph.startswith("\b\n"):  # click's mark for a block kept as written
            lines += [".PP", ".nf", roff(paragraph[2:]), ".fi"]
        else:
            lines += [".PP", roff(" ".join(paragraph.split()))]
    params = [p for p in command.get_params(ctx) if isinstance(p, click.Option) and not p.hidden]
    if params:
        lines.append(".SH OPTIONS")
        for param in params:
            record = param.get_help_record(ctx)
            if record:
                lines += [".TP", ".B {}".format(roff(record[0])), roff(record[1] or "")]
    if isinstance(command, click.Group):
        lines.append(".SH COMMANDS")
        for sub in command.list_commands(ctx):
            lines += [".TP", ".B {}".format(roff(sub)),
                      "See \\fB{}\\fR(1).".format(roff("-".join(path + (sub,))))]
    if len(path) == 1:
        lines.append(".SH ENVIRONMENT")
        for var, text in ENVIRONMENT:
            lines += [".TP", ".B {}".format(roff(var)), roff(text)]
        lines += [".SH FILES", ".TP", ".I $INTERNCLI_CONFIG_DIR/config.yaml",
                  "Profiles: base_url, model, timeout, max_retries, proxy, ca_bundle "
                  "(default directory: ~/.config/interncli)."]
        lines.append(".SH EXIT STATUS")
        for code, text in EXIT_STATUS:
            lines += [".TP", ".B {}".format(code), roff(text)]
        lines.append(".SH EXAMPLES")
        for example in EXAMPLES:
            lines += [".PP", ".nf", roff(example), ".fi"]
    return "\n".join(lines) + "\n"


def completion_script(shell: str) -> str:
    """click's completion script for ``shell``."""
    cls = get_completion_class(shell)
    assert cls is not None
    return cls(cli, {}, "interncli", "_INTERNCLI_COMPLETE").source()


def artifacts() -> Dict[pathlib.Path, str]:
    """Every generated file and its content."""
    files = {ROOT / "completions" / name: completion_script(shell) for shell, name in COMPLETION_FILES.items()}
    for path, command in walk(cli):
        files[ROOT / "man" / ("-".join(path) + ".1")] = man_page(path, command)
    return files


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale files instead of writing them")
    args = parser.parse_args(argv)
    files = artifacts()
    stale = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    extra = [p for d in ("man", "completions") for p in (ROOT / d).iterdir()
             if p not in files and p.name != ".gitkeep"]
    if args.check:
        for p in stale + extra:
            print("stale: {}".format(p.relative_to(ROOT)))
        return 1 if stale or extra else 0
    for p in stale:
        p.parent.mkdir(exist_ok=True)
        p.write_text(files[p], encoding="utf-8")
    for p in extra:
        p.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
