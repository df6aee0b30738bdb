"""API operations: build request bodies, send them, and return parsed replies or chunks."""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from interncli.errors import (
    CONTEXT_HINT,
    InternCliError,
    ReplyTooLarge,
    RequestRejected,
    ServerError,
    StreamError,
    UsageError,
    body_snippet,
    error_from_object,
    size_text,
)
from interncli.sse import LimitExceeded, StrayLine, decode_events

if TYPE_CHECKING:  # only for the annotation: importing requests costs start-up time
    from interncli.transport import Transport

CHAT_PATH = "chat/completions"
COMPLETIONS_PATH = "completions"
MODELS_PATH = "models"
IMAGE_LIMIT = 20 * 1024 * 1024

# Limits on what a stream can make interncli hold (the transport caps a whole body at 4 MiB).
# A chunk is a few hundred bytes; a line or an event a thousand times that is not a chat reply.
LINE_LIMIT = 1 << 20  # bytes of one line of the event stream
EVENT_LIMIT = 1 << 20  # characters of data in one event (at most 4 bytes each in memory)
PRELUDE_LIMIT = 1 << 20  # characters of non-SSE lines before the first event (an error body)
REPLY_LIMIT = 4 << 20  # UTF-8 bytes of a streamed reply: content, reasoning, tool-call arguments
MAX_CHOICES = 128
MAX_TOOL_CALLS = 128
# Parsed JSON takes up to ~25 times its text ("{}," is 3 bytes, an empty dict 64): so the number
# of values in one document is capped too. A completion holds a few dozen.
VALUE_LIMIT = 100_000
# A JSON string, or an unterminated one to the end of the text: with the closing quote required,
# each failed match was retried from the next quote, and a text of escaped quotes (\"\"\"...)
# took quadratic time (a 1 MiB stream event, hours of CPU that --timeout does not see). Never
# failing, the match is linear; an unterminated string is not JSON, which the parser then says.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?')


class ChatRequest:
    """What the user asked for; only the fields that were set reach the request body.
    (A plain class: a dataclass costs a millisecond of start-up on every request.)"""

    __slots__ = ("model", "messages", "n", "temperature", "top_p", "max_tokens", "stop", "stream",
                 "thinking", "tools", "tool_choice", "always_send_stream", "api", "usage", "options")

    def __init__(self, model: str, messages: List[Dict[str, Any]], *, n: Optional[int] = None,
                 temperature: Optional[float] = None, top_p: Optional[float] = None,
                 max_tokens: Optional[int] = None, stop: Sequence[str] = (), stream: bool = False,
                 thinking: bool = False, tools: Optional[List[Dict[str, Any]]] = None,
                 tool_choice: Optional[str] = None, always_send_stream: bool = False, api: str = "intern",
                 usage: bool = False, options: Optional[Dict[str, Any]] = None) -> None:
        self.model = model
        self.messages = messages
        self.n = n
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.stop = stop
        self.stream = stream
        self.thinking = thinking
        self.tools = tools
        self.tool_choice = tool_choice
        # The openai CLI always sends "stream"; its alias does too, so the bodies match.
        self.always_send_stream = always_send_stream
        self.api = api  # the server's kind (config.API_KINDS): what thinking and usage are sent as
        self.usage = usage  # -u: ask a stream for its token usage, where the kind allows it
        self.options = options or {}  # -O: server-specific fields, merged in last


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
    if req.stream and req.usage and req.api != "intern":
        # The official service refuses fields it does not document (-10002); LMDeploy reads
        # this from 0.6 on, and OpenAI-compatible servers do too.
        body["stream_options"] = {"include_usage": True}
    if req.thinking:
        body.update(thinking_fields(req.api))
    if req.tools is not None:
        body["tools"] = req.tools
    if req.tool_choice is not None:
        body["tool_choice"] = tool_choice_value(req.tool_choice)
    for key, value in req.options.items():
        # -O overrides; a mapping meets a mapping key by key (-O chat_template_kwargs with
        # --thinking keeps enable_thinking unless the user's own mapping sets it).
        mine = body.get(key)
        body[key] = {**mine, **value} if isinstance(mine, dict) and isinstance(value, dict) else value
    return body


