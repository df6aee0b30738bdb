"""A scripted stand-in for LMDeploy 0.16+'s `AsyncEngine` (checked against 0.18.0's wheel).

Written from what its HTTP handlers call on `server_context.async_engine`: `model_name`,
`tokenizer.model.model.get_vocab()`, `arch`, `chat_template` (the Anthropic router probes it),
`backend_config` (`logprobs_mode`, `adapters`), `session_mgr` (LMDeploy's own `SessionManager`),
`epoch`, `is_sleeping`, `start_loop`, `close`, `health_probe`, and the two calls a chat request
makes: `await preprocess(messages, session, gen_config=..., chat_template_kwargs=..., ...)` and
`generate(preprocessed)`, an async generator of LMDeploy's own `GenOut`. Failures are raised as
LMDeploy's `RequestError`, as the real engine does. Everything in front of it — routing, the
API-key middleware, validation, the response parser, serialisation, the in-stream error event —
is the installed LMDeploy's code. What the model says: `script.py`.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, AsyncIterator, Dict, Optional

import script as scripts
from lmdeploy.serve.core.async_engine import GenOut, PreprocessedRequest
from lmdeploy.serve.core.exceptions import ErrorCode, RequestError
from lmdeploy.serve.managers import SessionManager


class FakeEngine:
    """The pipeline class `serve()` builds (it calls it with the model path and its options)."""

    def __init__(self, model_path: str, model_name: Optional[str] = None, backend: str = "pytorch",
                 backend_config: Any = None, **kwargs: Any) -> None:
        self.model_name = model_name or model_path
        self.arch = "InternLM2ForCausalLM"
        self.session_len = scripts.SESSION_LEN
        # The Anthropic router probes the chat template at start-up; no template: it copes.
        self.chat_template = None
        # What the chat and models routes read: no LoRA adapters, logprobs not enabled.
        self.backend_config = SimpleNamespace(adapters=None, logprobs_mode=None)
        self.tokenizer = SimpleNamespace(model=scripts.FakeTokenizer())
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
        """Check the prompt length as the real preprocess does (before generation, so an overflow
        is an HTTP 400 even for a stream) and keep the script for `generate`."""
        session = session_id
        script = scripts.read(messages)
        input_len = scripts.prompt_tokens(messages, script)
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
        """Yield the script's pieces, then the final empty piece with its finish reason (stop, or
        length when `max_tokens` ran out) — or raise the engine failure, as the real generate does
        for an engine status that is not SUCCESS/FINISH/CANCEL."""
        request.consumed = True
        script = request.inputs["script"]
        limit = getattr(request.gen_config, "max_new_tokens", None) or scripts.SESSION_LEN
        finish = "stop"
        generated = 0
        try:
            for piece in scripts.pieces(script):
                if generated >= limit:
                    finish = "length"
                    break
                generated += 1
                yield GenOut(piece, request.input_token_len, generated, None, token_ids=scripts.token_ids(piece))
            if script.get("fail") == "engine":
                raise RequestError(ErrorCode.INTERNAL_ERROR)
            yield GenOut("", request.input_token_len, generated, finish, token_ids=[])
        finally:
            self.session_mgr.remove(request.session)
