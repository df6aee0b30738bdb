"""Exit codes, the exception tree, and the mapping from API error bodies to both.

The tree, each class with the exit code it ends in::

    InternCliError                      1  failure (and the root every command catches)
    ├── UsageError                      2  usage
    │   └── toolspec.SpecError          2  a broken tools spec
    ├── AuthError                       3  auth
    │   └── credentials.KeyringUnavailable
    ├── RateLimitError                  4  rate limited
    ├── RequestRejected                 5  rejected
    ├── ServerError                     1  failure (5xx, a body naming no known code)
    ├── NetworkError                    6  network
    │   └── StreamError                 6  a stream cut or malformed
    │       └── ReplyTooLarge           6  more than interncli holds
    └── ToolError                       7  tool

Ctrl-C (130) and SIGTERM (143) are not errors: cli.run maps them.
"""

from __future__ import annotations

import enum
from typing import Any, Optional, Tuple, Type


class ExitCode(enum.IntEnum):
    """The process exit codes of the contract (the README's exit-code table)."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    AUTH = 3
    RATE_LIMITED = 4
    REJECTED = 5
    NETWORK = 6
    TOOL = 7
    INTERRUPTED = 130
    TERMINATED = 143  # SIGTERM (a cancelled CI job): 128 + 15, as a shell reports it


# Each exit code, in a word (the root --help) and in full (the man page and the README).
EXIT_MEANINGS = (
    (ExitCode.OK, "ok", "success (also when the reader of stdout goes away, as with | head)"),
    (ExitCode.FAILURE, "failure", "other failure: a server error (5xx), an unknown error body, a reply the "
                                  "server marked failed (finish_reason error, abort)"),
    (ExitCode.USAGE, "usage", "usage: a bad flag, an unreadable file, bad YAML or a bad tools spec"),
    (ExitCode.AUTH, "auth", "authentication or account: no token, no working keyring, A0202, A0211, C1114, "
                            "-20004, -20035, 401, 403"),
    (ExitCode.RATE_LIMITED, "rate limited", "rate limited after the retries: -20053, 429"),
    (ExitCode.REJECTED, "rejected", "request rejected: -10002, -20013, -20018, 400, 404, 422; a conversation "
                                    "that fills the model's context; a reply that never fitted --schema"),
    (ExitCode.NETWORK, "network", "network: connection, DNS, TLS, timeout; a stream cut or malformed; a reply "
                                  "too large (what was printed stays)"),
    (ExitCode.TOOL, "tool", "a tool call was refused or could not run"),
    (ExitCode.INTERRUPTED, "interrupted", "interrupted (Ctrl-C); what was printed stays"),
    (ExitCode.TERMINATED, "terminated", "terminated (SIGTERM, as a cancelled CI job sends); a running tool is "
                                        "stopped too"),
)


class InternCliError(Exception):
    """Root of every error interncli reports; carries what the user needs to act on it."""

    exit_code = ExitCode.FAILURE
    default_hint: Optional[str] = None

    def __init__(
        self,
        message: str,
        *,
        hint: Optional[str] = None,
        code: Any = None,
        http_status: Optional[int] = None,
        retryable: bool = False,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        self.code = code
        self.http_status = http_status
        self.retryable = retryable
        self.retry_after = retry_after

    def to_dict(self) -> dict:
        """The error as the JSON object written to stderr under ``--json``."""
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "http_status": self.http_status,
            "exit_code": int(self.exit_code),
        }


class UsageError(InternCliError):
    exit_code = ExitCode.USAGE


class AuthError(InternCliError):
    exit_code = ExitCode.AUTH
    default_hint = "Check the token: set INTERN_API_KEY or pass -k, and check the account on the website."


# Retry-After values above this are not waited for (by a retry, or by the shared rate budget):
# the error is reported instead.
MAX_RETRY_AFTER = 120.0


class RateLimitError(InternCliError):
    exit_code = ExitCode.RATE_LIMITED
    default_hint = "Wait and try again, keep under 30 requests a minute, or apply for a higher limit."


class RequestRejected(InternCliError):
    exit_code = ExitCode.REJECTED
    default_hint = "The server refused the request: check the flags and the model name (-v shows what was sent)."


class ServerError(InternCliError):
    exit_code = ExitCode.FAILURE
    default_hint = "The server failed to answer: try again later (-v shows the exchange)."


class NetworkError(InternCliError):
    exit_code = ExitCode.NETWORK
    default_hint = "Check the base URL (-b), your network, proxy (--proxy) and TLS settings (--ca-bundle)."


class StreamError(NetworkError):
    """The reply stream was cut or could not be parsed."""

    default_hint = "Try again; what was already printed is kept."


class ReplyTooLarge(StreamError):
    """The server sent more than interncli holds (a reply, a stream line, a decompressed body):
    what a broken or hostile server does, so it is reported, not retried."""

    default_hint = "Check the base URL (-b) and any proxy in between; a chat reply is never this large."


class ToolError(InternCliError):
    exit_code = ExitCode.TOOL


# The seed's "Common Errors" table: code -> (class, hint).
API_CODES = {
    "-10002": (RequestRejected, "Check the parameters: the service refuses fields it does not support "
                                "(such as --stop or -O options) and streaming together with tools."),
    "-20004": (AuthError, "This account is not on the whitelist: apply for access through the website."),
    "-20013": (RequestRejected, "Check the model name (-m); `interncli models list` shows what the server offers."),
    "-20018": (RequestRejected, "Check the message format (-g ROLE CONTENT, or the --conversation file)."),
    "-20035": (AuthError, "Bind a phone number to the account on the website."),
    "-20053": (RateLimitError, None),
    "A0202": (AuthError, "Check the token: set INTERN_API_KEY or pass -k (without the 'Bearer ' prefix)."),
    "A0211": (AuthError, "The token has expired: get a new one from the website."),
    "C1114": (AuthError, "This token is not for this service: check the token and the base URL (-b)."),
}

# LMDeploy's own proxy (`lmdeploy serve proxy`, in front of several api_servers): its codes.
PROXY_CODES = {
    "10400": (RequestRejected, "No server behind LMDeploy's proxy serves this model: `interncli models list` "
                               "shows what it offers."),
    "10402": (ServerError, "LMDeploy's proxy got no answer from the server behind it in time: try again later."),
}

_STATUS_HINTS = {
    401: "Check the token: set INTERN_API_KEY or pass -k.",
    403: "The token is not allowed to do this: check the account and the base URL (-b).",
    404: "Check the base URL (-b) and the model name (-m).",
    413: "The request is too large: send less text or smaller images.",
}

CONTEXT_HINT = "The conversation fills the model's context; shorten it or start a new one."
MODEL_HINT = ("The server does not serve this model: `interncli models list` shows the models it serves; "
              "pass one with -m (private servers rarely serve intern-latest).")
# A 0.16+ LMDeploy refuses a prompt that fills the context with one of these messages (a 400).
_CONTEXT_MESSAGES = ("must be smaller than the model context length", "exceeds the model context length")
_DETAIL_ITEMS = 5  # validation problems shown; a long list says how many more there are


def class_for_status(status: int) -> Type[InternCliError]:
    """The error class an HTTP status maps to when the body names no known API code."""
    if status in (401, 403):
        return AuthError
    if status == 429:
        return RateLimitError
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return RequestRejected
    return ServerError


def _extract(obj: Any) -> Optional[Tuple[Any, str]]:
    """(code, message) from any of the error shapes the service and LMDeploy's versions are
    known to send, else None. A body with a ``choices`` list is a reply, whatever else it holds."""
    if not isinstance(obj, dict) or isinstance(obj.get("choices"), list):
        return None
    err = obj.get("error")
    if isinstance(err, dict) and ("message" in err or "code" in err):
        return err.get("code", err.get("type")), str(err.get("message", ""))
    if isinstance(err, str):
        return obj.get("code"), err
    if err is True and "message" in obj:  # LMDeploy's proxy, a stream failing midway
        return obj.get("status", obj.get("code")), str(obj["message"])
    if obj.get("object") == "error":
        return obj.get("code"), str(obj.get("message", obj.get("msg", "")))
    if "msgCode" in obj:
        if obj.get("success") is True:
            return None
        return obj.get("msgCode"), str(obj.get("msg", obj.get("message", "")))
    if "error_code" in obj and "text" in obj:  # LMDeploy's proxy
        return obj.get("error_code"), str(obj.get("text"))
    if "code" in obj and ("msg" in obj or "message" in obj):
        code = obj.get("code")
        if code in (0, "0", 200, "200", "success") and obj.get("success", True):
            return None
        return code, str(obj.get("msg", obj.get("message", "")))
    if "detail" in obj:
        return _from_detail(obj["detail"])
    return None


def _from_detail(detail: Any) -> Tuple[Any, str]:
    """FastAPI's ``detail``: a text, an error object wrapped by LMDeploy up to 0.12.1, or a list
    of validation problems (objects or plain texts). Never the ``body`` beside it: it echoes
    the request, prompt and all."""
    if isinstance(detail, str):
        return None, detail
    if isinstance(detail, dict):
        inner = _extract(detail)
        if inner is not None:
            return inner
    if isinstance(detail, list) and detail:
        shown = [_detail_item(item) for item in detail[:_DETAIL_ITEMS]]
        if len(detail) > _DETAIL_ITEMS:
            shown.append("and {} more".format(len(detail) - _DETAIL_ITEMS))
        return None, "; ".join(shown)
    import json  # here, not at the top: --help and --version never need it

    return None, json.dumps(detail, ensure_ascii=False)


def _detail_item(item: Any) -> str:
    """One validation problem as ``loc: msg`` (``model: Field required``), without its input."""
    if not isinstance(item, dict):
        return str(item)
    loc = item.get("loc")
    parts = [str(p) for p in loc if p != "body"] if isinstance(loc, list) else []
    message = str(item.get("msg") or item.get("type") or "invalid")
    return ".".join(parts) + ": " + message if parts else message


def error_from_object(obj: Any, http_status: Optional[int] = None,
                      url: Optional[str] = None) -> Optional[InternCliError]:
    """The error an API JSON object describes, or None if it does not look like an error.
    ``url``: the address the request went to, named by a 404's hint."""
    try:
        found = _extract(obj)
    except RecursionError:  # a hostile body, hundreds of `detail`s (or a message) deep
        found = (None, "the server's error body is nested too deeply to read")
    if found is None:
        return None
    code, message = found
    known = (API_CODES.get(str(code)) or PROXY_CODES.get(str(code))) if code is not None else None
    # The HTTP status, or else a code that is itself an HTTP status (LMDeploy puts 400 in "code").
    status = http_status if http_status and http_status >= 400 else _status_like(code)
    cls: Type[InternCliError]
    if known:
        cls, hint = known
    else:
        cls = class_for_status(status) if status else ServerError
        hint = _hint_for(status, message, url)
    if code is None and http_status:
        code = http_status
    trace_id = obj.get("traceId")
    if isinstance(trace_id, (str, int)) and str(trace_id):
        hint = (hint + " " if hint else "") + "Support asks for the traceId: {}.".format(trace_id)
    return cls(
        message or "the server reported an error without a message",
        hint=hint,
        code=code,
        http_status=http_status,
        retryable=cls is RateLimitError or (cls is ServerError and bool(status and status >= 500)),
    )


