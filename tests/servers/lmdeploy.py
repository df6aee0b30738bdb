"""A test server that answers as a given LMDeploy version, or the Intern gateway, would.

    with ProfileServer("lmdeploy-0.12", api_keys=["sk-x"]) as server:
        server.script(Engine(text="hello", reasoning="hmm"))   # what the fake model says next
        server.script(Engine(fail="engine"))                   # an engine failure, in the era's form
        ...  # point a client at server.base_url; then server.requests, server.seen

Every profile reproduces the shapes of the "profile → shapes" table in ``tests/servers/README.md``
(the sections named in the comments below): error bodies, the Content-Type demand, the
``/v1/models`` shape, usage placement in streams, streamed tool-call deltas, reasoning, ``n``, and
which thinking switch the version reads. It is built on ``tests.apiserver.APIServer``: requests are
recorded the same way, and a reply queued with ``add()`` (any ``tests.apiserver`` reply) still wins
over the profile for its route. Only the inference engine is scripted; everything in front of it
(checks, validation, serialisation) follows the profile.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tests.apiserver import (
    CHAT_PATH,
    MODELS,
    NO_MODERATION,
    APIServer,
    Json,
    Raw,
    Recorded,
    Reply,
    Stream,
    _Handler,
    html_error,
    last_user_text,
    split_text,
)

COMPLETIONS_PATH = "/v1/completions"
MODELS_PATH = "/v1/models"
LMDEPLOY_PROFILES = ("lmdeploy-0.6", "lmdeploy-0.10", "lmdeploy-0.12", "lmdeploy-0.13", "lmdeploy-0.14",
                     "lmdeploy-0.16", "lmdeploy-0.17", "lmdeploy-0.18")
PROFILES = LMDEPLOY_PROFILES + ("gateway",)
# What `lmdeploy serve api_server` usually serves: the model path's name, rarely `intern-latest`.
SERVED_MODEL = "internlm2_5-7b-chat"
LMDEPLOY_FAILURES = ("engine", "unavailable", "context")
# The gateway's answer to a full context is not known (README §7): no "context" there.
GATEWAY_FAILURES = ("engine", "rate_limit", "token_expired")
FAILURES = LMDEPLOY_FAILURES + GATEWAY_FAILURES[1:]
# The engine-failure texts of 0.7.x and 0.10.0 – 0.15.0 (README §2.3).
OLD_ENGINE_ERROR = "internal error happened"
ENGINE_ERROR = "internal error happened, status code ResponseType.INTERNAL_ENGINE_ERROR"
ENGINE_STOP = "internal error happened, status code ResponseType.ENGINE_STOP_ERROR"
INPUT_LENGTH_ERROR = "internal error happened, status code ResponseType.INPUT_LENGTH_ERROR"
CONTEXT_LENGTH = 4096
UNSUPPORTED_MEDIA = "Unsupported Media Type: Only 'application/json' is allowed"
AUTH_DETAIL = {"message": "Please request with valid api key!", "type": "invalid_request_error", "param": None,
               "code": "invalid_api_key"}
# The 0.6 – 0.12.1 dependency protects only these routes; the 0.12.2+ middleware lets these prefixes through.
_KEYED_ROUTES = (MODELS_PATH, CHAT_PATH, COMPLETIONS_PATH)
_OPEN_PREFIXES = ("/health", "/docs", "/redoc", "/nodes")
_ROUTES = {MODELS_PATH: "GET", CHAT_PATH: "POST", COMPLETIONS_PATH: "POST", "/v1/embeddings": "POST",
           "/health": "GET"}
# Top-level request fields a version knows; others are dropped silently (README §1) — a subset of
# LMDeploy's request model, enough for what interncli sends, with the era's additions.
_KNOWN = frozenset({"model", "messages", "temperature", "top_p", "top_k", "n", "max_tokens", "stop", "stream",
                    "stream_options", "presence_penalty", "frequency_penalty", "user", "repetition_penalty",
                    "session_id", "ignore_eos", "skip_special_tokens", "logprobs", "top_logprobs", "seed",
                    "tools", "tool_choice", "response_format", "logit_bias", "min_new_tokens", "min_p"})
# The gateway's documented fields (README §7); anything else is refused.
GATEWAY_FIELDS = frozenset({"model", "messages", "n", "temperature", "top_p", "stream", "max_tokens", "tools",
                            "tool_choice", "thinking_mode"})
GATEWAY_MESSAGES = {"A0202": "user authenticate failed", "A0211": "token expired",
                    "-10002": "Invalid parameter", "-20013": "Requested model does not exist",
                    "-20018": "Incorrect message format", "-20053": "Exceeded frequency limit"}


@dataclass
class Engine:
    """What the fake inference engine produces for one request.

    ``text`` None: echo the last user message (``echo: …``). ``reasoning``: thinking the model
    emits before the answer (``<think>…</think>``). ``tool_call``: ``(name, arguments dict)`` the
    model calls after ``text``. ``fail``: one of FAILURES — ``engine`` (generation fails after
    ``text`` was produced), ``unavailable`` (engine stopped), ``context`` (the prompt fills the
    context), and for the gateway ``rate_limit`` / ``token_expired``."""

    text: Optional[str] = None
    reasoning: Optional[str] = None
    tool_call: Optional[Tuple[str, Dict[str, Any]]] = None
    fail: Optional[str] = None

    def __post_init__(self) -> None:
        if self.fail is not None and self.fail not in FAILURES:
            raise ValueError(f"fail must be one of {FAILURES}, not {self.fail!r}")


@dataclass
class Seen:
    """How the profile read one chat request that passed its checks: the thinking switch as the
    version understands it (None: not set or not read), the field it came from, and the top-level
    fields the version does not know (dropped silently by LMDeploy, refused by the gateway)."""

    thinking: Optional[bool]
    thinking_from: Optional[str]
    ignored: Tuple[str, ...]
    stream: bool
    n: int


def _compact(obj: Any) -> bytes:
    # FastAPI's JSONResponse and pydantic's model_dump_json: no spaces, UTF-8 kept.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _spaced(obj: Any) -> bytes:
    # 0.14+ writes content chunks with json.dumps defaults (README §8, byte-level detail).
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _event(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


def _words(text: Any) -> int:
    return len(str(text or "").split())


def _prompt_tokens(body: Dict[str, Any]) -> int:
    messages = body.get("messages")
    if isinstance(messages, str):
        return _words(messages)
    return sum(_words(m.get("content")) for m in messages or [] if isinstance(m, dict)) + 1


class _Answer(Reply):
    """The profile's answer to one request, computed when the request is served."""

    def __init__(self, server: ProfileServer, script: Optional[Engine]) -> None:
        self.server, self.script = server, script

    def respond(self, h: _Handler, req: Recorded) -> None:
        self.server.profile.answer(req, self.script).respond(h, req)


