"""Structured output: the ``--schema`` JSON Schema (read, checked, told to the model, sent as
``response_format``), the JSON found in a reply and validated against it, the re-ask carrying
the validation errors; and the fenced code blocks ``-x/--extract`` prints. Pure: no I/O but
reading the schema file, nothing fetched, no click."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Iterator, List, Optional, Tuple

from interncli.errors import RequestRejected, UsageError

SCHEMA_FILE_LIMIT = 1 << 20  # bytes of a schema file: a schema is sent in every request
ERRORS_SHOWN = 10  # validation errors told to the model and the person; the rest are counted
# Fenced blocks (```json or bare, not blank) tried as the JSON of a reply that is not JSON as a
# whole: a model puts its answer in the first one or two, and a reply of a million non-JSON
# blocks would otherwise cost a JSON parse each, on every attempt.
JSON_BLOCKS_TRIED = 20
ERROR_LIMIT = 300  # characters of one error message (they quote the value, which may be huge)
# Seconds one validation may take: a `pattern` such as ^(a+)+$ backtracks exponentially on a
# string the model chooses (Python's re), which would hang the run (as in toolrun).
CHECK_TIME_LIMIT = 5.0
# The shorthand llm made popular: "name, age int, bio: one sentence" (see parse_shorthand).
SHORTHAND_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
_SHORTHAND_ITEM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\s+(str|int|float|bool))?\s*(?::\s*(.*))?$", re.S)
# The text before a reasoning model's answer, when the server leaves it in the content.
_THINKING = re.compile(r"^\s*<think>.*?</think>", re.S)
# What the server's `response_format` name may hold (OpenAI's rule; LMDeploy takes any text).
_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]+")
# LMDeploy 0.6.0 - 0.10.1 on its default TurboMind backend refuse response_format with this 400.
UNSUPPORTED_HINT = "only pytorch backend can use response_format"


class SchemaMismatch(RequestRejected):
    """The replies never fitted the schema: exit 5, as a request the server rejected."""


class Schema:
    """A checked JSON Schema and a validator for it that never fetches anything."""

    def __init__(self, document: Any, name: str) -> None:
        self.document = document
        self.name = name
        self._validator = _validator(document)

    def errors(self, value: Any) -> List[str]:
        """Why ``value`` does not validate, one ``path: message`` each (the first ERRORS_SHOWN,
        then how many more); none if it does. A check that takes too long is an error too."""
        from interncli.timelimit import TooSlow, time_limit

        try:
            with time_limit(CHECK_TIME_LIMIT):
                found = sorted(self._validator.iter_errors(value), key=lambda e: (list(map(str, e.absolute_path)),
                                                                                   e.message))
        except TooSlow:
            return ["checking the value took more than {:g}s (a pattern in the schema that backtracks?)".format(
                CHECK_TIME_LIMIT)]
        except RecursionError:
            return ["the value is nested too deeply to check"]
        except OverflowError:  # a whole number of thousands of digits against a float multipleOf, say
            return ["a number in the value is too large to check"]
        except Exception as exc:  # noqa: BLE001 -- what stops the check is the schema's fault, not the reply's
            raise UsageError("--schema cannot check a reply: {}".format(_cut(" ".join(str(exc).split()))),
                             hint="Fix the schema (a reference it cannot resolve, say).") from None
        shown = ["{}: {}".format(pointer(e.absolute_path), _cut(" ".join(e.message.split())))
                 for e in found[:ERRORS_SHOWN]]
        if len(found) > ERRORS_SHOWN:
            shown.append("and {} more".format(len(found) - ERRORS_SHOWN))
        return shown


def _cut(text: str) -> str:
    return text if len(text) <= ERROR_LIMIT else text[:ERROR_LIMIT] + "…"


def pointer(path: Any) -> str:
    """A validation error's place as a JSON Pointer (``/people/0/age``); ``/`` for the top."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else "/"


def _validator(document: Any) -> Any:
    """A validator of the schema's own dialect (``$schema``; 2020-12 if it names none), whose
    registry refuses every retrieval: only references inside the schema resolve."""
    import jsonschema

    from interncli.toolspec import refusing_registry

    cls = jsonschema.validators.validator_for(document, default=jsonschema.Draft202012Validator)
    return cls(document, registry=refusing_registry())


