"""The completers of option values (profiles, models, roles): they read only the config file,
never the network or the keyring, since they run on every Tab."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import click

from interncli.context import AppContext
from interncli.errors import InternCliError

# The variable click's completion scripts set when they call interncli back (from the prog name).
COMPLETE_VAR = "_INTERNCLI_COMPLETE"


def _completion_config(ctx: click.Context) -> Tuple[Dict[str, Any], str]:
    """The config file and the profile named so far on the command line, for completion."""
    from interncli import config
    from interncli.context import choose_profile

    app = ctx.find_object(AppContext)
    if app is None:
        return {}, "default"
    options = dict(ctx.find_root().params)
    options.update({k: v for k, v in ctx.params.items() if k == "profile" and v})
    cfg = config.load_config(app.config_dir)
    return cfg, choose_profile(options, app.environ, cfg)


def complete_profiles(ctx: click.Context, param: click.Parameter, incomplete: str) -> List[str]:
    """Profile names from the config file (no network; nothing if the file is broken)."""
    from interncli import config

    try:
        cfg, _ = _completion_config(ctx)
    except InternCliError:
        return []
    return [name for name in dict.fromkeys(["default"] + config.profile_names(cfg)) if name.startswith(incomplete)]


def complete_models(ctx: click.Context, param: click.Parameter, incomplete: str) -> List[str]:
    """Models the active profile names (its model and models), never asking the server."""
    from interncli import config
    from interncli.config import DEFAULT_MODEL

    try:
        cfg, profile = _completion_config(ctx)
        settings = config.profile_settings(cfg, profile, "config.yaml")
    except InternCliError:
        settings = {}
    names = list(settings.get("models", [])) + [settings.get("model", DEFAULT_MODEL), DEFAULT_MODEL]
    return [name for name in dict.fromkeys(names) if name.startswith(incomplete)]


def complete_roles(ctx: click.Context, param: click.Parameter, incomplete: str) -> List[str]:
    """Roles for the first value of ``-g ROLE CONTENT``, nothing for the text. click tells a
    completion function neither which of an option's values is being typed nor the words so
    far, so the words are read back the way click's own shell classes read them (with the root
    command from the context: a command never imports the root)."""
    import os

    from click.shell_completion import get_completion_class

    from interncli.conversation import ROLES

    # click's shell classes read their words (COMP_WORDS, ...) from os.environ themselves.
    instruction = os.environ.get(COMPLETE_VAR, "")
    cls = get_completion_class(instruction.partition("_")[0])
    if cls is None:
        return []
    args, _ = cls(ctx.find_root().command, {}, "interncli", COMPLETE_VAR).get_completion_args()
    starts = [i for i, word in enumerate(args) if word in ("-g", "--message")]
    if not starts or len(args) - starts[-1] - 1 != 0:
        return []
    return [role for role in ROLES if role.startswith(incomplete)]
