"""The ``--conversation`` file: a JSON list of messages, read before and written after a turn."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List

from interncli.errors import UsageError

VALID_ROLES = ("system", "user", "assistant", "tool")


def load_messages(path: str) -> List[Dict[str, Any]]:
    """The messages stored in ``path``; none if the file does not exist yet."""
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
    except ValueError as exc:
        raise UsageError("conversation {} is not valid JSON: {}".format(path, exc),
                         hint="It must hold a JSON list of messages; move it away to start afresh.") from exc
    if not isinstance(messages, list) or not all(
            isinstance(m, dict) and m.get("role") in VALID_ROLES for m in messages):
        raise UsageError("conversation {} must be a JSON list of messages with a role of {}".format(
            path, "/".join(VALID_ROLES)), hint="Move it away to start a new conversation.")
    return messages


def save_messages(path: str, messages: List[Dict[str, Any]]) -> None:
    """Write the messages atomically: a reader sees the old file or the new one, never half."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".interncli-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError("cannot write conversation {}: {}".format(path, exc.strerror),
                         hint="Check that the folder exists and is writable.") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(messages, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
