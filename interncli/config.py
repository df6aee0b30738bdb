"""The YAML config file: profiles, the validation of every setting, and atomic writes."""

from __future__ import annotations

import math
import os
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import unquote, urlsplit

from interncli.errors import UsageError

DEFAULT_BASE_URL = "https://chat.intern-ai.org.cn/api/v1"
OFFICIAL_HOST = "chat.intern-ai.org.cn"  # the official service (the default base URL's host)
DEFAULT_MODEL = "intern-latest"
# The server kinds (contract §5): what --thinking sends, whether stream_options may be sent.
API_KINDS = ("intern", "lmdeploy", "openai")
DEFAULT_TIMEOUT = 130.0  # the service cuts a reply at 120 s
DEFAULT_MAX_RETRIES = 2
CONFIG_FILE = "config.yaml"
MAX_TIMEOUT = 86400.0
MAX_RETRIES = 100
OFFICIAL_RPM = 30  # the official service's limit: requests a minute per account
MAX_RPM = 100000
# A config file is a few profiles: more than this is a mistake or an attack. YAML aliases let a
# small file stand for billions of values ("billion laughs"): PyYAML loads them as shared
# references, cheaply, but printing or checking them would take hours, so they are counted.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_VALUES = 10000
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")
# A host as urlsplit() and urllib3 (what requests sends with) both read it: a name of letters,
# digits, '-', '.' and '_' (non-ASCII letters too: IDNA), or a whole IPv6 literal in brackets;
# then a port. Anything else may be two hosts: urllib3 ends the authority at a backslash and
# urlsplit does not, and urlsplit takes "[...]" anywhere in it as the host, so that
# "http://evil\[::1]/" (one backslash) would be ::1 (this machine) here and evil to requests.
_HOST_PORT = re.compile(r"(?:[\w.-]+|\[[0-9A-Za-z:.%_~-]+\])(?::[0-9]*)?")


def parse_timeout(value: Any, source: str) -> float:
    """A positive number of seconds, at most a day."""
    try:
        number = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if not (0 < number <= MAX_TIMEOUT) or math.isnan(number):
        raise UsageError("{} must be a number of seconds above 0 and at most {:g}, not {!r}".format(
            source, MAX_TIMEOUT, value), hint="For example: --timeout 60")
    return number


def parse_max_retries(value: Any, source: str) -> int:
    """A whole number of retries, from 0 to 100."""
    try:
        number = int(str(value).strip()) if not isinstance(value, (bool, float)) else -1
    except ValueError:
        number = -1
    if not 0 <= number <= MAX_RETRIES:
        raise UsageError("{} must be a whole number from 0 to {}, not {!r}".format(source, MAX_RETRIES, value),
                         hint="For example: --max-retries 3 (0 turns retries off)")
    return number


def parse_text(value: Any, source: str) -> str:
    """A non-empty string, without control characters (they would reach the terminal in
    `config list` and `auth status`, and no URL, path or model name needs one)."""
    if not isinstance(value, str) or not value.strip():
        raise UsageError("{} must be a non-empty string, not {!r}".format(source, value),
                         hint="Give a value, e.g. {} VALUE.".format(source))
    check_printable(value.strip(), source)
    return value.strip()


def check_printable(text: str, source: str) -> None:
    """Refuse text with control characters (C0, DEL, C1, a lone surrogate): shown as escapes."""
    from interncli.safetext import escape_line

    if escape_line(text) != text:
        raise UsageError("{} must not hold control characters: {}".format(source, escape_line(text)[:200]),
                         hint="Write it again by hand, as plain text.")


def _parse_url(value: Any, source: str, schemes: tuple, example: str) -> str:
    text = parse_text(value, source)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
        valid = (parts.scheme.lower() in schemes and bool(parts.hostname) and not parts.query
                 and not parts.fragment and not any(c.isspace() for c in text)
                 and "\\" not in parts.netloc
                 and _HOST_PORT.fullmatch(parts.netloc.rpartition("@")[2]) is not None)
    except ValueError:
        valid = False
    if not valid:
        raise UsageError("{} is not a valid URL: {!r}".format(source, mask_url(text)),
                         hint="It needs {} and a host, for example {}".format(
                             " or ".join(s + "://" for s in schemes[:2]), example))
    return text