class _Scripted(Reply):
    """A queued Engine script: only a marker, answered by the profile."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def respond(self, h: _Handler, req: Recorded) -> None:  # never called: _record_and_take unwraps it
        raise AssertionError("a scripted engine output is answered by the profile")


class ProfileServer(APIServer):
    """An APIServer that answers as ``profile`` (one of PROFILES). ``api_keys``: the keys the
    server was started with (None: no check). ``tool_parser`` / ``reasoning_parser``: whether it
    was started with ``--tool-call-parser`` / ``--reasoning-parser``. ``release`` picks the
    0.6-era engine-failure variant ("0.6.0", "0.6.5" default, "0.7.0"; README §2.3). ``reset()``
    restores all of these to the values given here."""

    def __init__(self, profile: str, api_keys: Optional[Sequence[str]] = None, model: str = SERVED_MODEL,
                 tool_parser: bool = True, reasoning_parser: bool = True, release: Optional[str] = None,
                 port: int = 0) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
        super().__init__(port)
        self.profile_name = profile
        self._settings = (list(api_keys) if api_keys else None, model, tool_parser, reasoning_parser, release)
        self.seen: List[Seen] = []
        self._restore()

    def _restore(self) -> None:
        keys, model, tool_parser, reasoning_parser, release = self._settings
        self.api_keys: Optional[List[str]] = list(keys) if keys else None
        self.model, self.tool_parser, self.reasoning_parser = model, tool_parser, reasoning_parser
        self.release = release
        # The gateway's business-error status: None = the status of the notes' guess (README §7).
        self.envelope_status: Optional[int] = None
        self.sessions = itertools.count(1)
        self.seen = []
        self.profile: _Profile = (Gateway(self) if self.profile_name == "gateway"
                                  else LMDeploy(self, self.profile_name))

    def reset(self) -> None:
        """Forget requests, queued replies and scripts, and restore the constructor's settings."""
        super().reset()
        self._restore()

    def script(self, engine: Engine, times: int = 1, path: str = CHAT_PATH) -> None:
        """What the fake engine produces for the next ``times`` chat completion requests (or,
        with ``path=COMPLETIONS_PATH``, text completion requests: ``text``, and ``fail="engine"``)."""
        allowed = GATEWAY_FAILURES if self.profile_name == "gateway" else LMDEPLOY_FAILURES
        if engine.fail is not None and engine.fail not in allowed:
            raise ValueError(f"{self.profile_name} has no {engine.fail!r} failure (known: {allowed})")
        if path == COMPLETIONS_PATH and engine.fail not in (None, "engine"):
            raise ValueError(f"text completions script only the engine failure, not {engine.fail!r}")
        self.add(_Scripted(engine), path=path, times=times)

    def fail(self, kind: str, times: int = 1, text: str = "") -> None:
        """Script a failure (one of FAILURES) after ``text`` was generated."""
        self.script(Engine(text=text, fail=kind), times)

    def _record_and_take(self, req: Recorded) -> Optional[Reply]:
        queued = super()._record_and_take(req)
        if queued is not None and not isinstance(queued, _Scripted):
            return queued
        return _Answer(self, queued.engine if isinstance(queued, _Scripted) else None)


# ------------------------------------------------------------------------ the profiles


class _Profile:
    def __init__(self, server: ProfileServer) -> None:
        self.server = server

    def answer(self, req: Recorded, script: Optional[Engine]) -> Reply:
        raise NotImplementedError


