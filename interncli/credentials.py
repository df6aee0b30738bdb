"""Where the API token comes from, in the documented lookup order."""

from __future__ import annotations

from typing import Mapping, Optional, Tuple


def clean_token(raw: str) -> str:
    """A token with surrounding whitespace and a pasted ``Bearer `` prefix removed."""
    token = raw.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token


def resolve_token(flag: Optional[str], environ: Mapping[str, str]) -> Tuple[Optional[str], str]:
    """The token and where it came from: ``-k`` flag, then ``INTERN_API_KEY``; (None, "none") if absent."""
    if flag and clean_token(flag):
        return clean_token(flag), "flag"
    env = environ.get("INTERN_API_KEY", "")
    if clean_token(env):
        return clean_token(env), "env"
    return None, "none"