# The optional fields of a text completion, in the order openai 2.34.0's client writes them after
# ``model`` and ``prompt`` (its CLI's flags; logit_bias, seed and stream_options it has none for).
COMPLETION_FIELDS = ("best_of", "echo", "frequency_penalty", "logprobs", "max_tokens", "n", "presence_penalty", "stop",
                     "stream", "suffix", "temperature", "top_p", "user")


def build_completion_body(model: str, prompt: Optional[str], fields: Dict[str, Any]) -> Dict[str, Any]:
    """The JSON body for a text completion (``/completions``) as openai 2.34.0's CLI sends it:
    ``model``, ``prompt`` (null when not given, as that CLI sends it), then each of
    COMPLETION_FIELDS that is set (not None), in that order; ``stream`` only when true."""
    body: Dict[str, Any] = {"model": model, "prompt": prompt}
    for key in COMPLETION_FIELDS:
        value = fields.get(key)
        if value is not None and not (key == "stream" and value is False):
            body[key] = value
    return body


def text_view(obj: Any, part: str) -> Any:
    """A text completion, or one chunk of a streamed one, in the shape of a chat completion:
    each choice's ``text`` as the ``content`` of its ``part`` (``message``, or ``delta`` for a
    chunk), so that one set of checks, limits, assemblers and printers serves both. Anything
    that is not shaped like a completion is returned as it is, for the checks to name."""
    if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list):
        return obj
    choices: List[Any] = []
    for choice in obj["choices"]:
        if isinstance(choice, dict):
            choice = {**{k: v for k, v in choice.items() if k != "text"}, part: {"content": choice.get("text")}}
        choices.append(choice)
    return {**obj, "choices": choices}


def _as_is(obj: Any, part: str) -> Any:
    return obj


# Characters a model id keeps in the URL path, as openai's client quotes a path segment (RFC 3986
# pchar): "/" is quoted, so an id names one model, never another route.
_SEGMENT_SAFE = "!$&'()*+,;=:@"


def model_path(model_id: str) -> str:
    """The path of one model (``models/ID``), its id quoted as one path segment; an empty id,
    or ``.`` and ``..`` (which would name another route), are refused."""
    from urllib.parse import quote

    if model_id in ("", ".", ".."):
        raise UsageError("-i needs a model id, not {!r}".format(model_id),
                         hint="`interncli api models.list` prints the ids the server offers.")
    return MODELS_PATH + "/" + quote(model_id, safe=_SEGMENT_SAFE)


# -O may not set these: interncli builds the conversation (-g, --conversation, --image) and reads
# the reply as a stream or not by --stream.
OPTION_REFUSED = {"messages": "-g ROLE CONTENT (and --conversation, --image)", "stream": "--stream"}
# The fields the official service documents; it refuses any other (-10002).
INTERN_FIELDS = ("model", "messages", "n", "temperature", "top_p", "stream", "max_tokens", "tools", "tool_choice",
                 "thinking_mode")


def parse_options(pairs: Sequence[Sequence[str]]) -> Dict[str, Any]:
    """-O KEY VALUE pairs as body fields, the last of a key winning: VALUE as JSON when it
    parses (``5``, ``true``, ``{"a": 1}``), else as the string given (``-O user alice``)."""
    from interncli.config import check_printable

    options: Dict[str, Any] = {}
    for key, value in pairs:
        if not key.strip() or key != key.strip():
            raise UsageError("-O needs a field name without surrounding spaces, not {!r}".format(key),
                             hint="For example: -O top_k 40")
        check_printable(key, "-O " + key)
        if key in OPTION_REFUSED:
            raise UsageError("-O {} cannot be set: interncli sends it itself".format(key),
                             hint="Use {} instead.".format(OPTION_REFUSED[key]))
        try:
            options[key] = _STRICT_JSON.decode(value)
        except (ValueError, RecursionError):
            options[key] = value
    return options


def _not_json(text: str) -> Any:
    raise ValueError(text)


# NaN and Infinity are not JSON (the body could not carry them): such a VALUE stays a string.
_STRICT_JSON = json.JSONDecoder(parse_constant=_not_json)


def thinking_fields(api: str) -> Dict[str, Any]:
    """What turns thinking on for a server kind: the official service reads ``thinking_mode``;
    LMDeploy 0.9 - 0.11.0 read a top-level ``enable_thinking``, 0.11.1 and later
    ``chat_template_kwargs`` (both sent: each version drops the field it does not know); other
    OpenAI-compatible servers (vLLM, SGLang, llama.cpp) read ``chat_template_kwargs``."""
    if api == "intern":
        return {"thinking_mode": True}
    kwargs = {"chat_template_kwargs": {"enable_thinking": True}}
    return {"enable_thinking": True, **kwargs} if api == "lmdeploy" else kwargs


