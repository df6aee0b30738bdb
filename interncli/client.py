"""API operations: build request bodies, send them, and return parsed replies or chunks."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence

from interncli.errors import InternCliError, ServerError, StreamError, UsageError, body_snippet, error_from_object
from interncli.sse import StrayLine, decode_events

CHAT_PATH = "chat/completions"
MODELS_PATH = "models"
IMAGE_LIMIT = 20 * 1024 * 1024


class ChatRequest:
    """What the user asked for; only the fields that were set reach the request body.
    (A plain class: a dataclass costs a millisecond of start-up on every request.)"""

    __slots__ = ("model", "messages", "n", "temperature", "top_p", "max_tokens", "stop", "stream",
                 "thinking", "tools", "tool_choice", "always_send_stream")

    def __init__(self, model: str, messages: List[Dict[str, Any]], *, n: Optional[int] = None,
                 temperature: Optional[float] = None, top_p: Optional[float] = None,
                 max_tokens: Optional[int] = None, stop: Sequence[str] = (), stream: bool = False,
                 thinking: bool = False, tools: Optional[List[Dict[str, Any]]] = None,
                 tool_choice: Optional[str] = None, always_send_stream: bool = False) -> None:
        self.model, self.messages, self.n = model, messages, n
        self.temperature, self.top_p, self.max_tokens = temperature, top_p, max_tokens
        self.stop, self.stream, self.thinking = stop, stream, thinking
        self.tools, self.tool_choice = tools, tool_choice
        # The openai CLI always sends "stream"; its alias does too, so the bodies match.
        self.always_send_stream = always_send_stream


def build_chat_body(req: ChatRequest) -> Dict[str, Any]:
    """The JSON body for a chat completion, in the openai CLI's field order."""
    body: Dict[str, Any] = {"model": req.model, "messages": req.messages}
    if req.always_send_stream:
        body["stream"] = req.stream
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.stop:
        body["stop"] = req.stop[0] if len(req.stop) == 1 else list(req.stop)
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.n is not None:
        body["n"] = req.n
    if req.stream:
        body["stream"] = True
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.thinking:
        body["thinking_mode"] = True
    if req.tools is not None:
        body["tools"] = req.tools
    if req.tool_choice is not None:
        body["tool_choice"] = tool_choice_value(req.tool_choice)
    return body


def tool_choice_value(choice: str) -> Any:
    """``auto``/``none``/``required`` as they are; any other word names a function to force."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def image_url(source: str) -> str:
    """An image reference for the API: URLs as they are, local files as ``data:`` URLs."""
    if source.lower().startswith(("http://", "https://", "data:")):
        return source
    if source.lower().startswith("file://"):
        from urllib.parse import unquote, urlsplit

        source = unquote(urlsplit(source).path)
    import base64
    import mimetypes

    mime, _ = mimetypes.guess_type(source)
    if not mime or not mime.startswith("image/"):
        raise UsageError(
            "{} does not look like an image (type {})".format(source, mime or "unknown"),
            hint="Pass a .png, .jpg, .gif, .webp or .bmp file, or an http(s) URL.",
        )
    try:
        size = os.path.getsize(source)
        if size > IMAGE_LIMIT:
            raise UsageError("{} is {} MiB; images over 20 MiB are refused".format(source, size >> 20),
                             hint="Scale the image down first.")
        with open(source, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise UsageError("cannot read image {}: {}".format(source, exc.strerror or exc),
                         hint="Check the path, or pass an http(s) URL.") from exc
    return "data:{};base64,{}".format(mime, base64.b64encode(data).decode("ascii"))


def attach_images(messages: List[Dict[str, Any]], sources: Sequence[str]) -> None:
    """Add image parts to the last user message, turning its content into a list of parts."""
    for message in reversed(messages):
        if message.get("role") == "user":
            break
    else:
        raise UsageError("--image needs a user message to attach to", hint="Add one: -g user 'Describe this'")
    content = message.get("content")
    parts = list(content) if isinstance(content, list) else [{"type": "text", "text": content or ""}]
    parts.extend({"type": "image_url", "image_url": {"url": image_url(s)}} for s in sources)
    message["content"] = parts


def parse_arguments(arguments: Any) -> Any:
    """Tool-call arguments as data: JSON, else the Python-literal form with single quotes
    that the service's examples show (never ``eval``); the raw text if neither parses."""
    if not isinstance(arguments, str):
        return arguments
    try:
        return json.loads(arguments)
    except (ValueError, RecursionError):
        pass
    import ast  # only for the Python-literal form: ast is slow to import

    try:
        value = ast.literal_eval(arguments.strip())
        json.dumps(value)  # a set, bytes or complex number has no JSON form: keep the text
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return arguments
    return value


