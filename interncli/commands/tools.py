"""``interncli tools``: check and list a tools spec, and run the tool-calling loop."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

import click

from interncli.commands.common import (
    Group,
    Integer,
    confirm,
    json_option,
    message_option,
    open_transport,
    pass_app,
    read_messages,
    require_token,
    with_retries,
)
from interncli.commands.completers import complete_models
from interncli.context import AppContext
from interncli.errors import ToolError
from interncli.iostreams import IOStreams

if TYPE_CHECKING:  # toolrun is imported only when a tool may run, jsonschema only with --schema
    from interncli import toolrun
    from interncli.commands.schema import SchemaCheck

SPEC = click.argument("spec", type=click.Path(dir_okay=False))


@click.group(cls=Group)
def tools() -> None:
    """Tools from a YAML spec: validate it, list them, or let the model call them.

    \b
    A spec:
      tools:
        - name: get_current_weather
          description: Get the current weather in a given location
          parameters: {type: object, properties: {location: {type: string}}, required: [location]}
          command: ["./weather.sh", "--city", "{location}"]   # argv; never a shell
          timeout: 30
    """


def load_or_report(spec: str, io: IOStreams) -> Dict[str, Any]:
    """The loaded spec; a broken one has every problem printed as SPEC:LINE: message, exit 2."""
    from interncli import output, toolspec

    try:
        return toolspec.load_spec(spec)
    except toolspec.SpecError as err:
        for problem in err.problems:
            output.spec_problem(spec, problem.line or 1, problem.message, io)
        raise click.exceptions.Exit(2) from None


@tools.command("validate")
@SPEC
@pass_app
def tools_validate(app: AppContext, spec: str) -> None:
    """Check a spec: every problem, with its line number (exit 2 if any).

    Refuses a placeholder where a value would be read as the program (also behind env,
    timeout, sudo, docker run, uv run ...) or as code (sh -c, python -c, node -e, an awk or
    sed program, find -exec, git -c, tar --to-command, vim -c, sqlite3 SQL, make's
    operands); a program that would run the JSON on stdin (bash with no script, ssh with no
    command, xargs); and references that would be fetched. This is a best-effort check, not
    a sandbox: a tool runs as you, with your rights.
    """
    loaded = load_or_report(spec, app.io)
    click.echo("{}: ok, {} tool{}".format(spec, len(loaded["tools"]), "" if len(loaded["tools"]) == 1 else "s"),
               file=app.io.stdout)


@tools.command("list")
@SPEC
@json_option
@pass_app
def tools_list(app: AppContext, spec: str, as_json: bool) -> None:
    """List the tools of a spec: name, then description (a broken spec: its problems, exit 2)."""
    from interncli import output

    loaded = load_or_report(spec, app.io)
    if as_json:
        output.write_json(loaded["tools"], app.io.stdout)
        return
    # A spec may come from anywhere: on a terminal its text must not act (a title, a screen
    # clear), and each tool stays on one line; a pipe gets it as written.
    for tool in loaded["tools"]:
        description = output.escape_line_for_terminal(tool.get("description", ""), app.io)
        click.echo("{}\t{}".format(tool["name"], description), file=app.io.stdout)


@tools.command("run")
@SPEC
@click.argument("prompt", nargs=-1)
@message_option("A message, repeatable; CONTENT '-' reads stdin.")
@click.option("-m", "--model", metavar="MODEL", shell_complete=complete_models,
              help="Model [default: the spec's, the profile's, intern-latest].")
@click.option("--yes", is_flag=True, help="Approve every tool call without asking.")
@click.option("--max-turns", type=Integer(min=1), help="Model round-trips before giving up (exit 7).")
@click.option("--schema", metavar="FILE_OR_JSON",
              help="The final answer must be JSON that validates against this JSON Schema (as chat create "
                   "--schema: the model is told it and re-asked with the errors); printed on one line.")
@click.option("--schema-retries", type=Integer(min=0), metavar="N",
              help="Re-asks when the final answer does not fit --schema [default: 2].")
@json_option
@pass_app
def tools_run(app: AppContext, spec: str, prompt: Tuple[str, ...], messages: Tuple[Tuple[str, str], ...],
              model: Optional[str], yes: bool, max_turns: Optional[int], schema: Optional[str],
              schema_retries: Optional[int], as_json: bool) -> None:
    """Ask the model, running the tools it calls, until it answers.

    Each call is shown on stderr (→ name {args} / ← N bytes, exit K) and confirmed on a
    terminal, showing the argv and the stdin the tool gets; with --yes none is; with no
    terminal, or CI set, and no --yes nothing runs (exit 7). A reply may carry at most 16
    calls (more: none runs, exit 7), each with at most 64 KiB of arguments.

    \b
    Examples:
      interncli tools run examples/weather.yaml "What's the weather in Shanghai?"
      interncli tools run examples/weather.yaml --yes --json "Weather in Paris?" | jq .final
    """
    from interncli import output, structured, toolrun, toolspec
    from interncli.client import ChatClient, ChatRequest, build_chat_body
    from interncli.errors import InternCliError

    loaded = load_or_report(spec, app.io)
    history: List[Dict[str, Any]] = [{"role": "system", "content": loaded["system"]}] if "system" in loaded else []
    if prompt:
        history.append({"role": "user", "content": " ".join(prompt)})
    if messages or not prompt:
        history += read_messages(messages, app.io)
    check = final_check(app, schema, schema_retries)
    if check is not None:
        history[:] = structured.instruct(history, check.schema)
    settings = app.settings
    require_token(app)
    client = ChatClient(open_transport(app))
    tools_list = toolspec.api_tools(loaded)
    chosen_model = model or loaded.get("model") or settings.model

    def send(conversation_so_far: List[Dict[str, Any]]) -> Dict[str, Any]:
        body = build_chat_body(ChatRequest(model=chosen_model, messages=conversation_so_far, tools=tools_list))
        return with_retries(app, lambda: client.create(body))

    loop = toolrun.ToolLoop(
        loaded, os.path.dirname(os.path.abspath(spec)), send, approve=make_approver(yes, app.environ, app.io),
        env=toolrun.tool_environment(app.environ, app.secrets()),
        max_turns=max_turns or loaded.get("max_turns") or toolrun.DEFAULT_MAX_TURNS,
        notify=lambda line: output.progress(line, app.io), accept=check)

    def transcript(final: Optional[str]) -> Dict[str, Any]:
        done = {"model": chosen_model, "turns": loop.turns, "final": final, "messages": history,
                "tool_runs": [r.to_dict() for r in loop.runs]}
        if check is not None:  # the accepted JSON value (null when none was)
            done["value"] = check.value
        return done

    try:
        final = loop.run(history)
    except InternCliError:
        # What did run is still worth having (the API failing after a tool ran, too): the
        # transcript on stdout, the error on stderr with its own exit code.
        if as_json:
            output.write_json(transcript(None), app.io.stdout)
        raise
    if as_json:
        output.write_json(transcript(final.get("content", "")), app.io.stdout)
    elif check is not None:
        from interncli.safetext import escape_json_text

        app.io.stdout.write(escape_json_text(structured.dump_value(check.value)) + "\n")
        app.io.stdout.flush()
    else:
        content = final.get("content") or ""
        if app.io.stdout_tty:  # a terminal would act on the model's escapes; a pipe gets the bytes
            from interncli.safetext import escape_controls

            content = escape_controls(content)
        app.io.stdout.write(content if content.endswith("\n") else content + "\n")
        app.io.stdout.flush()


def final_check(app: AppContext, schema: Optional[str], retries: Optional[int]) -> Optional[SchemaCheck]:
    """The check of the final answer against --schema, or None without one. Never sent as
    response_format: that would constrain the turns that call tools too."""
    from interncli import structured
    from interncli.commands.schema import DEFAULT_RETRIES, SchemaCheck, retries_without_schema

    if schema is None:
        if retries is not None:
            raise retries_without_schema()
        return None
    return SchemaCheck(app, structured.load_schema(schema), DEFAULT_RETRIES if retries is None else retries)


def make_approver(yes: bool, environ: Mapping[str, str], io: IOStreams) -> toolrun.Approve:
    """Fail closed: --yes approves all; else, on a terminal and without CI set, a [y/N] prompt
    showing exactly what would run (a no there is a ToolError saying it was declined); else
    nothing runs."""
    from interncli import toolrun

    def approve(call: toolrun.ToolCall, argv: List[str]) -> bool:
        if yes:
            return True
        if environ.get("CI"):  # a CI job may have a terminal, but nobody to answer it
            raise ToolError("the call of {} was not approved: CI is set, so nothing is asked and nothing "
                            "ran".format(toolrun.shown(call.name)),
                            hint="Pass --yes to approve every call, or unset CI to be asked on a terminal.")
        if not io.interactive:
            return False
        text = toolrun.approval_text(call, argv)
        if text is None:  # what cannot be shown whole cannot be approved
            raise ToolError("the call of {} is too long to show whole on the prompt ({} bytes of arguments): "
                            "nothing ran".format(toolrun.shown(call.name), len(call.stdin_text().encode("utf-8"))),
                            hint="Pass --yes to approve every call without seeing it.")
        if confirm(io, text):
            return True
        # Said here, not in toolrun: the person was asked and said no, so "run it on a terminal"
        # (toolrun's hint when nobody could be asked) would be wrong.
        raise ToolError("the call of {} was not approved: you declined it at the prompt, so nothing "
                        "ran".format(toolrun.shown(call.name)),
                        hint="Answer y to run a call, or pass --yes to approve every call.")

    return approve
