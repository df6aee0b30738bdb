"""The ``--conversation`` file: a JSON list of messages, read before and written after a turn."""

from __future__ import annotations

from typing import Any, Dict, List

from interncli.errors import UsageError
from interncli.files import check_writable, write_atomic

ROLES = ("system", "user", "assistant", "tool")


def load_messages(path: str) -> List[Dict[str, Any]]:
    """The messages stored in ``path``; none if the file does not exist yet. The file must be
    one that can be written back, which is checked now, before anything is sent."""
    import json  # here, not at the top: `chat create --help` imports this module for ROLES

    check_writable(path, "conversation")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError("cannot read conversation {}: {}".format(path, getattr(exc, "strerror", None) or exc),
                         hint="Check the path and its permissions.") from exc
    if not text.strip():
        return []
    try:
        messages = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UsageError("conversation {} is not valid JSON: {}".format(path, exc),
                         hint="It must hold a JSON list of messages; move it away to start afresh.") from exc
    if not isinstance(messages, list) or not all(
            isinstance(m, dict) and m.get("role") in ROLES for m in messages):
        raise UsageError("conversation {} must be a JSON list of messages with a role of {}".format(
            path, "/".join(ROLES)), hint="Move it away to start a new conversation.")
    return messages


def save_messages(path: str, messages: List[Dict[str, Any]]) -> None:
    """Write the messages atomically."""
    import json

    write_atomic(path, json.dumps(messages, ensure_ascii=False, indent=2) + "\n")