def check_completion(obj: Any, http_status: int) -> Dict[str, Any]:
    """A parsed reply that must be a completion: an error body raises its error."""
    err = error_from_object(obj, http_status)
    if err is not None:
        raise err
    if not well_formed(obj, "message"):
        raise ServerError("the reply is not a chat completion: " + body_snippet(json.dumps(obj).encode()),
                          hint="Check that the base URL (-b) points at a chat-completions API.")
    if not obj["choices"]:
        raise ServerError("the reply has no choices", hint="Try again; -v shows what the server sent.")
    return obj


def assistant_message(message: Dict[str, Any]) -> Dict[str, Any]:
    """A reply as it is kept in a conversation: role, content and any tool calls, nothing else
    (servers refuse some reply-only fields, such as reasoning_content, when they are sent back)."""
    kept: Dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("tool_calls"):
        kept["tool_calls"] = message["tool_calls"]
    return kept


def well_formed(obj: Any, part: str) -> bool:
    """A completion (``part`` "message") or chunk (``part`` "delta") whose fields have the types
    the renderers rely on; anything else is reported instead of crashing them."""
    if not isinstance(obj, dict) or not isinstance(obj.get("choices", [] if part == "delta" else None), list):
        return False
    for choice in obj.get("choices") or []:
        if not isinstance(choice, dict) or not isinstance(choice.get("index", 0), int):
            return False
        body = choice.get(part)
        if body is None:
            continue
        if not isinstance(body, dict):
            return False
        for key in ("content", "reasoning_content"):
            if not isinstance(body.get(key) or "", str):
                return False
        calls = body.get("tool_calls") or []
        if not isinstance(calls, list) or not all(_tool_call_ok(c) for c in calls):
            return False
    return True


def _tool_call_ok(call: Any) -> bool:
    if not isinstance(call, dict) or not isinstance(call.get("index", 0), int):
        return False
    function = call.get("function") or {}
    return isinstance(function, dict) and all(
        isinstance(function.get(key) or "", str) for key in ("name", "arguments"))