def tool_choice_value(choice: str) -> Any:
    """``auto``/``none``/``required`` as they are; any other word names a function to force."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


# The image types the vision models take, told by their first bytes (magic numbers): a name
# can lie (a PNG saved as .jpg), and a server decodes the bytes, not the name.
IMAGE_TYPES = "PNG, JPEG, GIF, WebP or BMP"
SNIFF_BYTES = 18
# "BM" alone starts plenty of text ("BMW ..."): a BMP is also told by the size of the header
# that follows its file header, one of the sizes the DIB header versions have.
_BMP_HEADER_SIZES = (12, 16, 40, 52, 56, 64, 108, 124)


def sniff_image_type(head: bytes) -> Optional[str]:
    """The MIME type of an image from its first ``SNIFF_BYTES`` bytes, or None for any other."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"BM") and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "image/bmp"
    return None


def image_url(source: str) -> str:
    """An image reference for the API: URLs as they are, local files as ``data:`` URLs whose
    MIME type is sniffed from the file's bytes; any other file is refused (a usage error)."""
    if source.lower().startswith(("http://", "https://", "data:")):
        return source
    if source.lower().startswith("file://"):
        from urllib.parse import unquote, urlsplit

        source = unquote(urlsplit(source).path)
    import base64

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
    mime = sniff_image_type(data[:SNIFF_BYTES])
    if mime is None:
        raise UsageError(
            "{} does not look like an image: its bytes are not {} (the name does not count)".format(
                source, IMAGE_TYPES),
            hint="Convert it to PNG or JPEG, or pass an http(s) or data: URL.",
        )
    return "data:{};base64,{}".format(mime, base64.b64encode(data).decode("ascii"))


def attach_images(turn: List[Dict[str, Any]], sources: Sequence[str]) -> None:
    """Add image parts to the last user message of ``turn`` (this command's messages, never the
    history of a conversation file), turning its content into a list of parts."""
    for message in reversed(turn):
        if message.get("role") == "user":
            break
    else:
        raise UsageError("--image needs a user message in this turn to attach to",
                         hint="Add one: -g user 'Describe this' (a --conversation file's messages do not count).")
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
    """A parsed reply that must be a completion (a text completion as its text_view): an error
    body raises its error."""
    err = error_from_object(obj, http_status)
    if err is not None:
        raise err
    problem = shape_problem(obj, "message", "the reply")
    if problem:
        raise ServerError("{}: {}".format(problem, body_snippet(json.dumps(obj).encode())),
                          hint="It is not a chat completion: check that the base URL (-b) points at a "
                               "chat-completions API.")
    if not obj["choices"]:
        raise ServerError("the reply has no choices", hint="Try again; -v shows what the server sent.")
    single = len(obj["choices"]) == 1
    usage = obj.get("usage")
    tokens = usage.get("completion_tokens") if single and isinstance(usage, dict) else None
    for choice in obj["choices"]:
        message = choice.get("message") or {}
        finish = choice.get("finish_reason")
        if finish in FAILED_FINISHES:
            raise failed_reply(finish, message.get("content") or "")
        if context_full(finish, message.get("content"), message.get("reasoning_content"),
                        bool(message.get("tool_calls")), tokens):
            raise context_error()
    return obj


# finish_reason values that say the reply failed: LMDeploy 0.7-0.15 report an engine failure as a
# 200 with "error" (its text as the content), 0.12+ a cancelled request as "abort", 0.14+ tool
# markup it could not parse as "parse_error". The content is then an error message, not an answer.
FAILED_FINISHES = frozenset({"error", "abort", "parse_error"})


def failed_reply(finish_reason: str, text: str) -> InternCliError:
    """The error a choice that finished with one of FAILED_FINISHES stands for (not retried:
    the same request would fail the same way). LMDeploy 0.10-0.15 say INPUT_LENGTH_ERROR for a
    prompt longer than the engine takes: that is a rejected request, exit 5."""
    shown = " ".join(text.split()) or "no text"
    if "INPUT_LENGTH_ERROR" in text:
        return RequestRejected("the prompt is longer than the server accepts ({})".format(shown), hint=CONTEXT_HINT)
    return ServerError("the server failed while generating the reply (finish_reason: {}): {}".format(
        finish_reason, shown), hint="The server's log says why; try again, or tell its operator.")


