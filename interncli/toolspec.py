"""Tool specs: load a YAML spec, validate it with JSON Schema, and report every problem
with its line number."""

from __future__ import annotations

import dataclasses
import string
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from interncli.errors import UsageError
from interncli.timelimit import TooSlow, time_limit

# The longest a spec's parameters schema may take to check when it is loaded.
CHECK_TIME_LIMIT = 5.0

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
    """What is wrong with one tool's argv: unknown or malformed placeholders, and (through
    commandcheck) a placeholder that would be read as the program or as code."""
    from interncli import commandcheck

    problems = []
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
    if all(isinstance(a, str) for a in command):
        problems += [Problem(line_of(j), message)
                     for j, message in commandcheck.command_problems(command, _has_placeholder)]
    return problems


def _has_placeholder(argument: str) -> bool:
    try:
        return bool(placeholders(argument))
    except ValueError:  # reported on its own as malformed
        return "{" in argument


def _schema_problems(error: Any, root: Any) -> List[Problem]:
    """One problem per schema error; an unknown key is placed on its own line."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        return [Problem(_line_of(root, path, key_of=key), "{}unknown key {!r}; valid keys: {}".format(
                    ".".join(str(p) for p in path) + ": " if path else "", key, ", ".join(sorted(known))))
                for key in error.instance if key not in known]
    return [Problem(_line_of(root, path), _describe(error))]


MAX_DEPTH = 64  # levels of nesting in a spec: the checks below recurse once per level
MAX_VALUES = 100000  # values in a spec, YAML aliases expanded (a "billion laughs" file has 10**9)


def _too_deep(data: Any, root: Any) -> Optional[Problem]:
    """A problem at the first value nested deeper than MAX_DEPTH, or when aliases expand the
    spec past MAX_VALUES values; found without recursion."""
    stack: List[Tuple[Any, List[Any]]] = [(data, [])]
    seen = 0
    while stack:
        node, path = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            return Problem(None, "more than {} values (with YAML aliases expanded)".format(MAX_VALUES))
        if len(path) > MAX_DEPTH:
            return Problem(_line_of(root, path), "nested more than {} levels deep".format(MAX_DEPTH))
        if isinstance(node, dict):
            stack += [(value, path + [key]) for key, value in node.items()]
        elif isinstance(node, list):
            stack += [(value, path + [k]) for k, value in enumerate(node)]
    return None


def check_spec(data: Any, root: Any) -> List[Problem]:
    """Every problem of a parsed spec, in file order."""
    import jsonschema

    deep = _too_deep(data, root)
    if deep:
        return [deep]
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
        timeout = tool.get("timeout")
        if isinstance(timeout, float) and timeout != timeout:  # YAML's .nan passes every comparison
            problems.append(Problem(_line_of(root, ["tools", i, "timeout"]),
                                    "tools.{}.timeout: .nan is not a number of seconds: the tool would "
                                    "have no time limit".format(i)))
        params = tool.get("parameters", {"type": "object", "properties": {}})
        if isinstance(params, dict):
            meta = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA,
                                                   format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
            try:
                found = [Problem(_line_of(root, ["tools", i, "parameters"] + list(err.absolute_path)),
                                 "parameters is not a valid JSON Schema: " + err.message)
                         for err in meta.iter_errors(params)]
            except RecursionError:  # re.compile recurses once per nested group of a `pattern`
                found = [Problem(_line_of(root, ["tools", i, "parameters"]),
                                 "parameters cannot be checked: a regular expression in it is nested too deeply")]
            if not found and params.get("type") != "object":
                found.append(Problem(_line_of(root, ["tools", i, "parameters"]),
                                     "parameters must describe an object (type: object): the arguments are one"))
            if not found:
                base = ["tools", i, "parameters"]
                try:
                    # References that each lead to several others multiply: ten levels of ten is
                    # 10**10 subschemas to walk, from a few hundred bytes of spec.
                    with time_limit(CHECK_TIME_LIMIT):
                        referred = reference_problems(params)
                except TooSlow:
                    referred = [([], None, "checking them took more than {:g}s (references that "
                                           "multiply?)".format(CHECK_TIME_LIMIT))]
                found = [Problem(_line_of(root, base + path, key_of=key), "parameters cannot be used: " + why)
                         for path, key, why in referred]
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


def parameters_validator(schema: Dict[str, Any]) -> Any:
    """A JSON Schema 2020-12 validator for a tool's parameters that never opens a URL or a file:
    its registry refuses every retrieval, so only references inside the schema resolve. (With
    jsonschema's default registry an unknown ``$ref`` URL is fetched with urllib.)"""
    import jsonschema

    return jsonschema.Draft202012Validator(schema, registry=refusing_registry())


def refusing_registry() -> Any:
    """A ``referencing`` registry that refuses every retrieval (no URL, no file is opened):
    only references inside a schema resolve (also ``--schema``'s)."""
    from referencing import Registry
    from referencing.exceptions import NoSuchResource

    def refuse(uri: str) -> Any:
        raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # an attrs class

    return Registry(retrieve=refuse)  # type: ignore[call-arg]  # an attrs class


# Keywords whose subschemas apply to the same value: a reference cycle through them alone
# never reaches into the arguments, so checking any call would recurse forever.
_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_ONE = ("not", "if", "then", "else")
_IN_PLACE_MAPS = ("dependentSchemas",)  # each applies to the object itself when its key is there
_REFERENCES = ("$ref", "$dynamicRef")


def reference_problems(schema: Dict[str, Any]) -> List[Tuple[List[Any], Optional[str], str]]:
    """(path, key, why) for every reference in a parameters schema that could not be checked
    without fetching (a URL, a file, an ``$id`` below the top, an unknown ``$schema``), that
    points to nothing, or that loops back to itself; then whatever still stops the schema from
    checking an empty argument object."""
    from referencing.jsonschema import UnknownDialect, specification_with

    problems: List[Tuple[List[Any], Optional[str], str]] = []
    anchors = {node.get(key) for _, node in _subschemas(schema, []) for key in ("$anchor", "$dynamicAnchor")}
    for path, node in _subschemas(schema, []):
        for key in _REFERENCES:
            ref = node.get(key)
            if not isinstance(ref, str):
                continue
            if not ref.startswith("#"):
                problems.append((path, key, "{} {!r} is not inside the schema: only '#...' references are "
                                            "allowed, nothing is fetched".format(key, ref)))
            elif _local_target(schema, ref) is None and ref[1:] not in anchors:
                problems.append((path, key, "{} {!r} points to nothing".format(key, ref)))
        if path and isinstance(node.get("$id"), str):
            problems.append((path, "$id", "$id below the top of the schema is not supported: references "
                                          "would resolve against it"))
        dialect = node.get("$schema")
        if isinstance(dialect, str):
            try:
                specification_with(dialect)
            except UnknownDialect:
                problems.append((path, "$schema", "$schema {!r} is not a known JSON Schema version; nothing is "
                                                  "fetched (leave it out: 2020-12 is used)".format(dialect)))
    if problems:
        return problems
    problems = [(path, "$ref", "$ref {!r} leads back to itself without reaching into the arguments, so no call "
                               "could be checked".format(ref)) for path, ref in _reference_cycles(schema)]
    if problems:
        return problems
    try:
        list(parameters_validator(schema).iter_errors({}))
    except Exception as exc:  # noqa: BLE001 -- whatever stops checking now would stop every call
        return [([], None, "it cannot check arguments: {}".format(" ".join(str(exc).split())[:200]))]
    return []


def _subschemas(node: Any, path: List[Any]) -> List[Tuple[List[Any], Dict[str, Any]]]:
    """Every mapping in a schema, with its path: a schema keyword's value or not, every one
    is looked at (a ``$ref`` under ``const`` is harmless, and rare)."""
    found: List[Tuple[List[Any], Dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found += _subschemas(value, path + [key])
    elif isinstance(node, list):
        for k, value in enumerate(node):
            found += _subschemas(value, path + [k])
    return found


def _local_target(document: Any, ref: str) -> Optional[Tuple[Any, ...]]:
    """The path a ``#/json/pointer`` reference (RFC 6901) names in ``document``, or None."""
    from urllib.parse import unquote

    pointer = unquote(ref[1:])
    if pointer and not pointer.startswith("/"):
        return None  # an anchor, not a pointer
    path: List[Any] = []
    for raw in pointer.split("/")[1:] if pointer else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(document, dict) and part in document:
            document = document[part]
            path.append(part)
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
            path.append(int(part))
        else:
            return None
    return tuple(path)


def _reference_cycles(schema: Dict[str, Any]) -> List[Tuple[List[Any], str]]:
    """(path, ref) of each ``$ref`` that closes a loop of references and in-place keywords
    (allOf, not, if ...): following it would come back to the same value forever."""
    nodes = {tuple(path): node for path, node in _subschemas(schema, [])}

    def successors(path: Tuple[Any, ...]) -> List[Tuple[Tuple[Any, ...], Optional[str]]]:
        node = nodes[path]
        out: List[Tuple[Tuple[Any, ...], Optional[str]]] = []
        for key in _REFERENCES:
            ref = node.get(key)
            target = _local_target(schema, ref) if isinstance(ref, str) and ref.startswith("#") else None
            if target is not None and target in nodes:
                out.append((target, ref))
        for key in _IN_PLACE_LISTS:
            if isinstance(node.get(key), list):
                out += [(path + (key, k), None) for k in range(len(node[key])) if path + (key, k) in nodes]
        for key in _IN_PLACE_ONE:
            if path + (key,) in nodes:
                out.append((path + (key,), None))
        for key in _IN_PLACE_MAPS:
            if isinstance(node.get(key), dict):
                out += [(path + (key, k), None) for k in node[key] if path + (key, k) in nodes]
        return out

    cycles: List[Tuple[List[Any], str]] = []
    state: Dict[Tuple[Any, ...], int] = {}  # 1: on the current walk, 2: done
    # A depth-first walk with its own stack: a chain of thousands of $refs (each a shallow
    # $defs entry, so MAX_DEPTH does not stop it) would exhaust Python's recursion.
    for start in nodes:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(successors(start)))]
        while stack:
            path, pending = stack[-1]
            step = next(pending, None)
            if step is None:
                state[path] = 2
                stack.pop()
                continue
            target, ref = step
            if state.get(target) == 1:
                cycles.append((list(path), ref or nodes[path].get("$ref", "")))
            elif target not in state:
                state[target] = 1
                stack.append((target, iter(successors(target))))
    return cycles


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
    from interncli.yamlread import load_document

    try:
        # One parse: the node tree gives line numbers, the same tree gives the data.
        root, data = load_document(text)
    except RecursionError:  # PyYAML's parser recurses once per level of flow-style nesting
        raise SpecError(path, [Problem(None, "nested too deeply to read")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(path, [Problem(mark.line + 1 if mark else None, "not valid YAML: " + problem)]) from exc
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