def load_json(body: bytes, what: str) -> Any:
    """A JSON reply body, or a clear error showing the start of what came instead."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ServerError("the {} is not JSON: {}".format(what, body_snippet(body) or "(empty)"),
                          hint="Check the base URL (-b) and any proxy in between.") from None


class ChoiceState:
    """One choice of a streamed reply as it builds up; pieces are joined when asked for, so
    a long reply costs linear time."""

    __slots__ = ("_content", "_reasoning", "tool_calls", "finish_reason")

    def __init__(self) -> None:
        self._content: List[str] = []
        self._reasoning: List[str] = []
        self.tool_calls: Dict[int, Dict[str, Any]] = {}
        self.finish_reason: Optional[str] = None

    @property
    def content(self) -> str:
        """The text so far."""
        return "".join(self._content)

    @property
    def reasoning(self) -> str:
        """The reasoning text so far."""
        return "".join(self._reasoning)

    def add(self, delta: Dict[str, Any]) -> None:
        """Fold one delta in."""
        if delta.get("content"):
            self._content.append(delta["content"])
        if delta.get("reasoning_content"):
            self._reasoning.append(delta["reasoning_content"])
        for call in delta.get("tool_calls") or []:
            slot = self.tool_calls.setdefault(call.get("index", len(self.tool_calls)), {
                "id": "", "type": "function", "function": {"name": "", "arguments": ""}})
            slot["id"] = call.get("id") or slot["id"]
            function = call.get("function") or {}
            slot["function"]["name"] += function.get("name") or ""
            slot["function"]["arguments"] += function.get("arguments") or ""

    def message(self) -> Dict[str, Any]:
        """The assistant message, as it would appear in a non-streamed reply."""
        return assistant_message({"content": self.content,
                                  "tool_calls": [self.tool_calls[k] for k in sorted(self.tool_calls)]})


class StreamAssembler:
    """Merges streamed deltas into whole choices (content, reasoning, tool calls)."""

    def __init__(self) -> None:
        self.choices: Dict[int, ChoiceState] = {}

    def add(self, chunk: Dict[str, Any]) -> None:
        """Fold one chunk into the choices."""
        for choice in chunk.get("choices") or []:
            state = self.choice(choice.get("index", 0))
            state.add(choice.get("delta") or {})
            if choice.get("finish_reason"):
                state.finish_reason = choice["finish_reason"]

    def choice(self, index: int) -> ChoiceState:
        """The state of one choice, created empty on first use."""
        state = self.choices.get(index)
        if state is None:
            state = self.choices[index] = ChoiceState()
        return state

    def message(self, index: int = 0) -> Dict[str, Any]:
        """The assistant message of a choice."""
        return self.choice(index).message()


class ChatClient:
    """The API's operations over a transport."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def create(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """A non-streamed chat completion."""
        response = self.transport.send("POST", CHAT_PATH, body)
        return check_completion(load_json(response.read(), "reply"), response.status)

    def list_models(self) -> Dict[str, Any]:
        """The models the server offers."""
        response = self.transport.send("GET", MODELS_PATH)
        obj = load_json(response.read(), "model list")
        err = error_from_object(obj, response.status)
        if err is not None:
            raise err
        if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
            raise ServerError("the model list has no 'data' list: " + body_snippet(json.dumps(obj).encode()))
        return obj

    def stream(self, body: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
        """The chunks of a streamed chat completion, each as soon as it arrives.

        Raises the API's error if one comes inside the stream, and StreamError if the stream
        is malformed or ends before it is complete."""
        response = self.transport.send("POST", CHAT_PATH, body)
        try:
            if response.content_type == "application/json":
                # A server that answers a stream request with one JSON document: an error,
                # or a whole completion from a server that does not stream.
                yield _as_chunk(check_completion(load_json(response.read(), "reply"), response.status))
                return
            yield from _chunks(response.iter_bytes())
        finally:
            response.close()


def _chunks(pieces: Iterator[bytes]) -> Iterator[Dict[str, Any]]:
    unfinished: Dict[int, bool] = {}  # choice index -> still waiting for its finish_reason
    # Lines outside the SSE syntax before any event: the body may be a (pretty-printed) JSON
    # error sent as an event stream, so they are read to the end and judged together.
    strays: List[str] = []
    for item in decode_events(pieces):
        if isinstance(item, StrayLine):
            if unfinished:
                _raise_stray(item.text)
            strays.append(item.text)
            continue
        if strays:
            _raise_stray("\n".join(strays))
        data = item.data.strip()
        if data == "[DONE]":
            if not unfinished:
                raise StreamError("the reply stream ended without any reply", retryable=True)
            return
        if not data:
            continue
        obj = _event_object(data, item.event)
        for choice in obj.get("choices") or []:
            unfinished[choice.get("index", 0)] = not choice.get("finish_reason")
        yield obj
    if strays:
        _raise_stray("\n".join(strays))
    if not unfinished or any(unfinished.values()):
        raise StreamError("the reply stream ended before the reply was complete", retryable=True)


def _event_object(data: str, event: str) -> Dict[str, Any]:
    """The chunk an event carries; an error it carries is raised."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        raise StreamError("the reply stream is malformed: " + body_snippet(data.encode()), retryable=True) from None
    err = error_from_object(obj)
    if err is not None or event == "error":
        raise err or ServerError(body_snippet(data.encode()))
    if not well_formed(obj, "delta"):
        raise StreamError("the reply stream is malformed: " + body_snippet(data.encode()), retryable=True)
    return obj


def _raise_stray(text: str) -> None:
    """Text outside the SSE syntax: an error body if it is one, else a malformed stream."""
    if not text.strip():
        return
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        obj = None
    err = error_from_object(obj) if obj is not None else None
    if isinstance(err, InternCliError):
        raise err
    raise StreamError("the reply stream is malformed: " + body_snippet(text.encode()), retryable=True)


def _as_chunk(completion: Dict[str, Any]) -> Dict[str, Any]:
    """A whole completion in the shape of one stream chunk."""
    chunk = dict(completion)
    chunk["choices"] = [
        {"index": c.get("index", i), "delta": c.get("message") or {}, "finish_reason": c.get("finish_reason")}
        for i, c in enumerate(completion.get("choices") or [])
    ]
    return chunk
