"""The root command: global options, lazy sub-command loading, and the one place where
errors become exit codes."""

from __future__ import annotations

import importlib
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

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
        # parser again, resiliently, whether --json was given as an option of the command the
        # line names (a message whose text is "--json", -g user --json, is a value, not it).
        deepest, complete = _resilient_parse(args)
        io.json = io.json or (complete and deepest is not None and bool(deepest.params.get("as_json")))
        return _report_click_error(exc, app, deepest)
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


def _resilient_parse(args: List[str]) -> Tuple[Optional[click.Context], bool]:
    """The context of the deepest command ``args`` names, parsed as far as click's parser in
    resilient mode gets, and whether that command's own options parsed whole. None when even the
    root's did not."""
    ctx: Optional[click.Context] = None
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
                return ctx, False
            parent = ctx
            try:
                ctx = command.make_context(name, rest, parent=ctx, resilient_parsing=True,
                                           ignore_unknown_options=True)
            except click.ClickException:
                # Its options did not parse (a missing value): its name is still known.
                return click.Context(command, info_name=name, parent=parent), False
        return ctx, True
    except (click.ClickException, click.exceptions.Exit, InternCliError):
        return ctx, False


def _is_command_option(name: str, ctx: click.Context) -> bool:
    """Whether some command below the root takes the option ``name`` (an error path: loading
    every command is fine here)."""
    def walk(command: click.Command, parent: click.Context) -> bool:
        if any(name in param.opts for param in command.params):
            return True
        if isinstance(command, click.Group):
            sub_ctx = click.Context(command, parent=parent)
            for sub in command.list_commands(sub_ctx):
                found = command.get_command(sub_ctx, sub)
                if found is not None and walk(found, sub_ctx):
                    return True
        return False

    return any(walk(command, ctx) for command in
               filter(None, (cli.get_command(ctx, sub) for sub in cli.list_commands(ctx))))


def _report_click_error(exc: click.ClickException, app: AppContext, deepest: Optional[click.Context]) -> int:
    """A usage error in the contract's format: one line, then a hint naming the help of the
    command the line was for."""
    from interncli.errors import UsageError

    origin = getattr(exc, "ctx", None)  # the context click raised in
    ctx = origin
    if (ctx is None or ctx.parent is None) and deepest is not None:
        ctx = deepest  # raised before a sub-command's context was made: the one the line names
    path = ctx.command_path if ctx is not None else "interncli"
    message = exc.format_message()
    hint = "Try '{} --help' for help.".format(path)
    if isinstance(exc, click.NoSuchOption) and origin is not None:
        globals_ = {opt for param in cli.params for opt in param.opts}
        if origin.parent is not None and exc.option_name in globals_:
            message = "{} is a global option: it goes before the command".format(exc.option_name)
            hint = "Put it first: interncli {} ... {} ...".format(exc.option_name, path.split(" ", 1)[-1])
        elif origin.parent is None and _is_command_option(exc.option_name, origin):
            # click's "Did you mean" compares with the root's options only: a command's option
            # given before the command's name would be told of --version.
            message = "No such option for interncli itself: {}".format(exc.option_name)
            example = path if ctx is not None and ctx.parent is not None else "interncli chat create"
            hint = "A command's options go after its name ({} {} ...); 'interncli --help' lists the " \
                   "global ones.".format(example, exc.option_name)
    # click quotes the words it did not expect, and a token pasted in the wrong place is one.
    _report(UsageError(app.redact(message), hint=app.redact(hint)), app.io)
    return int(ExitCode.USAGE)
