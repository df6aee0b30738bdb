"""What the commands share: reading inputs, asking the person, the token, opening a client,
retrying with notices."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import click

from interncli.commands.completers import complete_profiles, complete_roles
from interncli.config import OFFICIAL_HOST, host_of, is_this_machine, proxy_for
from interncli.context import AppContext
from interncli.credentials import Credential, missing_token
from interncli.errors import AuthError, InternCliError, RateLimitError, UsageError
from interncli.iostreams import IOStreams

if TYPE_CHECKING:  # requests is imported only when a request is sent
    from interncli.ratelimit import Budget
    from interncli.transport import Transport

T = TypeVar("T")

pass_app = click.make_pass_decorator(AppContext)


class Integer(click.IntRange):
    """A whole number, maybe bounded: "'abc' is not an integer" where click would say "is not a
    valid integer range" (the range is checked by click, as before)."""

    name = "integer"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if not isinstance(value, int):
            try:
                int(value)
            except (TypeError, ValueError):
                self.fail("{!r} is not an integer".format(value), param, ctx)
        return super().convert(value, param, ctx)

    def _describe_range(self) -> str:
        # Unbounded (the openai CLI's numbers, which the server checks): click would show "[x<=None]".
        return "" if self.min is None and self.max is None else super()._describe_range()


class Number(click.FloatRange):
    """A number, maybe bounded: "'abc' is not a number" where click would say "is not a valid
    float range"."""

    name = "number"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if not isinstance(value, (int, float)):
            try:
                float(value)
            except (TypeError, ValueError):
                self.fail("{!r} is not a number".format(value), param, ctx)
        return super().convert(value, param, ctx)

    def _describe_range(self) -> str:
        return "" if self.min is None and self.max is None else super()._describe_range()


def short_options_first(parser: Any, ctx: click.Context) -> Any:
    """``parser`` (a command's, from click's make_parser) made to look an argument with one dash
    (``-b``, ``-vk``) up among the short options at once. click tries every option as a long one
    first, and the miss raises a NoSuchOption, whose message goes through gettext (a search of
    the locale folders) and whose "did you mean" compares it with every long option: 0.1 ms for
    each short option of a command line, thrown away. Where it is a long option after all (one
    declared as ``-foo``), or this click's parser is not the one known here, click's path runs."""
    process = getattr(parser, "_process_opts", None)
    match_short = getattr(parser, "_match_short_opt", None)
    long_options = getattr(parser, "_long_opt", None)
    prefixes = getattr(parser, "_opt_prefixes", None)
    if process is None or match_short is None or not isinstance(long_options, dict) or \
            not isinstance(prefixes, set) or ctx.token_normalize_func is not None:
        return parser

    def process_opts(arg: str, state: Any) -> None:
        # What click does when its long match fails on such an argument (split at "=" as it does).
        if arg[:2] not in prefixes and arg.split("=", 1)[0] not in long_options:
            match_short(arg, state)
        else:
            process(arg, state)

    parser._process_opts = process_opts
    return parser


class Command(click.Command):
    """A command whose short options are parsed without click's detour (short_options_first)."""

    def make_parser(self, ctx: click.Context) -> Any:
        return short_options_first(super().make_parser(ctx), ctx)


