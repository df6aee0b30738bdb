"""The root command: global options, lazy sub-command loading, and the one place where
errors become exit codes."""

from __future__ import annotations

import importlib
import os
import sys
import time
from typing import Any, Callable, List, Optional

import click

from interncli import __version__, credentials
from interncli.commands.common import Group
from interncli.commands.completion import complete_profiles
from interncli.context import AppContext
from interncli.errors import ExitCode, InternCliError

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


class LazyGroup(Group):
    """A group whose sub-commands are imported on first use."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise ReaderGone() from exc

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
        click.echo("interncli " + __version__)
        ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-b", "--base-url", "--api-base", "base_url", metavar="URL",
              help="API base URL [env INTERN_BASE_URL; default https://chat.intern-ai.org.cn/api/v1].")
@click.option("-k", "--api-key", "api_key", metavar="TOKEN",
              help="API token (visible in `ps`: prefer INTERN_API_KEY) [env INTERN_API_KEY].")
@click.option("--profile", metavar="NAME", shell_complete=complete_profiles,
              help="Config profile to use [env INTERN_PROFILE; default: default].")
@click.option("--timeout", metavar="SECONDS", help="Seconds to wait for the server [env INTERN_TIMEOUT; default 130].")
@click.option("--max-retries", metavar="N",
              help="Retries on rate limits, 5xx and connection failures [env INTERN_MAX_RETRIES; default 2].")
@click.option("--proxy", metavar="URL", help="HTTP(S) proxy [env HTTPS_PROXY, NO_PROXY].")
@click.option("--ca-bundle", metavar="PATH", type=click.Path(dir_okay=False),
              help="CA certificates to trust [env REQUESTS_CA_BUNDLE, SSL_CERT_FILE].")
@click.option("-v", "--verbose", is_flag=True, help="Show each request and response on stderr (token redacted).")
@click.option("--debug", is_flag=True, help="Show a traceback on unexpected errors.")
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and exit.")
@click.pass_context
def cli(ctx: click.Context, **options: Any) -> None:
    """A command-line client for the Intern ChatAPI and private LMDeploy servers.

    Data goes to stdout, everything else to stderr; exit codes: 0 ok, 1 failure, 2 usage,
    3 auth, 4 rate limited, 5 rejected, 6 network, 7 tool, 130 interrupted.
    """
    ctx.obj.options.update(options)


def _config_dir() -> str:
    return os.environ.get("INTERNCLI_CONFIG_DIR") or click.get_app_dir("interncli")


def main(argv: Optional[List[str]] = None) -> None:
    """The console script: run the command and exit with the contract's exit code."""
    import signal

    # A cancelled CI job sends SIGTERM: unwind like Ctrl-C does, so that a running tool's
    # process group is stopped too, and exit as a terminated process would (143).
    signal.signal(signal.SIGTERM, _terminated)
    sys.exit(run(argv))


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run(argv: Optional[List[str]] = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Run a command line and return its exit code; nothing escapes as a traceback. ``sleep``
    waits between retries (a test passes one that records the delays asked for)."""
    args = list(sys.argv[1:] if argv is None else argv)
    app = AppContext(options={}, environ=os.environ, config_dir=_config_dir())
    # Known before parsing, so that even a parsing error comes out as JSON under --json.
    app.json_errors = "--json" in (args[:args.index("--")] if "--" in args else args)
    # A usage error may come before the options are stored, quoting a -k value (`-k T T`).
    app.argv_tokens = credentials.argv_tokens(args)
    app.sleep = sleep
    if sys.stdout is None:  # started with stdout closed (>&-)
        sys.stdout = open(os.devnull, "w")
    try:
        result = cli.main(args=args, prog_name="interncli", standalone_mode=False, obj=app)
        return result if isinstance(result, int) else 0
    except InternCliError as err:
        from interncli.output import report_error

        # A server may quote the token back in its error message.
        err.message = app.redact(err.message)
        err.hint = app.redact(err.hint) if err.hint else err.hint
        err.code = app.redact_value(err.code)
        report_error(err, sys.stderr, as_json=app.json_errors)
        return int(err.exit_code)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        sys.stderr.write("interncli: interrupted\n")
        return int(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        sys.stderr.write("\ninterncli: interrupted\n")
        return int(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        return _report_click_error(exc, app)
    except ReaderGone:
        # The reader has what it wanted: stop quietly, and keep Python's own flush at exit
        # from failing on the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.OK)
    except OSError as exc:  # writing the output failed (a full disk, a closed terminal)
        from interncli.output import report_error

        report_error(InternCliError("cannot write the output: {}".format(exc.strerror or exc),
                                    hint="Check where stdout goes (a full disk, a closed terminal)."),
                     sys.stderr, as_json=app.json_errors)
        return int(ExitCode.FAILURE)
    except Exception as exc:  # the last line of defence: no traceback without --debug
        from interncli.output import report_error

        if app.options.get("debug"):
            import traceback

            from interncli.safetext import escape_controls

            # Written here, not by Python: its messages may quote a token or a server's text.
            sys.stderr.write(escape_controls(app.redact(traceback.format_exc())))
        report_error(InternCliError(app.redact("unexpected {}: {}".format(type(exc).__name__, exc)),
                          hint="Please report it{}.".format(
                              " with the traceback above" if app.options.get("debug")
                              else "; run again with --debug for a traceback")),
                     sys.stderr, as_json=app.json_errors)
        return int(ExitCode.FAILURE)


def _report_click_error(exc: click.ClickException, app: AppContext) -> int:
    """A usage error in the contract's format: one line, then a hint."""
    from interncli.errors import UsageError
    from interncli.output import report_error

    ctx = getattr(exc, "ctx", None)
    hint = "Try '{} --help' for help.".format(ctx.command_path if ctx is not None else "interncli")
    # click quotes the words it did not expect, and a token pasted in the wrong place is one.
    report_error(UsageError(app.redact(exc.format_message()), hint=hint), sys.stderr, as_json=app.json_errors)
    return int(ExitCode.USAGE)
