"""The API token: where it is looked up (``-k`` > ``INTERN_API_KEY`` > OS keyring > the
plain-text file the user chose), where it is kept, and how it is shown. The only module that
imports keyring."""

from __future__ import annotations

import functools
import os
import re
import threading
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type

from interncli.errors import AuthError, InternCliError, UsageError

SERVICE = "interncli"
CREDENTIALS_FILE = "credentials.yaml"
HOSTS_FILE = "token-hosts.yaml"
DEFAULT_KEYRING_TIMEOUT = 10.0
SOURCE_NAMES = {"flag": "the -k flag", "env": "INTERN_API_KEY", "keyring": "the OS keyring",
                "file": CREDENTIALS_FILE}
MIN_SECRET = 4  # shorter strings are not redacted: "***" everywhere would hide the text itself
# Short options that take no value (-v, -V, -h, and the contract's -u/--usage and -x/--extract),
# so that in ``-vk TOKEN`` the k is -k.
SHORT_FLAGS = "vVhux"
WAY_OUT = ("Set INTERN_API_KEY for this shell or CI job, or keep the token in a file readable only "
           "by you: interncli auth login --insecure-storage")


class KeyringUnavailable(AuthError):
    """The OS keyring is missing, locked, broken or not answering: not a problem of the token.
    ``absent`` says there is no backend at all, so nothing can be stored there either."""

    default_hint = WAY_OUT
    absent = False


class Credential:
    """A token (or none), where it came from, why the keyring could not be asked, if so,
    ``withheld``: the host a stored token belongs to, when it was not used for another host,
    and ``warnings``: what the lookup found wrong but not fatal (a token file others can read),
    for the command to show; nothing here prints."""

    __slots__ = ("token", "source", "keyring_problem", "withheld", "warnings")

    def __init__(self, token: Optional[str], source: str, keyring_problem: Optional[KeyringUnavailable] = None,
                 withheld: Optional[str] = None, warnings: Sequence[str] = ()):
        self.token, self.source, self.keyring_problem = token, source, keyring_problem
        self.withheld = withheld
        self.warnings = list(warnings)

    def __repr__(self) -> str:  # never the token
        return "Credential(source={!r})".format(self.source)

    def absence(self, profile: str, host: str) -> Optional[Tuple[str, str]]:
        """Why there is no token, when there is a reason beyond "none was stored": the stored
        one belongs to another host, or the keyring failed. (reason, hint), or None."""
        if self.token is not None:
            return None
        if self.withheld is not None:
            return withheld_message(profile, self.withheld, host), WITHHELD_HINT
        if self.keyring_problem is not None:
            return self.keyring_problem.message, self.keyring_problem.hint or WAY_OUT
        return None


def missing_token(credential: Credential, profile: str, host: str, hint: str, lead: str = "",
                  noun: str = "token") -> AuthError:
    """The one "no token" error: ``{lead}no {noun} for HOST: why`` when the stored token is for
    another host, ``{lead}no {noun} for profile 'P': why`` when the keyring failed, else
    ``{lead}no {noun} for profile 'P'`` with ``hint``."""
    reason = credential.absence(profile, host)
    if reason is None:
        return AuthError("{}no {} for profile {!r}".format(lead, noun, profile), hint=hint)
    where = host if credential.withheld is not None else "profile {!r}".format(profile)
    return AuthError("{}no {} for {}: {}".format(lead, noun, where, reason[0]), hint=reason[1])


def clean_token(raw: str) -> str:
    """A token with surrounding whitespace and a pasted ``Bearer `` prefix removed."""
    token = raw.strip()
    if token[:6].lower() == "bearer" and (len(token) == 6 or token[6].isspace()):
        token = token[6:].strip()
    return token


