"""The API token: where it is looked up (``-k`` > ``INTERN_API_KEY`` > OS keyring > the
plain-text file the user chose), where it is kept, and how it is shown. The only module that
imports keyring."""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

from interncli.errors import AuthError, UsageError

SERVICE = "interncli"
CREDENTIALS_FILE = "credentials.yaml"
DEFAULT_KEYRING_TIMEOUT = 10.0
SOURCE_NAMES = {"flag": "the -k flag", "env": "INTERN_API_KEY", "keyring": "the OS keyring",
                "file": CREDENTIALS_FILE}
WAY_OUT = ("Set INTERN_API_KEY for this shell or CI job, or keep the token in a file readable only "
           "by you: interncli auth login --insecure-storage")


class KeyringUnavailable(AuthError):
    """The OS keyring is missing, locked, broken or not answering: not a problem of the token."""

    default_hint = WAY_OUT


class Credential:
    """A token (or none), where it came from, and why the keyring could not be asked, if so."""

    __slots__ = ("token", "source", "keyring_problem")

    def __init__(self, token: Optional[str], source: str, keyring_problem: Optional[KeyringUnavailable] = None):
        self.token, self.source, self.keyring_problem = token, source, keyring_problem

    def __repr__(self) -> str:  # never the token
        return "Credential(source={!r})".format(self.source)


def clean_token(raw: str) -> str:
    """A token with surrounding whitespace and a pasted ``Bearer `` prefix removed."""
    token = raw.strip()
    if token[:6].lower() == "bearer" and (len(token) == 6 or token[6].isspace()):
        token = token[6:].strip()
    return token


def check_token(token: str, source: str) -> str:
    """A token fit for an HTTP header: one run of printable ASCII (a token file wrapped over
    several lines, or with stray characters, is refused without being echoed)."""
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token) or len(token) < 4:
        raise AuthError("the token from {} is not valid: it must be one line of printable ASCII "
                        "without spaces, at least 4 characters".format(SOURCE_NAMES.get(source, source)),
                        hint="Copy the token again, on one line, from the Intern website.")
    return token


def mask(token: str) -> str:
    """Enough of a token to recognise it, never enough to use it: ``eyJ0…Sl``."""
    return token[:4] + "…" + token[-2:] if len(token) >= 12 else "****"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (as given, and cleaned) replaced by ``***``."""
    for raw in secrets:
        for secret in {raw, clean_token(raw)}:
            if len(secret) >= 4:
                text = text.replace(secret, "***")
    return text


def lookup(flag: Optional[str], environ: Mapping[str, str], profile: str, config_dir: str) -> Credential:
    """The token in the documented order; the keyring is asked only when no flag or variable gives one."""
    if flag and clean_token(flag):
        return Credential(check_token(clean_token(flag), "flag"), "flag")
    env = environ.get("INTERN_API_KEY", "")
    if clean_token(env):
        return Credential(check_token(clean_token(env), "env"), "env")
    problem = None
    try:
        stored = keyring_get(profile, environ)
        if stored:
            return Credential(check_token(stored, "keyring"), "keyring")
    except KeyringUnavailable as exc:
        problem = exc
    stored = file_tokens(config_dir).get(profile)
    if stored:
        return Credential(check_token(stored, "file"), "file", problem)
    return Credential(None, "none", problem)


# --- the OS keyring -----------------------------------------------------------------------

def keyring_timeout(environ: Mapping[str, str]) -> float:
    """How long a keyring call may take (INTERNCLI_KEYRING_TIMEOUT): a locked keyring that
    waits for a prompt nobody can answer must not hang a CI job."""
    raw = environ.get("INTERNCLI_KEYRING_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_KEYRING_TIMEOUT
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise UsageError("INTERNCLI_KEYRING_TIMEOUT must be a number of seconds above 0, not {!r}".format(raw),
                         hint="For example: INTERNCLI_KEYRING_TIMEOUT=5")
    return value


def _call_keyring(action: str, call: Callable[[Any], Any], environ: Mapping[str, str]) -> Any:
    """Run a keyring call in a daemon thread with a time limit, every failure as KeyringUnavailable."""
    timeout = keyring_timeout(environ)
    outcome: Dict[str, Any] = {}

    def target() -> None:
        try:
            import keyring

            outcome["value"] = call(keyring)
        except BaseException as exc:  # noqa: B036 -- any failure of a backend means "unavailable"
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="interncli-keyring", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise KeyringUnavailable("the OS keyring did not answer within {:g}s while {} (is it locked and "
                                 "waiting for a password prompt?)".format(timeout, action))
    if "error" in outcome:
        raise KeyringUnavailable("the OS keyring is not available while {}: {}".format(
            action, _describe_keyring_error(outcome["error"])))
    return outcome.get("value")


def _describe_keyring_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "No recommended backend" in text:
        return "no keyring backend works here (no Secret Service on D-Bus, as on a headless server)"
    return "{}: {}".format(type(exc).__name__, text[:200])


def keyring_get(profile: str, environ: Mapping[str, str]) -> Optional[str]:
    """The token the keyring holds for a profile, if any."""
    return _call_keyring("reading the token", lambda kr: kr.get_password(SERVICE, profile), environ)


def keyring_set(profile: str, token: str, environ: Mapping[str, str]) -> None:
    """Keep the token in the keyring."""
    _call_keyring("storing the token", lambda kr: kr.set_password(SERVICE, profile, token), environ)


def keyring_delete(profile: str, environ: Mapping[str, str]) -> bool:
    """Remove the profile's token from the keyring; False if it held none."""

    def delete(kr: Any) -> bool:
        if kr.get_password(SERVICE, profile) is None:
            return False
        kr.delete_password(SERVICE, profile)
        return True

    return bool(_call_keyring("removing the token", delete, environ))


