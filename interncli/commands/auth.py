"""``interncli auth``: keep the token in the OS keyring (or, if asked, a 0600 file), per profile."""

from __future__ import annotations

from typing import Any, Dict

import click

from interncli import credentials, output
from interncli.commands.common import (
    Group,
    ask_secret,
    json_option,
    lookup_credential,
    pass_app,
    profile_option,
    read_stdin,
)
from interncli.context import AppContext
from interncli.errors import AuthError, UsageError


@click.group(cls=Group)
def auth() -> None:
    """Log in and out: the token is kept in the OS keyring, per profile.

    Lookup order: -k, then INTERN_API_KEY, then the OS keyring, then the plain-text
    credentials.yaml written only by `auth login --insecure-storage`.

    A stored token belongs to the profile and to the host of the base URL in effect at
    login: a base URL on another host (by -b, INTERN_BASE_URL or a later `config set
    base_url`) gets no stored token, only one from -k or INTERN_API_KEY.
    """


def show_file_warnings(app: AppContext) -> None:
    """Before the plain-text file is read to change it: say if other users can read it."""
    for warning in credentials.file_warnings(app.config_dir):
        output.warn(warning, app.io)


@auth.command("login")
@click.option("--with-token", is_flag=True, help="Read the token from stdin instead of a prompt.")
@click.option("--insecure-storage", is_flag=True,
              help="Keep the token in a plain-text file (mode 0600) instead of the OS keyring.")
@profile_option
@pass_app
def auth_login(app: AppContext, with_token: bool, insecure_storage: bool) -> None:
    """Store a token for the profile, for the host of the base URL in effect.

    \b
    Examples:
      interncli auth login                       # asks for the token, hidden
      echo "$TOKEN" | interncli auth login --with-token
      interncli auth login --profile local --with-token < token.txt
    """
    profile = app.profile_name()
    if with_token:
        raw = read_stdin(app.io.stdin)
    elif app.io.stdin_tty:
        raw = ask_secret(app.io, "Paste your Intern API token")
    else:
        raise UsageError("no terminal to ask for the token on",
                         hint="Pipe it in: echo \"$TOKEN\" | interncli auth login --with-token")
    token = credentials.clean_token(raw)
    app.input_tokens.append(raw)  # a keyring backend's error may quote what it was given
    if not token:
        raise UsageError("no token given", hint="Get a token from the Intern website, then log in again.")
    # Bad input is a usage error (exit 2), like an empty one; exit 3 stays for a keyring that fails.
    credentials.check_token(token, "the login input", error=UsageError)
    host = app.token_hosts()[0]  # the token belongs to the host of the base URL in effect now
    if app.environ.get("INTERN_API_KEY", "").strip():
        output.warn("INTERN_API_KEY is set and takes precedence over the stored token", app.io)
    path = credentials.credentials_path(app.config_dir)
    show_file_warnings(app)
    if insecure_storage:
        credentials.file_set(app.config_dir, profile, token)
        credentials.record_host(app.config_dir, profile, host)
        output.inform("token for profile {!r} stored in {} (plain text, readable only by you), for {}".format(
            profile, path, host), app.io)
        # An older token in the keyring would come first in the lookup: it goes.
        try:
            if credentials.keyring_delete(profile, app.environ):
                output.inform("removed the older token from the OS keyring", app.io)
        except credentials.KeyringUnavailable:
            pass
        return
    credentials.keyring_set(profile, token, app.environ)
    credentials.record_host(app.config_dir, profile, host)
    output.inform("token for profile {!r} stored in the OS keyring, for {}".format(profile, host), app.io)
    try:  # no plain-text copy should linger
        if credentials.file_delete(app.config_dir, profile):
            output.inform("removed the plain-text copy from {}".format(path), app.io)
    except UsageError as exc:
        output.warn("the token is stored, but {}".format(exc.message), app.io)


@auth.command("status")
@click.option("--show-token", is_flag=True, help="Show the whole token instead of a masked one.")
@json_option
@profile_option
@pass_app
def auth_status(app: AppContext, show_token: bool, as_json: bool) -> None:
    """Show the profile, base URL, and where the token comes from (exit 3 if there is none)."""
    settings = app.settings
    credential = lookup_credential(app)
    token = credential.token
    status: Dict[str, Any] = {
        "profile": settings.profile,
        "base_url": settings.base_url,
        "token_source": credential.source if token else None,
        "token": (token if show_token else credentials.mask(token)) if token else None,
        "keyring": credentials.keyring_name(app.environ),
        # The host a stored token belongs to, when it is not sent to this base URL's host.
        "withheld_for": credential.withheld,
    }
    if as_json:
        output.write_json(status, app.io.stdout)
    else:
        source = credentials.SOURCE_NAMES.get(credential.source, credential.source)
        rows = [("profile", settings.profile), ("base URL", settings.base_url),
                ("token", "{} (from {})".format(status["token"], source) if token
                 else "none (the stored token is for {})".format(credential.withheld) if credential.withheld
                 else "none"),
                ("keyring", status["keyring"])]
        for label, value in rows:
            click.echo("{:<9} {}".format(label, value), file=app.io.stdout)
    if not token:
        raise missing_token(app, "not logged in: ", "Run `interncli auth login`, or set INTERN_API_KEY.")


@auth.command("token")
@profile_option
@pass_app
def auth_token(app: AppContext) -> None:
    """Print the token alone, for scripts: TOKEN=$(interncli auth token)."""
    credential = lookup_credential(app)
    if not credential.token:
        raise missing_token(app, "", "Run `interncli auth login` first.")
    click.echo(credential.token, file=app.io.stdout)


def missing_token(app: AppContext, lead: str, hint: str) -> AuthError:
    """Why there is no token: the stored one is for another host, the keyring failed, or none."""
    return credentials.missing_token(app.credential, app.profile_name(), app.token_hosts()[0], hint, lead=lead)


@auth.command("logout")
@profile_option
@pass_app
def auth_logout(app: AppContext) -> None:
    """Remove the profile's token from the OS keyring and the plain-text file."""
    profile = app.profile_name(must_exist=False)
    removed = []
    problem = None
    try:
        if credentials.keyring_delete(profile, app.environ):
            removed.append("the OS keyring")
    except credentials.KeyringUnavailable as exc:
        problem = exc
    try:
        show_file_warnings(app)
        if credentials.file_delete(app.config_dir, profile):
            removed.append(credentials.credentials_path(app.config_dir))
    except UsageError as exc:
        if not removed:
            raise
        output.warn(exc.message, app.io)
    credentials.record_host(app.config_dir, profile, None)
    if removed:
        output.inform("removed the token of profile {!r} from {}".format(profile, " and ".join(removed)), app.io)
    elif problem is None or problem.absent:  # nothing to remove is success; no keyring holds nothing
        output.inform("no stored token for profile {!r}".format(profile), app.io)
    if problem is not None and not problem.absent:
        # A keyring that is there but fails may still hold a token: say so, and still exit 0,
        # as everything that could be checked is clean (a stuck keyring must not fail a CI job).
        output.warn("{}; a token stored there, if any, is still there".format(problem.message), app.io)
    if app.environ.get("INTERN_API_KEY", "").strip():
        output.inform("INTERN_API_KEY is still set in this environment and still gives a token", app.io)
