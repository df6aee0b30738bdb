"""Tool specs: load a YAML spec, validate it with JSON Schema, and report every problem
with its line number."""

from __future__ import annotations

import dataclasses
import string
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

from interncli.errors import UsageError

NAME_PATTERN = "^[A-Za-z0-9_-]{1,64}$"

SPEC_SCHEMA: Dict[str, Any] = {
    "type": "object",
    "required": ["tools"],
    "additionalProperties": False,
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "system": {"type": "string"},
        "max_turns": {"type": "integer", "minimum": 1},
        "tools": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "command"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": NAME_PATTERN},
                    "description": {"type": "string"},
                    "parameters": {"type": "object"},
                    "command": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                    "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
                },
            },
        },
    },
}


@dataclasses.dataclass
class Problem:
    """One thing wrong with a spec, and where."""

    line: Optional[int]
    message: str

    def __str__(self) -> str:
        return "line {}: {}".format(self.line, self.message) if self.line else self.message


class SpecError(UsageError):
    """A spec with problems; the message lists all of them."""

    def __init__(self, path: str, problems: Sequence[Problem]) -> None:
        lines = "; ".join(str(p) for p in problems)
        super().__init__("{}: {} problem{}: {}".format(path, len(problems), "" if len(problems) == 1 else "s", lines),
                         hint="Fix the spec: see the Tools section of the README for its format.")
        self.problems = list(problems)