def parse_base_url(value: Any, source: str) -> str:
    """An http(s) URL with a host, and no ``user:password@`` (requests would send it as Basic
    auth, and it would be shown wherever the URL is)."""
    text = parse_text(value, source)
    if "@" in _netloc(text):
        raise UsageError("{} must not hold a user name or password (user:password@...)".format(source),
                         hint="Give only the address, e.g. https://chat.intern-ai.org.cn/api/v1; the token goes "
                              "to interncli auth login, INTERN_API_KEY or -k.")
    return _parse_url(text, source, ("http", "https"), "http://127.0.0.1:23333/v1")


def _netloc(url: str) -> str:
    """The part of a URL between ``scheme://`` and the path, read by hand: urlsplit() raises
    ValueError on some malformed URLs ("http://[::1"), and this is needed for any of them."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return ""
    return rest[:min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])]


def mask_url(url: str) -> str:
    """A URL fit to show: a password in it replaced (``http://u:***@proxy:3128``)."""
    netloc = _netloc(url)
    userinfo, at, host = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    scheme, _, rest = url.partition("://")
    return "{}://{}:***@{}{}".format(scheme, userinfo.split(":", 1)[0], host, rest[len(netloc):])


def url_secrets(url: Optional[str]) -> List[str]:
    """What a URL holds that must not be shown: its password, and ``user:password`` (which a
    Basic or Proxy-Authorization header carries in base64), as written and decoded. Any text
    is taken, even a URL too malformed to parse (proxy variables are not checked before use)."""
    if not url:
        return []
    userinfo = _netloc(url).rpartition("@")[0]
    if not userinfo:
        return []
    user, _, password = userinfo.partition(":")
    if not password:  # a user name alone is no secret (and "***" for every "user" would hide text)
        return []
    return list(dict.fromkeys([password, userinfo, unquote(password), unquote(user) + ":" + unquote(password)]))


def host_of(url: str) -> str:
    """The host a URL names, as compared for tokens: lower case, without a trailing dot. For a
    URL urlsplit() cannot read (a proxy variable, unchecked), what stands after any ``@``."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = _netloc(url).rpartition("@")[2]
    return host.rstrip(".").lower()


def is_this_machine(host: str) -> bool:
    """Whether a host name is this machine by its name alone (no DNS): localhost, 127.0.0.0/8,
    ::1, and 0.0.0.0 / :: (which LMDeploy prints as its address: connecting to it reaches this
    machine, never the network)."""
    if host == "localhost":  # not *.localhost: glibc asks DNS for those, and DNS may answer anything
        return True
    import ipaddress

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or address.is_unspecified or (mapped is not None and mapped.is_loopback))


def proxy_for(url: str, proxy: Optional[str], environ: Mapping[str, str]) -> Optional[str]:
    """The proxy requests sends a request for ``url`` through: ``proxy`` (the flag's or the
    profile's, given per request, which requests uses for every host, NO_PROXY or not: a
    profile's yields to NO_PROXY in context.resolve_settings), else the environment's for the
    URL's scheme (``<scheme>_proxy``, then ``all_proxy``; lower case first, as urllib reads
    them), unless NO_PROXY exempts the host. Where this says "none", requests bypasses too; it
    may bypass a few more (CIDR ranges are read here as well)."""
    if proxy:
        return proxy
    found = _proxy_variables(environ)
    chosen = found.get(urlsplit(url).scheme.lower()) or found.get("all")
    if not chosen or exempt_from_proxy(url, environ):
        return None
    return chosen


def exempt_from_proxy(url: str, environ: Mapping[str, str]) -> bool:
    """Whether NO_PROXY (or no_proxy, which wins) exempts the host of ``url`` from proxies."""
    return _bypassed(host_of(url), _proxy_variables(environ).get("no", ""))


def _proxy_variables(environ: Mapping[str, str]) -> Dict[str, str]:
    """The set ``*_proxy`` variables by their lower-case prefix (``https``, ``all``, ``no``)."""
    # One pass over the names alone (each value of os.environ is decoded when read: only
    # the few proxy variables' are), run for every request.
    names = [name for name in environ if name[-6:].lower() == "_proxy"]
    found: Dict[str, str] = {}
    for upper in (True, False):  # the lower-case spelling, read last, wins
        for name in names:
            value = environ[name]
            if value and (name == name.upper()) == upper:
                found[name[:-len("_proxy")].lower()] = value
    return found


def _bypassed(host: str, no_proxy: str) -> bool:
    import ipaddress

    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        name = entry.lstrip(".").rstrip(".")
        if not name:
            continue
        if host == name or host.endswith("." + name):
            return True
        try:
            if "/" in name and ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False):
                return True
        except ValueError:
            pass
    return False


def parse_bool(value: Any, source: str) -> bool:
    """true/false (also yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise UsageError("{} must be true or false, not {!r}".format(source, value),
                     hint="For example: interncli config set allow_http true")


def parse_api(value: Any, source: str) -> str:
    """The server's kind: one of API_KINDS."""
    text = str(value).strip().lower() if isinstance(value, str) else value
    if text not in API_KINDS:
        raise UsageError("{} must be one of {}, not {!r}".format(source, ", ".join(API_KINDS), value),
                         hint="intern: the official service; lmdeploy: an LMDeploy api_server; openai: another "
                              "OpenAI-compatible server. For example: interncli config set api lmdeploy")
    return str(text)


def parse_rpm(value: Any, source: str) -> int:
    """Requests a minute for the shared budget: a whole number from 0 (no limit) to MAX_RPM."""
    try:
        number = int(str(value).strip()) if not isinstance(value, (bool, float)) else -1
    except ValueError:
        number = -1
    if not 0 <= number <= MAX_RPM:
        raise UsageError("{} must be a whole number of requests a minute from 0 to {}, not {!r}".format(
            source, MAX_RPM, value), hint="For example: --rpm 30 (the official service's limit); 0 turns the "
                                          "shared budget off")
    return number


def default_rpm(base_url: str) -> int:
    """The shared budget a base URL gets when ``rpm`` is not set: the official service's limit
    for its host, none (0) for any other (contract section 9)."""
    return OFFICIAL_RPM if host_of(base_url) == OFFICIAL_HOST else 0


def default_api(base_url: str) -> str:
    """The kind a base URL is taken for when ``api`` is not set: ``intern`` for the official
    service's host, ``lmdeploy`` for any other (contract §5)."""
    return "intern" if host_of(base_url) == OFFICIAL_HOST else "lmdeploy"


# An HTTP header name is a token (RFC 9110 section 5.1).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers interncli sets from the request itself: another value would break it or be ignored.
MANAGED_HEADERS = ("host", "content-length", "content-type", "transfer-encoding", "connection")
# Words that make a header's value a credential, shown as *** and redacted like the token.
_SECRET_WORDS = ("auth", "cookie", "token", "key", "secret", "password", "passwd", "session", "signature",
                 "credential")


def is_secret_header(name: str) -> bool:
    """Whether a header's value is to be treated as a credential (Authorization, Cookie,
    X-Api-Key, X-Auth-Token, ...)."""
    lower = name.lower()
    return any(word in lower for word in _SECRET_WORDS)


def header_secrets(headers: Any) -> List[str]:
    """The values of credential headers, from a mapping or from raw ``NAME: VALUE`` texts
    (flags not yet checked): whole, and without a scheme word (``Basic``, ``Bearer``)."""
    pairs = headers.items() if isinstance(headers, dict) else \
        [str(h).partition(":")[::2] for h in headers or () if isinstance(h, str)]
    found: List[str] = []
    for name, value in pairs:
        text = str(value).strip()
        if is_secret_header(str(name).strip()) and text:
            found += [text, text.partition(" ")[2].strip()]
    return [f for f in dict.fromkeys(found) if f]


def parse_headers(value: Any, source: str) -> Dict[str, str]:
    """Extra request headers: a mapping (the profile's), or ``NAME: VALUE`` texts (-H, repeated;
    ``config set headers 'NAME: VALUE'``). Names must be HTTP tokens, values one line of
    printable ASCII; the headers interncli sets itself are refused. A name given twice (in any
    case): the last wins."""
    if isinstance(value, dict):
        pairs = [(str(k), v) for k, v in value.items()]
    else:
        texts = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
        if texts is None or not all(isinstance(t, str) for t in texts):
            raise UsageError("{} must be a mapping of header names to values, not {!r}".format(source, value),
                             hint="For example: -H 'X-Team: search', or in config.yaml  headers: {X-Team: search}")
        pairs = []
        for text in texts:
            name, colon, rest = text.partition(":")
            if not colon:
                raise UsageError("{}: {!r} is not NAME: VALUE".format(source, _masked(text)),
                                 hint="For example: -H 'X-Team: search'")
            pairs.append((name.strip(), rest))
    headers: Dict[str, str] = {}
    for name, raw in pairs:
        if not _HEADER_NAME.fullmatch(name):
            raise UsageError("{}: {!r} is not a valid header name".format(source, name[:100]),
                             hint="A header name is letters, digits and -, e.g. X-Team.")
        if name.lower() in MANAGED_HEADERS:
            raise UsageError("{}: {} cannot be set: interncli sets it for each request".format(source, name),
                             hint="Drop it; for other fields of the request use chat create -O KEY VALUE.")
        if not isinstance(raw, (str, int, float)):  # bool is an int: YAML's `X-Debug: true` is "true"
            raise UsageError("{}: the value of {} must be text".format(source, name),
                             hint="For example: {}: some-value".format(name))
        text = shown_value(raw).strip()
        if not text.isascii() or not text.isprintable():
            what = "its value" if is_secret_header(name) else repr(text[:100])
            raise UsageError("{}: the value of {} must be one line of printable ASCII (no CR, LF or other "
                             "control characters): {}".format(source, name, what),
                             hint="Percent-encode other characters, or write the value again by hand.")
        for known in [k for k in headers if k.lower() == name.lower()]:
            del headers[known]
        headers[name] = text
    return headers


def _masked(text: str) -> str:
    """A ``NAME: VALUE`` text fit for a message: the value of a credential header hidden."""
    name = text.partition(":")[0]
    return name + ": ***" if is_secret_header(name.strip()) else text[:100]


def parse_proxy(value: Any, source: str) -> str:
    """A proxy URL: http(s), or SOCKS (which needs PySocks)."""
    return _parse_url(value, source, PROXY_SCHEMES, "http://proxy.example:3128")


def parse_models(value: Any, source: str) -> List[str]:
    """Model names offered to shell completion for -m: a list, or a comma-separated string."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items) or not items:
        raise UsageError("{} must be a list of model names, not {!r}".format(source, value),
                         hint="For example: interncli config set models intern-latest,intern-s1")
    for item in items:
        check_printable(item.strip(), source)
    return [i.strip() for i in items]


class Setting:
    """One setting, declared once: the name it has in Settings and ``config list``, the global
    flags that set it, the environment variables, the key in config.yaml, the parser that checks
    every value given (by flag, variable or file), the default, and the help text the root's
    --help, the man page and the README say. A plain class rather than a dataclass: building
    dataclasses costs start-up time, and this table is built on every run."""

    __slots__ = ("name", "help", "flags", "metavar", "envs", "key", "parse", "default", "default_text", "env_help",
                 "env_parsed")

    def __init__(self, name: str, help: str, *, flags: Tuple[str, ...] = (), metavar: Optional[str] = None,
                 envs: Tuple[str, ...] = (), key: Optional[str] = None,
                 parse: Optional[Callable[[Any, str], Any]] = None, default: Any = None,
                 default_text: Optional[str] = None, env_help: Optional[str] = None,
                 env_parsed: bool = True) -> None:
        self.name = name
        self.help = help
        self.flags = flags
        self.metavar = metavar  # None: a flag that takes no value
        self.envs = envs
        self.key = key
        self.parse = parse  # None: not a profile setting (read elsewhere: the token, the config dir)
        self.default = default
        self.default_text = default_text  # the default as the docs say it, when its value does not
        self.env_help = env_help  # what the man page says of the variables, when the help text will not do
        self.env_parsed = env_parsed  # False: the variables are read by requests itself (the proxy)

    @property
    def flag_name(self) -> str:
        """The flag as messages name it: the first long spelling."""
        return next(flag for flag in self.flags if flag.startswith("--"))

    def shown_default(self) -> Optional[str]:
        """The default as --help, the man page and the README show it (None: nothing to show)."""
        if self.default_text is not None:
            return self.default_text
        if self.default is None or self.default == []:
            return None
        return shown_value(self.default)

    def option_help(self) -> str:
        """The flag's --help text: what it does, then ``[env ...; default: ...]``."""
        notes = ["env " + ", ".join(self.envs)] if self.envs else []
        default = self.shown_default()
        if default is not None and self.metavar is not None:
            notes.append("default: " + default)
        return self.help + (" [{}]".format("; ".join(notes)) if notes else "") + "."

    def env_text(self) -> str:
        """What the man page's ENVIRONMENT section says of the variables."""
        if self.env_help is not None:
            return self.env_help
        notes = ["config key " + self.key] if self.key else []
        default = self.shown_default()
        if default is not None:
            notes.append("default: " + default)
        return self.help + (" ({})".format("; ".join(notes)) if notes else "") + "."


def shown_value(value: Any) -> str:
    """A setting's value as text: a whole number without ``.0`` (``60``, as it was given), true
    and false in lower case, a list comma-separated."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return "; ".join("{}: {}".format(k, v) for k, v in value.items())
    return str(value)


# Every setting, in the order --help, `config list`, the man page and the README show them.
# A new setting is one row here (and its type in context.Settings when it has a parser).
SETTINGS: Tuple[Setting, ...] = (
    Setting("base_url", "API base URL", flags=("-b", "--base-url", "--api-base"), metavar="URL",
            envs=("INTERN_BASE_URL",), key="base_url", parse=parse_base_url, default=DEFAULT_BASE_URL),
    Setting("api", "The server's kind: intern, lmdeploy or openai (decides what some flags send)",
            envs=("INTERN_API",), key="api", parse=parse_api,
            default_text="intern for the official service's host, else lmdeploy"),
    Setting("api_key", "API token (visible in `ps`: prefer INTERN_API_KEY)", flags=("-k", "--api-key"),
            metavar="TOKEN", envs=("INTERN_API_KEY",),
            env_help="The API token (preferred over -k, which other users can see in ps)."),
    Setting("profile", "Config profile to use", flags=("--profile",), metavar="NAME", envs=("INTERN_PROFILE",),
            key="default_profile", default="default"),
    Setting("model", "Model to use (chat create -m)", key="model", parse=parse_text, default=DEFAULT_MODEL),
    Setting("models", "Model names offered to shell completion for -m", key="models", parse=parse_models,
            default=[]),
    Setting("timeout", "Seconds to wait for the server", flags=("--timeout",), metavar="SECONDS",
            envs=("INTERN_TIMEOUT",), key="timeout", parse=parse_timeout, default=DEFAULT_TIMEOUT),
    Setting("max_retries", "Retries on rate limits, 5xx and connection failures", flags=("--max-retries",),
            metavar="N", envs=("INTERN_MAX_RETRIES",), key="max_retries", parse=parse_max_retries,
            default=DEFAULT_MAX_RETRIES),
    Setting("rpm", "Requests a minute that all interncli runs of the profile share on this machine; 0: no limit",
            flags=("--rpm",), metavar="N", envs=("INTERN_RPM",), key="rpm", parse=parse_rpm,
            default_text="30 for the official service's host, else 0"),
    Setting("proxy", "HTTP(S) proxy", flags=("-p", "--proxy"), metavar="URL",
            envs=("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"),
            key="proxy", parse=parse_proxy, default_text="none", env_parsed=False,
            env_help="Proxy settings, as for any requests-based program; NO_PROXY also exempts a host from "
                     "the profile's proxy (not from --proxy)."),
    Setting("ca_bundle", "CA certificates to trust", flags=("--ca-bundle",), metavar="PATH",
            envs=("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"), key="ca_bundle", parse=parse_text, default_text="system"),
    Setting("allow_http", "A token may go over plain http:// to another machine", envs=("INTERN_ALLOW_HTTP",),
            key="allow_http", parse=parse_bool, default=False,
            env_help="1 lets a token go over plain http:// to a host other than this machine (profile key "
                     "allow_http); without it such a request is refused."),
    Setting("headers", "An extra request header, repeatable (for gateways); the flag's beat the profile's, "
            "name by name; credential values are redacted like the token", flags=("-H", "--header"),
            metavar="'NAME: VALUE'", key="headers", parse=parse_headers, default={}, default_text="none"),
    Setting("verbose", "Show each request and response on stderr (token redacted)", flags=("-v", "--verbose")),
    Setting("config_dir", "The config directory", envs=("INTERNCLI_CONFIG_DIR",),
            default_text="~/.config/interncli on Linux"),
    Setting("keyring_timeout", "Seconds a call to the OS keyring may take", envs=("INTERNCLI_KEYRING_TIMEOUT",),
            default=10.0),
    Setting("no_color", "Turns colour off", envs=("NO_COLOR",)),
    Setting("debug", "Show a traceback on unexpected errors", flags=("--debug",)),
)
# The settings a profile holds, each with its parser (which also checks flag and environment values).
PARSERS: Dict[str, Callable[[Any, str], Any]] = {s.key: s.parse for s in SETTINGS if s.key and s.parse}
# The keys of the whole file, beside "profiles" (default_profile).
FILE_KEYS: Tuple[str, ...] = tuple(s.key for s in SETTINGS if s.key and not s.parse)


def state_dir(environ: Mapping[str, str]) -> str:
    """The user's state folder for interncli (the shared rate budget, the repl's history): not
    settings, so not in the config dir. ``$XDG_STATE_HOME/interncli``, else the XDG default
    ``~/.local/state/interncli`` on Linux and other Unixes; on macOS
    ``~/Library/Application Support/interncli/state``; on Windows ``%LOCALAPPDATA%\\interncli``."""
    import sys

    home = environ.get("HOME") or os.path.expanduser("~")
    xdg = environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative value is invalid and ignored
        return os.path.join(xdg, "interncli")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "interncli", "state")
    if sys.platform.startswith("win"):
        local = environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(local, "interncli")
    return os.path.join(home, ".local", "state", "interncli")


def config_path(config_dir: str) -> str:
    """Where the config file lives."""
    return os.path.join(config_dir, CONFIG_FILE)


def load_config(config_dir: str) -> Dict[str, Any]:
    """The parsed config file, or an empty config when there is none."""
    path = config_path(config_dir)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError("cannot read {}: {}".format(path, exc.strerror),
                         hint="Check the file's permissions, or set INTERNCLI_CONFIG_DIR.") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise UsageError("{} is too large: over {} MiB".format(path, MAX_CONFIG_BYTES >> 20),
                         hint="Is it the right file? Move it away to start from the defaults.")
    import yaml  # only when there is a file: keeps start-up light

    from interncli.yamlread import load_document

    try:
        data = load_document(raw)[1]
    except RecursionError:  # the pure parser recurses once per level of nesting
        raise UsageError("{} is not valid YAML: nested too deeply to read".format(path),
                         hint="Fix the file, or move it away to start from the defaults.") from None
    except yaml.YAMLError as exc:
        raise UsageError(
            "{} is not valid YAML: {}".format(path, " ".join(str(exc).split())),
            hint="Fix the file, or move it away to start from the defaults.",
        ) from exc
    if data is None:
        return {}
    if _too_many_values(data):
        raise UsageError("{} is too large: its YAML aliases (*name) stand for over {} values".format(
            path, MAX_CONFIG_VALUES), hint="Write the profiles out without nested aliases.")
    if not isinstance(data, dict) or not isinstance(data.get("profiles") or {}, dict):
        raise UsageError("{} must be a mapping with a 'profiles' mapping".format(path),
                         hint="See `interncli config --help` for the file's layout.")
    # A key holding a YAML anchor keeps values for merges (`<<: *base`) and aliases, which the
    # profiles have taken in as loaded: dropped, so `config set` writes them out in full.
    unknown = [key for key in data if key not in FILE_KEYS + ("profiles",)]
    if unknown:
        holders = _anchored_keys(raw)
        data = {key: value for key, value in data.items() if key not in unknown or str(key) not in holders}
    # Names as written by a person: `1:` is the profile "1", not the number.
    data["profiles"] = {str(name): entry for name, entry in (data.get("profiles") or {}).items()}
    if data.get("default_profile") is not None:
        data["default_profile"] = str(data["default_profile"])
    for name in list(data["profiles"]) + ([data["default_profile"]] if data.get("default_profile") else []):
        check_printable(name, "a profile name in {}".format(path))
    return data


def _anchored_keys(raw: bytes) -> List[str]:
    """The top-level keys of a YAML mapping whose value carries an anchor (``base: &base {...}``)."""
    import yaml

    found: List[str] = []
    depth = 0  # collections open
    key: Optional[str] = None  # the top-level key whose value comes next, if one does
    for event in yaml.parse(raw, Loader=yaml.SafeLoader):
        if depth == 1 and isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)):
            if key is None:
                key = str(event.value) if isinstance(event, yaml.ScalarEvent) else ""
            else:
                if not isinstance(event, yaml.AliasEvent) and event.anchor:
                    found.append(key)
                key = None
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return found


def _too_many_values(data: Any) -> bool:
    """Whether ``data``, each alias counted where it is used (a loop forever), holds more than
    MAX_CONFIG_VALUES values. Values are counted as they are found, so that the walk stops, and
    its memory stays small, as soon as there are too many."""
    pending = [data]
    count = 1
    while pending:
        value = pending.pop()
        children = list(value.keys()) + list(value.values()) if isinstance(value, dict) else \
            value if isinstance(value, list) else []
        count += len(children)
        if count > MAX_CONFIG_VALUES:
            return True
        pending.extend(children)
    return False


def profile_names(config: Dict[str, Any]) -> List[str]:
    """The profiles the file defines."""
    return list(config.get("profiles") or {})


def profile_entry(config: Dict[str, Any], profile: str, path: str) -> Dict[str, Any]:
    """What the file holds for a profile (``default`` and an empty entry: nothing), which must
    be a mapping."""
    entry = (config.get("profiles") or {}).get(profile)
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise UsageError("profile {!r} in {} must be a mapping, not {}".format(
            profile, path, "a list" if isinstance(entry, list) else "a " + type(entry).__name__),
            hint="For example:  {}: {{base_url: http://127.0.0.1:23333/v1}}  (known profiles: {})".format(
                profile, _known(config)))
    return entry


def profile_settings(config: Dict[str, Any], profile: str, path: str) -> Dict[str, Any]:
    """The validated settings of one profile; a profile the file does not define has none. An
    unknown key, in the profile or at the top of the file, is refused."""
    check_top_keys(config, path)
    entry = profile_entry(config, profile, path)
    settings = {}
    for key, value in entry.items():
        if key not in PARSERS:
            import shlex  # only for the hint: keeps start-up light

            raise UsageError(
                "unknown key {!r} in profile {!r} of {}".format(key, profile, path),
                hint="Valid keys: {}. Remove it with: interncli config unset --profile {} {}".format(
                    ", ".join(PARSERS), shlex.quote(profile), shlex.quote(str(key))),
            )
        settings[key] = PARSERS[key](value, "{} (profile {!r})".format(key, profile))
    return settings


def check_top_keys(config: Dict[str, Any], path: str) -> None:
    """The file holds no key at the top but ``profiles`` and those of FILE_KEYS: refused where
    an unknown profile key is (not by `config get`, `set` or `unset`, which fix the file)."""
    unknown = [key for key in config if key not in FILE_KEYS + ("profiles",)]
    if unknown:
        import shlex  # only for the hint: keeps start-up light

        check_printable(str(unknown[0]), "a key in {}".format(path))
        raise UsageError("unknown key {!r} in {}".format(unknown[0], path),
                         hint="Valid keys at the top: {}, profiles (the others go in a profile). Remove it with: "
                              "interncli config unset {}".format(", ".join(FILE_KEYS), shlex.quote(str(unknown[0]))))


def _known(config: Dict[str, Any]) -> str:
    return ", ".join(["default"] + [p for p in profile_names(config) if p != "default"])


def check_profile(config: Dict[str, Any], profile: str) -> None:
    """A profile that was asked for by name must exist (``default`` always does)."""
    if profile != "default" and profile not in profile_names(config):
        raise UsageError("no profile {!r} in the config".format(profile),
                         hint="Known profiles: {}. Create one with: interncli config set --profile {} "
                              "base_url URL".format(_known(config), profile))


def check_key(key: str) -> None:
    """A key ``config`` knows: a profile key, or one of the whole file (``default_profile``)."""
    if key not in PARSERS and key not in FILE_KEYS:
        raise UsageError("unknown key {!r}".format(key),
                         hint="Valid keys: " + ", ".join(list(PARSERS) + list(FILE_KEYS)))


def parse_setting(config: Dict[str, Any], key: str, value: Any) -> Any:
    """A value for ``config set``: a profile key's, or ``default_profile`` (an existing profile)."""
    check_key(key)
    if key == "default_profile":
        name = parse_text(value, key)
        check_profile(config, name)
        return name
    parsed = PARSERS[key](value, key)
    # Kept as given: `config set timeout 60` writes 60, not 60.0.
    if isinstance(parsed, float) and re.fullmatch(r"[+-]?[0-9]+", str(value).strip()):
        return int(parsed)
    return parsed


def with_setting(config: Dict[str, Any], profile: str, key: str, value: Any) -> Dict[str, Any]:
    """A copy of the config with one setting set (``value`` None: removed)."""
    updated = dict(config)
    if key == "default_profile":
        if value is None:
            updated.pop(key, None)
        else:
            updated[key] = value
        return updated
    profiles = {name: dict(entry or {}) if isinstance(entry, dict) or entry is None else entry
                for name, entry in (config.get("profiles") or {}).items()}
    if value is None:
        profiles.get(profile, {}).pop(key, None)
    else:
        profiles.setdefault(profile, {})[key] = value
    updated["profiles"] = profiles
    return updated


def stray_key(config: Dict[str, Any], key: str) -> Optional[Any]:
    """The unknown top-level key of the file that reads as ``key`` (a YAML key may be a number),
    if there is one: what `config unset KEY` removes."""
    return next((k for k in config if str(k) == key and k not in FILE_KEYS + ("profiles",)), None)


def save_config(config_dir: str, config: Dict[str, Any]) -> None:
    """Write the config file atomically (comments in it are not kept)."""
    import yaml

    from interncli.files import make_dir, write_atomic

    make_dir(config_dir)
    text = "# interncli settings: see `interncli config --help`.\n" + yaml.safe_dump(
        config, default_flow_style=False, sort_keys=False, allow_unicode=True)
    write_atomic(config_path(config_dir), text)
