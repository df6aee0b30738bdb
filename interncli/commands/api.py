"""``interncli api ...``: the openai CLI's command lines, unchanged (openai 2.34.0's flags, request
bodies and stdout): chat.completions.create, completions.create, models.list, models.retrieve."""

from __future__ import annotations

from typing import Any, Dict

import click

from interncli.commands.chat import chat_options, create_completion, finite, show_dry_run
from interncli.commands.common import Group, Integer, Number, open_transport, pass_app, require_token, with_retries
from interncli.commands.completers import complete_models
from interncli.context import AppContext
from interncli.errors import InternCliError, UsageError


@click.group(cls=Group)
def api() -> None:
    """Direct API calls, spelled as the openai CLI spells them."""


@api.command("chat.completions.create")
@chat_options
@pass_app
def api_chat_completions_create(app: AppContext, **opts: Any) -> None:
    """Create a chat completion (same flags as `interncli chat create`).

    An `openai api chat.completions.create ...` command line works with `openai` replaced by
    `interncli`: the same request body (including "stream"), the same output.
    """
    create_completion(app, opts, always_send_stream=True)


@api.command("models.list")
@pass_app
def api_models_list(app: AppContext) -> None:
    """List the models the server offers, each as openai 2.34.0 prints one: a JSON object
    (id, created, object, owned_by first). `interncli models list` is the one-id-a-line form."""
    from interncli import output
    from interncli.client import ChatClient

    require_token(app)
    listing = with_retries(app, ChatClient(open_transport(app)).list_models)
    for model in listing["data"]:
        output.write_model(model, app.io)


@api.command("models.retrieve")
@click.option("-i", "--id", "model_id", required=True, metavar="ID", help="The model ID.")
@pass_app
def api_models_retrieve(app: AppContext, model_id: str) -> None:
    """Show one model (GET /models/ID) as openai 2.34.0 prints it. LMDeploy has no such route:
    that is said, exit 5 (`api models.list` shows every model)."""
    from interncli import output
    from interncli.client import ChatClient, model_path

    model_path(model_id)  # a bad id is a usage error before anything is sent
    require_token(app)
    client = ChatClient(open_transport(app))
    output.write_model(with_retries(app, lambda: client.retrieve_model(model_id)), app.io)


@api.command("completions.create")
@click.option("-m", "--model", metavar="MODEL", shell_complete=complete_models,
              help="The model to use [default: the profile's, else intern-latest].")
@click.option("-p", "--prompt", metavar="TEXT", help="An optional prompt to complete from (none: null is sent, as "
                                                    "the openai CLI sends it).")
@click.option("--stream", is_flag=True, help="Stream tokens as they're ready.")
@click.option("-M", "--max-tokens", "--max_tokens", "max_tokens", type=Integer(),
              help="The maximum number of tokens to generate.")
@click.option("-t", "--temperature", type=Number(), callback=finite,
              help="Sampling temperature: higher takes more risks, 0 is argmax sampling. Not with --top_p.")
@click.option("-P", "--top_p", "--top-p", "top_p", type=Number(), callback=finite,
              help="Nucleus sampling: only the tokens of the top_p probability mass. Not with --temperature.")
@click.option("-n", "--n", "n", type=Integer(), help="How many completions to generate for the prompt.")
@click.option("--logprobs", type=Integer(), help="Include the log probabilities of the N most likely tokens.")
@click.option("--best_of", "--best-of", "best_of", type=Integer(),
              help="Generate N completions server-side and return the best (cannot be streamed).")
@click.option("--echo", is_flag=True, help="Echo back the prompt in addition to the completion.")
@click.option("--frequency_penalty", "--frequency-penalty", "frequency_penalty", type=Number(), callback=finite,
              help="Positive values penalise tokens by how often they appeared so far.")
@click.option("--presence_penalty", "--presence-penalty", "presence_penalty", type=Number(), callback=finite,
              help="Positive values penalise tokens that appeared so far at all.")
@click.option("--suffix", metavar="TEXT", help="The suffix that comes after a completion of inserted text.")
@click.option("--stop", metavar="S", help="A stop sequence at which to stop generating tokens.")
@click.option("--user", metavar="ID", help="A unique identifier representing your end-user.")
@click.option("--dry-run", is_flag=True, help="Print the request instead of sending it.")
@pass_app
def api_completions_create(app: AppContext, **opts: Any) -> None:
    """Create a text completion (POST /completions), for private LMDeploy servers.

    An `openai api completions.create ...` command line works with `openai` replaced by
    `interncli`: the same request body, the same output. The official service has no
    completions endpoint: use `interncli chat create` there.

    \b
    Examples:
      interncli -b http://127.0.0.1:23333/v1 api completions.create -m MODEL -p "Once upon a time" -M 32
      interncli -b http://127.0.0.1:23333/v1 api completions.create -m MODEL -p "def fib(n):" --stream
    """
    from interncli.client import COMPLETION_FIELDS, COMPLETIONS_PATH, build_completion_body

    if opts["stream"] and opts["n"] is not None and opts["n"] > 1:
        raise UsageError("Can't stream completions with n>1 (as in the openai CLI)",
                         hint="Drop --stream to get all {} completions, each under its header.".format(opts["n"]))
    if app.settings.api == "intern":
        raise UsageError("the official service has no text completions endpoint (/completions)",
                         hint="Use interncli chat create -g user PROMPT there; completions.create is for private "
                              "LMDeploy servers (-b http://HOST:23333/v1).")
    fields = {key: opts[key] for key in COMPLETION_FIELDS}
    body = build_completion_body(opts["model"] or app.settings.model, opts["prompt"], fields)
    if opts["dry_run"]:
        show_dry_run(app, body, as_json=False, path=COMPLETIONS_PATH)
        return
    require_token(app)
    send_text_completion(app, body)


def send_text_completion(app: AppContext, body: Dict[str, Any]) -> None:
    """Send a text completion and print it as openai 2.34.0's CLI does, with chat's retries,
    checks and warnings (cut at max_tokens, empty, fewer choices than -n) on stderr."""
    from interncli import output
    from interncli.client import ChatClient, StreamAssembler

    client = ChatClient(open_transport(app))
    if not body.get("stream"):
        reply = with_retries(app, lambda: client.complete(body))
        output.write_text_completion(reply, app.io)
        output.warn_about_reply(reply, app.io, app.redact)
        output.warn_if_fewer(len(reply["choices"]), body.get("n"), app.io)
        return
    printer = output.TextCompletionPrinter(app.io)

    def attempt() -> StreamAssembler:
        # A fresh assembler each try: a retried stream starts the reply again from nothing.
        assembler = StreamAssembler()
        for chunk in client.stream_text(body):
            assembler.add(chunk)
            printer.show(chunk, assembler)
        return assembler

    try:
        assembler = with_retries(app, attempt, output_started=lambda: printer.started)
    except InternCliError:
        printer.abort()
        raise
    printer.finish(assembler)
    output.warn_if_fewer(len(assembler.choices), body.get("n"), app.io)
