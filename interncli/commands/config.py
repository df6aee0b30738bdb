"""``interncli config``: the profiles of config.yaml (base URL, model, timeout, retries,
proxy, CA bundle), validated and written atomically."""

from __future__ import annotations

import sys
from typing import Any

import click

from interncli import config as configfile
from interncli.commands.common import Group, json_option, pass_app, profile_option
from interncli.context import AppContext
from interncli.errors import InternCliError
from interncli.files import locked


@click.group(cls=Group)
def config() -> None:
    """Settings, kept per profile in config.yaml.

    \b
    Keys: base_url, model, timeout, max_retries, proxy, ca_bundle (per profile),
    and default_profile (for the whole file).
    A private LMDeploy server is a profile:
      interncli config set --profile local base_url http://127.0.0.1:23333/v1
      interncli config set --profile local model internlm2_5-7b-chat
      interncli --profile local chat create -g user hi
    """


@config.command("path")
@pass_app
def config_path(app: AppContext) -> None:
    """Print where the config file is."""
    click.echo(configfile.config_path(app.config_dir))


@config.command("get")
@click.argument("key")
@profile_option
@pass_app
def config_get(app: AppContext, key: str) -> None:
    """Print the value a profile stores for KEY (exit 1 if it stores none)."""
    configfile.check_key(key)
    cfg = configfile.load_config(app.config_dir)
    profile = app.profile_name()
    if key == "default_profile":
        value = cfg.get(key)
    else:
        value = ((cfg.get("profiles") or {}).get(profile) or {}).get(key)
    if value is None:
        raise InternCliError("{} is not set{}".format(
            key, "" if key == "default_profile" else " in profile {!r}".format(profile)),
            hint="Set it with: interncli config set {} VALUE".format(key))
    click.echo(",".join(value) if isinstance(value, list) else value)


@config.command("set")
@click.argument("key")
@click.argument("value")
@profile_option
@pass_app
def config_set(app: AppContext, key: str, value: str) -> None:
    """Set KEY to VALUE in a profile (created if new)."""
    with locked(configfile.config_path(app.config_dir)):
        cfg = configfile.load_config(app.config_dir)
        parsed = configfile.parse_setting(cfg, key, value)
        configfile.save_config(app.config_dir, configfile.with_setting(cfg, app.profile_name(), key, parsed))


@config.command("unset")
@click.argument("key")
@profile_option
@pass_app
def config_unset(app: AppContext, key: str) -> None:
    """Remove KEY from a profile, so the default applies again."""
    configfile.check_key(key)
    with locked(configfile.config_path(app.config_dir)):
        cfg = configfile.load_config(app.config_dir)
        configfile.save_config(app.config_dir, configfile.with_setting(cfg, app.profile_name(), key, None))


@config.command("list")
@json_option
@profile_option
@pass_app
def config_list(app: AppContext, as_json: bool) -> None:
    """Show the settings in effect for a profile, and where each comes from."""
    settings = app.settings
    values = settings.values()
    if as_json:
        from interncli import output

        output.write_json({"profile": settings.profile, "settings": values, "sources": settings.sources,
                           "config_file": configfile.config_path(app.config_dir),
                           "profiles": configfile.profile_names(configfile.load_config(app.config_dir))},
                          sys.stdout)
        return
    click.echo("{:<12} {}".format("profile", settings.profile))
    for key, value in values.items():
        shown: Any = "" if value is None else ",".join(value) if isinstance(value, list) else value
        click.echo("{:<12} {:<40} ({})".format(key, str(shown), settings.sources[key]))