def context_full(finish_reason: Optional[str], content: Optional[str], reasoning: Optional[str], calls: bool,
                 completion_tokens: Any = None) -> bool:
    """An empty reply cut at ``length``: how LMDeploy up to 0.15 says the prompt fills the whole
    context (content "" up to 0.12, null from 0.13). A reply cut while still thinking has
    reasoning and is only cut at max_tokens; so is one that says it generated tokens."""
    if finish_reason != "length" or content or reasoning or calls:
        return False
    return completion_tokens in (None, 0)


def context_error() -> InternCliError:
    """The error for a context too full to answer in."""
    return RequestRejected("the server returned an empty reply cut at the context length (finish_reason: length)",
                           hint=CONTEXT_HINT)


def assistant_message(message: Dict[str, Any]) -> Dict[str, Any]:
    """A reply as it is kept in a conversation: role, content and any tool calls, nothing else
    (servers refuse some reply-only fields, such as reasoning_content, when they are sent back)."""
    kept: Dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("tool_calls"):
        kept["tool_calls"] = message["tool_calls"]
    return kept


def shape_problem(obj: Any, part: str, name: str) -> Optional[str]:
    """What is wrong with the shape of a completion or chunk called ``name``, or None.

    Both need a ``choices`` list (a usage-only last chunk has an empty one); every field the
    renderers use must have its type: ``content: 0`` is a number, not empty text."""
    if not isinstance(obj, dict):
        return "{} is {}, not an object".format(name, _kind(obj))
    choices = obj.get("choices")
    if not isinstance(choices, list):
        return "{} has no 'choices' list".format(name) if choices is None else \
            "{}'s choices are {}, not a list".format(name, _kind(choices))
    for choice in choices:
        if not isinstance(choice, dict):
            return "a choice in {} is {}, not an object".format(name, _kind(choice))
        problem = _index_problem(choice) or _wrong(choice, "finish_reason", (str,), "text")
        if problem:
            return "{}'s {}".format(name, problem)
        body = choice.get(part)
        if body is None:
            if part == "message":  # a completion's choice is its message; a chunk's delta may be absent
                return "{}'s choice has no message".format(name)
            continue
        if not isinstance(body, dict):
            return "{}'s {} is {}, not an object".format(name, part, _kind(body))
        problem = (_wrong(body, "content", (str,), "text") or _wrong(body, "reasoning_content", (str,), "text")
                   or _wrong(body, "tool_calls", (list,), "a list"))
        if problem:
            return "{}'s {}".format(name, problem)
        for call in body.get("tool_calls") or []:
            problem = _tool_call_problem(call, streamed=part == "delta")
            if problem:
                return "{}'s {}".format(name, problem)
    return None


def _tool_call_problem(call: Any, streamed: bool) -> Optional[str]:
    if not isinstance(call, dict):
        return "tool call is {}, not an object".format(_kind(call))
    # Only a streamed call's index places it (a whole message's calls are in their order).
    index = _index_problem(call) if streamed else _wrong(call, "index", (int,), "a number")
    problem = (index or _wrong(call, "id", (str,), "text")
               or _wrong(call, "function", (dict,), "an object"))
    if problem:
        return "tool call's " + problem
    function = call.get("function") or {}
    problem = _wrong(function, "name", (str,), "text") or _wrong(function, "arguments", (str,), "text")
    return "tool call's " + problem if problem else None


def _index_problem(obj: Dict[str, Any]) -> Optional[str]:
    """What is wrong with a choice's or tool call's ``index``: left out it is 0 (or the next
    call), but a null one would be kept as None beside the numbers, and sorting them fails."""
    if "index" in obj and obj["index"] is None:
        return "index is null, not a number"
    return _wrong(obj, "index", (int,), "a number")


def _wrong(obj: Dict[str, Any], key: str, types: tuple, wanted: str) -> Optional[str]:
    """"KEY is a number, not text" if ``obj[key]`` is set (not null) to something of another type.
    (Parsed JSON holds exact types: ``type() in`` is faster than isinstance, and keeps
    true/false, whose type is bool, from passing for a number.)"""
    value = obj.get(key)
    if value is None or type(value) in types:
        return None
    return "{} is {}, not {}".format(key, _kind(value), wanted)


