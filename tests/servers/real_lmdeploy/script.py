"""What the fake model says, decided by the last user message (or a text completion's prompt):
shared by the fake engines of every LMDeploy era (`fake_engine.py` 0.16+, `fake_engine_012.py`
0.12.x). Pure Python: it imports nothing from LMDeploy, so one file serves every release.

A JSON object as the last user message is a script, anything else is echoed back:

    {"text": "hello"}                      the answer
    {"reasoning": "hmm", "text": "answer"} thinking first: `<think>hmm</think>answer`, which the
                                           server's `--reasoning-parser` splits off
    {"text": "Let me check.",              the text, then a tool call in internlm2's markup
     "tool_call": {"name": "f",             (`<|action_start|><|plugin|>{json}<|action_end|>`),
                   "arguments": {...}}}     which the server's `--tool-call-parser internlm` parses
    {"text": "partial ", "fail": "engine"} some text, then the engine fails (each era reports it
                                           its own way)
    {"fail": "context"}                    the prompt is longer than the context
    {"echo": "chat_template_kwargs"}       answer with what the server passed on, as JSON
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

# The fake context: small, so a "context" script is an honest over-long prompt, not a flag.
SESSION_LEN = 4096
# Text is cut into pieces of this many characters, one "token" each, as an engine streams them.
PIECE = 3
# The reasoning parsers check their tags are single tokens of the vocabulary; internlm2's tool
# markup tags are special tokens too.
VOCAB = {"<think>": 1, "</think>": 2, "<|action_start|>": 3, "<|plugin|>": 4, "<|action_end|>": 5}
_FIRST_TEXT_ID = 100


class FakeTokenizer:
    """Both tokenizers LMDeploy hands to its parsers: its own wrapper (0.12 passes
    `async_engine.tokenizer`) and the Hugging Face one behind it (0.16+ passes
    `tokenizer.model.model`); all they read is the vocabulary."""

    def __init__(self) -> None:
        self.model = self
        self.eos_token_id = 0

    def get_vocab(self) -> Dict[str, int]:
        """The special tokens the parsers look up; text pieces are not in it."""
        return dict(VOCAB)


def last_user_text(messages: Any) -> str:
    """The text of the last user message (string or content parts); a string is the prompt of a
    text completion (`/v1/completions` hands it to the engine as it is)."""
    if isinstance(messages, str):
        return messages
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


def read(messages: Any) -> Dict[str, Any]:
    """The script in the last user message, or an echo of it."""
    text = last_user_text(messages)
    try:
        script = json.loads(text)
    except ValueError:
        script = None
    return script if isinstance(script, dict) else {"text": text}


def prompt_tokens(messages: Any, script: Dict[str, Any]) -> int:
    """One "token" per character of the conversation; a "context" script overflows the context."""
    length = sum(len(json.dumps(m)) for m in messages if isinstance(messages, list)) if messages else 0
    return SESSION_LEN + length if script.get("fail") == "context" else length


def _cut(text: str) -> List[str]:
    return [text[i:i + PIECE] for i in range(0, len(text), PIECE)]


def pieces(script: Dict[str, Any]) -> List[str]:
    """The model's output, one piece per "token": the reasoning and the tool markup tags are
    single tokens, as in the model's vocabulary."""
    out = _cut(str(script.get("text", "")))
    if script.get("reasoning") is not None:
        out = ["<think>", *_cut(str(script["reasoning"])), "</think>", *out]
    call = script.get("tool_call")
    if isinstance(call, dict):
        payload = json.dumps({"name": call.get("name"), "parameters": call.get("arguments", {})}, ensure_ascii=False)
        out += ["<|action_start|>", "<|plugin|>", *_cut(payload), "<|action_end|>"]
    return out


def token_ids(piece: str) -> List[int]:
    """The ids of one piece: the vocabulary's for a tag, a plain text id otherwise."""
    return [VOCAB.get(piece, _FIRST_TEXT_ID)]
