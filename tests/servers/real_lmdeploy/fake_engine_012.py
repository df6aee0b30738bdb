"""A scripted stand-in for LMDeploy 0.12.x's `AsyncEngine` (checked against 0.12.3's wheel).

0.12's handlers use the engine through `VariableInterface.async_engine`: `model_name`, `arch`,
`tokenizer` (its parsers get the tokenizer itself and call `get_vocab()`), `backend_config`
(`logprobs_mode`, `adapters`), `session_mgr` (LMDeploy's own), `engine`, `start_loop`, `close`,
and one call per chat request: `generate(messages, session, gen_config=..., chat_template_kwargs=...,
...)`, an async generator of that era's `GenOut(response, history_token_len, input_token_len,
generate_token_len, finish_reason, token_ids=...)`. This era has no error path through HTTP: an
engine failure is one more `GenOut` with `finish_reason="error"` and the text
`internal error happened, status code ResponseType.INTERNAL_ENGINE_ERROR`, and a prompt that leaves
no room for new tokens (no `max_tokens`) an empty `GenOut` with `finish_reason="length"` — both
HTTP 200, as the real `generate` yields them. What the model says: `script.py`.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, AsyncIterator, Optional

import script as scripts
from lmdeploy.messages import ResponseType
from lmdeploy.serve.core.async_engine import GenOut
from lmdeploy.serve.managers import SessionManager


class FakeEngine:
    """The pipeline class 0.12's `serve()` builds."""

    def __init__(self, model_path: str, model_name: Optional[str] = None, backend: str = "pytorch",
                 backend_config: Any = None, **kwargs: Any) -> None:
        self.model_name = model_name or model_path
        self.arch = "InternLM2ForCausalLM"
        self.session_len = scripts.SESSION_LEN
        # What the chat and models routes read: no LoRA adapters, logprobs not enabled.
        self.backend_config = SimpleNamespace(adapters=None, logprobs_mode=None)
        self.tokenizer = scripts.FakeTokenizer()
        self.session_mgr = SessionManager()
        self.engine = SimpleNamespace(is_dummy=True)

    def start_loop(self, loop: Any, use_async_api: bool = False) -> None:
        """The real one starts the engine's loop; there is none."""
        self.session_mgr.attach_event_loop(loop)

    def close(self) -> None:
        """Forget every session, as the real one does on shutdown."""
        self.session_mgr.clear()

    async def generate(self, messages: Any, session: Any, gen_config: Any = None, tools: Any = None,
                       chat_template_kwargs: Any = None, **kwargs: Any) -> AsyncIterator[GenOut]:
        """Yield the script's pieces and a final empty piece with its finish reason, or the era's
        in-band failures."""
        script = scripts.read(messages)
        input_len = scripts.prompt_tokens(messages, script)
        if script.get("echo"):
            seen = {"chat_template_kwargs": chat_template_kwargs, "tools": tools}
            script = {"text": json.dumps(seen.get(script["echo"]), sort_keys=True)}
        max_new = getattr(gen_config, "max_new_tokens", None)
        try:
            if max_new is None and input_len >= self.session_len:
                # The real engine: max_new_tokens = session_len - prompt, 0 → "run out of tokens".
                yield GenOut("", 0, input_len, 0, "length", token_ids=[])
                return
            generated = 0
            for piece in scripts.pieces(script):
                if max_new is not None and generated >= max_new:
                    yield GenOut("", 0, input_len, generated, "length", token_ids=[])
                    return
                generated += 1
                yield GenOut(piece, 0, input_len, generated, None, token_ids=scripts.token_ids(piece))
            if script.get("fail") == "engine":
                yield GenOut(f"internal error happened, status code {ResponseType.INTERNAL_ENGINE_ERROR}", 0,
                             input_len, 0, "error", token_ids=[])
                return
            yield GenOut("", 0, input_len, generated, "stop", token_ids=[])
        finally:
            self.session_mgr.remove(session)
