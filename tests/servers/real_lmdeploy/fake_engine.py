"""A scripted stand-in for LMDeploy's `AsyncEngine` (the object behind `lmdeploy serve api_server`).

Written for LMDeploy 0.16+ (checked against 0.18.0's wheel), from what its HTTP handlers call on
`server_context.async_engine`: `model_name`, `tokenizer.model.model.get_vocab()`, `arch`, `chat_template`,
`backend_config` (`logprobs_mode`, `adapters`), `session_mgr` (LMDeploy's own `SessionManager`),
`epoch`, `is_sleeping`, `start_loop`, `close`, `health_probe`, and the two calls a chat request
makes: `await preprocess(messages, session, gen_config=..., chat_template_kwargs=..., ...)` and
`generate(preprocessed)`, an async generator of LMDeploy's own `GenOut`. Everything in front of
it — routing, the API-key middleware, validation, the response parser, serialisation, the
in-stream error event — is the installed LMDeploy's code.

What the fake model says is decided by the last user message, so a test needs no side channel:
a JSON object there is a script, anything else is echoed back.

    {"text": "hello"}                      the answer
    {"reasoning": "hmm", "text": "answer"} thinking first: `<think>hmm</think>answer`, which the
                                           server's `--reasoning-parser` splits off
    {"text": "partial ", "fail": "engine"} some text, then the engine fails (RequestError
                                           INTERNAL_ERROR, as the real engine raises for an
                                           engine status that is not SUCCESS/FINISH/CANCEL)
    {"fail": "context"}                    the prompt is longer than the context: raised by
                                           preprocess, before generation, as the real one does
    {"text": "Let me check.",              the text, then a tool call in internlm2's markup
     "tool_call": {"name": "f",             (`<|action_start|><|plugin|>{json}<|action_end|>`),
                   "arguments": {...}}}     which the server's `--tool-call-parser internlm` parses
    {"echo": "chat_template_kwargs"}       answer with what the server passed on, as JSON
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, AsyncIterator, Dict, List, Optional

from lmdeploy.serve.core.async_engine import GenOut, PreprocessedRequest
from lmdeploy.serve.core.exceptions import ErrorCode, RequestError
from lmdeploy.serve.managers import SessionManager

# The fake context: small, so a "context" script is an honest over-long prompt, not a flag.
SESSION_LEN = 4096
# Text is cut into pieces of this many characters, one "token" each, as an engine streams them.
PIECE = 3
# The reasoning parser checks at start-up that its tags are single tokens of the vocabulary;
# internlm2's tool markup tags are special tokens too.
VOCAB = {"<think>": 1, "</think>": 2, "<|action_start|>": 3, "<|plugin|>": 4, "<|action_end|>": 5}
_FIRST_TEXT_ID = 100


class _HFTokenizer:
    """What the response parser reads from the Hugging Face tokenizer: the vocabulary."""

    def get_vocab(self) -> Dict[str, int]:
        """The special tokens the reasoning parser looks up; text pieces are not in it."""
        return dict(VOCAB)


def _last_user_text(messages: Any) -> str:
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


def _script(messages: Any) -> Dict[str, Any]:
    text = _last_user_text(messages)
    try:
        script = json.loads(text)
    except ValueError:
        script = None
    return script if isinstance(script, dict) else {"text": text}


def _pieces(text: str) -> List[str]:
    return [text[i:i + PIECE] for i in range(0, len(text), PIECE)]


def _ids(piece: str) -> List[int]:
    return [VOCAB.get(piece, _FIRST_TEXT_ID)]


class FakeEngine:
    """The pipeline class `serve()` builds (it calls it with the model path and its options)."""

    def __init__(self, model_path: str, model_name: Optional[str] = None, backend: str = "pytorch",
                 backend_config: Any = None, **kwargs: Any) -> None:
        self.model_name = model_name or model_path
        self.backend = backend
        self.arch = "InternLM2ForCausalLM"
        self.session_len = SESSION_LEN
        # The Anthropic router probes the chat template at start-up; no template: it copes.
        self.chat_template = None
        self.backend_config = SimpleNamespace(session_len=SESSION_LEN, adapters=None, logprobs_mode=None,
                                              max_batch_size=8, enable_prefix_caching=False,
                                              enable_metrics=False)
        self.tokenizer = SimpleNamespace(model=SimpleNamespace(model=_HFTokenizer()))
        self.session_mgr = SessionManager()
        self.epoch = 0
        self.is_sleeping = False
        # `register_to_proxy` reads this; no proxy is configured here.
        self.engine = SimpleNamespace(is_dummy=True)

    def start_loop(self, loop: Any, use_async_api: bool = False) -> None:
        """The real one starts the engine's loop; there is none."""
        self.session_mgr.attach_event_loop(loop)

    def close(self) -> None:
        """Forget every session, as the real one does on shutdown."""
        self.session_mgr.clear()

    async def health_probe(self, scheduler_stall_timeout: float) -> Dict[str, str]:
        """Always healthy: `/health` is not what these tests are about."""
        return {"status": "healthy", "message": "Engine is healthy."}

    async def preprocess(self, messages: Any, session_id: Any, gen_config: Any = None, tools: Any = None,
                         chat_template_kwargs: Optional[Dict[str, Any]] = None, **kwargs: Any
                         ) -> PreprocessedRequest:
        """Check the request as the real preprocess does and keep the script for `generate`."""
        session = session_id
        script = _script(messages)
        # One "token" per character of the conversation: enough to make "context" a real overflow.
        input_len = sum(len(json.dumps(m)) for m in messages or [])
        if script.get("fail") == "context":
            input_len = SESSION_LEN + input_len
        if input_len >= self.session_len:
            self.session_mgr.remove(session)
            raise RequestError(ErrorCode.CONTEXT_LENGTH_EXCEEDED,
                               f"Input length ({input_len}) must be smaller than the model context length "
                               f"({self.session_len}).")
        if script.get("echo"):
            seen = {"chat_template_kwargs": chat_template_kwargs, "tools": tools,
                    "max_new_tokens": getattr(gen_config, "max_new_tokens", None)}
            script = {"text": json.dumps(seen.get(script["echo"]), sort_keys=True)}
        inputs = {"input_ids": list(range(input_len)), "script": script}
        return PreprocessedRequest(session=session, inputs=inputs, input_token_len=input_len,
                                   gen_config=gen_config, adapter_name=kwargs.get("adapter_name"))

    async def generate(self, request: PreprocessedRequest, stream_response: bool = True) -> AsyncIterator[GenOut]:
        """Yield the script's text piece by piece, then the final empty piece with its finish reason
        (stop, or length when `max_tokens` ran out) — or raise the script's failure."""
        request.consumed = True
        script = request.inputs["script"]
        pieces = _pieces(str(script.get("text", "")))
        if script.get("reasoning") is not None:
            # Each tag is one token of its own, as in a reasoning model's vocabulary.
            pieces = ["<think>", *_pieces(str(script["reasoning"])), "</think>", *pieces]
        call = script.get("tool_call")
        if isinstance(call, dict):
            payload = json.dumps({"name": call.get("name"), "parameters": call.get("arguments", {})},
                                 ensure_ascii=False)
            pieces += ["<|action_start|>", "<|plugin|>", *_pieces(payload), "<|action_end|>"]
        limit = getattr(request.gen_config, "max_new_tokens", None) or SESSION_LEN
        finish = "stop"
        generated = 0
        try:
            for piece in pieces:
                if generated >= limit:
                    finish = "length"
                    break
                generated += 1
                yield GenOut(piece, request.input_token_len, generated, None, token_ids=_ids(piece))
            if script.get("fail") == "engine":
                raise RequestError(ErrorCode.INTERNAL_ERROR)
            yield GenOut("", request.input_token_len, generated, finish, token_ids=[])
        finally:
            self.session_mgr.remove(request.session)