def load_schema(value: str) -> Schema:
    """The ``--schema`` value as a checked Schema: inline JSON when it starts with ``{`` (or ``[``), else
    the file of that name, else the shorthand (``name, age int``); what is none of these, or
    not a usable JSON Schema, is a usage error (exit 2)."""
    text = value.strip()
    if text.startswith(("{", "[")):
        document, source, name = _parse(text, "--schema"), "--schema", "output"
    elif os.path.isfile(value):
        document, source = _parse(_read(value), value), value
        name = os.path.splitext(os.path.basename(value))[0]
    else:
        document = parse_shorthand(value)
        if document is None:
            raise UsageError("--schema {}: no such file, and not inline JSON or the shorthand".format(value),
                             hint="Give a JSON Schema file, inline JSON ('{\"type\": \"object\", ...}') or the "
                                  "shorthand 'name, age int, bio: a sentence' (types: str, int, float, bool).")
        source, name = "--schema", "output"
    check_schema(document, source)
    title = document.get("title") if isinstance(document, dict) else None
    return Schema(document, response_name(title if isinstance(title, str) and title.strip() else name))


def parse_shorthand(text: str) -> Optional[Dict[str, Any]]:
    """The object schema of the shorthand ``name, age int, bio: what it holds`` (a comma between
    fields, or a newline when there is one: then a description may hold commas; each a name, an
    optional type of str/int/float/bool, an optional description after ``:``; every field
    required), or None when ``text`` is not the shorthand.
    Kept apart from file names: a field name is a bare identifier (no dot, no slash), and a
    single bare word is the shorthand only with a type or a description, else it is taken as a
    file name that does not exist."""
    items = [item.strip() for item in text.split("\n" if "\n" in text.strip() else ",")]
    if not any(items):
        return None
    properties: Dict[str, Any] = {}
    for item in items:
        if not item:
            continue
        match = _SHORTHAND_ITEM.match(item)
        if match is None or match.group(1) in properties:
            return None
        field, kind, description = match.groups()
        prop: Dict[str, Any] = {"type": SHORTHAND_TYPES[kind or "str"]}
        if description is not None and description.strip():
            prop["description"] = description.strip()
        properties[field] = prop
    if len(properties) == 1 and "," not in text and "\n" not in text and not re.search(r"\s|:", text.strip()):
        return None  # one bare word: a file name that does not exist, not a schema
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def _read(path: str) -> str:
    try:
        size = os.path.getsize(path)
        if size > SCHEMA_FILE_LIMIT:
            raise UsageError("--schema {}: {} bytes; a schema over 1 MiB is refused".format(path, size),
                             hint="A schema goes into every request: keep it small.")
        with open(path, encoding="utf-8-sig") as fh:
            # At most the limit: a file in /proc says size 0 whatever it holds, and a file may
            # grow, or be replaced, between the size and the read.
            text = fh.read(SCHEMA_FILE_LIMIT + 1)
        if len(text) > SCHEMA_FILE_LIMIT:
            raise UsageError("--schema {}: over 1 MiB; a schema that large is refused".format(path),
                             hint="A schema goes into every request: keep it small.")
        return text
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError("cannot read --schema {}: {}".format(path, getattr(exc, "strerror", None) or exc),
                         hint="Check the path and its permissions.") from exc


def _parse(text: str, source: str) -> Any:
    try:
        return _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise UsageError("{} is not valid JSON: {}".format(source, exc),
                         hint="A JSON Schema is a JSON object, such as '{\"type\": \"object\", \"properties\": "
                              "{\"name\": {\"type\": \"string\"}}}'.") from None


def _not_json(text: str) -> Any:
    raise ValueError("{} is not JSON".format(text))


def _finite(text: str) -> float:
    # json turns 1e400 into inf, which it would print back as Infinity: no JSON at all.
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("{} is too large for a JSON number".format(text[:40]))
    return value


# Strict JSON only: NaN, Infinity and numbers beyond a float's range are refused, in a schema
# (they could not be sent) and in a reply (they could not be printed as JSON).
_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_not_json)


