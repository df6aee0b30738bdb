"""Helpers for the tool tests (test_tools, test_toolrun, test_tools_hardening, test_attack_tools,
test_commandcheck): specs written to a folder, the scripted replies that call tools, what the
test server was sent, and what the echoing test tool ran. Holds no tests."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from tests.apiserver import Completion
from tests.conftest import invoke

TOOLS = Path(__file__).resolve().parent / "tools"
ECHO = str(TOOLS / "echo_argv.py")
WEATHER_PARAMS = {
    "type": "object",
    "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["location"],
}


@contextlib.contextmanager
def recursion_room(frames: int) -> Iterator[int]:
    """Python's recursion limit set to the stack's depth here plus ``frames``, and put back
    after: input nested ``frames`` levels deep then goes past the limit wherever it is read
    below, as input as deep as the default limit (1000) would, at a cost that grows with
    ``frames`` (PyYAML scans the openings of nested flow sequences in quadratic time: 1000
    levels cost a second, 300 a tenth of that)."""
    depth = 0
    frame: Any = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + frames)
    try:
        yield frames
    finally:
        sys.setrecursionlimit(saved)


def write_spec(folder: Path, tools: Sequence[Dict[str, Any]], name: str = "spec.yaml", **top: Any) -> Path:
    """A spec file (JSON is YAML) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(dict(top, tools=list(tools)), indent=2), encoding="utf-8")
    return path


def weather_tool(command: Optional[List[str]] = None, **extra: Any) -> Dict[str, Any]:
    """The seed's get_current_weather, run by the echoing test tool unless told otherwise."""
    tool = {"name": "get_current_weather", "description": "Get the current weather in a given location",
            "parameters": WEATHER_PARAMS, "command": command or [ECHO, "--city", "{location}"]}
    tool.update(extra)
    return tool


def tool_calls_reply(*calls: Tuple[str, str, str], content: str = "get_current_weather") -> Completion:
    return Completion(content=content, tool_calls=list(calls))


def chat_bodies(api: Any) -> List[Dict[str, Any]]:
    return [r.json for r in api.calls()]


def tool_messages(body: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [m for m in body["messages"] if m.get("role") == "tool"]


def ran(folder: Path) -> List[List[str]]:
    """The argv of every run of the echoing tool whose working directory was ``folder``."""
    log = folder / "ran.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_calls(cli, api, tmp_path: Path, tools: List[Dict[str, Any]], calls: Sequence[Any], *flags: str,
              final: str = "final answer", env: Optional[Dict[str, str]] = None):
    """One reply with ``calls``, then a final answer; the result and the tool messages sent back."""
    spec = write_spec(tmp_path, tools)
    api.add(tool_calls_reply(*calls))
    api.add(Completion(final))
    result = cli("tools", "run", str(spec), *flags, "go", env=env)
    bodies = chat_bodies(api)
    return result, tool_messages(bodies[1]) if len(bodies) > 1 else []


def assert_command_refuses(command: List[str], refused: List[int]) -> None:
    """The check of a tool's argv (placeholders, then commandcheck) accepts ``command`` if
    ``refused`` is empty, else refuses exactly the elements it lists (by index), one problem
    each. The tables of several hundred rows check here, below the command line and the spec's
    JSON Schema checks, which are the same for every row and cost ~6 ms of each one's 7;
    ``assert_validate_refuses`` runs a row through `tools validate` end to end."""
    from interncli.toolspec import _command_problems

    problems = _command_problems(list(command), {"x"}, lambda j: j)
    assert sorted(p.line for p in problems if p.line is not None) == sorted(refused), (command, problems)
    assert len(problems) == len(refused), (command, problems)


def assert_validate_refuses(tmp_path: Path, command: List[str], refused: List[int]) -> None:
    """``tools validate`` accepts ``command`` if ``refused`` is empty, else refuses exactly the
    elements it lists (by index), each on its own line."""
    spec = _spec(tmp_path, command)
    result = invoke(["tools", "validate", str(spec)])
    if not refused:
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""
        return
    assert result.exit_code == 2, "accepted: {}".format(command)
    assert result.stdout == ""
    assert sorted(_refused_lines(result.stderr, spec)) == [5 + j for j in refused], result.stderr
    assert "Traceback" not in result.stderr


def _spec(tmp_path, command: Sequence[str]):
    """A spec with the command one element a line: element j is on line 5 + j."""
    path = tmp_path / "spec.yaml"
    lines = ["tools:", "  - name: t",
             "    parameters: " + json.dumps({"type": "object", "properties": {"x": {"type": "string"}}}),
             "    command:"] + ["      - " + json.dumps(element) for element in command]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _refused_lines(stderr: str, spec) -> List[int]:
    prefix = "{}:".format(spec)
    lines = []
    for line in stderr.splitlines():
        assert line.startswith(prefix), line
        lines.append(int(line[len(prefix):].split(":", 1)[0]))
    return lines