def check_token(token: str, source: str, error: Type[InternCliError] = AuthError) -> str:
    """A token fit for an HTTP header: one run of printable ASCII (a token file wrapped over
    several lines, or with stray characters, is refused without being echoed). ``error``: the
    class to raise (login input is a usage error; a stored token that went bad, an auth one)."""
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token) or len(token) < 4:
        raise error("the token from {} is not valid: it must be one line of printable ASCII "
                    "without spaces, at least 4 characters".format(SOURCE_NAMES.get(source, source)),
                    hint="Copy the token again, on one line, from the Intern website.")
    return token


def mask(token: str) -> str:
    """Enough of a token to recognise it, never enough to use it: ``eyJ0…Sl``."""
    return token[:4] + "…" + token[-2:] if len(token) >= 12 else "****"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``: as given and cleaned, and in the forms a
    server or proxy may quote it back in -- percent-encoded, JSON-escaped (``\\u0073``, ``\\/``),
    base64 (standard or urlsafe, padded or not, alone, as ``Bearer TOKEN`` or inside a longer
    encoded text), and split by whitespace or an escaped newline."""
    wanted = tuple(sorted({s for raw in secrets for s in (raw, clean_token(raw)) if len(s) >= MIN_SECRET}))
    if not wanted or ("%" not in text and "\\" not in text and not _may_hold(text, wanted)):
        return text
    pattern = _redaction_pattern(wanted)
    return pattern.sub("***", text) if pattern is not None else text


def _may_hold(text: str, secrets: Tuple[str, ...]) -> bool:
    """Whether a text with no "%" and no backslash may hold a secret as redact() finds them.
    Without those, a secret can only be there literally (or in one of its base64 forms), with
    whitespace between its characters at most: then the text without its whitespace holds the
    form without its own. Checked first because compiling the full pattern takes 50 ms, which
    a run that shows an error paid whether or not the message quoted anything."""
    squeezed = "".join(text.split())
    return any(form in squeezed for form in _squeezed_forms(secrets))


@functools.lru_cache(maxsize=16)
def _squeezed_forms(secrets: Tuple[str, ...]) -> Tuple[str, ...]:
    forms = {form for secret in secrets for form in [secret] + _base64_forms(secret)}
    return tuple({"".join(form.split()) for form in forms})


MAX_VALUE_DEPTH = 16  # an error code nested deeper is garbage: shown cut, as "…"


def redact_value(value: Any, secrets: Iterable[str], depth: int = 0) -> Any:
    """A JSON-like value (an error ``code`` may be a dict or a list) with every string redacted;
    a number that spells a secret becomes ``***`` too. Lists and dicts nested deeper than
    MAX_VALUE_DEPTH are cut (a server's code 900 lists deep would exhaust the stack here, or
    wherever it is shown)."""
    secrets = list(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, (dict, list, tuple)) and depth >= MAX_VALUE_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {redact_value(k, secrets, depth + 1): redact_value(v, secrets, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, secrets, depth + 1) for v in value]
    if value is not None and not isinstance(value, bool) and redact(str(value), secrets) != str(value):
        return "***"
    return value


def argv_tokens(args: Sequence[str]) -> List[str]:
    """The values given to ``-k``/``--api-key`` anywhere on a command line (``-k T``, ``-kT``,
    ``-vk T``, ``--api-key T``, ``--api-key=T``): a usage error raised while parsing comes
    before the options are stored, and may quote them."""
    found = []
    for i, arg in enumerate(args):
        if arg == "--":
            break
        following = args[i + 1] if i + 1 < len(args) else ""
        if arg == "--api-key":
            found.append(following)
        elif arg.startswith("--api-key="):
            found.append(arg[len("--api-key="):])
        elif arg.startswith("-") and not arg.startswith("--"):
            for j, letter in enumerate(arg[1:], 1):
                if letter == "k":
                    found.append(arg[j + 1:] or following)
                    break
                if letter not in SHORT_FLAGS:  # an option that takes the rest as its value
                    break
    return [token for token in found if len(token) >= MIN_SECRET]


def _char_pattern(char: str) -> str:
    """One character of a secret, literally, percent-encoded or JSON-escaped (hex in any case)."""
    def hexes(text: str) -> str:
        return "".join("[{}{}]".format(c.lower(), c.upper()) if c.isalpha() else c for c in text)

    data = char.encode("utf-8")
    options = [re.escape(char), "".join("%" + hexes("{:02X}".format(b)) for b in data)]
    units = char.encode("utf-16-be")
    # Backslashes: a JSON escape quoted inside another JSON string has its backslash doubled.
    options.append("".join(_BACKSLASHES + "u" + hexes(units[i:i + 2].hex()) for i in range(0, len(units), 2)))
    if char == "/":
        options.append(_BACKSLASHES + "/")
    return "(?:" + "|".join(options) + ")"


# One to eight backslashes: JSON quoted in JSON up to three times over. Not "one or more": at
# each of N backslashes in a row the regex would try every longer run, N*N steps in all, and a
# server's message of 500,000 backslashes took hours to redact.
_BACKSLASHES = r"\\{1,8}"
# Between two characters of a secret: whitespace, or a JSON-escaped line break or tab.
_GAP = r"(?:\s|" + _BACKSLASHES + r"[nrt])*"


def _base64_forms(secret: str) -> List[str]:
    """The secret in base64 as a server or proxy may echo it: the whole encoding of the secret
    and of ``Bearer SECRET``, and the part of any longer encoding that the secret alone decides
    (three alignments, as it may start at any byte)."""
    import base64

    data = secret.encode("utf-8")
    forms = []
    for whole in (data, b"Bearer " + data):
        encoded = base64.b64encode(whole).decode("ascii")
        forms += [encoded, encoded.rstrip("=")]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode("ascii")
        core = encoded[4 if shift else 0:4 * ((shift + len(data)) // 3)]
        if len(core) >= 8:
            forms.append(core)
    return forms + [f.replace("+", "-").replace("/", "_") for f in forms]


@functools.lru_cache(maxsize=16)
def _redaction_pattern(secrets: Tuple[str, ...]) -> Optional["re.Pattern[str]"]:
    if not secrets:
        return None
    forms = {form for secret in secrets for form in [secret] + _base64_forms(secret)}
    # Longest first, so that a whole encoding goes rather than the part of it another form matches.
    return re.compile("|".join(_GAP.join(_char_pattern(c) for c in form)
                               for form in sorted(forms, key=len, reverse=True)))


def lookup(flag: Optional[str], environ: Mapping[str, str], profile: str, config_dir: str,
           host: str, home_host: str) -> Credential:
    """The token in the documented order for a request to ``host``; the keyring is asked only
    when no flag or variable gives one. A stored token belongs to the host recorded when it was
    stored (else ``home_host``, the host of the profile's own base URL): for any other host it
    is withheld, so a base URL pointed elsewhere never receives it."""
    if flag and clean_token(flag):
        return Credential(check_token(clean_token(flag), "flag"), "flag")
    env = environ.get("INTERN_API_KEY", "")
    if clean_token(env):
        return Credential(check_token(clean_token(env), "env"), "env")
    problem = None
    found = None
    try:
        stored = keyring_get(profile, environ)
        if stored:
            found = Credential(check_token(stored, "keyring"), "keyring")
    except KeyringUnavailable as exc:
        problem = exc
    warnings: List[str] = []
    if found is None:
        stored = file_tokens(config_dir).get(profile)
        warnings = file_warnings(config_dir)
        if stored:
            found = Credential(check_token(stored, "file"), "file", problem, warnings=warnings)
    if found is None:
        return Credential(None, "none", problem, warnings=warnings)
    owner = recorded_host(config_dir, profile) or home_host
    if owner != host:
        return Credential(None, "none", problem, withheld=owner, warnings=warnings)
    return found


def withheld_message(profile: str, owner: str, host: str) -> str:
    """Why a stored token was not used."""
    return ("the token stored for profile {!r} belongs to {} and is not sent to {}".format(profile, owner, host))


WITHHELD_HINT = ("Give this server its token with -k or INTERN_API_KEY, or make a profile for it: "
                 "interncli config set --profile NAME base_url URL; interncli auth login --profile NAME")


def _profile_values(path: str, field: str, hint: str) -> Dict[str, str]:
    """``profiles: {NAME: {FIELD: VALUE}}`` from one of the files interncli keeps beside the
    config (tokens, token hosts), as NAME -> VALUE for each non-empty text VALUE; none if the
    file does not exist."""
    if not os.path.exists(path):
        return {}
    import yaml

    from interncli.yamlread import load_document

    try:
        with open(path, encoding="utf-8") as fh:
            data = load_document(fh)[1] or {}
    except RecursionError:  # the pure parser recurses once per level of nesting
        raise UsageError("cannot read {}: nested too deeply to read".format(path), hint=hint) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError("cannot read {}: {}".format(path, " ".join(str(exc).split())[:200]), hint=hint) from exc
    profiles = data.get("profiles") if isinstance(data, dict) else None
    if not isinstance(profiles, dict):
        raise UsageError("{} must hold a 'profiles' mapping".format(path), hint=hint)
    return {str(name): entry[field] for name, entry in profiles.items()
            if isinstance(entry, dict) and isinstance(entry.get(field), str) and entry[field].strip()}


# --- which host each stored token is for (not secret) -------------------------------------

def hosts_path(config_dir: str) -> str:
    """The record of the host each profile's stored token was stored for."""
    return os.path.join(config_dir, HOSTS_FILE)


def _read_hosts(config_dir: str) -> Dict[str, str]:
    path = hosts_path(config_dir)
    hosts = _profile_values(path, "host", hint="Remove the file and log in again.")
    from interncli.safetext import escape_line

    if any(escape_line(host) != host for host in hosts.values()):  # shown by `auth status`
        raise UsageError("{} holds a host with control characters".format(path),
                         hint="Remove the file and log in again.")
    return hosts


def recorded_host(config_dir: str, profile: str) -> Optional[str]:
    """The host the profile's token was stored for at login, if that was recorded."""
    return _read_hosts(config_dir).get(profile)


def record_host(config_dir: str, profile: str, host: Optional[str]) -> None:
    """Record (``host`` None: forget) the host of the profile's stored token."""
    from interncli.files import locked

    path = hosts_path(config_dir)
    if host is None and not os.path.exists(path):
        return
    with locked(path):
        hosts = _read_hosts(config_dir)
        if host is None:
            if hosts.pop(profile, None) is None:
                return
        else:
            hosts[profile] = host
        import yaml

        from interncli.files import make_dir, write_atomic

        make_dir(config_dir)
        write_atomic(path, "# interncli: the host each profile's stored token was stored for (not secret).\n"
                     + yaml.safe_dump({"profiles": {name: {"host": h} for name, h in sorted(hosts.items())}},
                                      default_flow_style=False))


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
        problem = KeyringUnavailable("the OS keyring is not available while {}: {}".format(
            action, _describe_keyring_error(outcome["error"])))
        problem.absent = _is_absent(outcome["error"])
        raise problem
    return outcome.get("value")


def _is_absent(exc: BaseException) -> bool:
    # keyring's "fail" backend (what it picks when no backend works) raises NoKeyringError.
    return type(exc).__name__ == "NoKeyringError" or "No recommended backend" in str(exc)


def _describe_keyring_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if _is_absent(exc):
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
    return _profile_values(path, "token", hint="Fix or remove the file, then log in again with --insecure-storage.")


def file_warnings(config_dir: str) -> List[str]:
    """What is wrong, but not fatal, with the plain-text file: other users can read it."""
    path = credentials_path(config_dir)
    try:
        loose = bool(os.stat(path).st_mode & 0o077)
    except OSError:  # no file, no warning
        return []
    return ["{} can be read by other users; run: chmod 600 {}".format(path, path)] if loose else []


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