class Group(click.Group):
    """A command group that, called without a sub-command, shows its help on stderr and exits 2,
    whatever the click version (8.1 printed it on stdout with exit 0; 8.2 raises an error). Its
    options, and those of the commands made with its ``command()``, are parsed as Command's."""

    command_class = Command

    def make_parser(self, ctx: click.Context) -> Any:
        return short_options_first(super().make_parser(ctx), ctx)

    def parse_args(self, ctx: click.Context, args: List[str]) -> List[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            app = ctx.find_object(AppContext)
            click.echo(ctx.get_help(), file=app.io.stderr if app is not None else None, err=True)
            ctx.exit(2)
        return super().parse_args(ctx, args)


def _json_mode(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """Eager, so that stderr turns to JSON as soon as click has parsed ``--json`` (before the
    other options are checked): an error in any of them then comes out as JSON too."""
    app = ctx.find_object(AppContext)
    if value and app is not None and not ctx.resilient_parsing:
        app.io.json = True
    return value


def json_option(f: Callable) -> Callable:
    """``--json``: machine-readable output; every stderr line is then one JSON object too."""
    return click.option("--json", "as_json", is_flag=True, is_eager=True, callback=_json_mode,
                        help="Print JSON for jq (stderr too: each line one JSON object, errors included).")(f)


def read_messages(pairs: Sequence[Tuple[str, str]], io: IOStreams) -> List[Dict[str, Any]]:
    """The ``-g`` messages, with ``-`` read from stdin; without any, stdin is one user message."""
    stdin = io.stdin
    if not pairs:
        if stdin is None or io.stdin_tty:
            raise UsageError("no message to send",
                             hint="Give one with -g user 'Hello', or pipe text in: echo hi | interncli chat create")
        text = read_stdin(stdin)
        if not text.strip():
            raise UsageError("no message to send: stdin was empty", hint="Pipe some text in, or use -g user TEXT.")
        return [{"role": "user", "content": text}]
    if sum(1 for _, content in pairs if content == "-") > 1:
        raise UsageError("only one message can read stdin ('-')", hint="Put the other text on the command line.")
    for _, content in pairs:
        try:
            content.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError("a -g message is not valid UTF-8 text",
                             hint="Check the terminal's encoding (LANG), or pipe the text in with -g user -.") from None
    messages: List[Dict[str, Any]] = []
    for role, content in pairs:
        if content == "-":
            content = read_stdin(stdin)
            if not content.strip():
                raise UsageError("-g {} -: stdin was empty".format(role),
                                 hint="Pipe some text in, or give the message on the command line.")
        messages.append({"role": role, "content": content})
    return messages


def read_stdin(stdin: Optional[IO[str]]) -> str:
    """All of stdin as text, which must be UTF-8 (read as bytes, so the locale cannot garble it)."""
    if stdin is None:
        raise UsageError("stdin is closed, but a message was to be read from it ('-')",
                         hint="Pipe the text in, or give it on the command line.")
    data: Any = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        raise UsageError("stdin is not UTF-8 text",
                         hint="Convert it first, e.g. iconv -f GBK -t UTF-8; binary files cannot be sent.") from None


def message_option(help: str) -> Callable[[Callable], Callable]:
    """``-g/--message ROLE CONTENT``, repeatable, roles completed."""
    from interncli.conversation import ROLES

    return click.option("-g", "--message", "messages", multiple=True, metavar="ROLE CONTENT",
                        type=(click.Choice(ROLES), str), shell_complete=complete_roles, help=help)


def profile_option(f: Callable) -> Callable:
    """``--profile`` on a sub-command, the same as the global one (which it overrides)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
        app = ctx.find_object(AppContext)
        if value is not None and app is not None:
            app.options["profile"] = value
        return value

    return click.option("--profile", metavar="NAME", expose_value=False, callback=callback,
                        shell_complete=complete_profiles, help="The profile (as the global --profile).")(f)


def confirm(io: IOStreams, text: str) -> bool:
    """Ask ``text [y/N]:`` on stderr and read the answer from stdin, as click.confirm does: "y"
    or "yes" is yes; "n", "no" or an empty line is no; anything else asks again. The end of
    stdin is an interrupt (click.Abort)."""
    while True:
        answer = _ask(io, text + " [y/N]: ")
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no", ""):
            return False
        io.stderr.write("Error: invalid input\n")


def _ask(io: IOStreams, prompt: str) -> str:
    io.stderr.write(prompt)
    io.stderr.flush()
    line = io.stdin.readline() if io.stdin is not None else ""
    if not line:  # end of input: nobody is there to answer
        raise click.Abort()
    return line.strip().lower()


def ask_secret(io: IOStreams, text: str) -> str:
    """Ask ``text:`` on stderr and read one line from stdin, not echoed when stdin is a real
    terminal (a stream that is no terminal device is read as it is)."""
    assert io.stdin is not None
    io.stderr.write(text + ": ")
    io.stderr.flush()
    mode = _terminal_mode(io.stdin)
    if mode is None:
        line = io.stdin.readline()
    else:
        termios, fd, saved = mode
        quiet = list(saved)
        quiet[3] &= ~termios.ECHO
        try:
            termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
            line = io.stdin.readline()
        finally:
            termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
            io.stderr.write("\n")  # the Enter typed was not echoed
            io.stderr.flush()
    if not line:  # end of input: nobody is there to answer
        raise click.Abort()
    return line.rstrip("\r\n")


def _terminal_mode(stream: IO[str]) -> Optional[Tuple[Any, int, List[Any]]]:
    """(termios, fd, its attributes) when ``stream`` is a terminal device whose echo can be
    turned off; None for anything else (a pipe, a stream with no file descriptor)."""
    try:
        import termios
    except ImportError:
        return None
    try:
        fd = stream.fileno()
        return termios, fd, termios.tcgetattr(fd)
    except (OSError, ValueError, AttributeError, termios.error):
        return None


def lookup_credential(app: AppContext) -> Credential:
    """The token in use (looked up once), its lookup's warnings shown, once, on stderr."""
    credential = app.credential
    if credential.warnings:
        from interncli import output

        for warning in credential.warnings:
            output.warn(warning, app.io)
        credential.warnings.clear()
    return credential


def require_token(app: AppContext) -> None:
    """The official service needs a token; a private server may not, so it is asked instead."""
    credential = lookup_credential(app)
    if credential.token is None and host_of(app.settings.base_url) == OFFICIAL_HOST:
        raise missing_token(credential, app.settings.profile, OFFICIAL_HOST, noun="API token",
                            hint="Run `interncli auth login`, or set INTERN_API_KEY (get a token from the "
                                 "Intern website).")


def check_plain_http(app: AppContext) -> None:
    """A token, or a credential header (-H, the profile's headers), over plain http:// to another
    machine can be read on the way: refused unless the user opted in (profile key allow_http, or
    INTERN_ALLOW_HTTP=1), then a warning, once. A proxy carries the request in clear too: one on
    another machine counts as that machine, even for a server on this one (requests sends
    localhost through HTTP_PROXY as well)."""
    from interncli.config import is_secret_header

    url = app.settings.base_url
    token = lookup_credential(app).token
    # The token's Authorization replaces one of -H (wire.request_headers): that one is not sent.
    names = [name for name in app.settings.headers
             if is_secret_header(name) and not (token and name.lower() == "authorization")]
    secrets = (["the API token"] if token else []) + (
        ["the header{} {}".format("s" if len(names) > 1 else "", ", ".join(names))] if names else [])
    if not secrets or not url.lower().startswith("http://"):
        return
    what = " and ".join(secrets)
    proxy = proxy_for(url, app.settings.proxy, app.environ)
    if proxy is not None and not is_this_machine(host_of(proxy)):
        where = "to {} through the proxy {}".format(host_of(url), host_of(proxy))
    elif not is_this_machine(host_of(url)):
        where = "to {}".format(host_of(url))
    else:
        return
    if not app.settings.allow_http:
        raise UsageError("refusing to send {} over plain http:// {}: anyone on the way "
                         "could read it".format(what, where),
                         hint="Use https://, or, on a network you trust, opt in: "
                              "interncli config set --profile {} allow_http true (or INTERN_ALLOW_HTTP=1){}".format(
                                  app.settings.profile,
                                  "; or exempt this host from the proxy with NO_PROXY"
                                  if proxy and app.settings.sources["proxy"] != "flag" else ""))
    if not app.http_warned:
        from interncli import output

        app.http_warned = True
        plural = len(secrets) > 1 or (not token and len(names) > 1)
        output.warn("{} {} over plain http:// {} (allow_http is on)".format(
            what, "go" if plural else "goes", where), app.io)


def warn_about_headers(app: AppContext) -> None:
    """Say, once, which extra headers are not sent: the profile's credential headers when the base
    URL was moved to another host, and an Authorization of -H when the token's goes instead."""
    from interncli import output

    settings = app.settings
    if app.headers_warned:
        return
    app.headers_warned = True
    if settings.withheld_headers:
        output.warn("the profile's {} not sent to {}: {} for the profile's own base URL".format(
            ", ".join(settings.withheld_headers), host_of(settings.base_url),
            "it is" if len(settings.withheld_headers) == 1 else "they are"), app.io)
    if lookup_credential(app).token and any(name.lower() == "authorization" for name in settings.headers):
        output.warn("the Authorization header given is not sent: the API token's is (send none with -k "
                    "and INTERN_API_KEY unset to use yours)", app.io)


def open_transport(app: AppContext) -> Transport:
    """A transport with the resolved network settings (imports requests: call only when sending)."""
    from interncli import output
    from interncli.transport import Transport

    settings = app.settings
    check_plain_http(app)
    warn_about_headers(app)
    budget = rate_budget(app)
    return Transport(settings.base_url, token=lookup_credential(app).token, timeout=settings.timeout,
                     headers=settings.headers, pace=budget.take if budget is not None else None,
                     proxy=settings.proxy, ca_bundle=settings.ca_bundle, environ=app.environ,
                     # The transport redacts the token; this also catches proxy passwords, which
                     # a proxy's error page may quote back (as Proxy-Authorization: Basic ...).
                     trace=(lambda line: output.trace(app.redact(line), app.io)) if settings.verbose else None)


def rate_budget(app: AppContext) -> Optional[Budget]:
    """The shared rate budget of the profile and host in use (one per run, shared by its
    threads), or None when ``rpm`` is 0: then no file is touched at all."""
    if app.budget_made:
        return app.budget
    app.budget_made = True
    settings = app.settings
    if settings.rpm:
        from interncli import output
        from interncli.config import state_dir
        from interncli.ratelimit import Budget, budget_path

        host = host_of(settings.base_url)

        def notify(wait: float) -> None:
            output.inform("waiting {:.1f}s for the shared rate budget: {} requests a minute for profile {} at {} "
                          "(--rpm sets it)".format(wait, settings.rpm, settings.profile, host), app.io)

        def unusable(err: InternCliError) -> None:
            # A read-only home (a container's CI step) must not stop every request: they go
            # unpaced, as before there was a budget, and the person is told how to fix it.
            output.warn("the shared rate budget is off for this run: {}. {}".format(err.message, err.hint), app.io)

        app.budget = Budget(budget_path(state_dir(app.environ), settings.profile, host), settings.rpm,
                            sleep=app.sleep, notify=notify, unusable=unusable, ready=app.before_slot)
    return app.budget


def with_retries(app: AppContext, attempt: Callable[[], T],
                 output_started: Optional[Callable[[], bool]] = None,
                 on_retry: Optional[Callable[[InternCliError], None]] = None) -> T:
    """Run ``attempt`` with the configured retries; nothing is retried once output has started.
    Each retry is told on stderr, or to ``on_retry`` instead (a batch counts them)."""
    from interncli import output
    from interncli.transport import call_with_retries

    def may_retry(err: InternCliError) -> bool:
        return err.retryable and not (output_started and output_started())

    def notify(err: InternCliError, delay: float, number: int) -> None:
        if on_retry is not None:
            on_retry(err)
            return
        output.retry_notice(app.redact_value(err.code), app.redact(err.message), delay, number,
                            app.settings.max_retries, app.io)

    def paced() -> T:
        try:
            return attempt()
        except RateLimitError as err:
            # Every process of the account backs off, not only this one.
            budget = rate_budget(app)
            if budget is not None:
                budget.slow_down(err.retry_after)
            raise

    try:
        return call_with_retries(paced, app.settings.max_retries, notify, may_retry, sleep=app.sleep)
    except AuthError as err:
        # The server wants a token that was not sent: say why (the stored one is for another
        # host, or the keyring could not be read), not that the token is wrong.
        reason = app.credential.absence(app.settings.profile, host_of(app.settings.base_url))
        if reason is not None:
            err.hint = "No token was sent: {}. {}".format(*reason)
        raise
