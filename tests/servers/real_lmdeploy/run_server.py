"""Start LMDeploy's own `api_server` (its real `serve()`) with the fake engine, on 127.0.0.1.

    python run_server.py --model-name internlm2_5-7b-chat --api-keys sk-a sk-b \
        [--reasoning-parser default] [--tool-call-parser internlm] [--server-port 0]

Run with the LMDeploy venv's interpreter (see `tests/test_real_lmdeploy.py`). The flags are named
as `lmdeploy serve api_server`'s. Everything `serve()` does is LMDeploy's — parser set-up, the
FastAPI app, its routers, the validation handler, CORS, the API-key and sleeping middlewares,
uvicorn — except building the engine: `get_task` is made to hand back `FakeEngine` instead of
loading a model. With `--server-port 0` uvicorn picks a free port and logs it
("Uvicorn running on http://127.0.0.1:PORT"), which the test reads.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stubs  # noqa: E402  (must run before anything imports lmdeploy)

stubs.install()

from importlib.metadata import version  # noqa: E402

from lmdeploy.serve.openai import api_server  # noqa: E402

# The engine interface changed in 0.16 (preprocess + generate, errors raised); 0.12 – 0.15 had
# one generate(messages, session, ...) with errors yielded in band.
RELEASE = tuple(int(part) for part in version("lmdeploy").split(".")[:2])
if RELEASE >= (0, 16):
    from fake_engine import FakeEngine  # noqa: E402
else:
    from fake_engine_012 import FakeEngine  # noqa: E402


def _fake_task(backend: str, model_path: str, **kwargs: Any) -> Tuple[str, type]:
    """In place of `lmdeploy.archs.get_task`: the task name and the pipeline class to build."""
    return "llm", FakeEngine


def main(argv: Optional[List[str]] = None) -> None:
    """Parse `lmdeploy serve api_server`-style flags and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", default="internlm2_5-7b-chat")
    parser.add_argument("--server-port", type=int, default=0)
    parser.add_argument("--api-keys", nargs="*", default=None)
    parser.add_argument("--reasoning-parser", default=None)
    parser.add_argument("--tool-call-parser", default=None)
    args = parser.parse_args(argv)
    api_server.get_task = _fake_task
    os.environ.setdefault("UVICORN_LOG_LEVEL", "info")
    api_server.serve(
        model_path=f"/models/{args.model_name}", model_name=args.model_name, backend="pytorch",
        server_name="127.0.0.1", server_port=args.server_port, api_keys=args.api_keys,
        reasoning_parser=args.reasoning_parser, tool_call_parser=args.tool_call_parser,
        # 0.18: 'auto' would read the model directory's generation_config.json, and there is no
        # model; releases without the option pass it on to the engine, which ignores it.
        generation_config="lmdeploy", log_level="WARNING")


if __name__ == "__main__":
    main()