def _line_of(node: Any, path: Sequence[Any], key_of: Optional[str] = None) -> Optional[int]:
    """The 1-based line of the YAML node at ``path`` (or of its nearest ancestor); with
    ``key_of``, the line of that key in the mapping at ``path``."""
    import yaml

    for key in list(path) + ([key_of] if key_of is not None else []):
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == key]
            if not match:
                break
            node = match[0][0] if key is key_of and key_of is not None else match[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node.start_mark.line + 1 if node is not None else None


# Programs that run their -c/-e argument as code: a placeholder there would be a value from the
# model interpreted as a program, which is exactly what specs must not allow.
INTERPRETERS = {"sh", "bash", "dash", "zsh", "ksh", "fish", "python", "python3", "perl", "ruby", "node",
                "php", "lua", "Rscript", "pwsh", "powershell", "cmd", "env", "xargs"}


def placeholders(argument: str) -> List[str]:
    """The ``{name}`` placeholders in one argv element; ValueError for unbalanced braces or a
    placeholder with a conversion or format (``{a!r}``, ``{a:>5}``), which are not supported."""
    fields = []
    try:
        parsed = list(string.Formatter().parse(argument))
    except ValueError:
        raise ValueError("unbalanced brace: write {{ and }} for literal braces") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if spec or conversion:
            raise ValueError("{{{}}} has a conversion or format, which is not supported".format(field))
        fields.append(field)
    return fields


def _command_problems(command: List[Any], declared: Set[str], line_of: Callable[[int], Optional[int]]
                      ) -> List[Problem]:
    """What is wrong with one tool's argv: unknown or malformed placeholders, a placeholder that
    would choose the program, or one inside code that an interpreter runs."""
    problems = []
    program = command[0].rsplit("/", 1)[-1] if command and isinstance(command[0], str) else ""
    for j, argument in enumerate(command):
        if not isinstance(argument, str):
            continue
        try:
            fields = placeholders(argument)
        except ValueError as exc:
            problems.append(Problem(line_of(j), "{!r}: {}".format(argument, exc)))
            continue
        for field in fields:
            if field not in declared:
                problems.append(Problem(line_of(j), "placeholder {{{}}} names no declared parameter".format(field)))
        if fields and j == 0:
            problems.append(Problem(line_of(j), "the program cannot be a placeholder: the model would "
                                                "choose what runs"))
        elif fields and program in INTERPRETERS:
            problems.append(Problem(line_of(j), "placeholders cannot be given to {}, which may run them as "
                                                "code; let a script read the arguments from stdin (JSON) "
                                                "instead".format(program)))
    return problems


def _schema_problems(error: Any, root: Any) -> List[Problem]:
    """One problem per schema error; an unknown key is placed on its own line."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        return [Problem(_line_of(root, path, key_of=key), "{}unknown key {!r}; valid keys: {}".format(
                    ".".join(str(p) for p in path) + ": " if path else "", key, ", ".join(sorted(known))))
                for key in error.instance if key not in known]
    return [Problem(_line_of(root, path), _describe(error))]


def check_spec(data: Any, root: Any) -> List[Problem]:
    """Every problem of a parsed spec, in file order."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(SPEC_SCHEMA)
    problems = [p for e in validator.iter_errors(data) for p in _schema_problems(e, root)]
    tools = data.get("tools") if isinstance(data, dict) else None
    seen: Dict[str, int] = {}
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        if not isinstance(tool, dict):
            continue
        name = tool.get("name")
        if isinstance(name, str):
            if name in seen:
                problems.append(Problem(_line_of(root, ["tools", i, "name"]),
                                        "tool name {!r} is used twice (first at tool {})".format(name, seen[name] + 1)))
            seen.setdefault(name, i)
        params = tool.get("parameters", {"type": "object", "properties": {}})
        if isinstance(params, dict):
            meta = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA,
                                                   format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
            found = [Problem(_line_of(root, ["tools", i, "parameters"] + list(err.absolute_path)),
                             "parameters is not a valid JSON Schema: " + err.message)
                     for err in meta.iter_errors(params)]
            if not found and params.get("type") != "object":
                found.append(Problem(_line_of(root, ["tools", i, "parameters"]),
                                     "parameters must describe an object (type: object): the arguments are one"))
            if not found:
                found = [Problem(_line_of(root, ["tools", i, "parameters"]), "parameters cannot be used: " + why)
                         for why in _ref_problems(params, params)]
            problems += found
        properties = params.get("properties") if isinstance(params, dict) else None
        declared = set(properties) if isinstance(properties, dict) else set()
        command = tool.get("command")
        if isinstance(command, list):
            def line_of(j: int, i: int = i) -> Optional[int]:
                return _line_of(root, ["tools", i, "command", j])

            problems += _command_problems(command, declared, line_of)
    unique = {(p.line, p.message): p for p in problems}  # one report of each, however often found
    return sorted(unique.values(), key=lambda p: p.line or 0)


def _ref_problems(node: Any, schema: Dict[str, Any]) -> List[str]:
    """Every ``$ref`` that does not point inside the schema itself: a remote one would be
    fetched while checking a model's arguments, a broken one would fail only then."""
    problems = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#"):
                problems.append("$ref {!r} is not inside the schema (only '#/...' references are allowed)".format(ref))
            elif not _pointer_resolves(schema, ref[1:]):
                problems.append("$ref {!r} points to nothing".format(ref))
        for value in node.values():
            problems += _ref_problems(value, schema)
    elif isinstance(node, list):
        for value in node:
            problems += _ref_problems(value, schema)
    return problems


def _pointer_resolves(document: Any, pointer: str) -> bool:
    """Whether a JSON pointer (RFC 6901) names something in ``document``."""
    from urllib.parse import unquote

    for raw in unquote(pointer).split("/")[1:] if pointer else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(document, dict) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return False
    return True


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    return "{}: {}".format(where, error.message) if where else error.message


def load_spec(path: str) -> Dict[str, Any]:
    """A validated spec; every problem found is raised at once as a SpecError."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError("cannot read tools spec {}: {}".format(path, getattr(exc, "strerror", None) or exc),
                         hint="Check the path.") from exc
    loader = yaml.SafeLoader(text)
    try:
        # One parse: the node tree gives line numbers, the same tree gives the data.
        root = loader.get_single_node()
        data: Any = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(path, [Problem(mark.line + 1 if mark else None, "not valid YAML: " + problem)]) from exc
    finally:
        loader.dispose()
    if data is None:
        raise SpecError(path, [Problem(None, "the spec is empty: it needs a 'tools' list")])
    problems = check_spec(data, root)
    if problems:
        raise SpecError(path, problems)
    return data


def api_tools(spec: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The spec's tools as the API's ``tools`` list."""
    tools = []
    for tool in spec["tools"]:
        function: Dict[str, Any] = {"name": tool["name"]}
        if "description" in tool:
            function["description"] = tool["description"]
        function["parameters"] = tool.get("parameters", {"type": "object", "properties": {}})
        tools.append({"type": "function", "function": function})
    return tools