def check_schema(document: Any, source: str) -> None:
    """Refuse (exit 2) what is not a JSON Schema of its dialect (the validator class's
    ``check_schema``), or one that could not be used without fetching something (a remote
    ``$ref``, an unknown ``$schema``) or would loop: the checks a tool's parameters get."""
    import jsonschema

    from interncli.toolspec import MAX_DEPTH, reference_problems

    hint = "Fix the schema: see https://json-schema.org/understanding-json-schema/ (nothing is fetched)."
    if not isinstance(document, dict):
        raise UsageError("{}: a JSON Schema here must be a JSON object, not {}".format(
            source, type(document).__name__), hint=hint)
    if _depth(document) > MAX_DEPTH:
        raise UsageError("{}: the schema is nested more than {} levels deep".format(source, MAX_DEPTH), hint=hint)
    if "$schema" in document and not _known_dialect(document["$schema"]):
        raise UsageError("{}: $schema {!r} is not a known JSON Schema version; nothing is fetched".format(
            source, document["$schema"]), hint="Leave $schema out (2020-12 is used), or name a known draft.")
    try:
        cls = jsonschema.validators.validator_for(document, default=jsonschema.Draft202012Validator)
        cls.check_schema(document)
    except jsonschema.exceptions.SchemaError as exc:
        where = pointer(exc.absolute_path)
        raise UsageError("{} is not a valid JSON Schema: {}{}".format(
            source, "" if where == "/" else where + ": ", _cut(" ".join(exc.message.split()))), hint=hint) from None
    except RecursionError:  # re.compile recurses once per nested group of a `pattern`
        raise UsageError("{}: a regular expression in the schema is nested too deeply".format(source),
                         hint=hint) from None
    from interncli.timelimit import TooSlow, time_limit

    try:
        # References that each lead to several others multiply: ten levels of ten is 10**10
        # subschemas to walk, from a schema of a few hundred bytes.
        with time_limit(CHECK_TIME_LIMIT):
            problems = reference_problems(document)
    except TooSlow:
        raise UsageError("{}: checking the schema took more than {:g}s (references that multiply?)".format(
            source, CHECK_TIME_LIMIT), hint=hint) from None
    if problems:
        path, key, why = problems[0]
        where = pointer(list(path) + ([key] if key else []))
        raise UsageError("{}: {}: {}".format(source, where, why), hint=hint)


def _known_dialect(uri: Any) -> bool:
    """Whether ``$schema`` names a draft jsonschema knows (any other would have to be fetched)."""
    from referencing.jsonschema import UnknownDialect, specification_with

    if not isinstance(uri, str):
        return False
    try:
        specification_with(uri)
    except UnknownDialect:
        return False
    return True


def _depth(node: Any) -> int:
    """How deeply ``node`` nests, found without recursion."""
    deepest, stack = 0, [(node, 0)]
    while stack:
        value, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(value, dict):
            stack += [(v, level + 1) for v in value.values()]
        elif isinstance(value, list):
            stack += [(v, level + 1) for v in value]
    return deepest


def response_name(text: str) -> str:
    """A name for ``response_format.json_schema.name`` (LMDeploy requires one; OpenAI allows
    letters, digits, ``_`` and ``-``, 64 at most)."""
    name = _NAME_BAD.sub("_", text).strip("_")[:64]
    return name or "output"


def response_format(schema: Schema) -> Dict[str, Any]:
    """The ``response_format`` field, in the spelling LMDeploy's protocol has read from 0.6 on
    (``json_schema.name`` required; ``strict`` left out: OpenAI's strict mode refuses most
    schemas, and LMDeploy ignores it)."""
    return {"type": "json_schema", "json_schema": {"name": schema.name, "schema": schema.document}}


def instruction(schema: Schema) -> str:
    """What tells the model the schema, where the server cannot constrain its output."""
    return ("Reply with only a JSON value that validates against this JSON Schema: no other text, "
            "no code fence.\nJSON Schema: " + json.dumps(schema.document, ensure_ascii=False))


def instruct(messages: List[Dict[str, Any]], schema: Schema) -> List[Dict[str, Any]]:
    """``messages`` with the schema told at the end of the last user message (a text part for
    one with images), or in a user message of its own when the conversation ends otherwise;
    the caller's messages are not changed. A user message, not a system one: the service
    refuses a system message in thinking mode, and some chat templates take one only first."""
    told = instruction(schema)
    out = list(messages)
    if out and out[-1].get("role") == "user":
        last = dict(out[-1])
        content = last.get("content")
        if isinstance(content, list):
            last["content"] = list(content) + [{"type": "text", "text": told}]
        else:
            last["content"] = "{}\n\n{}".format(content or "", told).lstrip("\n")
        out[-1] = last
    else:
        out.append({"role": "user", "content": told})
    return out


def reask(problems: List[str], schema: Optional[Schema] = None) -> Dict[str, Any]:
    """The user message that asks again, with each problem (``/path: message``); with
    ``schema``, the schema too (a model that was never told it: the server was to constrain it)."""
    told = "\n" + instruction(schema) if schema is not None else ""
    return {"role": "user", "content": "Your reply does not fit the JSON Schema:\n" + "\n".join(
        "- " + p for p in problems) + "\nReply again with only the corrected JSON value: no other text, "
        "no code fence." + told}