def _kind(value: Any) -> str:
    """The JSON type of a parsed value, as a phrase."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"


def load_json(body: bytes, what: str, status: Optional[int] = None) -> Any:
    """A JSON reply body, or a clear error saying what came instead: text that is not UTF-8, a
    number JSON cannot carry, or the start of something that is not JSON (naming the HTTP
    ``status`` when given: a 200 that is an HTML page is a proxy's, not the API's)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ServerError("the {} is not valid UTF-8 (byte 0x{:02x} at offset {})".format(
            what, body[exc.start], exc.start), hint="Check the base URL (-b) and any proxy in between.") from None
    try:
        return parse_json(text, what)
    except BadNumber as exc:
        raise ServerError("the {} holds {}".format(what, exc),
                          hint="The server sent JSON that is not valid; try again, or tell its operator.") from None
    except RecursionError:  # json's C parser gives up near Python's recursion limit (~1000 levels)
        raise ServerError("the {} nests lists or objects deeper than interncli reads".format(what),
                          hint="Check the base URL (-b) and any proxy in between.") from None
    except ValueError:
        shown = "{} (HTTP {})".format(what, status) if status is not None else what
        raise ServerError("the {} is not JSON: {}".format(shown, body_snippet(body) or "(empty)"),
                          hint="Check the base URL (-b) and any proxy in between.") from None


class BadNumber(ValueError):
    """A number in a JSON text that has no JSON value (1e999, NaN) or no Python one."""


def parse_json(text: str, what: str) -> Any:
    """``json.loads`` for text from the server: a document with more than VALUE_LIMIT values
    raises ReplyTooLarge before it is parsed; numbers out of JSON's range raise BadNumber
    (``json`` itself turns 1e999 into inf and accepts NaN, which are not JSON)."""
    if _value_count(text) > VALUE_LIMIT:
        raise ReplyTooLarge("the {} holds more than {} JSON values, the most interncli accepts".format(
            what, VALUE_LIMIT))
    return _DECODER.decode(text)


def _value_count(text: str) -> int:
    """About how many values a JSON text holds (commas and openings outside strings); the
    strings are only stripped when a plain count says there may be too many."""
    count = text.count(",") + text.count("[") + text.count("{")
    if count <= VALUE_LIMIT:
        return count
    bare = _JSON_STRING.sub("", text)
    return bare.count(",") + bare.count("[") + bare.count("{")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BadNumber("a number too large for JSON ({})".format(text[:40]))
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # over Python's limit on digits (4300 by default)
        raise BadNumber("a number with {} digits, too long to read".format(len(text))) from None


def _no_constant(text: str) -> Any:
    raise BadNumber("{}, which is not a JSON number".format(text))


# One decoder for every document: json.loads with hooks builds a new one per call.
_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_int=_int, parse_constant=_no_constant)


class _Text:
    """Text that arrives in many small pieces. Pieces are joined in batches, so a reply sent a
    character per chunk costs neither quadratic time (``+=`` on a str kept in a dict copies it
    each time) nor a list entry per character."""

    __slots__ = ("_joined", "_batch")

    def __init__(self) -> None:
        self._joined: List[str] = []
        self._batch: List[str] = []

    def add(self, piece: str) -> None:
        """Append ``piece``."""
        if not piece:
            return
        self._batch.append(piece)
        if len(self._batch) >= 512:
            self._joined.append("".join(self._batch))
            self._batch = []

    def __str__(self) -> str:
        return "".join(self._joined) + "".join(self._batch)


