"""What ``--schema`` and ``-x/--extract`` do around a chat request (``chat create``, its ``api``
alias, and ``tools run`` for the final answer): the flags checked together, the request fitted
to the server's kind, the replies collected, validated and re-asked, the result printed. The
rules themselves (schemas, finding JSON, code blocks) live in interncli.structured."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from interncli.commands.common import with_retries
from interncli.context import AppContext
from interncli.errors import RequestRejected, UsageError

if TYPE_CHECKING:  # only for annotations: these import jsonschema or requests
    from interncli.client import ChatClient
    from interncli.structured import Schema

Keep = Callable[[Dict[str, Any]], None]
DEFAULT_RETRIES = 2  # re-asks when a reply does not fit --schema


def check_flags(opts: Dict[str, Any]) -> None:
    """Refuse (exit 2) what --schema and -x/--extract cannot be combined with."""
    extract = opts["extract"] or opts["extract_last"]
    if opts["schema"] is not None:
        if extract:
            raise UsageError("--schema and -x/--extract cannot be used together",
                             hint="--schema prints one JSON value; -x prints a code block: choose one.")
        if (opts["n"] or 1) > 1:
            raise UsageError("--schema takes one reply, not -n {}".format(opts["n"]),
                             hint="Drop -n (run the command several times for several values).")
        if opts["tools_spec"]:
            raise UsageError("--schema cannot be used with --tools: a reply that calls a tool is no JSON value",
                             hint="Use `interncli tools run SPEC --schema ...` to have the final answer checked.")
    elif opts["schema_retries"] is not None:
        raise retries_without_schema()
    if extract and opts["as_json"]:
        raise UsageError("-x/--extract and --json cannot be used together",
                         hint="--json prints the whole response; pipe it to jq to take a part of it.")


def retries_without_schema() -> UsageError:
    """The error for --schema-retries given without --schema (chat create, tools run)."""
    return UsageError("--schema-retries needs --schema", hint="Add --schema FILE_OR_JSON, or drop it.")


def fit_request(body: Dict[str, Any], schema: Schema, native: bool) -> Dict[str, Any]:
    """The request body for ``schema``: with ``native`` (a server that constrains its output:
    api lmdeploy or openai) the schema as ``response_format`` (unless -O set that field), else
    the schema told to the model in the messages."""
    from interncli import structured

    if native:
        return body if "response_format" in body else dict(body, response_format=structured.response_format(schema))
    return dict(body, messages=structured.instruct(body["messages"], schema))


def collect_reply(app: AppContext, client: ChatClient, body: Dict[str, Any],
                  echo: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """The whole reply to ``body`` as a chat completion, also when it is streamed (then put
    together from its chunks; ``echo`` gets each piece of choice 0's text as it arrives)."""
    from interncli.client import StreamAssembler

    if not body.get("stream"):
        return with_retries(app, lambda: client.create(body))
    shown = [False]

    def attempt() -> Dict[str, Any]:
        # A fresh assembler each try: a retried stream starts the reply again from nothing.
        assembler = StreamAssembler()
        meta: Dict[str, Any] = {}
        for chunk in client.stream(body):
            assembler.add(chunk)
            for key in ("id", "created", "model", "moderation"):
                if chunk.get(key) is not None:
                    meta.setdefault(key, chunk[key])
            if chunk.get("usage") is not None:  # the last one sent counts (see send_chat)
                meta["usage"] = chunk["usage"]
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if echo is not None and text and choice.get("index", 0) == 0:
                    shown[0] = True
                    echo(text)
        return completion_of(assembler, meta)

    return with_retries(app, attempt, output_started=lambda: shown[0])


def completion_of(assembler: Any, meta: Dict[str, Any]) -> Dict[str, Any]:
    """A streamed reply as the completion object a non-streamed one would have been."""
    choices = []
    for index, state in sorted(assembler.choices.items()):
        message = assembler.message(index)
        if state.reasoning:
            message["reasoning_content"] = state.reasoning
        choices.append({"index": index, "message": message, "finish_reason": state.finish_reason})
    reply = {"id": meta.get("id"), "object": "chat.completion", "created": meta.get("created"),
             "model": meta.get("model"), "choices": choices}
    for key in ("moderation", "usage"):
        if key in meta:
            reply[key] = meta[key]
    return reply


class _Echo:
    """Streamed text on stderr as it arrives (escaped on a terminal), a line ended after it;
    nothing under --json, where every stderr line is one JSON object."""

    def __init__(self, app: AppContext) -> None:
        self.io = app.io
        self.open = False

    def __call__(self, text: str) -> None:
        from interncli.safetext import escape_controls, replace_surrogates

        self.io.stderr.write(escape_controls(text) if self.io.stderr_tty else replace_surrogates(text))
        self.io.stderr.flush()
        self.open = not text.endswith("\n")

    def end(self) -> None:
        if self.open:
            self.io.stderr.write("\n")
            self.io.stderr.flush()
            self.open = False


def show_rejected(app: AppContext, text: Optional[str], problems: List[str]) -> None:
    """The last reply (unless ``text`` is None: it was streamed there already) and each
    problem, on stderr, escaped."""
    from interncli import output
    from interncli.safetext import escape_controls

    io = app.io
    if io.json:
        if text is not None:
            output.inform("the last reply: " + text, io)
        for problem in problems:
            output.inform("does not fit the schema: " + problem, io)
        return
    if text is not None:
        io.stderr.write("interncli: the last reply:\n" + escape_controls(text).rstrip("\n") + "\n")
    for problem in problems:
        io.stderr.write("interncli: does not fit the schema: " + output.one_line(problem) + "\n")
    io.stderr.flush()


class SchemaCheck:
    """Checks each final reply against the schema: accepted (``value`` set), or the messages
    that ask again, until ``retries`` re-asks are spent; then SchemaMismatch (exit 5)."""

    def __init__(self, app: AppContext, schema: Schema, retries: int, streamed: bool = False) -> None:
        self.app = app
        self.schema = schema
        self.retries = retries
        self.streamed = streamed  # the replies went to stderr as they came: not shown again
        self.asked = 0
        self.value: Any = None
        # The model was not told the schema (the server was to constrain its output, and did
        # not, or ignores response_format): the re-ask tells it.
        self.remind = False

    def __call__(self, message: Dict[str, Any]) -> Optional[List[Dict[str, Any]]]:
        """None when ``message`` is accepted, else the messages to send next."""
        from interncli import output, structured

        text = message.get("content") or ""
        value, problems = structured.check_reply(self.schema, text)
        if not problems:
            self.value = value
            return None
        if self.asked >= self.retries:
            show_rejected(self.app, None if self.streamed and not self.app.io.json else text, problems)
            raise structured.mismatch(self.asked + 1, problems)
        self.asked += 1
        output.inform("the reply does not fit the schema ({}); asking again ({} of {})".format(
            problems[0] if len(problems) == 1 else "{} and {} more".format(problems[0], len(problems) - 1),
            self.asked, self.retries), self.app.io)
        return [structured.reask(problems, self.schema if self.remind else None)]


def send_structured(app: AppContext, body: Dict[str, Any], schema: Schema, *, retries: int, as_json: bool,
                    show_reasoning: bool, keep: Keep, usage: bool) -> None:
    """Ask until a reply validates (``retries`` re-asks at most), then print its JSON value on
    one line (``as_json``: the whole accepted response); only the accepted reply is kept."""
    from interncli import output, structured
    from interncli.client import ChatClient, assistant_message
    from interncli.commands.common import open_transport
    from interncli.safetext import escape_json_text

    client = ChatClient(open_transport(app))
    echo = _Echo(app) if body.get("stream") and not app.io.json else None
    check = SchemaCheck(app, schema, retries, streamed=echo is not None)
    while True:
        try:
            reply = collect_reply(app, client, body, echo)
        except RequestRejected as err:
            if "response_format" not in body or structured.UNSUPPORTED_HINT not in err.message:
                raise
            # LMDeploy up to 0.10.1 on TurboMind cannot constrain output: tell the model instead.
            output.inform("the server cannot constrain its output to the schema ({}): telling the model "
                          "the schema instead".format(app.redact(err.message)), app.io)
            body = fit_request({k: v for k, v in body.items() if k != "response_format"}, schema, native=False)
            continue
        finally:
            if echo is not None:
                echo.end()
        message = reply["choices"][0].get("message") or {}
        if show_reasoning and message.get("reasoning_content"):
            output.show_reasoning(message["reasoning_content"].rstrip("\n") + "\n", app.io)
        output.warn_about_reply(reply, app.io, app.redact)
        check.remind = "response_format" in body
        follow = check(message)
        if follow is None:
            break
        body = dict(body, messages=list(body["messages"]) + [assistant_message(message)] + follow)
    try:
        if as_json:
            output.write_json(reply, app.io.stdout)
        else:
            app.io.stdout.write(escape_json_text(structured.dump_value(check.value)) + "\n")
            app.io.stdout.flush()
    finally:  # a reader of stdout that has gone (| head) still leaves the turn kept
        keep(assistant_message(message))
    if usage:
        output.write_usage(reply.get("usage"), app.io)


def send_extracting(app: AppContext, body: Dict[str, Any], *, last: bool, show_reasoning: bool, keep: Keep,
                    usage: bool) -> None:
    """Send, then print only the first (``last``: the last) fenced code block of each choice;
    a choice without one is printed whole, with a warning."""
    from interncli import output, structured
    from interncli.client import ChatClient, assistant_message
    from interncli.commands.common import open_transport

    reply = collect_reply(app, ChatClient(open_transport(app)), body)
    choices = reply["choices"]
    many = len(choices) > 1
    try:
        for choice in choices:
            message = choice.get("message") or {}
            if show_reasoning and message.get("reasoning_content"):
                output.show_reasoning(message["reasoning_content"].rstrip("\n") + "\n", app.io)
            text = message.get("content") or ""
            block = structured.extract_block(text, last=last)
            if block is None:
                app.io.stdout.flush()
                output.warn("no fenced code block in the reply{}: printing it whole".format(
                    " {}".format(choice.get("index", 0)) if many else ""), app.io)
                block = text
            if many:
                app.io.stdout.write(output.header(choice.get("index", 0), app.io))
            if block or many:
                app.io.stdout.write(output.escape_for_terminal(block, app.io) + ("" if block.endswith("\n") else "\n"))
            app.io.stdout.flush()
    finally:
        keep(assistant_message(choices[0].get("message") or {}))
    output.warn_about_reply(reply, app.io, app.redact)
    output.warn_if_fewer(len(choices), body.get("n"), app.io)
    if usage:
        output.write_usage(reply.get("usage"), app.io)