def find_json(text: str) -> Tuple[Any, Optional[str]]:
    """The JSON value of a reply and None, or None and why there is none: the whole reply (a
    reasoning model's ``<think>...</think>`` before it left aside), else the first fenced
    block (```json, or one without a language) that holds JSON, among the first
    JSON_BLOCKS_TRIED such blocks that are not blank."""
    body = _THINKING.sub("", text, count=1).strip()
    value, problem = _loads(body)
    if problem is None:
        return value, None
    tried = 0
    for info, block in _blocks(body):
        if info.split()[:1] in ([], ["json"], ["JSON"]) and block.strip():
            found, why = _loads(block)
            if why is None:
                return found, None
            tried += 1
            if tried == JSON_BLOCKS_TRIED:
                break
    if not body:
        return None, "the reply is empty"
    return None, "the reply is not JSON ({})".format(problem)


def _loads(text: str) -> Tuple[Any, Optional[str]]:
    try:
        return _DECODER.decode(text), None
    except RecursionError:
        return None, "nested too deeply"
    except ValueError as exc:
        if getattr(exc, "pos", None) == 0:
            return None, "it starts with text that is not a JSON value"
        return None, str(exc)


def check_reply(schema: Schema, text: str) -> Tuple[Any, List[str]]:
    """The reply's JSON value and the problems that stop it being accepted (none: accepted)."""
    value, problem = find_json(text)
    if problem is not None:
        return None, [problem]
    return value, schema.errors(value)


def dump_value(value: Any) -> str:
    """The accepted value on one line (what stdout gets)."""
    return json.dumps(value, ensure_ascii=False)


def mismatch(attempts: int, problems: List[str]) -> SchemaMismatch:
    """The error for replies that never fitted the schema."""
    return SchemaMismatch("the reply does not fit the schema after {} attempt{}: {}".format(
        attempts, "" if attempts == 1 else "s", "; ".join(problems)),
        hint="Raise --schema-retries, ask more precisely, or loosen the schema; the last reply is above.")


# ------------------------------------------------------------------------------ code blocks

# An opening or closing fence line: any indentation (a block in a list item is indented), three
# or more backticks or tildes, then the info string (CommonMark: a backtick fence's has no backtick).
_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")
_LINE_END = re.compile(r"\r\n|\r|\n")


def code_blocks(text: str) -> List[Tuple[str, str]]:
    """The top-level fenced code blocks of ``text`` as (info string, content), in order (see
    _blocks)."""
    return list(_blocks(text))


def _blocks(text: str) -> Iterator[Tuple[str, str]]:
    """The top-level fenced code blocks of ``text`` as (info string, content), in order, each
    found as it is needed: a reply of 4 MiB of fences holds a million of them.

    A block closes at a fence of its own character at least as long as its opening one, with
    nothing after it (so a ```` ```` ```` block holds ``` lines as text); one left open runs
    to the end of the text, and is no block if nothing but blank lines follow its fence. Inside
    a block, a fence of the same kind that carries an info string (```python) opens a nested
    block, which the next bare fence closes: a model that shows markdown with code in it writes
    it that way. Content loses the opening fence's indentation."""
    # Lines end only where markdown's do: splitlines() also breaks at form feed, NEL, U+2028
    # and the like, which turned them into newlines inside the code printed.
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the text's own last line end, as splitlines() drops it
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None or (opening.group(2)[0] == "`" and "`" in opening.group(3)):
            i += 1
            continue
        indent, fence, info = opening.groups()
        char, size = fence[0], len(fence)
        depth, body, i = 0, [], i + 1
        while i < len(lines):
            line = lines[i]
            match = _FENCE.match(line)
            if match and match.group(2)[0] == char and len(match.group(2)) >= size:
                if not match.group(3).strip():
                    if depth == 0:
                        break
                    depth -= 1
                elif char == "~" or "`" not in match.group(3):
                    depth += 1
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip(" \t"))
            i += 1
        # A fence left open with nothing after it is no block: its opening was likely written in
        # mid-line ("here: ```sh"), where it does not count, and only the closing one stood alone.
        if i < len(lines) or any(line.strip() for line in body):
            yield info.strip(), "\n".join(body) + ("\n" if body else "")
        i += 1


def extract_block(text: str, last: bool = False) -> Optional[str]:
    """The content of the first (``last``: the last) fenced code block of ``text``, or None."""
    found = None
    for _, content in _blocks(text):
        found = content
        if not last:
            break
    return found
