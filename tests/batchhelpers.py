"""Helpers for the ``chat batch`` tests (a helper module: it holds no tests): input lines in
the OpenAI batch format, and the rows of an output file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List


def request_line(custom_id: str, text: str, **body: Any) -> str:
    """One input line: a chat completion with one user message, and ``body``'s other fields."""
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                       "body": {"messages": [{"role": "user", "content": text}], **body}})


def write_input(folder: Path, count: int = 5, name: str = "in.jsonl") -> Path:
    """An input file of ``count`` requests, custom_ids r0, r1, ..."""
    path = folder / name
    path.write_text("".join(request_line("r{}".format(i), "hello {}".format(i)) + "\n" for i in range(count)))
    return path


def rows(path: Path) -> List[Dict[str, Any]]:
    """The rows of an output file."""
    return [json.loads(line) for line in path.read_text().splitlines()]
