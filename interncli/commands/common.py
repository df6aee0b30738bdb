"""What the commands share: reading inputs, opening a client, retrying with notices."""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import click

from interncli.commands.completion import complete_profiles, complete_roles
from interncli.config import host_of, is_this_machine, proxy_for
from interncli.context import AppContext
from interncli.credentials import WITHHELD_HINT, withheld_message
from interncli.errors import AuthError, InternCliError, UsageError

T = TypeVar("T")
OFFICIAL_HOST = "chat.intern-ai.org.cn"

pass_app = click.make_pass_decorator(AppContext)


class Group(click.Group):
    """A command group that, called without a sub-command, shows its help on stderr and exits 2,
    whatever the click version (8.1 printed it on stdout with exit 0; 8.2 raises an error)."""

    def parse_args(self, ctx: click.Context, args: List[str]) -> List[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            click.echo(ctx.get_help(), err=True)
            ctx.exit(2)
        return super().parse_args(ctx, args)


def json_option(f: Callable) -> Callable:
    """``--json``: machine-readable output (cli.run also sends errors as one JSON line then)."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON for jq (errors too, as one JSON line on stderr).")(f)


def read_messages(pairs: Sequence[Tuple[str, str]], stdin: Any) -> List[Dict[str, Any]]:
    """The ``-g`` messages, with ``-`` read from stdin; without any, stdin is one user message."""
    if not pairs:
        if stdin is None or stdin.isatty():
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


def read_stdin(stdin: Any) -> str:
    """All of stdin as text, which must be UTF-8 (read as bytes, so the locale cannot garble it)."""
    if stdin is None:
        raise UsageError("stdin is closed, but a message was to be read from it ('-')",
                         hint="Pipe the text in, or give it on the command line.")
    data = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
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


def trace_to_stderr(line: str) -> None:
    """A ``--verbose`` trace line, escaped: it quotes the server's headers and body."""
    from interncli.safetext import escape_controls

    sys.stderr.write(escape_controls(line) + "\n")
    sys.stderr.flush()


def require_token(app: AppContext) -> None:
    """The official service needs a token; a private server may not, so it is asked instead."""
    credential = app.credential
    if credential.token is None and host_of(app.settings.base_url) == OFFICIAL_HOST:
        problem = credential.keyring_problem
        if credential.withheld is not None:  # say why: the stored token is for another host
            raise AuthError("no API token for {}: {}".format(OFFICIAL_HOST, withheld_message(
                app.settings.profile, credential.withheld, OFFICIAL_HOST)), hint=WITHHELD_HINT)
        if problem is not None:  # say what is wrong: the keyring, not the token
            raise AuthError("no API token for profile {!r}: {}".format(app.settings.profile, problem.message),
                            hint=problem.hint)
        raise AuthError("no API token for profile {!r}".format(app.settings.profile),
                        hint="Run `interncli auth login`, or set INTERN_API_KEY (get a token from the "
                             "Intern website).")


def check_plain_http(app: AppContext) -> None:
    """A token over plain http:// to another machine can be read on the way: refused unless the
    user opted in (profile key allow_http, or INTERN_ALLOW_HTTP=1), then a warning, once. A
    proxy carries the request in clear too: one on another machine counts as that machine,
    even for a server on this one (requests sends localhost through HTTP_PROXY as well)."""
    url = app.settings.base_url
    if not app.credential.token or not url.lower().startswith("http://"):
        return
    proxy = proxy_for(url, app.settings.proxy, app.environ)
    if proxy is not None and not is_this_machine(host_of(proxy)):
        where = "to {} through the proxy {}".format(host_of(url), host_of(proxy))
    elif not is_this_machine(host_of(url)):
        where = "to {}".format(host_of(url))
    else:
        return
    if not app.settings.allow_http:
        raise UsageError("refusing to send the API token over plain http:// {}: anyone on the way "
                         "could read it".format(where),
                         hint="Use https://, or, on a network you trust, opt in: "
                              "interncli config set --profile {} allow_http true (or INTERN_ALLOW_HTTP=1){}".format(
                                  app.settings.profile,
                                  "; or exempt this host from the proxy with NO_PROXY"
                                  if proxy and not app.settings.proxy else ""))
    if not app.http_warned:
        app.http_warned = True
        sys.stderr.write("interncli: warning: the API token goes over plain http:// {} (allow_http is on)\n"
                         .format(where))
        sys.stderr.flush()


def open_transport(app: AppContext) -> Any:
    """A transport with the resolved network settings (imports requests: call only when sending)."""
    from interncli.transport import Transport

    settings = app.settings
    check_plain_http(app)
    return Transport(settings.base_url, token=app.credential.token, timeout=settings.timeout,
                     proxy=settings.proxy, ca_bundle=settings.ca_bundle,
                     # The transport redacts the token; this also catches proxy passwords, which
                     # a proxy's error page may quote back (as Proxy-Authorization: Basic ...).
                     trace=(lambda line: trace_to_stderr(app.redact(line))) if settings.verbose else None)


def with_retries(app: AppContext, attempt: Callable[[], T],
                 output_started: Optional[Callable[[], bool]] = None) -> T:
    """Run ``attempt`` with the configured retries; nothing is retried once output has started."""
    from interncli.transport import call_with_retries

    def may_retry(err: InternCliError) -> bool:
        return err.retryable and not (output_started and output_started())

    def notify(err: InternCliError, delay: float, number: int) -> None:
        from interncli.output import one_line

        code = "[{}] ".format(one_line(str(app.redact_value(err.code)))) if err.code is not None else ""
        sys.stderr.write("interncli: {}{}; retrying in {:.1f}s ({} of {})\n".format(
            code, one_line(app.redact(err.message)), delay, number, app.settings.max_retries))
        sys.stderr.flush()

    try:
        return call_with_retries(attempt, app.settings.max_retries, notify, may_retry, sleep=app.sleep)
    except AuthError as err:
        problem = app.credential.keyring_problem
        withheld = app.credential.withheld
        if app.credential.token is None and withheld is not None:
            # The server wants a token, and the one stored for this profile is for another host.
            err.hint = "No token was sent: {}. {}".format(withheld_message(
                app.settings.profile, withheld, host_of(app.settings.base_url)), WITHHELD_HINT)
        elif app.credential.token is None and problem is not None:
            # The server wants a token we could not read: the keyring is to blame, not the token.
            err.hint = "No token was sent: {}. {}".format(problem.message, problem.hint)
        raise
