"""What the commands share: reading inputs, opening a client, retrying with notices."""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional, TypeVar

import click

from interncli.context import AppContext, Settings
from interncli.errors import AuthError, InternCliError

T = TypeVar("T")
OFFICIAL_HOST = "chat.intern-ai.org.cn"

pass_app = click.make_pass_decorator(AppContext)


def json_option(f: Callable) -> Callable:
    """``--json``: machine-readable output (cli.run also sends errors as one JSON line then)."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON for jq (errors too, as one JSON line on stderr).")(f)


def trace_to_stderr(line: str) -> None:
    """A ``--verbose`` trace line."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def require_token(settings: Settings) -> None:
    """The official service needs a token; a private server may not, so it is asked instead."""
    if settings.token is None and OFFICIAL_HOST in settings.base_url:
        raise AuthError(
            "no API token for profile {!r}".format(settings.profile),
            hint="Set INTERN_API_KEY, or pass -k TOKEN (get a token from the Intern website).",
        )


def open_transport(settings: Settings) -> Any:
    """A transport with the resolved network settings (imports requests: call only when sending)."""
    from interncli.transport import Transport

    return Transport(settings.base_url, token=settings.token, timeout=settings.timeout,
                     proxy=settings.proxy, ca_bundle=settings.ca_bundle,
                     trace=trace_to_stderr if settings.verbose else None)


def with_retries(app: AppContext, attempt: Callable[[], T],
                 output_started: Optional[Callable[[], bool]] = None) -> T:
    """Run ``attempt`` with the configured retries; nothing is retried once output has started."""
    from interncli.transport import call_with_retries

    def may_retry(err: InternCliError) -> bool:
        return err.retryable and not (output_started and output_started())

    def notify(err: InternCliError, delay: float, number: int) -> None:
        code = "[{}] ".format(err.code) if err.code is not None else ""
        sys.stderr.write("interncli: {}{}; retrying in {:.1f}s ({} of {})\n".format(
            code, app.redact(err.message), delay, number, app.settings.max_retries))
        sys.stderr.flush()

    return call_with_retries(attempt, app.settings.max_retries, notify, may_retry)