@dataclass
class _Choice:
    """One choice of a reply as the engine and parsers produce it, before serialisation."""

    content: Optional[str]
    reasoning: Optional[str] = None
    tool: Optional[Tuple[str, Dict[str, Any]]] = None
    tool_id: str = ""
    finish: str = "stop"
    pieces: List[str] = field(default_factory=list)
    leak: List[str] = field(default_factory=list)  # 0.10–0.12 streamed markup shown as content


def _tool_markup(name: str, arguments: Dict[str, Any]) -> str:
    payload = json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)
    return f"<|action_start|><|plugin|>\n{payload}<|action_end|>"


def _random_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:12]


class LMDeploy(_Profile):
    """LMDeploy's api_server of one era (README §1–§5, §8)."""

    def __init__(self, server: ProfileServer, profile: str) -> None:
        super().__init__(server)
        self.v = tuple(int(p) for p in profile.split("-")[1].split("."))

    # ----- error bodies

    def error(self, status: int, message: str) -> Reply:
        """The flat error object, ``type`` by status from 0.16 (README §1)."""
        kind = "invalid_request_error"
        if self.v >= (0, 16):
            kind = {401: "authentication_error", 404: "not_found_error"}.get(
                status, "server_error" if status >= 500 else "invalid_request_error")
        body = {"message": message, "type": kind, "code": status, "param": None, "object": "error"}
        return Raw(_compact(body), status, "application/json")

    def invalid(self, items: List[Any], body: Any) -> Reply:
        """A validation failure: stock 422, 422 with ``body`` (0.9+), flat 400 (0.16+) (README §2.2)."""
        if self.v >= (0, 16):
            first = items[0]
            if isinstance(first, str):
                return self.error(400, first)
            loc = [str(p) for p in first["loc"] if p != "body"]
            return self.error(400, (".".join(loc) + ": " if loc else "") + first["msg"])
        doc: Dict[str, Any] = {"detail": items}
        if self.v >= (0, 10):
            doc["body"] = body
        return Raw(_compact(doc), 422, "application/json")

    def unauthorized(self) -> Reply:
        """README §2.1."""
        if self.v < (0, 12):
            return Raw(_compact({"detail": {"error": AUTH_DETAIL}}), 401, "application/json")
        if self.v < (0, 16):
            return Raw(_compact({"error": "Unauthorized"}), 401, "application/json")
        return self.error(401, "Unauthorized.")

    def key_ok(self, req: Recorded) -> bool:
        keys = self.server.api_keys
        if not keys:
            return True
        scheme, _, key = req.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and key.strip() in keys

    # ----- dispatch

    def answer(self, req: Recorded, script: Optional[Engine]) -> Reply:
        route = req.route
        # 0.12.2+: an ASGI middleware checks the key before routing, on every path but a few.
        if (self.v >= (0, 12) and req.method != "OPTIONS" and not route.startswith(_OPEN_PREFIXES)
                and not self.key_ok(req)):
            return self.unauthorized()
        if route not in _ROUTES:
            return Raw(_compact({"detail": "Not Found"}), 404, "application/json")
        if req.method != _ROUTES[route]:
            return Raw(_compact({"detail": "Method Not Allowed"}), 405, "application/json")
        if route == "/health":
            return Raw(b"", 200, "application/json")
        if route == MODELS_PATH:
            if self.v < (0, 12) and not self.key_ok(req):
                return self.unauthorized()
            return Raw(_compact(self.models()), 200, "application/json")
        body, problem = self.parse(req)
        if problem is not None:
            return problem
        # Before 0.12.2 the key is a route dependency: FastAPI decodes the body first (bad JSON → 422),
        # then runs dependencies (401), then validates the fields (README §2.1).
        if self.v < (0, 12) and route in _KEYED_ROUTES and not self.key_ok(req):
            return self.unauthorized()
        if route == "/v1/embeddings":
            return self.error(400, "Unsupported by turbomind.")
        required = ("model", "messages") if route == CHAT_PATH else ("model", "prompt")
        items = self.field_errors(body, required)
        if items:
            return self.invalid(items, body)
        problem = self.check(body)
        if problem is not None:
            return problem
        if route == COMPLETIONS_PATH:
            return self.completions(body, script)
        return self.chat(body, script)

    def models(self) -> Dict[str, Any]:
        """The ModelList of every tag (README §1)."""
        created = int(time.time())
        permission = {"id": "modelperm-" + uuid.uuid4().hex[:22], "object": "model_permission",
                      "created": created, "allow_create_engine": False, "allow_sampling": True,
                      "allow_logprobs": True, "allow_search_indices": True, "allow_view": True,
                      "allow_fine_tuning": False, "organization": "*", "group": None, "is_blocking": False}
        card = {"id": self.server.model, "object": "model", "created": created, "owned_by": "lmdeploy",
                "root": self.server.model, "parent": None, "permission": [permission]}
        return {"object": "list", "data": [card]}

    def parse(self, req: Recorded) -> Tuple[Any, Optional[Reply]]:
        """The JSON body, or the validation error the era gives for the body or its Content-Type."""
        media = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if self.v >= (0, 12) and media != "application/json":
            return None, self.invalid([UNSUPPORTED_MEDIA], None)
        text = req.body.decode("utf-8", "replace")
        try:
            return json.loads(text), None
        except ValueError as exc:
            pos = getattr(exc, "pos", 0)
            item = {"type": "json_invalid", "loc": ["body", pos], "msg": "JSON decode error", "input": {},
                    "ctx": {"error": getattr(exc, "msg", str(exc))}}
            return None, self.invalid([item], text)

    def field_errors(self, body: Any, required: Sequence[str]) -> List[Dict[str, Any]]:
        """pydantic's errors for a missing or ill-typed field (a few of them: README §2.2)."""
        if not isinstance(body, dict):
            return [{"type": "model_attributes_type", "loc": ["body"],
                     "msg": "Input should be a valid dictionary or object to extract fields from", "input": body}]
        items: List[Dict[str, Any]] = []
        for name in required:
            if name not in body:
                items.append({"type": "missing", "loc": ["body", name], "msg": "Field required", "input": body})
        checks = [("model", lambda x: isinstance(x, str), "string_type", "Input should be a valid string"),
                  ("stream", lambda x: isinstance(x, bool), "bool_type", "Input should be a valid boolean"),
                  ("n", lambda x: isinstance(x, int) and not isinstance(x, bool), "int_type",
                   "Input should be a valid integer"),
                  ("max_tokens", lambda x: x is None or (isinstance(x, int) and not isinstance(x, bool)),
                   "int_type", "Input should be a valid integer"),
                  ("temperature", lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
                   "float_type", "Input should be a valid number"),
                  ("top_p", lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
                   "float_type", "Input should be a valid number")]
        if "prompt" in required and "prompt" in body and not isinstance(body["prompt"], (str, list)):
            # `prompt: Union[str, List[Any]]`: pydantic reports the value against each member
            # (a null prompt is what the openai CLI sends without -p).
            items += [{"type": "string_type", "loc": ["body", "prompt", "str"], "msg": "Input should be a valid "
                       "string", "input": body["prompt"]},
                      {"type": "list_type", "loc": ["body", "prompt", "list[any]"], "msg": "Input should be a "
                       "valid list", "input": body["prompt"]}]
        if self.v >= (0, 18):  # a string as `messages` stopped being accepted
            checks.append(("messages", lambda x: isinstance(x, list), "list_type", "Input should be a valid list"))
        for name, ok, kind, msg in checks:
            if name in body and not ok(body[name]):
                items.append({"type": kind, "loc": ["body", name], "msg": msg, "input": body[name]})
        return items

    def _quote(self, value: Any) -> str:
        # Up to 0.10.1 the value is in backticks; later bare (README §1). Numbers come as floats.
        text = repr(value)
        return f"`{text}`" if self.v < (0, 10) else text

    def check(self, body: Dict[str, Any]) -> Optional[Reply]:
        """``check_request`` and the handler's own checks, in their order (README §1, §3.3)."""
        if body["model"] != self.server.model:
            model = body["model"]
            name = f"`{model}`" if self.v < (0, 10) else f"'{model}'"
            return self.error(404, f"The model {name} does not exist.")
        n = body.get("n", 1)
        if n <= 0:
            return self.error(400, f"The n {self._quote(n)} must be a positive int.")
        top_p = body.get("top_p")
        if top_p is not None and not 0 < top_p <= 1:
            return self.error(400, f"The top_p {self._quote(float(top_p))} must be in (0, 1].")
        top_k = body.get("top_k")
        if isinstance(top_k, int) and top_k < 0:
            return self.error(400, f"The top_k {self._quote(top_k)} cannot be a negative integer.")
        temperature = body.get("temperature")
        if temperature is not None and not 0 <= temperature <= 2:
            return self.error(400, f"The temperature {self._quote(float(temperature))} must be in [0, 2]")
        max_tokens = body.get("max_tokens")
        if self.v >= (0, 18) and isinstance(max_tokens, int) and max_tokens <= 0:
            return self.error(400, f"The max_tokens {max_tokens} must be a positive integer.")
        if self.v >= (0, 13) and self.uses_tools(body) and not self.server.tool_parser:
            word = "tools" if self.v >= (0, 16) else "tool"
            return self.error(400, f"Please launch the api_server with --tool-call-parser if you want to use {word}.")
        return None

    @staticmethod
    def uses_tools(body: Dict[str, Any]) -> bool:
        return bool(body.get("tools")) and body.get("tool_choice") != "none"

    def thinking(self, body: Dict[str, Any]) -> Tuple[Optional[bool], Optional[str]]:
        """The thinking switch as the era reads it (README §4)."""
        if self.v < (0, 10):
            return None, None
        kwargs = body.get("chat_template_kwargs")
        if self.v >= (0, 12) and isinstance(kwargs, dict):
            if "enable_thinking" in kwargs:
                return bool(kwargs["enable_thinking"]), "chat_template_kwargs.enable_thinking"
            if self.v >= (0, 16) and kwargs.get("thinking") is True:
                return True, "chat_template_kwargs.thinking"
        if "enable_thinking" in body:
            return bool(body["enable_thinking"]), "enable_thinking"
        if self.v >= (0, 16) and body.get("reasoning_effort") in ("high", "max"):
            return True, "reasoning_effort"
        return None, None

    def known(self) -> frozenset:
        extra = set()
        if self.v >= (0, 10):
            extra.add("enable_thinking")
        if self.v >= (0, 12):
            extra.add("chat_template_kwargs")
        if self.v >= (0, 16):
            extra.add("reasoning_effort")
        return _KNOWN | extra

    # ----- chat

    def chat(self, body: Dict[str, Any], script: Optional[Engine]) -> Reply:
        engine = script or Engine()
        stream = body.get("stream") is True
        thinking, source = self.thinking(body)
        n = body.get("n", 1) if self.v >= (0, 17) else 1
        self.server.seen.append(Seen(thinking, source, tuple(sorted(set(body) - self.known())), stream, n))
        tools = self.uses_tools(body)
        if stream and tools and self.v < (0, 10):  # ≤ 0.7.1 turns the stream off for tools (README §3.3)
            stream = False
        failed = self.failure(body, engine, stream)
        if failed is not None:
            return failed
        choices = [self.generate(body, engine, thinking, tools, index) for index in range(n)]
        if not stream:
            return Raw(_compact(self.completion(body, choices)), 200, "application/json")
        return Stream(self.stream(body, choices))

    def failure(self, body: Dict[str, Any], engine: Engine, stream: bool) -> Optional[Reply]:
        """The era's form of an engine failure or a full context (README §2.3)."""
        kind = engine.fail
        if kind is None:
            return None
        partial = engine.text or ""
        if kind == "context":
            if self.v >= (0, 16):
                prompt = max(CONTEXT_LENGTH, _prompt_tokens(body))
                return self.error(400, f"Input length ({prompt}) must be smaller than the model context "
                                       f"length ({CONTEXT_LENGTH}).")
            if body.get("max_tokens") is not None and self.v >= (0, 10):
                return self.finished(body, INPUT_LENGTH_ERROR, "error", stream, partial="")
            return self.finished(body, "" if self.v < (0, 13) else None, "length", stream, partial="")
        if self.v >= (0, 16):
            status, message = ((503, "The inference engine is unavailable.") if kind == "unavailable"
                               else (500, "An internal server error occurred."))
            if not stream:
                return self.error(status, message)
            events = [self.chunk(body, self.delta(content=p), None) for p in split_text(partial)] if partial else []
            error = {"message": message, "type": "server_error", "code": status, "param": None, "object": "error"}
            return Stream(events + [_event(_compact({"error": error}))])
        if self.v >= (0, 10):
            text = ENGINE_STOP if kind == "unavailable" else ENGINE_ERROR
            return self.finished(body, text, "error", stream, partial)
        release = self.server.release or "0.6.5"
        if release == "0.6.0":  # the engine's status is not looked at: an empty `stop` reply
            return self.finished(body, "", "stop", stream, partial)
        if release == "0.7.0" and not stream:
            return self.finished(body, OLD_ENGINE_ERROR, "error", stream, partial)
        if not stream:  # 0.6.1 – 0.6.5: the response model refuses "error" → a framework 500
            return Raw(b"Internal Server Error", 500, "text/plain; charset=utf-8")
        events = [self.chunk(body, self.delta(content=p), None) for p in split_text(partial)] if partial else []
        return Stream(events, cut=True)

    def finished(self, body: Dict[str, Any], text: Optional[str], finish: str, stream: bool,
                 partial: str) -> Reply:
        """A reply whose last piece is ``text`` with ``finish`` (the 200 + error family)."""
        content = partial + text if (partial and text is not None) else text
        choice = _Choice(content=content, finish=finish, pieces=split_text(partial) if partial else [])
        if not stream:
            return Raw(_compact(self.completion(body, [choice], completion_tokens=0)), 200, "application/json")
        return Stream(self.stream(body, [choice], last=text, completion_tokens=0))

    def generate(self, body: Dict[str, Any], engine: Engine, thinking: Optional[bool], tools: bool,
                 index: int) -> _Choice:
        """What the model says and what the era's parsers make of it."""
        text = engine.text if engine.text is not None else f"echo: {last_user_text(body)}"
        if index:
            text = f"{text} ({index})"
        reasoning = engine.reasoning
        if reasoning is not None:
            split = self.v >= (0, 10) and self.server.reasoning_parser and thinking is not False
            if not split:
                # 0.13+ strips the tags and glues the thinking to the answer; older ones keep the tags.
                text = (reasoning + text) if (self.v >= (0, 13) and self.server.reasoning_parser
                                              and thinking is False) else f"<think>{reasoning}</think>{text}"
                reasoning = None
        call = engine.tool_call if tools else None
        if call is not None and self.v >= (0, 18) and call[0] not in self.tool_names(body):
            call = None  # 0.18 drops calls to tools the request did not name
        if call is not None and self.v < (0, 13) and self.v >= (0, 10) and not self.server.tool_parser:
            return _Choice(content=text + _tool_markup(*call), reasoning=reasoning,
                           pieces=split_text(text + _tool_markup(*call)))
        choice = _Choice(content=text, reasoning=reasoning, pieces=split_text(text) if text else [])
        if call is not None:
            choice.tool, choice.finish = call, "tool_calls"
            if self.v < (0, 10):  # the tool's position in `tools`; 0.6.0 escapes non-ASCII
                names = self.tool_names(body)
                choice.tool_id = str(names.index(call[0]) if call[0] in names else 0)
                choice.content = ""
            else:
                choice.tool_id = _random_id("chatcmpl-tool-")
        return choice

    @staticmethod
    def tool_names(body: Dict[str, Any]) -> List[str]:
        return [t.get("function", {}).get("name") for t in body.get("tools") or [] if isinstance(t, dict)]

    def usage(self, body: Dict[str, Any], completion: int) -> Dict[str, Any]:
        prompt = _prompt_tokens(body)
        usage: Dict[str, Any] = {"prompt_tokens": prompt, "total_tokens": prompt + completion,
                                 "completion_tokens": completion}
        if self.v >= (0, 14):
            usage["prompt_tokens_details"] = {"cached_tokens": 0}
        return usage

    def chat_id(self) -> str:
        # The session number up to 0.14; `chatcmpl-<random>` from 0.15 (README §1).
        number = next(self.server.sessions)
        return str(number) if self.v < (0, 15) else _random_id("chatcmpl-")

    def completion(self, body: Dict[str, Any], choices: List[_Choice],
                   completion_tokens: Optional[int] = None) -> Dict[str, Any]:
        """A non-streamed chat completion; nulls kept in every era."""
        out = []
        for index, choice in enumerate(choices):
            message: Dict[str, Any] = {"role": "assistant", "content": choice.content, "tool_calls": None}
            if self.v >= (0, 10):
                message["reasoning_content"] = choice.reasoning
            if choice.tool is not None:
                name, arguments = choice.tool
                encoded = json.dumps(arguments, ensure_ascii=self.v < (0, 10) and self.server.release == "0.6.0")
                message["tool_calls"] = [{"id": choice.tool_id, "type": "function",
                                          "function": {"name": name, "arguments": encoded}}]
            out.append({"index": index, "message": message, "logprobs": None, "finish_reason": choice.finish})
        tokens = completion_tokens if completion_tokens is not None else sum(_words(c.content) for c in choices)
        return {"id": self.chat_id(), "object": "chat.completion", "created": int(time.time()),
                "model": self.server.model, "choices": out, "usage": self.usage(body, tokens)}

    # ----- streams

    def delta(self, content: Optional[str] = None, reasoning: Optional[str] = None,
              tool_calls: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
        """A delta as the era writes it: role on every one (README §3.1)."""
        delta: Dict[str, Any] = {"role": "assistant", "content": content}
        if self.v >= (0, 10):
            delta["reasoning_content"] = reasoning
            delta["gen_tokens"] = None
            delta["tool_calls"] = tool_calls if tool_calls is not None else ([] if self.v < (0, 13) else None)
        if self.v >= (0, 14):
            delta.pop("gen_tokens")
        return delta

    def chunk(self, body: Dict[str, Any], delta: Dict[str, Any], finish: Optional[str], index: int = 0,
              usage: Optional[Dict[str, Any]] = None, chat_id: str = "1",
              more: Sequence[Tuple[int, Dict[str, Any], Optional[str]]] = ()) -> bytes:
        """One chunk event; ``more``: further (index, delta, finish) choices in the same chunk (0.17+)."""
        parts = [(index, delta, finish), *more]
        doc: Dict[str, Any] = {"id": chat_id, "object": "chat.completion.chunk", "created": int(time.time()),
                               "model": self.server.model,
                               "choices": [{"index": i, "delta": d, "logprobs": None, "finish_reason": f}
                                           for i, d, f in parts],
                               "usage": usage}
        if self.v < (0, 14):
            return _event(_compact(doc))
        doc = _drop_none(doc)
        if self.include_usage(body):  # 0.14+: content chunks carry "usage": null when usage was asked for
            doc["usage"] = None
        return _event(_spaced(doc))

    @staticmethod
    def include_usage(body: Dict[str, Any]) -> bool:
        options = body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    def tool_deltas(self, choice: _Choice) -> List[Dict[str, Any]]:
        """The streamed tool-call deltas of the era (README §3.3)."""
        assert choice.tool is not None
        name, arguments = choice.tool
        whole = json.dumps(arguments, ensure_ascii=False)
        first = {"id": choice.tool_id, "type": "function", "index": 0,
                 "function": {"name": name, "arguments": None}}
        if self.v < (0, 13):  # every piece gets a fresh id; the pieces miss the closing `"}` [R 0.10.2]
            pieces = [{"id": _random_id("chatcmpl-tool-"), "type": "function", "index": 0,
                       "function": {"name": None, "arguments": p}} for p in split_text(whole[:-2], 3)]
            tail = {"id": _random_id("chatcmpl-tool-"), "type": "function", "index": 0,
                    "function": {"name": None, "arguments": ""}}
            return [first] + pieces + [tail]
        if self.v < (0, 14):
            return [first, {"id": choice.tool_id, "type": None, "index": 0,
                            "function": {"name": None, "arguments": whole}}]
        if self.v < (0, 18):
            return [first, {"index": 0, "function": {"arguments": whole}}]
        return [first] + [{"index": 0, "function": {"arguments": p}} for p in split_text(whole, 2)]

    def stream(self, body: Dict[str, Any], choices: List[_Choice], last: Optional[str] = "",
               completion_tokens: Optional[int] = None) -> List[Any]:
        """The events of a stream: content pieces, the finish chunk, usage where the era puts it."""
        include = self.include_usage(body)
        chat_id = self.chat_id()
        per_chunk = include and self.v < (0, 10)
        steps: List[List[Tuple[int, Dict[str, Any], Optional[str]]]] = []
        for index, choice in enumerate(choices):
            deltas: List[Dict[str, Any]] = []
            if choice.reasoning:
                deltas += [self.delta(reasoning=p) for p in split_text(choice.reasoning)]
            deltas += [self.delta(content=p) for p in choice.pieces]
            if choice.tool is not None:
                if self.v < (0, 13):
                    name = choice.tool[0]
                    deltas += [self.delta(content=p) for p in
                               ["<|action_start|>", "<|plugin|>", "\n", '{"name": "', name + '", ', '"parameters": ']]
                deltas += [self.delta(tool_calls=[t]) for t in self.tool_deltas(choice)]
            steps.append([(index, d, None) for d in deltas] + [(index, self.delta(content=last), choice.finish)])
        if len(steps) > 1:
            # 0.17+ fans out: the choices advance together, one chunk holding a piece of each (README §5).
            groups = [[s[k] for s in steps if k < len(s)] for k in range(max(len(s) for s in steps))]
        else:
            groups = [[part] for part in steps[0]]
        events: List[Any] = []
        produced = 0
        for number, group in enumerate(groups, 1):
            produced += len(group)
            final = number == len(groups)
            tokens = completion_tokens if (final and completion_tokens is not None) else produced
            usage = (self.usage(body, tokens) if per_chunk or (include and final and self.v < (0, 14)) else None)
            (index, delta, finish), *more = group
            events.append(self.chunk(body, delta, finish, index, usage, chat_id, more))
        if include and self.v >= (0, 14):
            tokens = completion_tokens if completion_tokens is not None else produced
            usage_doc = {"id": chat_id, "object": "chat.completion.chunk", "created": int(time.time()),
                         "model": self.server.model, "choices": [], "usage": self.usage(body, tokens)}
            events.append(_event(_compact(usage_doc)))
        return events

    # ----- /v1/completions

    def completions(self, body: Dict[str, Any], script: Optional[Engine]) -> Reply:
        """README §1: one choice per prompt, streamed chunks all say index 0, max_tokens 16 up to 0.14."""
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        limit = body.get("max_tokens") or (16 if self.v < (0, 15) else None)
        texts, finishes = [], []
        for prompt in prompts:
            words = (script.text if script and script.text is not None else f"echo: {prompt}").split(" ")
            cut = limit is not None and len(words) > limit
            texts.append(" ".join(words[:limit] if cut else words))
            finishes.append("length" if cut else "stop")
        tokens = sum(_words(t) for t in texts)
        usage = self.usage({"messages": [{"content": p} for p in prompts]}, tokens)
        chat_id, created = self.chat_id(), int(time.time())
        if script is not None and script.fail == "engine":
            return self.completions_failure(body, texts[0], chat_id, created)
        if body.get("stream") is not True:
            choices = [{"index": i, "text": t, "logprobs": None, "finish_reason": f}
                       for i, (t, f) in enumerate(zip(texts, finishes))]
            return Raw(_compact({"id": chat_id, "object": "text_completion", "created": created,
                                 "model": self.server.model, "choices": choices, "usage": usage}),
                       200, "application/json")
        events = []
        for text, finish in zip(texts, finishes):
            for piece, end in [(p, None) for p in split_text(text)] + [("", finish)]:
                doc = {"id": chat_id, "object": "text_completion", "created": created, "model": self.server.model,
                       "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": end}]}
                events.append(_event(_compact(doc) if self.v < (0, 14) else _spaced(_drop_none(doc))))
        return Stream(events)


    def completions_failure(self, body: Dict[str, Any], partial: str, chat_id: str, created: int) -> Reply:
        """An engine failure after ``partial`` in the era's form [I]: the completions handler
        reads the same engine as chat's (README §2.3), so the same shapes, text in ``text``."""
        stream = body.get("stream") is True

        def doc(text: Optional[str], finish: Optional[str]) -> bytes:
            obj = {"id": chat_id, "object": "text_completion", "created": created, "model": self.server.model,
                   "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}
            return _compact(obj) if self.v < (0, 14) else _spaced(_drop_none(obj))

        pieces = [_event(doc(p, None)) for p in split_text(partial)] if partial else []
        if self.v >= (0, 16):
            if not stream:
                return self.error(500, "An internal server error occurred.")
            error = {"message": "An internal server error occurred.", "type": "server_error", "code": 500,
                     "param": None, "object": "error"}
            return Stream(pieces + [_event(_compact({"error": error}))])
        if self.v >= (0, 10):
            if not stream:
                obj = json.loads(doc(partial + ENGINE_ERROR, "error"))
                return Raw(_compact(obj), 200, "application/json")
            return Stream(pieces + [_event(doc(ENGINE_ERROR, "error"))])
        if not stream:
            return Raw(b"Internal Server Error", 500, "text/plain; charset=utf-8")
        return Stream(pieces, cut=True)


class Gateway(_Profile):
    """The official gateway in front of LMDeploy (README §7). Much of it is inferred: the
    envelope comes from the same account system's public fixtures, the statuses are guesses."""

    def envelope(self, code: str, status: int) -> Reply:
        """``{"traceId","msgCode","msg","data","success","total"}``; status = ``envelope_status``
        when set (to test the HTTP 200 form), else ``status``."""
        doc = {"traceId": uuid.uuid4().hex[:12], "msgCode": code, "msg": GATEWAY_MESSAGES[code], "data": None,
               "success": False, "total": 0}
        chosen = self.server.envelope_status or status
        return Json(doc, chosen)

    def answer(self, req: Recorded, script: Optional[Engine]) -> Reply:
        keys = self.server.api_keys
        if keys:
            scheme, _, key = req.headers.get("authorization", "").partition(" ")
            if scheme != "Bearer" or key.strip() not in keys:
                return self.envelope("A0202", 401)
        if script is not None and script.fail == "token_expired":
            return self.envelope("A0211", 401)
        if req.method == "GET" and req.route == MODELS_PATH:
            created = int(time.time())
            return Json({"object": "list", "data": [{"id": m, "object": "model", "created": created,
                                                     "owned_by": "intern"} for m in MODELS]})
        if req.method != "POST" or req.route != CHAT_PATH:
            return html_error(404, "Not Found")  # [I]: a front proxy's page
        body = req.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return self.envelope("-20018", 400)
        if body.get("model") not in MODELS:
            return self.envelope("-20013", 400)
        unknown = tuple(sorted(set(body) - GATEWAY_FIELDS))
        stream = body.get("stream") is True
        thinking = body.get("thinking_mode") if isinstance(body.get("thinking_mode"), bool) else None
        self.server.seen.append(Seen(thinking, "thinking_mode" if thinking is not None else None, unknown, stream,
                                     body.get("n", 1) if isinstance(body.get("n"), int) else 1))
        if unknown or (stream and body.get("tools")):
            return self.envelope("-10002", 400)
        engine = script or Engine()
        if engine.fail == "rate_limit":
            return self.envelope("-20053", 429)
        if engine.fail == "engine":  # [I]: the LMDeploy flat error, as the seed's client expects
            error = {"object": "error", "message": ENGINE_ERROR, "code": 500}
            if stream:
                return Stream([{"id": "chatcmpl-gw", "object": "chat.completion.chunk", "model": body["model"],
                                "choices": [{"index": 0, "delta": {"role": "assistant", "content": p},
                                             "finish_reason": ""}], "moderation": dict(NO_MODERATION)}
                               for p in (split_text(engine.text) if engine.text else [])] + [error])
            return Json(error, 500)
        text = engine.text if engine.text is not None else f"echo: {last_user_text(body)}"
        n = body.get("n", 1) if isinstance(body.get("n"), int) else 1
        reasoning = engine.reasoning if thinking else None
        call = engine.tool_call if body.get("tools") and body.get("tool_choice") != "none" else None
        if stream:
            return Stream(self.stream(body, text, reasoning, n))
        choices = []
        for index in range(n):
            message: Dict[str, Any] = {"role": "assistant", "content": text if not call else ""}
            if reasoning is not None:
                message["reasoning_content"] = reasoning
            if call is not None:  # numeric-string ids, Python-literal arguments (the seed's examples)
                message["tool_calls"] = [{"id": str(97102 + index), "type": "function",
                                          "function": {"name": call[0], "arguments": repr(call[1])}}]
            choices.append({"index": index, "message": message,
                            "finish_reason": "tool_calls" if call else "stop"})
        prompt = _prompt_tokens(body)
        completion = _words(text) * n
        return Json({"id": _random_id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()),
                     "model": body["model"], "choices": choices, "moderation": dict(NO_MODERATION),
                     "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                               "total_tokens": prompt + completion}})

    def stream(self, body: Dict[str, Any], text: str, reasoning: Optional[str], n: int) -> List[Any]:
        """Chunks with ``finish_reason: ""`` until the end and ``moderation`` on each (README §7)."""
        chat_id, created = _random_id("chatcmpl-"), int(time.time())
        events: List[Any] = []
        for index in range(n):
            deltas = [{"role": "assistant", "reasoning_content": p} for p in split_text(reasoning)] if reasoning else []
            deltas += [{"role": "assistant", "content": p} for p in split_text(text)]
            for delta, finish in [(d, "") for d in deltas] + [({"role": "assistant", "content": ""}, "stop")]:
                events.append({"id": chat_id, "object": "chat.completion.chunk", "created": created,
                               "model": body["model"], "choices": [{"index": index, "delta": delta,
                                                                    "finish_reason": finish}],
                               "moderation": dict(NO_MODERATION)})
        return events
