"""The settings, resolved once (flag > environment > profile > default) and handed down."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple

from interncli import config, credentials
from interncli.errors import UsageError
from interncli.iostreams import IOStreams

if TYPE_CHECKING:
    from interncli.ratelimit import Budget

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class Settings:
    """Everything a command needs to know about where and how to talk to the API (the token
    apart: it is looked up only when a command needs it): one attribute per profile setting of
    config.SETTINGS, and what the command line alone says.

    A plain class rather than a dataclass: building dataclasses costs start-up time."""

    __slots__ = tuple(config.PARSERS) + ("profile", "verbose", "debug", "config_dir", "sources", "withheld_headers")
    # The types of the table's settings, for mypy (the values are set from the table).
    base_url: str
    model: str
    api: str  # the server's kind, one of config.API_KINDS
    models: List[str]
    timeout: float
    max_retries: int
    rpm: int  # requests a minute of the shared budget (0: none)
    proxy: Optional[str]
    ca_bundle: Optional[str]
    allow_http: bool  # a token may go over plain http:// to another machine
    headers: Dict[str, str]  # extra request headers (-H over the profile's, name by name)

    def __init__(self, *, values: Dict[str, Any], profile: str, verbose: bool, debug: bool, config_dir: str,
                 sources: Dict[str, str]) -> None:
        for key in config.PARSERS:
            setattr(self, key, values[key])
        self.profile = profile
        self.verbose = verbose
        self.debug = debug
        self.config_dir = config_dir
        self.sources = sources  # setting -> "flag", "env", "profile" or "default"
        # The profile's credential headers not sent, as the base URL was moved to another host.
        self.withheld_headers: List[str] = []

    def values(self) -> Dict[str, Any]:
        """The settings a profile can hold, as resolved."""
        return {key: getattr(self, key) for key in config.PARSERS}


class AppContext:
    """Handed to every command: the raw global options, resolved into Settings on first use,
    and ``io``, the streams every command reads and writes (never ``sys``'s own)."""

    def __init__(self, options: Dict[str, Any], environ: Mapping[str, str], config_dir: str,
                 io: IOStreams) -> None:
        self.options = options
        self.environ = environ
        self.config_dir = config_dir
        self.io = io
        self.argv_tokens: List[str] = []  # -k values found on the command line before parsing
        self.input_tokens: List[str] = []  # tokens read as input (auth login), which a keyring error may quote
        self.http_warned = False
        self.headers_warned = False
        # How the commands wait between retries; a test gives one that records the delay instead.
        self.sleep: Callable[[float], None] = time.sleep
        # The shared rate budget, made by the first request sent (commands.common.rate_budget).
        self.budget: Optional[Budget] = None
        self.budget_made = False
        # Called before each slot of the budget is reserved, and may raise to give the request
        # up (a stopped batch: its queued workers must not reserve slots they will not use).
        self.before_slot: Optional[Callable[[], None]] = None
        self._settings: Optional[Settings] = None
        self._credential: Optional[credentials.Credential] = None
        self._config_file: Optional[Dict[str, Any]] = None

    def secrets(self) -> List[str]:
        """Every token in play: the flag's, the variable's, one read as input, the one in use
        (raw and cleaned)."""
        raw = [self.options.get("api_key") or "", self.environ.get("INTERN_API_KEY", "")] + self.argv_tokens
        raw += self.input_tokens
        if self._credential is not None and self._credential.token:
            raw.append(self._credential.token)
        return [s for s in dict.fromkeys(raw + [credentials.clean_token(r) for r in raw])
                if len(s) >= credentials.MIN_SECRET]

    def hidden(self) -> List[str]:
        """What no message may show: the tokens, and the passwords of proxy and base URLs
        (from flags, the environment and the profile), which requests may quote in an error."""
        urls = [self.options.get("proxy"), self.options.get("base_url"), self.environ.get("INTERN_BASE_URL")]
        urls += [self.environ.get(name) for name in PROXY_VARIABLES]
        headers = config.header_secrets(self.options.get("headers") or ())
        if self._settings is not None:
            urls.append(self._settings.proxy)
            headers += config.header_secrets(self._settings.headers)
        return self.secrets() + [s for url in urls for s in config.url_secrets(url)] + [
            h for h in headers if len(h) >= credentials.MIN_SECRET]

    def redact(self, text: str) -> str:
        """``text`` without any token or password the user gave, for messages that quote the server."""
        return credentials.redact(text, self.hidden())

    def redact_value(self, value: Any) -> Any:
        """A JSON-like value (an error code) without any token or password."""
        return credentials.redact_value(value, self.hidden())

    def config_file(self) -> Dict[str, Any]:
        """The parsed config file, read once per command: the settings, the profile's name and
        the hosts a token belongs to all need it (three reads and YAML parses before). The
        commands that write it (config set and unset) read it afresh, under its lock."""
        if self._config_file is None:
            self._config_file = config.load_config(self.config_dir)
        return self._config_file

    @property
    def settings(self) -> Settings:
        """The resolved settings (reads the config file the first time)."""
        if self._settings is None:
            self._settings = resolve_settings(self.options, self.environ, self.config_dir, self.config_file())
        return self._settings

    @property
    def credential(self) -> credentials.Credential:
        """The token and its source, looked up on first use (the keyring only if needed)."""
        if self._credential is None:
            host, home_host = self.token_hosts()
            self._credential = credentials.lookup(self.options.get("api_key"), self.environ,
                                                  self.profile_name(), self.config_dir, host, home_host)
        return self._credential

    def token_hosts(self) -> Tuple[str, str]:
        """The host requests go to, and the host of the profile's own base URL (or the default),
        which a stored token belongs to unless another was recorded at login. Only the base URLs
        are read, so that `auth token` works while another setting is being fixed."""
        cfg = self.config_file()
        name = choose_profile(self.options, self.environ, cfg)
        config.check_profile(cfg, name)
        own = config.profile_entry(cfg, name, config.config_path(self.config_dir)).get("base_url")
        home = config.parse_base_url(own, "base_url (profile {!r})".format(name)) if own is not None \
            else config.DEFAULT_BASE_URL
        target = home
        if self.options.get("base_url") is not None:
            target = config.parse_base_url(self.options["base_url"], "--base-url")
        elif self.environ.get("INTERN_BASE_URL", "").strip():
            target = config.parse_base_url(self.environ["INTERN_BASE_URL"], "INTERN_BASE_URL")
        return config.host_of(target), config.host_of(home)

    def profile_name(self, *, must_exist: bool = True) -> str:
        """The profile asked for (flag, INTERN_PROFILE, the file's default_profile, "default").
        It must exist in the file unless ``must_exist`` is False (auth login creates it); its
        settings need not be valid (so that `auth token` works while a profile's timeout is being
        fixed, say)."""
        cfg = self.config_file()
        name = choose_profile(self.options, self.environ, cfg)
        if must_exist:
            config.check_profile(cfg, name)
        return name


def choose_profile(options: Dict[str, Any], environ: Mapping[str, str], cfg: Dict[str, Any]) -> str:
    """The profile's name, by the usual precedence. An empty ``--profile ""`` is an error (it
    would silently mean the default one); an empty INTERN_PROFILE counts as unset."""
    flag = options.get("profile")
    if flag is not None:
        if not flag.strip():
            raise UsageError("--profile needs a profile name, not an empty string",
                             hint="Give a name, e.g. --profile local, or leave the option out for the default.")
        return flag
    return environ.get("INTERN_PROFILE", "").strip() or str(cfg.get("default_profile") or "default")


def _pick(setting: config.Setting, options: Dict[str, Any], environ: Mapping[str, str],
          profile: Dict[str, Any]) -> Tuple[Any, str]:
    """One setting's value and where it comes from: the flag, else the first variable set, else
    the profile (already checked), else the default."""
    assert setting.parse is not None and setting.key is not None  # only profile settings are picked
    flag = options.get(setting.name) if setting.flags else None
    if flag is not None:
        return setting.parse(flag, setting.flag_name), "flag"
    for name in setting.envs if setting.env_parsed else ():
        if environ.get(name, "").strip():
            return setting.parse(environ[name], name), "env"
    if setting.key in profile:
        return profile[setting.key], "profile"
    # A fresh list each time: the table's default is shared.
    default = setting.default
    return (list(default) if isinstance(default, list) else dict(default) if isinstance(default, dict)
            else default), "default"


def _pick_proxy(picked: Tuple[Any, str], environ: Mapping[str, str], base_url: str) -> Tuple[Any, str]:
    """The proxy, with the environment above the profile: requests reads HTTPS_PROXY and the
    others itself, so a proxy variable set leaves none to give it; and it uses a proxy given per
    request for every host, so NO_PROXY exempting the base URL's host overrules the profile's."""
    source = picked[1]
    if source == "flag":
        return picked
    if any(environ.get(name) for name in PROXY_VARIABLES):
        return None, "env"
    if source == "profile" and config.exempt_from_proxy(base_url, environ):
        return None, "env"
    return picked


def resolve_settings(options: Dict[str, Any], environ: Mapping[str, str], config_dir: str,
                     cfg: Optional[Dict[str, Any]] = None) -> Settings:
    """Resolve every setting of the table from the flags given, the environment and the config
    file (``cfg``, the file as parsed, if it was read already)."""
    if cfg is None:
        cfg = config.load_config(config_dir)
    profile_name = choose_profile(options, environ, cfg)
    config.check_profile(cfg, profile_name)
    profile = config.profile_settings(cfg, profile_name, config.config_path(config_dir))
    picked = {setting.name: _pick(setting, options, environ, profile)
              for setting in config.SETTINGS if setting.parse is not None}
    picked["proxy"] = _pick_proxy(picked["proxy"], environ, picked["base_url"][0])
    if picked["api"][0] is None:  # the default follows the base URL in effect
        picked["api"] = (config.default_api(picked["base_url"][0]), "default")
    if picked["rpm"][0] is None:  # so does this one
        picked["rpm"] = (config.default_rpm(picked["base_url"][0]), "default")
    picked["headers"], withheld = _pick_headers(picked["headers"], profile, picked["base_url"])
    settings = Settings(
        values={key: value for key, (value, _) in picked.items()},
        profile=profile_name,
        verbose=bool(options.get("verbose")),
        debug=bool(options.get("debug")),
        config_dir=config_dir,
        sources={key: source for key, (_, source) in picked.items()},
    )
    settings.withheld_headers = withheld
    return settings


def _pick_headers(picked: Tuple[Any, str], profile: Dict[str, Any],
                  base_url: Tuple[str, str]) -> Tuple[Tuple[Any, str], List[str]]:
    """The headers sent, and the names of the profile's withheld. -H beats the profile name by
    name (in any case), rather than replacing all of its headers. Like a stored token, a
    profile's credential header belongs to the host of the profile's own base URL, so a base URL
    moved to another host by -b or INTERN_BASE_URL does not get it (unless -H gives it again)."""
    own: Dict[str, str] = profile.get("headers") or {}
    url, url_source = base_url
    home = profile.get("base_url") or config.DEFAULT_BASE_URL
    withheld: List[str] = []
    if url_source in ("flag", "env") and config.host_of(url) != config.host_of(home):
        withheld = [name for name in own if config.is_secret_header(name)]
    kept = {k: v for k, v in own.items() if k not in withheld}
    headers, source = picked
    if source != "flag":
        return ((kept, "profile") if source == "profile" else picked), withheld
    named = {name.lower() for name in headers}
    merged = {**{k: v for k, v in kept.items() if k.lower() not in named}, **headers}
    return (merged, "flag"), [name for name in withheld if name.lower() not in named]
