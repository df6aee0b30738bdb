"""``interncli chat create``: one chat completion, printed as the openai CLI prints it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

import click

from interncli import conversation
from interncli.commands.batch import chat_batch
from interncli.commands.common import (
    Group,
    Integer,
    Number,
    json_option,
    lookup_credential,
    message_option,
    open_transport,
    pass_app,
    read_messages,
    require_token,
    warn_about_headers,
    with_retries,
)
from interncli.commands.completers import complete_models
from interncli.commands.repl import repl_command
from interncli.context import AppContext
from interncli.errors import InternCliError, UsageError

if TYPE_CHECKING:  # jsonschema is imported only when --schema is given
    from interncli.structured import Schema


def finite(ctx: click.Context, param: click.Parameter, value: Optional[float]) -> Optional[float]:
    """Refuse NaN, which click's FloatRange lets through and JSON cannot carry."""
    if value is not None and math.isnan(value):
        raise click.BadParameter("must be a number, not nan", ctx=ctx, param=param)
    return value


def chat_options(f: Callable) -> Callable:
    """The flags of ``chat create``, shared with ``api chat.completions.create``."""
    options: List[Callable[[Callable], Callable]] = [
        message_option("A message, repeatable, in order; CONTENT '-' reads stdin."),
        click.option("-m", "--model", metavar="MODEL", shell_complete=complete_models,
                     help="Model [default: the profile's, else intern-latest]."),
        click.option("-n", "--n", "n", type=Integer(min=1), help="How many replies to generate."),
        click.option("-t", "--temperature", type=Number(0, 2), callback=finite,
                     help="Sampling temperature."),
        click.option("-P", "--top-p", "--top_p", "top_p", type=Number(0, 1), callback=finite,
                     help="Nucleus sampling."),
        click.option("-M", "--max-tokens", type=Integer(min=0), help="Most tokens to generate."),
        click.option("--stop", multiple=True, metavar="S",
                     help="Stop sequence, repeatable (private servers; the official service refuses it)."),
        click.option("--stream", is_flag=True, help="Print the reply as it is generated."),
        click.option("--thinking", is_flag=True,
                     help="Thinking mode: thinking_mode to the official service (intern-s1; no system message), "
                          "enable_thinking and chat_template_kwargs to LMDeploy (see the api setting)."),
        click.option("--image", "images", multiple=True, metavar="PATH_OR_URL", type=click.Path(),
                     help="An image (PNG, JPEG, GIF, WebP, BMP file, or a URL) for this turn's last user message, "
                          "repeatable."),
        click.option("--tools", "tools_spec", metavar="SPEC.yaml", type=click.Path(dir_okay=False),
                     help="Offer the tools of a spec (nothing is run)."),
        click.option("--tool-choice", metavar="auto|none|required|NAME", help="Whether and which tool to call."),
        click.option("--tool-call-id", "tool_call_ids", multiple=True, metavar="ID",
                     help="The id of the tool call a -g tool message answers: one per -g tool, in order "
                          "[default: the conversation's single unanswered call]."),
        click.option("--conversation", metavar="FILE", type=click.Path(dir_okay=False),
                     help="JSON file of earlier messages; the new turn is appended to it (with -n, "
                          "only the first reply, choice 0)."),
        json_option,
        click.option("--schema", metavar="FILE_OR_JSON",
                     help="Print one JSON value, on one line, that validates against this JSON Schema (a file, "
                          "inline JSON, or the shorthand 'name, age int, bio: a sentence'): sent as response_format "
                          "where the server constrains output (api lmdeploy, openai); the official service is told "
                          "the schema. Each reply is validated, and re-asked with the errors; still invalid: "
                          "nothing on stdout, exit 5. With --json: the whole accepted response."),
        click.option("--schema-retries", type=Integer(min=0), metavar="N",
                     help="Re-asks when a reply does not fit --schema [default: 2]."),
        click.option("-x", "--extract", is_flag=True,
                     help="Print only the first fenced code block of the reply (none: the whole reply, and a "
                          "warning)."),
        click.option("--extract-last", is_flag=True, help="Like -x, the last fenced code block."),
        click.option("-O", "--option", "options", multiple=True, type=(str, str), metavar="KEY VALUE",
                     help="A server-specific field of the request body, repeatable (LMDeploy: top_k, seed, "
                          "repetition_penalty, ...); VALUE is JSON when it parses, else a string. Sent last, so "
                          "it overrides interncli's own fields (a mapping is merged into one interncli sets). "
                          "LMDeploy ignores fields it does not know; the official service refuses them."),
        click.option("-u", "--usage", is_flag=True,
                     help="Token usage on stderr after the reply (a stream is asked for it where the server "
                          "kind allows: lmdeploy, openai)."),
        click.option("--show-reasoning", is_flag=True, help="Show the model's reasoning on stderr."),
        click.option("--dry-run", is_flag=True, help="Print the request instead of sending it."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.group(cls=Group)
def chat() -> None:
    """Chat completions."""


chat.add_command(chat_batch)


@chat.command("create")
@chat_options
@pass_app
def chat_create(app: AppContext, **opts: Any) -> None:
    """Create a chat completion.

    \b
    Examples:
      interncli chat create -g user "Hello"
      git diff | interncli chat create -g system "Review this diff" -g user -
      interncli chat create --stream --json -g user hi | jq -rj '.choices[0].delta.content // empty'; echo
    """
    create_completion(app, opts)


def create_completion(app: AppContext, opts: Dict[str, Any], always_send_stream: bool = False) -> None:
    """Build the request from the flags, send it, print the reply, and extend the conversation."""
    from interncli.client import ChatRequest, attach_images, build_chat_body, parse_options
    from interncli.commands import schema as structured_chat

    settings = app.settings
    store = opts["conversation"]
    # "" and "-" are refused, not ignored: hence "is not None".
    history = conversation.load_messages(store) if store is not None else []
    turn = read_messages(opts["messages"], app.io)
    link_tool_messages(history, turn, opts["tool_call_ids"])
    messages = history + turn
    if opts["thinking"] and settings.api == "intern" and any(m.get("role") == "system" for m in messages):
        raise UsageError("--thinking cannot be used with a system message",
                         hint="The service refuses system messages in thinking mode: drop one or the other.")
    if opts["images"]:
        attach_images(turn, opts["images"])  # this turn's user message, never one from history
    schema = prepare_schema(opts)
    options = parse_options(opts["options"])
    tools = load_tools(opts["tools_spec"]) if opts["tools_spec"] else None
    stream = fit_to_kind(app, opts["stream"], tools, options)
    request = ChatRequest(
        model=opts["model"] or settings.model, messages=messages, n=opts["n"],
        temperature=opts["temperature"], top_p=opts["top_p"], max_tokens=opts["max_tokens"],
        stop=opts["stop"], stream=stream, thinking=opts["thinking"], tools=tools,
        tool_choice=check_tool_choice(opts["tool_choice"], tools, opts["tools_spec"]),
        always_send_stream=always_send_stream, api=settings.api, usage=opts["usage"], options=options)
    body = build_chat_body(request)
    if schema is not None:
        body = structured_chat.fit_request(body, schema, native=settings.api != "intern")
    if opts["dry_run"]:
        show_dry_run(app, body, opts["as_json"])
        return
    require_token(app)

    def keep(reply: Dict[str, Any]) -> None:
        if store is not None:
            conversation.append_messages(store, turn + [reply])

    if schema is not None:
        structured_chat.send_structured(app, body, schema, retries=opts["schema_retries"] if opts["schema_retries"]
                                        is not None else structured_chat.DEFAULT_RETRIES, as_json=opts["as_json"],
                                        show_reasoning=opts["show_reasoning"], keep=keep, usage=opts["usage"])
    elif opts["extract"] or opts["extract_last"]:
        structured_chat.send_extracting(app, body, last=opts["extract_last"], show_reasoning=opts["show_reasoning"],
                                        keep=keep, usage=opts["usage"])
    else:
        send_chat(app, body, as_json=opts["as_json"], show_reasoning=opts["show_reasoning"], keep=keep,
                  usage=opts["usage"])


def prepare_schema(opts: Dict[str, Any]) -> Optional[Schema]:
    """The checked --schema, if one was given, after refusing flags it cannot go with."""
    from interncli import structured
    from interncli.commands import schema as structured_chat

    structured_chat.check_flags(opts)
    return structured.load_schema(opts["schema"]) if opts["schema"] is not None else None


def link_tool_messages(history: List[Dict[str, Any]], turn: List[Dict[str, Any]], ids: Sequence[str]) -> None:
    """Give each ``tool`` message of ``turn`` the ``tool_call_id`` of the call it answers: the
    next of ``ids`` (``--tool-call-id``), else the single call still unanswered before it. A
    server cannot pair an answer without it (LMDeploy's templates and the service need it), so
    an answer that fits no call, or could fit several, is refused before anything is sent."""
    tools = [i for i, message in enumerate(turn) if message["role"] == "tool"]
    if ids and len(ids) != len(tools):
        raise UsageError("--tool-call-id was given {} time(s) for {} -g tool message(s)".format(len(ids), len(tools)),
                         hint="Give one --tool-call-id ID per -g tool, in the same order, or none.")
    for k, i in enumerate(tools):
        waiting = conversation.unanswered_calls(history + turn[:i])
        if ids:
            call = ids[k]
            if call not in waiting:
                raise UsageError("--tool-call-id {}: not an unanswered tool call of the conversation".format(call),
                                 hint="Unanswered: " + (", ".join(waiting) or "none"))
        elif len(waiting) == 1:
            call = waiting[0]
        elif waiting:
            raise UsageError("-g tool: the conversation has {} unanswered tool calls: {}".format(
                len(waiting), ", ".join(waiting)), hint="Say which one it answers with --tool-call-id ID.")
        else:
            raise UsageError("-g tool: the conversation has no unanswered tool call to answer",
                             hint="A tool message answers a call of an earlier reply: give the conversation "
                                  "holding it with --conversation FILE (and --tool-call-id ID if it has several).")
        turn[i] = {"role": "tool", "tool_call_id": call, "content": turn[i]["content"]}


def fit_to_kind(app: AppContext, stream: bool, tools: Optional[List[Dict[str, Any]]],
                options: Dict[str, Any]) -> bool:
    """Whether to stream, and the notices the official service calls for: it refuses a stream
    with tools (-10002), so that goes unstreamed, said once; and it refuses fields it does not
    document, which -O sends all the same (contract section 5), with a warning."""
    from interncli import output
    from interncli.client import INTERN_FIELDS

    if app.settings.api != "intern":
        return stream
    unknown = [key for key in options if key not in INTERN_FIELDS]
    if unknown:
        output.warn("the official service refuses fields it does not document, sent all the same: "
                    + ", ".join(unknown), app.io)
    if stream and tools is not None:
        output.inform("the official service does not stream replies with tools: sending without --stream", app.io)
        return False
    return stream


def send_chat(app: AppContext, body: Dict[str, Any], *, as_json: bool, show_reasoning: bool,
              keep: Callable[[Dict[str, Any]], None], usage: bool = False,
              cut: Optional[Callable[[Dict[str, Any]], None]] = None) -> None:
    """Send the request, print the reply, and hand the first choice's message to ``keep``: also
    when the reader of stdout has gone (``| head``), as the reply itself came whole. ``usage``:
    then show the token usage (of the reply, or the last a stream sent) on stderr. ``cut``: a
    Ctrl-C during a stream hands it the part of the reply received (the repl keeps it), then
    goes on as an interrupt."""
    from interncli import output
    from interncli.client import ChatClient, StreamAssembler, assistant_message

    client = ChatClient(open_transport(app))
    if not body.get("stream"):
        reply = with_retries(app, lambda: client.create(body))
        try:
            if as_json:
                output.write_json(reply, app.io.stdout)
            else:
                output.write_completion(reply, app.io, reasoning=show_reasoning)
        finally:  # a BrokenPipeError (the reader has gone) still keeps the turn
            keep(assistant_message(reply["choices"][0].get("message") or {}))
        output.warn_about_reply(reply, app.io, app.redact)
        output.warn_if_fewer(len(reply["choices"]), body.get("n"), app.io)
        if show_reasoning:
            first = reply["choices"][0].get("message") or {}
            output.mention_inline_thinking(first.get("content"), first.get("reasoning_content"), app.io)
        if usage:
            output.write_usage(reply.get("usage"), app.io)
        return

    printer: output.StreamPrinter
    if as_json:
        printer = output.JsonStreamPrinter(app.io, app.redact)
    else:
        printer = output.TextStreamPrinter(app.io, n=body.get("n", 1), reasoning=show_reasoning, redact=app.redact)

    gone: List[BrokenPipeError] = []  # the reader of stdout left: read on, for the conversation
    # The last usage the stream sent: LMDeploy puts it on every chunk (0.6 - 0.9), on the finish
    # chunk (0.10 - 0.13) or in a last chunk with no choices (0.14+).
    last_usage: List[Any] = [None]
    current: List[StreamAssembler] = []  # the try under way, for ``cut``

    def attempt() -> StreamAssembler:
        # A fresh assembler each try: a retried stream starts the reply again from nothing.
        assembler = StreamAssembler()
        current[:] = [assembler]
        last_usage[0] = None
        for chunk in client.stream(body):
            assembler.add(chunk)
            if chunk.get("usage") is not None:
                last_usage[0] = chunk["usage"]
            if not gone:
                try:
                    printer.show(chunk, assembler)
                except BrokenPipeError as exc:
                    gone.append(exc)
        return assembler

    try:
        assembler = with_retries(app, attempt, output_started=lambda: printer.started)
    except InternCliError:
        if not gone:  # a reader that has left needs no line ended
            printer.abort()
        raise
    except KeyboardInterrupt:
        if cut is not None and current:
            printer.abort()
            cut(current[0].message(0))
        raise
    try:
        if gone:
            raise gone[0]
        printer.finish(assembler)
        output.warn_if_fewer(len(assembler.choices), body.get("n"), app.io)
        if show_reasoning:
            first = assembler.choice(0)
            output.mention_inline_thinking(first.content, first.reasoning, app.io)
    finally:
        keep(assembler.message(0))
    if usage:
        output.write_usage(last_usage[0], app.io)


def load_tools(path: str) -> List[Dict[str, Any]]:
    """The ``tools`` list of a spec file."""
    from interncli import toolspec

    return toolspec.api_tools(toolspec.load_spec(path))


def check_tool_choice(choice: Optional[str], tools: Optional[List[Dict[str, Any]]],
                      spec: Optional[str]) -> Optional[str]:
    """A forced tool must be one the spec offers."""
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if tools is None:
        raise UsageError("--tool-choice {} names a tool, but no --tools spec offers it".format(choice),
                         hint="Add --tools SPEC.yaml, or use auto, none or required.")
    names = [t["function"]["name"] for t in tools]
    if choice not in names:
        raise UsageError("--tool-choice {}: no such tool in {}".format(choice, spec),
                         hint="Tools in the spec: " + (", ".join(names) or "none"))
    return choice


def show_dry_run(app: AppContext, body: Dict[str, Any], as_json: bool, path: Optional[str] = None) -> None:
    """Print the request that would be sent to ``path`` (by default chat completions'), without the token."""
    from interncli import output
    from interncli.client import CHAT_PATH
    from interncli.wire import join_url, redact_headers, request_headers

    settings = app.settings
    token = lookup_credential(app).token
    warn_about_headers(app)
    output.describe_request("POST", join_url(settings.base_url, path or CHAT_PATH),
                            redact_headers(request_headers(token, body, settings.headers)), body, app.io.stdout,
                            as_json)


chat.add_command(repl_command(send_chat))