class ChoiceState:
    """One choice of a streamed reply as it builds up; pieces are joined when asked for, so
    a long reply costs linear time."""

    __slots__ = ("_content", "_reasoning", "_calls", "finish_reason")

    def __init__(self) -> None:
        self._content = _Text()
        self._reasoning = _Text()
        # index -> [id, name, arguments]
        self._calls: Dict[int, List[Any]] = {}
        self.finish_reason: Optional[str] = None

    @property
    def content(self) -> str:
        """The text so far."""
        return str(self._content)

    @property
    def reasoning(self) -> str:
        """The reasoning text so far."""
        return str(self._reasoning)

    @property
    def tool_calls(self) -> Dict[int, Dict[str, Any]]:
        """The tool calls so far, by index, as a non-streamed reply shows them."""
        return {index: {"id": call_id, "type": "function", "function": {"name": str(name), "arguments": str(args)}}
                for index, (call_id, name, args) in self._calls.items()}

    def add(self, delta: Dict[str, Any]) -> None:
        """Fold one delta in."""
        if delta.get("content"):
            self._content.add(delta["content"])
        if delta.get("reasoning_content"):
            self._reasoning.add(delta["reasoning_content"])
        for call in delta.get("tool_calls") or []:
            slot = self._calls.get(call.get("index", len(self._calls)))
            if slot is None:
                slot = self._calls[call.get("index", len(self._calls))] = ["", _Text(), _Text()]
            # The first id of an index is the call's: LMDeploy 0.7-0.12 give every later piece a new one.
            slot[0] = slot[0] or call.get("id") or ""
            function = call.get("function") or {}
            slot[1].add(function.get("name") or "")
            slot[2].add(function.get("arguments") or "")

    def message(self) -> Dict[str, Any]:
        """The assistant message, as it would appear in a non-streamed reply (without any tool
        markup that leaked into the content beside a tool call)."""
        calls = self.tool_calls
        content = self.content
        if calls:
            content = content[:markup_index(content)]
        named = [calls[k] for k in sorted(calls) if calls[k]["function"]["name"]]
        return assistant_message({"content": content, "tool_calls": named})

    @property
    def nameless_calls(self) -> int:
        """How many streamed tool calls never got a name (LMDeploy 0.7-0.12's shared parser can
        send one): message() leaves them out, as nothing could be called by them."""
        return sum(1 for call in self.tool_calls.values() if not call["function"]["name"])


# Tool-call markup that LMDeploy 0.7-0.12 stream as content before the parsed call (internlm2's,
# and the <tool_call> of Qwen-style templates): beside a tool call it is not part of the answer.
TOOL_MARKUP = ("<|action_start|>", "<|plugin|>", "<tool_call>")


def markup_index(text: str) -> int:
    """Where the first tool markup in ``text`` starts; ``len(text)`` if there is none."""
    found = [i for i in (text.find(m) for m in TOOL_MARKUP) if i >= 0]
    return min(found) if found else len(text)


