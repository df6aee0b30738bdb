"""``interncli auth``: keep the token in the OS keyring (or, if asked, a 0600 file), per profile."""

from __future__ import annotations

import sys
from typing import Any, Dict

import click

from interncli import credentials
from interncli.commands.common import Group, json_option, pass_app, profile_option, read_stdin
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


def info(message: str) -> None:
    """A message for the person, on stderr."""
    click.echo("interncli: " + message, err=True)


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
    profile = app.profile()
    if with_token:
        raw = read_stdin(sys.stdin)
    elif sys.stdin is not None and sys.stdin.isatty():
        raw = click.prompt("Paste your Intern API token", hide_input=True, err=True, default="",
                           show_default=False)
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
        click.echo("interncli: warning: INTERN_API_KEY is set and takes precedence over the stored token",
                   err=True)
    path = credentials.credentials_path(app.config_dir)
    if insecure_storage:
        credentials.file_set(app.config_dir, profile, token)
        credentials.record_host(app.config_dir, profile, host)
        info("token for profile {!r} stored in {} (plain text, readable only by you), for {}".format(
            profile, path, host))
        # An older token in the keyring would come first in the lookup: it goes.
        try:
            if credentials.keyring_delete(profile, app.environ):
                info("removed the older token from the OS keyring")
        except credentials.KeyringUnavailable:
            pass
        return
    credentials.keyring_set(profile, token, app.environ)
    credentials.record_host(app.config_dir, profile, host)
    info("token for profile {!r} stored in the OS keyring, for {}".format(profile, host))
    try:  # no plain-text copy should linger
        if credentials.file_delete(app.config_dir, profile):
            info("removed the plain-text copy from {}".format(path))
    except UsageError as exc:
        click.echo("interncli: warning: the token is stored, but {}".format(exc.message), err=True)


@auth.command("status")
@click.option("--show-token", is_flag=True, help="Show the whole token instead of a masked one.")
@json_option
@profile_option
@pass_app
def auth_status(app: AppContext, show_token: bool, as_json: bool) -> None:
    """Show the profile, base URL, and where the token comes from (exit 3 if there is none)."""
    settings = app.settings
    credential = app.credential
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
        from interncli import output

        output.write_json(status, sys.stdout)
    else:
        source = credentials.SOURCE_NAMES.get(credential.source, credential.source)
        rows = [("profile", settings.profile), ("base URL", settings.base_url),
                ("token", "{} (from {})".format(status["token"], source) if token
                 else "none (the stored token is for {})".format(credential.withheld) if credential.withheld
                 else "none"),
                ("keyring", status["keyring"])]
        for label, value in rows:
            click.echo("{:<9} {}".format(label, value))
    if not token:
        raise missing_token(app, "not logged in: ", "Run `interncli auth login`, or set INTERN_API_KEY.")


@auth.command("token")
@profile_option
@pass_app
def auth_token(app: AppContext) -> None:
    """Print the token alone, for scripts: TOKEN=$(interncli auth token)."""
    credential = app.credential
    if not credential.token:
        raise missing_token(app, "", "Run `interncli auth login` first.")
    click.echo(credential.token)


def missing_token(app: AppContext, lead: str, hint: str) -> AuthError:
    """Why there is no token: the stored one is for another host, the keyring failed, or none."""
    credential, profile = app.credential, app.profile()
    if credential.withheld is not None:
        host = app.token_hosts()[0]
        return AuthError("{}no token for {}: {}".format(lead, host, credentials.withheld_message(
            profile, credential.withheld, host)), hint=credentials.WITHHELD_HINT)
    problem = credential.keyring_problem
    return AuthError("{}no token for profile {!r}{}".format(lead, profile, ": " + problem.message if problem else ""),
                     hint=problem.hint if problem else hint)


@auth.command("logout")
@profile_option
@pass_app
def auth_logout(app: AppContext) -> None:
    """Remove the profile's token from the OS keyring and the plain-text file."""
    profile = app.profile_name()
    removed = []
    problem = None
    try:
        if credentials.keyring_delete(profile, app.environ):
            removed.append("the OS keyring")
    except credentials.KeyringUnavailable as exc:
        problem = exc
    try:
        if credentials.file_delete(app.config_dir, profile):
            removed.append(credentials.credentials_path(app.config_dir))
    except UsageError as exc:
        if not removed:
            raise
        click.echo("interncli: warning: " + exc.message, err=True)
    credentials.record_host(app.config_dir, profile, None)
    if removed:
        info("removed the token of profile {!r} from {}".format(profile, " and ".join(removed)))
    elif problem is None or problem.absent:  # nothing to remove is success; no keyring holds nothing
        info("no stored token for profile {!r}".format(profile))
    if problem is not None and not problem.absent:
        # A keyring that is there but fails may still hold a token: say so, and still exit 0,
        # as everything that could be checked is clean (a stuck keyring must not fail a CI job).
        click.echo("interncli: warning: {}; a token stored there, if any, is still there".format(problem.message),
                   err=True)
    if app.environ.get("INTERN_API_KEY", "").strip():
        info("INTERN_API_KEY is still set in this environment and still gives a token")
