"""``interncli models list``: the models the server offers."""

from __future__ import annotations

import click

from interncli.commands.common import Group, json_option, open_transport, pass_app, require_token, with_retries
from interncli.context import AppContext


@click.group(cls=Group)
def models() -> None:
    """Models."""


@models.command("list")
@json_option
@pass_app
def models_list(app: AppContext, as_json: bool) -> None:
    """List the models the server offers, one id per line."""
    from interncli import output
    from interncli.client import ChatClient

    require_token(app)
    client = ChatClient(open_transport(app))
    listing = with_retries(app, client.list_models)
    if as_json:
        output.write_json(listing, app.io.stdout)
    else:
        output.write_lines((str(m.get("id", "")) for m in listing["data"] if isinstance(m, dict)), app.io)