def split_markup(text: str) -> Tuple[str, str, bool]:
    """``text`` as (what can be printed now, what is held back, whether the held part starts
    with whole tool markup): held back is the text from a marker on, or an end that may be the
    start of one (``<|act``), which the next piece decides."""
    index = markup_index(text)
    if index < len(text):
        return text[:index], text[index:], True
    longest = max(len(m) for m in TOOL_MARKUP)
    for start in range(max(0, len(text) - longest + 1), len(text)):
        if text[start] == "<" and any(m.startswith(text[start:]) for m in TOOL_MARKUP):
            return text[:start], text[start:], False
    return text, "", False


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

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def create(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """A non-streamed chat completion."""
        response = self.transport.send("POST", CHAT_PATH, body)
        return check_completion(load_json(response.read(), "reply", response.status), response.status)

    def complete(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """A non-streamed text completion, as its text_view (checked as a chat completion is)."""
        response = self.transport.send("POST", COMPLETIONS_PATH, body)
        return check_completion(text_view(load_json(response.read(), "reply", response.status), "message"),
                                response.status)

    def retrieve_model(self, model_id: str) -> Dict[str, Any]:
        """One model, from ``models/ID``. A server without that route (LMDeploy: none of its
        versions has one) is a rejected request that says so."""
        try:
            response = self.transport.send("GET", model_path(model_id))
        except RequestRejected as err:
            if err.http_status == 404 and (err.message == "Not Found" or err.message.startswith("HTTP 404")):
                # The framework's answer for an unknown path (LMDeploy's {"detail": "Not Found"}), or a
                # front proxy's page: no route, not "no such model".
                raise RequestRejected(
                    "the server has no route for a single model: GET {} answers HTTP 404 Not Found (LMDeploy "
                    "has none in any version)".format(self.transport.url(model_path(model_id))),
                    code=err.code, http_status=404,
                    hint="`interncli api models.list` prints every model the server offers.") from None
            raise
        obj = load_json(response.read(), "model", response.status)
        found = error_from_object(obj, response.status)
        if found is not None:
            raise found
        if not isinstance(obj, dict) or type(obj.get("id")) is not str:
            raise ServerError("the reply is not a model with a text id: " + body_snippet(json.dumps(obj).encode()),
                              hint="Check the base URL (-b) and any proxy in between.")
        return obj

    def list_models(self) -> Dict[str, Any]:
        """The models the server offers."""
        response = self.transport.send("GET", MODELS_PATH)
        obj = load_json(response.read(), "model list")
        err = error_from_object(obj, response.status)
        if err is not None:
            raise err
        if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
            raise ServerError("the model list has no 'data' list: " + body_snippet(json.dumps(obj).encode()))
        for model in obj["data"]:
            # Each entry is printed by its id: one that is not an object with a text id (a
            # number, null, {"id": {...}}) would be printed as Python's repr, or as nothing.
            if not isinstance(model, dict) or type(model.get("id")) is not str:
                raise ServerError("the model list holds an entry that is not a model with a text id: "
                                  + body_snippet(json.dumps(model).encode()),
                                  hint="Check the base URL (-b) and any proxy in between.")
        return obj

    def stream(self, body: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
        """The chunks of a streamed chat completion, each as soon as it arrives.

        Raises the API's error if one comes inside the stream, and StreamError if the stream
        is malformed, too large, stalls, or ends before it is complete."""
        return self._stream(CHAT_PATH, body, _as_is)

    def stream_text(self, body: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
        """The chunks of a streamed text completion, each as its text_view, with the checks and
        limits of ``stream``."""
        return self._stream(COMPLETIONS_PATH, body, text_view)

    def _stream(self, path: str, body: Dict[str, Any], view: Callable[[Any, str], Any]) -> Iterator[Dict[str, Any]]:
        response = self.transport.send("POST", path, body)
        try:
            if response.content_type == "application/json":
                # A server that answers a stream request with one JSON document: an error,
                # or a whole completion from a server that does not stream.
                yield _as_chunk(check_completion(view(load_json(response.read(), "reply", response.status),
                                                      "message"), response.status))
                return
            yield from _chunks(response.iter_bytes(), response.renew_deadline, view)
        finally:
            response.close()


def _chunks(pieces: Iterator[bytes], on_content: Callable[[], None] = lambda: None,
            view: Callable[[Any, str], Any] = _as_is) -> Iterator[Dict[str, Any]]:
    """The chunks of an event stream, checked, each as ``view`` shows it (text_view for text
    completions); ``on_content`` is called for each chunk that carries content (comments,
    empty events and empty deltas are not progress)."""
    unfinished: Dict[int, bool] = {}  # choice index -> still waiting for its finish_reason
    calls: Dict[int, set] = {}  # choice index -> tool-call indexes seen
    produced: set = set()  # choice indexes that have sent content, reasoning or a tool call
    size = 0  # UTF-8 bytes of content, reasoning and tool-call text so far
    # Lines outside the SSE syntax before any event: the body may be a (pretty-printed) JSON
    # error sent as an event stream, so they are read to the end and judged together.
    strays: List[str] = []
    strays_size = 0
    try:
        for item in decode_events(pieces, LINE_LIMIT, EVENT_LIMIT):
            if isinstance(item, StrayLine):
                if unfinished:
                    _raise_stray(item.text, first=False)
                strays.append(item.text)
                strays_size += len(item.text) + 1
                if strays_size > PRELUDE_LIMIT:
                    raise ReplyTooLarge("the reply stream starts with more than {} that is not an event "
                                        "stream".format(size_text(PRELUDE_LIMIT)))
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
            obj = _event_object(data, item.event, view)
            _check_failed(obj)
            added = _count(obj, unfinished, calls, produced)
            _check_context(obj, produced)
            if added:
                size += added
                if size > REPLY_LIMIT:
                    raise ReplyTooLarge("the reply is larger than {}, the most interncli accepts".format(
                        size_text(REPLY_LIMIT)))
                on_content()
            yield obj
    except LimitExceeded as exc:
        raise ReplyTooLarge("{} of the reply stream is longer than {}, the most interncli accepts".format(
            "one event" if "event" in exc.what else "one line", size_text(exc.limit))) from None
    if strays:
        _raise_stray("\n".join(strays))
    if not unfinished or any(unfinished.values()):
        raise StreamError("the reply stream ended before the reply was complete", retryable=True)


def _check_failed(obj: Dict[str, Any]) -> None:
    """Raise the error of a chunk that ends its choice with a failure (FAILED_FINISHES): its
    content is the error text, so it is never printed as part of the answer."""
    for choice in obj["choices"]:
        if choice.get("finish_reason") in FAILED_FINISHES:
            delta = choice.get("delta") or {}
            raise failed_reply(choice["finish_reason"], delta.get("content") or "")


def _check_context(obj: Dict[str, Any], produced: set) -> None:
    """Raise the context error for a choice that ends at ``length`` having sent nothing."""
    for choice in obj["choices"]:
        if choice.get("finish_reason") == "length" and choice.get("index", 0) not in produced:
            raise context_error()


def _count(obj: Dict[str, Any], unfinished: Dict[int, bool], calls: Dict[int, set], produced: set) -> int:
    """Note a chunk's choices and tool calls (refusing more than MAX_CHOICES and MAX_TOOL_CALLS),
    which choices have produced something, and return how much it adds: UTF-8 bytes of text,
    plus one for a finish_reason (an end is progress too)."""
    added = 0
    for choice in obj["choices"]:
        index = choice.get("index", 0)
        if index not in unfinished and len(unfinished) >= MAX_CHOICES:
            raise ReplyTooLarge("the reply stream has more than {} choices".format(MAX_CHOICES))
        unfinished[index] = not choice.get("finish_reason")
        added += 1 if choice.get("finish_reason") else 0
        delta = choice.get("delta") or {}
        text = _utf8_size(delta.get("content")) + _utf8_size(delta.get("reasoning_content"))
        if text or delta.get("tool_calls"):
            produced.add(index)
        added += text
        for call in delta.get("tool_calls") or []:
            seen = calls.setdefault(index, set())
            seen.add(call.get("index", len(seen)))
            if len(seen) > MAX_TOOL_CALLS:
                raise ReplyTooLarge("the reply has more than {} tool calls in one choice".format(MAX_TOOL_CALLS))
            function = call.get("function") or {}
            added += _utf8_size(function.get("name")) + _utf8_size(function.get("arguments"))
    return added


def _utf8_size(text: Optional[str]) -> int:
    """The UTF-8 size of a piece of text (isascii is a flag lookup: most pieces are not encoded)."""
    if not text:
        return 0
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))



def _event_object(data: str, event: str, view: Callable[[Any, str], Any] = _as_is) -> Dict[str, Any]:
    """The chunk an event carries, as ``view`` shows it; an error it carries is raised."""
    try:
        obj = parse_json(data, "stream event")
    except BadNumber as exc:
        raise StreamError("the reply stream is malformed: an event holds {}".format(exc)) from None
    except (ValueError, RecursionError):
        raise StreamError("the reply stream is malformed: " + body_snippet(data.encode()), retryable=True) from None
    err = error_from_object(obj)
    if err is not None or event == "error":
        raise err or ServerError(body_snippet(data.encode()))
    obj = view(obj, "delta")
    problem = shape_problem(obj, "delta", "a chunk")
    if problem:
        raise StreamError("the reply stream is malformed: {}: {}".format(problem, body_snippet(data.encode())),
                          retryable=True)
    return obj


def _raise_stray(text: str, first: bool = True) -> None:
    """Text outside the SSE syntax: an error body if it is one, else a malformed stream;
    ``first``: no event came before it, so the reply is not an event stream at all (an HTML
    page, say) and nothing of it was printed."""
    if not text.strip():
        return
    try:
        obj = parse_json(text, "stream")
    except (ValueError, RecursionError):
        obj = None
    err = error_from_object(obj) if obj is not None else None
    if isinstance(err, InternCliError):
        raise err
    if first:
        raise StreamError("the reply is not an event stream: " + body_snippet(text.encode()), retryable=True,
                          hint="Check the base URL (-b) and any proxy in between: what answered is not a "
                               "chat-completions API.")
    raise StreamError("the reply stream is malformed: " + body_snippet(text.encode()), retryable=True)


def _as_chunk(completion: Dict[str, Any]) -> Dict[str, Any]:
    """A whole completion in the shape of one stream chunk."""
    chunk = dict(completion)
    chunk["choices"] = [
        {"index": c.get("index", i), "delta": c.get("message") or {}, "finish_reason": c.get("finish_reason")}
        for i, c in enumerate(completion.get("choices") or [])
    ]
    return chunk
