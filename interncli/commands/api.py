"""``interncli api chat.completions.create``: the openai CLI's command line, unchanged."""

from __future__ import annotations

from typing import Any

import click

from interncli.commands.chat import chat_options, create_completion
from interncli.commands.common import Group, pass_app
from interncli.context import AppContext


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