def keyring_name(environ: Mapping[str, str]) -> str:
    """The backend in use, for ``auth status``."""
    try:
        backend = _call_keyring("naming the backend", lambda kr: kr.get_keyring(), environ)
    except KeyringUnavailable as exc:
        return "unavailable ({})".format(exc.message)
    name = "{}.{}".format(type(backend).__module__, type(backend).__name__)
    if type(backend).__module__ == "keyring.backends.fail":
        return "unavailable ({})".format(_describe_keyring_error(Exception("No recommended backend")))
    return name


# --- the plain-text file, only at the user's request --------------------------------------

def credentials_path(config_dir: str) -> str:
    """Where ``--insecure-storage`` keeps tokens."""
    return os.path.join(config_dir, CREDENTIALS_FILE)


def file_tokens(config_dir: str) -> Dict[str, str]:
    """The tokens in the plain-text file, by profile (none if there is no file)."""
    path = credentials_path(config_dir)
    if not os.path.exists(path):
        return {}
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError("cannot read {}: {}".format(path, " ".join(str(exc).split())[:200]),
                         hint="Fix or remove the file, then log in again.") from exc
    profiles = data.get("profiles") if isinstance(data, dict) else None
    if not isinstance(profiles, dict):
        raise UsageError("{} must hold a 'profiles' mapping".format(path),
                         hint="Remove the file and log in again with --insecure-storage.")
    if os.stat(path).st_mode & 0o077:
        import sys

        sys.stderr.write("interncli: warning: {} can be read by other users; run: chmod 600 {}\n".format(
            path, path))
        sys.stderr.flush()
    return {str(name): entry["token"] for name, entry in profiles.items()
            if isinstance(entry, dict) and isinstance(entry.get("token"), str) and entry["token"].strip()}


def _write_file_tokens(config_dir: str, tokens: Dict[str, str]) -> None:
    from interncli.files import write_atomic

    path = credentials_path(config_dir)
    if not tokens:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise UsageError("cannot remove {}: {}".format(path, exc.strerror),
                             hint="Check the folder's permissions.") from exc
        return
    import yaml

    from interncli.files import make_dir

    make_dir(config_dir)
    text = ("# interncli tokens in plain text, kept here at your request (--insecure-storage).\n"
            + yaml.safe_dump({"profiles": {name: {"token": tok} for name, tok in sorted(tokens.items())}},
                             default_flow_style=False))
    write_atomic(path, text, mode=0o600)


def file_set(config_dir: str, profile: str, token: str) -> None:
    """Keep the token in the 0600 plain-text file."""
    from interncli.files import locked

    with locked(credentials_path(config_dir)):
        tokens = file_tokens(config_dir)
        tokens[profile] = token
        _write_file_tokens(config_dir, tokens)


def file_delete(config_dir: str, profile: str) -> bool:
    """Remove the profile's token from the file; False if it held none."""
    if not os.path.exists(credentials_path(config_dir)):
        return False
    from interncli.files import locked

    with locked(credentials_path(config_dir)):
        tokens = file_tokens(config_dir)
        if profile not in tokens:
            return False
        del tokens[profile]
        _write_file_tokens(config_dir, tokens)
    return True
