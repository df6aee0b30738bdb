"""``interncli config``: the settings of config.yaml's profiles (those of config.SETTINGS
with a key), validated and written atomically."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import click

from interncli import config as configfile
from interncli.commands.common import Group, json_option, pass_app, profile_option
from interncli.context import AppContext, choose_profile
from interncli.errors import InternCliError
from interncli.files import locked

HELP = """Settings, kept per profile in config.yaml.

Keys: {} (per profile), and {} (for the whole file).

\b
allow_http true lets the token go over plain http:// to another machine,
with a warning (INTERN_ALLOW_HTTP=1 does the same for one run).
A private LMDeploy server is a profile:
  interncli config set --profile local base_url http://127.0.0.1:23333/v1
  interncli config set --profile local model internlm2_5-7b-chat
  interncli --profile local chat create -g user hi
""".format(", ".join(configfile.PARSERS), ", ".join(configfile.FILE_KEYS))


@click.group(cls=Group, help=HELP)
def config() -> None:
    """The config group; its --help is HELP, whose keys come from config.SETTINGS."""


def existing_profile(app: AppContext, cfg: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """The profile asked for and its entry: a profile named but not in the file, or one whose
    entry is not a mapping, is a usage error (exit 2) listing the known ones."""
    name = choose_profile(app.options, app.environ, cfg)
    configfile.check_profile(cfg, name)
    return name, configfile.profile_entry(cfg, name, configfile.config_path(app.config_dir))


def shown(key: str, value: Any) -> Any:
    """A setting fit to print: a proxy's password and credential headers masked, a whole number
    without ``.0``."""
    if key == "proxy" and isinstance(value, str):
        return configfile.mask_url(value)
    if key == "headers" and isinstance(value, dict):
        return {k: "***" if configfile.is_secret_header(k) else v for k, v in value.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def keep_token_host(app: AppContext, cfg: Dict[str, Any], profile: str) -> None:
    """Before a profile's base URL changes: a token stored without a record of its host (by an
    older interncli) belongs to the profile's base URL, so record that host now, or the token
    would follow the base URL to the new host. Recorded whether or not a token is stored (the
    keyring is not asked: it may be slow); `auth login` records anew."""
    from interncli import credentials
    from interncli.config import DEFAULT_BASE_URL

    if credentials.recorded_host(app.config_dir, profile) is None:
        entry = configfile.profile_entry(cfg, profile, configfile.config_path(app.config_dir))
        host = configfile.host_of(str(entry.get("base_url") or DEFAULT_BASE_URL))
        if host and host.isprintable():  # a broken old value is no host to keep
            credentials.record_host(app.config_dir, profile, host)


@config.command("path")
@profile_option
@pass_app
def config_path(app: AppContext) -> None:
    """Print where the config file is (the same for every profile; a profile named must exist)."""
    path = configfile.config_path(app.config_dir)
    if app.options.get("profile") is not None or app.environ.get("INTERN_PROFILE", "").strip():
        try:
            cfg = configfile.load_config(app.config_dir)
        except InternCliError:
            cfg = None  # a broken file: its path is what the person needs to fix it
        if cfg is not None:
            existing_profile(app, cfg)
    click.echo(path, file=app.io.stdout)


@config.command("get")
@click.argument("key")
@profile_option
@pass_app
def config_get(app: AppContext, key: str) -> None:
    """Print the value a profile stores for KEY (exit 1 if it stores none)."""
    configfile.check_key(key)
    cfg = configfile.load_config(app.config_dir)
    # default_profile belongs to the whole file: no profile is checked, so a bad one can be fixed.
    profile, entry = existing_profile(app, cfg) if key != "default_profile" else ("", cfg)
    value = entry.get(key)
    if value is None:
        raise InternCliError("{} is not set{}".format(
            key, "" if key == "default_profile" else " in profile {!r}".format(profile)),
            hint="Set it with: interncli config set {} VALUE".format(key))
    from interncli.output import escape_line_for_terminal

    # As stored, unchecked (so that a bad value can be seen): escaped on a terminal.
    click.echo(escape_line_for_terminal(configfile.shown_value(shown(key, value)), app.io), file=app.io.stdout)


@config.command("set")
@click.argument("key")
@click.argument("value")
@profile_option
@pass_app
def config_set(app: AppContext, key: str, value: str) -> None:
    """Set KEY to VALUE in a profile (created if new)."""
    with locked(configfile.config_path(app.config_dir)):
        cfg = configfile.load_config(app.config_dir)
        profile = choose_profile(app.options, app.environ, cfg)  # a new name creates the profile
        if key != "default_profile":
            configfile.profile_entry(cfg, profile, configfile.config_path(app.config_dir))
        parsed = configfile.parse_setting(cfg, key, value)
        if key == "base_url":
            keep_token_host(app, cfg, profile)
        configfile.save_config(app.config_dir, configfile.with_setting(cfg, profile, key, parsed))


@config.command("unset")
@click.argument("key")
@profile_option
@pass_app
def config_unset(app: AppContext, key: str) -> None:
    """Remove KEY from a profile, so the default applies again (or an unknown KEY from the file)."""
    if key not in configfile.PARSERS and key not in configfile.FILE_KEYS:
        remove_unknown_key(app, key)
        return
    with locked(configfile.config_path(app.config_dir)):
        cfg = configfile.load_config(app.config_dir)
        profile = existing_profile(app, cfg)[0] if key != "default_profile" else ""
        if key == "base_url":
            keep_token_host(app, cfg, profile)
        configfile.save_config(app.config_dir, configfile.with_setting(cfg, profile, key, None))


def remove_unknown_key(app: AppContext, key: str) -> None:
    """Remove a key interncli does not know, which makes most commands refuse the file: from the
    top of the file if it is there, else from the profile. A key in neither is refused as unknown."""
    with locked(configfile.config_path(app.config_dir)):
        cfg = configfile.load_config(app.config_dir)
        stray = configfile.stray_key(cfg, key)
        if stray is not None:
            configfile.save_config(app.config_dir, {k: v for k, v in cfg.items() if k != stray})
            return
        profile, entry = existing_profile(app, cfg)
        if key not in entry:
            configfile.check_key(key)
        configfile.save_config(app.config_dir, configfile.with_setting(cfg, profile, key, None))


@config.command("list")
@json_option
@profile_option
@pass_app
def config_list(app: AppContext, as_json: bool) -> None:
    """Show the settings in effect for a profile, and where each comes from."""
    settings = app.settings
    values = {key: shown(key, value) for key, value in settings.values().items()}
    # The proxy in effect, also one a variable sets (requests reads those itself).
    values["proxy"] = shown("proxy", configfile.proxy_for(settings.base_url, settings.proxy, app.environ))
    if as_json:
        from interncli import output

        output.write_json({"profile": settings.profile, "settings": values, "sources": settings.sources,
                           "config_file": configfile.config_path(app.config_dir),
                           "profiles": configfile.profile_names(app.config_file())},
                          app.io.stdout)
        return
    from interncli.output import escape_line_for_terminal

    click.echo("{:<12} {}".format("profile", escape_line_for_terminal(settings.profile, app.io)), file=app.io.stdout)
    for key, value in values.items():
        text = "" if value is None else configfile.shown_value(value)
        click.echo("{:<12} {:<40} ({})".format(key, escape_line_for_terminal(text, app.io), settings.sources[key]),
                   file=app.io.stdout)
