"""The root command: global options, lazy sub-command loading, and the one place where
errors become exit codes."""

from __future__ import annotations

import importlib
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import click

from interncli import __version__, config, credentials
from interncli.commands.common import Group
from interncli.commands.completers import complete_profiles
from interncli.context import AppContext
from interncli.errors import EXIT_MEANINGS, ExitCode, InternCliError
from interncli.iostreams import IOStreams

# name -> (module, attribute): imported only when the sub-command is used, so that
# `--version` and `chat create --help` load no more than they need.
COMMANDS = {
    "api": ("interncli.commands.api", "api"),
    "auth": ("interncli.commands.auth", "auth"),
    "chat": ("interncli.commands.chat", "chat"),
    "completion": ("interncli.commands.completion", "completion"),
    "config": ("interncli.commands.config", "config"),
    "models": ("interncli.commands.models", "models"),
    "tools": ("interncli.commands.tools", "tools"),
}


class ReaderGone(Exception):
    """stdout was closed by its reader (``| head``); click would turn EPIPE into exit 1."""


class Interrupted(Exception):
    """Ctrl-C while a command ran; click would print a newline of its own to sys.stderr, not a
    JSON line under --json."""


class LazyGroup(Group):
    """A group whose sub-commands are imported on first use."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise ReaderGone() from exc
        except KeyboardInterrupt as exc:
            raise Interrupted() from exc

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    # click.version_option would import gettext and locale on every start.
    if value and not ctx.resilient_parsing:
        app = ctx.find_object(AppContext)
        click.echo("interncli " + __version__, file=app.io.stdout if app is not None else None)
        ctx.exit()


def _none_if_empty(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    return value or None


def global_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The root's options: one for each setting of config.SETTINGS that has a flag, in the
    table's order, its --help text from the table."""
    extra: Dict[str, Dict[str, Any]] = {"profile": {"shell_complete": complete_profiles},
                                        "ca_bundle": {"type": click.Path(dir_okay=False)},
                                        # None when not given, as for the other flags: not a flag value
                                        "headers": {"multiple": True, "callback": _none_if_empty}}
    for setting in reversed([s for s in config.SETTINGS if s.flags]):
        kind = {"metavar": setting.metavar} if setting.metavar else {"is_flag": True}
        command = click.option(*setting.flags, setting.name, help=setting.option_help(),
                               **kind, **extra.get(setting.name, {}))(command)
    return command


ROOT_HELP = """A command-line client for the Intern ChatAPI and private LMDeploy servers.

Data goes to stdout, everything else to stderr; exit codes: {}.
""".format(", ".join("{} {}".format(int(code), word) for code, word, _ in EXIT_MEANINGS))


