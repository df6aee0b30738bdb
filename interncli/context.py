"""The settings, resolved once (flag > environment > profile > default) and handed down."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from interncli import config, credentials
from interncli.errors import UsageError

DEFAULT_BASE_URL = "https://chat.intern-ai.org.cn/api/v1"
DEFAULT_MODEL = "intern-latest"
DEFAULT_TIMEOUT = 130.0  # the service cuts a reply at 120 s
DEFAULT_MAX_RETRIES = 2
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class Settings:
    """Everything a command needs to know about where and how to talk to the API (the token
    apart: it is looked up only when a command needs it).

    A plain class rather than a dataclass: building dataclasses costs start-up time."""

    __slots__ = ("base_url", "model", "models", "profile", "timeout", "max_retries", "proxy", "ca_bundle",
                 "allow_http", "verbose", "debug", "config_dir", "sources")

    def __init__(self, *, base_url: str, model: str, models: List[str], profile: str, timeout: float, max_retries: int,
                 proxy: Optional[str], ca_bundle: Optional[str], allow_http: bool, verbose: bool, debug: bool,
                 config_dir: str, sources: Dict[str, str]) -> None:
        self.base_url, self.model, self.models, self.profile = base_url, model, models, profile
        self.timeout, self.max_retries = timeout, max_retries
        self.proxy, self.ca_bundle = proxy, ca_bundle
        self.allow_http = allow_http  # a token may go over plain http:// to another machine
        self.verbose, self.debug = verbose, debug
        self.config_dir = config_dir
        self.sources = sources  # setting -> "flag", "env", "profile" or "default"

    def values(self) -> Dict[str, Any]:
        """The settings a profile can hold, as resolved."""
        return {key: getattr(self, key) for key in config.PARSERS}


class AppContext:
    """Handed to every command: the raw global options, resolved into Settings on first use."""

    def __init__(self, options: Dict[str, Any], environ: Mapping[str, str], config_dir: str) -> None:
        self.options = options
        self.environ = environ
        self.config_dir = config_dir
        self.json_errors = False
        self.argv_tokens: List[str] = []  # -k values found on the command line before parsing
        self.input_tokens: List[str] = []  # tokens read as input (auth login), which a keyring error may quote
        self.http_warned = False
        # How the commands wait between retries; a test gives one that records the delay instead.
        self.sleep: Callable[[float], None] = time.sleep
        self._settings: Optional[Settings] = None
        self._credential: Optional[credentials.Credential] = None

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
        if self._settings is not None:
            urls.append(self._settings.proxy)
        return self.secrets() + [s for url in urls for s in config.url_secrets(url)]

    def redact(self, text: str) -> str:
        """``text`` without any token or password the user gave, for messages that quote the server."""
        return credentials.redact(text, self.hidden())

    def redact_value(self, value: Any) -> Any:
        """A JSON-like value (an error code) without any token or password."""
        return credentials.redact_value(value, self.hidden())

    @property
    def settings(self) -> Settings:
        """The resolved settings (reads the config file the first time)."""
        if self._settings is None:
            self._settings = resolve_settings(self.options, self.environ, self.config_dir)
        return self._settings

    @property
    def credential(self) -> credentials.Credential:
        """The token and its source, looked up on first use (the keyring only if needed)."""
        if self._credential is None:
            host, home_host = self.token_hosts()
            self._credential = credentials.lookup(self.options.get("api_key"), self.environ,
                                                  self.profile(), self.config_dir, host, home_host)
        return self._credential

    def token_hosts(self) -> Tuple[str, str]:
        """The host requests go to, and the host of the profile's own base URL (or the default),
        which a stored token belongs to unless another was recorded at login. Only the base URLs
        are read, so that `auth token` works while another setting is being fixed."""
        cfg = config.load_config(self.config_dir)
        name = choose_profile(self.options, self.environ, cfg)
        config.check_profile(cfg, name)
        own = config.profile_entry(cfg, name, config.config_path(self.config_dir)).get("base_url")
        home = config.parse_base_url(own, "base_url (profile {!r})".format(name)) if own is not None \
            else DEFAULT_BASE_URL
        target = home
        if self.options.get("base_url") is not None:
            target = config.parse_base_url(self.options["base_url"], "--base-url")
        elif self.environ.get("INTERN_BASE_URL", "").strip():
            target = config.parse_base_url(self.environ["INTERN_BASE_URL"], "INTERN_BASE_URL")
        return config.host_of(target), config.host_of(home)

    def profile_name(self) -> str:
        """The profile asked for (flag, INTERN_PROFILE, the file's default_profile, "default"),
        whether or not the file defines it yet."""
        return choose_profile(self.options, self.environ, config.load_config(self.config_dir))

    def profile(self) -> str:
        """The profile asked for, which must exist; its settings need not be valid (so that
        `auth token` works while a profile's timeout is being fixed, say)."""
        cfg = config.load_config(self.config_dir)
        name = choose_profile(self.options, self.environ, cfg)
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


def _pick(flag: Any, env_name: Optional[str], environ: Mapping[str, str], profile: Dict[str, Any],
          key: str, parse: Callable[[Any, str], Any], default: Any, flag_name: str) -> Tuple[Any, str]:
    if flag is not None:
        return parse(flag, flag_name), "flag"
    if env_name and environ.get(env_name, "").strip():
        return parse(environ[env_name], env_name), "env"
    if key in profile:
        return profile[key], "profile"
    return default, "default"


def resolve_settings(options: Dict[str, Any], environ: Mapping[str, str], config_dir: str) -> Settings:
    """Resolve every setting from the flags given, the environment and the config file."""
    cfg = config.load_config(config_dir)
    profile_name = choose_profile(options, environ, cfg)
    config.check_profile(cfg, profile_name)
    profile = config.profile_settings(cfg, profile_name, config.config_path(config_dir))
    # requests reads HTTPS_PROXY/NO_PROXY itself; a profile's proxy applies only when no proxy
    # variable is set, so the environment still wins over the file.
    proxy_env = any(environ.get(name) for name in PROXY_VARIABLES)
    ca_env = "REQUESTS_CA_BUNDLE" if environ.get("REQUESTS_CA_BUNDLE") else "SSL_CERT_FILE"
    picked = {
        "base_url": _pick(options.get("base_url"), "INTERN_BASE_URL", environ, profile, "base_url",
                          config.parse_base_url, DEFAULT_BASE_URL, "--base-url"),
        "model": _pick(None, None, environ, profile, "model", config.parse_text, DEFAULT_MODEL, "-m"),
        "models": _pick(None, None, environ, profile, "models", config.parse_models, [], "models"),
        "timeout": _pick(options.get("timeout"), "INTERN_TIMEOUT", environ, profile, "timeout",
                         config.parse_timeout, DEFAULT_TIMEOUT, "--timeout"),
        "max_retries": _pick(options.get("max_retries"), "INTERN_MAX_RETRIES", environ, profile, "max_retries",
                             config.parse_max_retries, DEFAULT_MAX_RETRIES, "--max-retries"),
        "proxy": _pick(options.get("proxy"), None, environ, {} if proxy_env else profile, "proxy",
                       config.parse_proxy, None, "--proxy"),
        "ca_bundle": _pick(options.get("ca_bundle"), ca_env, environ, profile, "ca_bundle",
                           config.parse_text, None, "--ca-bundle"),
        "allow_http": _pick(None, "INTERN_ALLOW_HTTP", environ, profile, "allow_http", config.parse_bool, False,
                            "allow_http"),
    }
    if proxy_env and options.get("proxy") is None:
        picked["proxy"] = (None, "env")
    return Settings(
        profile=profile_name,
        verbose=bool(options.get("verbose")),
        debug=bool(options.get("debug")),
        config_dir=config_dir,
        sources={key: source for key, (_, source) in picked.items()},
        **{key: value for key, (value, _) in picked.items()},
    )