def _hint_for(status: Optional[int], message: str, url: Optional[str]) -> Optional[str]:
    """The hint for an error body without a known code: by what it says, else by its status."""
    if status == 404 and "does not exist" in message and "model" in message.lower():
        return MODEL_HINT
    if status == 404 and url:
        return not_found_hint(url)
    if status == 400 and any(m in message for m in _CONTEXT_MESSAGES):
        return CONTEXT_HINT
    return _STATUS_HINTS.get(status or 0)


def not_found_hint(url: str) -> str:
    """What to check when nothing answers at ``url``: the base URL's API prefix."""
    return ("Nothing answers at {}: check the base URL (-b); it usually ends in /v1 (LMDeploy and other "
            "OpenAI-compatible servers) or /api/v1 (the official service).".format(url))


def _status_like(code: Any) -> Optional[int]:
    """``code`` as an HTTP error status, if it is one."""
    try:
        number = int(str(code))
    except ValueError:
        return None
    return number if 400 <= number <= 599 else None


def error_from_response(status: int, body: bytes, reason: str = "", url: Optional[str] = None) -> InternCliError:
    """The error for an HTTP reply that is not a usable answer, whatever its body holds;
    ``url``: the address the request went to (a 404 names it)."""
    import json

    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        obj = None
    err = error_from_object(obj, status, url) if obj is not None else None
    if err is not None:
        return err
    cls = class_for_status(status)
    snippet = body_snippet(body)
    message = "HTTP {} {}".format(status, reason).strip()
    message += ": " + snippet if snippet else " with an empty body"
    return cls(
        message,
        hint=not_found_hint(url) if status == 404 and url else _STATUS_HINTS.get(
            status, "The server answered with something that is not the API's JSON; "
                    "check the base URL (-b) and any proxy in between."),
        code=status,
        http_status=status,
        retryable=cls in (RateLimitError, ServerError),
    )


def size_text(limit: int) -> str:
    """A byte limit as messages name it: 1 MiB, 4 MiB."""
    return "{:g} MiB".format(limit / (1 << 20))


def body_snippet(body: bytes, limit: int = 4000) -> str:
    """The start of a body on one line, for error messages. Generous on purpose: the message is
    shortened only when shown, after any token in it has been redacted (a token cut in two
    here would escape the redaction)."""
    text = body.decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")