@click.group(cls=LazyGroup, help=ROOT_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@global_options
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and exit.")
@click.pass_context
def cli(ctx: click.Context, **options: Any) -> None:
    """The root: keeps the global options for the sub-commands. Its --help is ROOT_HELP, whose
    exit codes come from errors.EXIT_MEANINGS."""
    ctx.obj.options.update(options)


def main(argv: Optional[List[str]] = None) -> None:
    """The console script: run the command and exit with the contract's exit code."""
    import signal

    # A cancelled CI job sends SIGTERM: unwind like Ctrl-C does, so that a running tool's
    # process group is stopped too, and exit as a terminated process would (143).
    signal.signal(signal.SIGTERM, _terminated)
    sys.exit(run(argv))


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run(argv: Optional[List[str]] = None, io: Optional[IOStreams] = None,
        sleep: Callable[[float], None] = time.sleep) -> int:
    """Run a command line and return its exit code; nothing escapes as a traceback. ``io``: the
    streams to use; by default the process's own, as they are now (CliRunner swaps them).
    ``sleep`` waits between retries (a test passes one that records the delays asked for)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if io is None:
        if sys.stdout is None:  # started with stdout closed (>&-)
            sys.stdout = open(os.devnull, "w")
        io = IOStreams(sys.stdin, sys.stdout, sys.stderr, os.environ)
    config_dir = os.environ.get("INTERNCLI_CONFIG_DIR") or click.get_app_dir("interncli")
    app = AppContext(options={}, environ=os.environ, config_dir=config_dir, io=io)
    # A usage error may come before the options are stored, quoting a -k value (`-k T T`).
    app.argv_tokens = credentials.argv_tokens(args)
    app.sleep = sleep
    try:
        result = cli.main(args=args, prog_name="interncli", standalone_mode=False, obj=app)
        return result if isinstance(result, int) else 0
    except InternCliError as err:
        # A server may quote the token back in its error message.
        err.message = app.redact(err.message)
        err.hint = app.redact(err.hint) if err.hint else err.hint
        err.code = app.redact_value(err.code)
        _report(err, io)
        return int(err.exit_code)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        _report_interrupted(io, "")
        return int(ExitCode.INTERRUPTED)
    except (KeyboardInterrupt, Interrupted):
        _report_interrupted(io, "\n")
        return int(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        # Parsing stopped before --json's own callback could turn stderr to JSON: ask click's
        # parser again, resiliently, whether --json was given as an option.
        io.json = io.json or _json_given(args)
        return _report_click_error(exc, app)
    except ReaderGone:
        # The reader has what it wanted: stop quietly, and keep Python's own flush at exit
        # from failing on the closed pipe.
        try:
            fd = io.stdout.fileno()
        except (AttributeError, OSError, ValueError):  # no file under it: nothing flushes at exit
            return int(ExitCode.OK)
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
        return int(ExitCode.OK)
    except OSError as exc:  # writing the output failed (a full disk, a closed terminal)
        _report(InternCliError("cannot write the output: {}".format(exc.strerror or exc),
                               hint="Check where stdout goes (a full disk, a closed terminal)."), io)
        return int(ExitCode.FAILURE)
    except Exception as exc:  # the last line of defence: no traceback without --debug
        if app.options.get("debug"):
            import traceback

            _report_traceback(app.redact(traceback.format_exc()), io)
        _report(InternCliError(app.redact("unexpected {}: {}".format(type(exc).__name__, exc)),
                               hint="Please report it{}.".format(
                                   " with the traceback above" if app.options.get("debug")
                                   else "; run again with --debug for a traceback")), io)
        return int(ExitCode.FAILURE)


def _report(err: InternCliError, io: IOStreams) -> None:
    from interncli.output import report_error

    report_error(err, io.stderr, as_json=io.json, color=io.color)


def _report_interrupted(io: IOStreams, lead: str) -> None:
    """``interncli: interrupted`` (after a newline, if the terminal's line may be open), or
    under --json an error object with exit code 130."""
    if io.json:
        from interncli.output import write_diagnostic

        write_diagnostic({"error": {"code": None, "message": "interrupted", "hint": None, "http_status": None,
                                    "exit_code": int(ExitCode.INTERRUPTED)}}, io.stderr)
        return
    io.stderr.write(lead + "interncli: interrupted\n")
    io.stderr.flush()


def _report_traceback(text: str, io: IOStreams) -> None:
    """--debug's traceback (already redacted), written here, not by Python: its messages may
    quote a server's text; under --json as one ``{"traceback": "..."}`` line."""
    if io.json:
        from interncli.output import write_diagnostic

        write_diagnostic({"traceback": text}, io.stderr)
        return
    from interncli.safetext import escape_controls

    io.stderr.write(escape_controls(text))
    io.stderr.flush()


def _json_given(args: List[str]) -> bool:
    """Whether ``--json`` is an option of the command that ``args`` names, by click's own
    parser in resilient mode, told to set unknown options aside (a missing value still ends the
    parse there). A message whose text is "--json" (``-g user --json``) is a value, not the
    option, as in the real parse."""
    try:
        ctx = cli.make_context("interncli", list(args), resilient_parsing=True, ignore_unknown_options=True)
        while isinstance(ctx.command, click.Group):
            # click 8.2 renamed protected_args (the sub-command's name and what follows it).
            protected = getattr(ctx, "_protected_args" if hasattr(ctx, "_protected_args") else "protected_args")
            rest = [*protected, *ctx.args]
            # An unknown option before the sub-command's name was set aside: pass over it.
            while rest and rest[0].startswith("-"):
                rest.pop(0)
            name, command, rest = ctx.command.resolve_command(ctx, rest) if rest else (None, None, [])
            if command is None or name is None:
                return False
            ctx = command.make_context(name, rest, parent=ctx, resilient_parsing=True, ignore_unknown_options=True)
        return bool(ctx.params.get("as_json"))
    except (click.ClickException, click.exceptions.Exit, InternCliError):
        return False


def _report_click_error(exc: click.ClickException, app: AppContext) -> int:
    """A usage error in the contract's format: one line, then a hint."""
    from interncli.errors import UsageError

    ctx = getattr(exc, "ctx", None)
    hint = "Try '{} --help' for help.".format(ctx.command_path if ctx is not None else "interncli")
    # click quotes the words it did not expect, and a token pasted in the wrong place is one.
    _report(UsageError(app.redact(exc.format_message()), hint=hint), app.io)
    return int(ExitCode.USAGE)
