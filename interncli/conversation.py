"""The ``--conversation`` file: a JSON list of messages, read before and extended after a turn."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from interncli.errors import UsageError
from interncli.files import check_writable, locked, write_atomic

ROLES = ("system", "user", "assistant", "tool")


def load_messages(path: str) -> List[Dict[str, Any]]:
    """The messages stored in ``path``; none if the file does not exist yet. The file must be
    one that can be written back, which is checked now, before anything is sent."""
    if path in ("", "-"):
        # "-" is not stdin here: the file is read and written back, and stdin cannot be.
        raise UsageError("--conversation needs a file name, not {!r}".format(path),
                         hint="Give the path of a JSON file, e.g. --conversation talk.json (created if missing).")
    check_writable(path, "conversation")
    return _read(path)


def unanswered_calls(messages: Sequence[Dict[str, Any]]) -> List[str]:
    """The ids of the tool calls still waiting for an answer: those of the last assistant
    message's ``tool_calls`` that no later ``tool`` message answers (by its ``tool_call_id``), in
    the order they were made. Only the last assistant message counts: LMDeploy 0.6 numbers calls
    by the tool's place in the list ("0"), so ids recur from turn to turn, and may even repeat in
    one message (each answer then takes one of them). A hand-edited file may hold anything: what
    is not a call with a string id is passed over, not refused."""
    waiting: List[str] = []
    for message in messages:
        if message.get("role") == "assistant":
            calls = message.get("tool_calls")
            waiting = [call["id"] for call in calls if isinstance(call, dict) and isinstance(call.get("id"), str)] \
                if isinstance(calls, list) else []
        elif message.get("role") == "tool" and message.get("tool_call_id") in waiting:
            waiting.remove(message["tool_call_id"])
    return waiting


def append_messages(path: str, new: List[Dict[str, Any]]) -> None:
    """Add ``new`` to the end of the file as it is now, under its lock: another run may have
    added its own turn since this one read it, and that turn is kept."""
    real = check_writable(path, "conversation")
    with locked(real):
        write_atomic(real, _dumped(_read(path) + new))


def save_messages(path: str, messages: List[Dict[str, Any]],
                  expected: Optional[Sequence[List[Dict[str, Any]]]] = None) -> Optional[List[Dict[str, Any]]]:
    """Replace the file's messages with ``messages``, atomically and under its lock: the repl's
    whole conversation, which it owns (its ``/system`` may change the first message). Returns
    the messages as the file now holds them. With ``expected`` (what the file may hold since
    this caller last read or wrote it), nothing is written and None returned if the file holds
    anything else: another run added a turn since, which replacing the file would destroy."""
    real = check_writable(path, "conversation")
    text = _dumped(messages)
    with locked(real):
        if expected is not None and _read(real) not in expected:
            return None
        write_atomic(real, text)
    return _parsed(text)


def as_saved(messages: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """``messages`` as the file holds them once saved (lone surrogates as U+FFFD)."""
    return _parsed(_dumped(messages))


def _parsed(text: str) -> List[Dict[str, Any]]:
    import json

    return list(json.loads(text))


def _dumped(messages: List[Dict[str, Any]]) -> str:
    import json  # here, not at the top: `chat create --help` imports this module for ROLES

    from interncli.safetext import replace_surrogates  # likewise: its patterns cost milliseconds

    # A lone surrogate (a server may send "\ud800") cannot be written as UTF-8, nor sent
    # again next turn: it is kept as U+FFFD, so that the turn is never lost to it.
    return replace_surrogates(json.dumps(messages, ensure_ascii=False, indent=2)) + "\n"


def _read(path: str) -> List[Dict[str, Any]]:
    import json

    try:
        # utf-8-sig: an editor on Windows may have saved it with a byte-order mark.
        with open(path, encoding="utf-8-sig") as fh:
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
        if "\\u" in text:  # a "\ud800" escape, by hand or another tool, could not be sent: U+FFFD
            messages = _without_surrogates(messages)
    except (ValueError, RecursionError) as exc:
        raise UsageError("conversation {} is not valid JSON: {}".format(path, exc),
                         hint="It must hold a JSON list of messages; move it away to start afresh.") from exc
    if not isinstance(messages, list) or not all(
            isinstance(m, dict) and m.get("role") in ROLES for m in messages):
        raise UsageError("conversation {} must be a JSON list of messages with a role of {}".format(
            path, "/".join(ROLES)), hint="Move it away to start a new conversation.")
    return messages


def _without_surrogates(value: Any) -> Any:
    """A JSON value with lone surrogates in its strings replaced (see append_messages)."""
    from interncli.safetext import replace_surrogates

    if isinstance(value, str):
        return replace_surrogates(value)
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {replace_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value
