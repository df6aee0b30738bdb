"""Where the API token comes from, in the documented lookup order."""

from __future__ import annotations

from typing import Iterable, Mapping, Optional, Tuple

from interncli.errors import AuthError

SOURCE_NAMES = {"flag": "the -k flag", "env": "INTERN_API_KEY"}


def clean_token(raw: str) -> str:
    """A token with surrounding whitespace and a pasted ``Bearer `` prefix removed."""
    token = raw.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token


def check_token(token: str, source: str) -> str:
    """A token fit for an HTTP header: one run of printable ASCII (a token file wrapped over
    several lines, or with stray characters, is refused without being echoed)."""
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise AuthError("the token from {} is not valid: it must be one line of printable ASCII "
                        "without spaces".format(SOURCE_NAMES.get(source, source)),
                        hint="Copy the token again, on one line, from the Intern website.")
    return token


def resolve_token(flag: Optional[str], environ: Mapping[str, str]) -> Tuple[Optional[str], str]:
    """The token and where it came from: ``-k`` flag, then ``INTERN_API_KEY``; (None, "none") if absent."""
    if flag and clean_token(flag):
        return check_token(clean_token(flag), "flag"), "flag"
    env = environ.get("INTERN_API_KEY", "")
    if clean_token(env):
        return check_token(clean_token(env), "env"), "env"
    return None, "none"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (as given, and cleaned) replaced by ``***``."""
    for raw in secrets:
        for secret in {raw, clean_token(raw)}:
            if len(secret) >= 4:
                text = text.replace(secret, "***")
    return text
