"""What goes on the wire, as pure functions: URLs, headers, the encoded body, Retry-After.
No I/O, no requests import, so --dry-run and tests can use them cheaply."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any, Dict, Optional

from interncli import __version__
from interncli.errors import UsageError

USER_AGENT = "interncli/" + __version__


def join_url(base_url: str, path: str) -> str:
    """``base`` and ``path`` joined with exactly one slash, whatever trailing slash ``base`` has."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def request_headers(token: Optional[str], body: Optional[Dict[str, Any]],
                    extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The headers a request carries, token included. ``extra`` (-H and the profile's, already
    checked) replace interncli's own of the same name, but never the token's Authorization:
    an Authorization of theirs goes only where no token does."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
        if body.get("stream"):
            headers["Accept"] = "text/event-stream"
    for name, value in (extra or {}).items():
        if token and name.lower() == "authorization":
            continue
        for known in [k for k in headers if k.lower() == name.lower()]:
            del headers[known]
        headers[name] = value
    if token:
        headers["Authorization"] = "Bearer " + token
    return headers


def redact_headers(headers: Dict[str, str]) -> Dict[str, str]:
    """Headers fit to show: the token's Authorization as ``Bearer ***``, the value of any other
    credential header (config.is_secret_header) as ``***``."""
    from interncli.config import is_secret_header

    return {k: ("Bearer ***" if k.lower() == "authorization" and v.startswith("Bearer ")
                else "***" if is_secret_header(k) else v) for k, v in headers.items()}


def encode_body(body: Dict[str, Any]) -> bytes:
    """The JSON body as UTF-8; text that UTF-8 cannot carry and non-finite numbers are refused."""
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError("the request holds text that is not valid Unicode ({})".format(exc.reason),
                         hint="Convert the input to UTF-8 first, e.g. with iconv.") from exc
    except ValueError as exc:
        raise UsageError("the request holds a number JSON cannot carry (NaN or infinity)",
                         hint="Give finite numbers to -t, -P and the like.") from exc


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(0.0, seconds) if seconds == seconds else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
