#!/usr/bin/env bash
# Make .venv-lmdeploy: LMDeploy's HTTP layer from PyPI for tests/test_real_lmdeploy.py, in a venv
# of its own so its pins (fastapi, pydantic, openai) never touch interncli's test venv.
# `--no-deps` for lmdeploy itself: its declared dependencies are torch, transformers, triton,
# CUDA libraries (gigabytes); stubs.py stands in for those. The list below is the pure-Python
# set its server modules import; found by importing api_server until nothing was missing.
set -euo pipefail
cd "$(dirname "$0")/../../.."
venv=${1:-.venv-lmdeploy}
release=${2:-0.18.0}
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('lmdeploy') != '$release')" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q -c tests/servers/real_lmdeploy/constraints.txt fastapi uvicorn pydantic shortuuid partial_json_parser mmengine-lite fire \
  numpy tqdm packaging psutil pillow requests pybase64 openai
# Last, so pip has no installed lmdeploy whose (stubbed) dependencies it would report missing.
"$venv/bin/pip" install -q --no-deps "lmdeploy==$release"
