"""The settings, resolved once (flag > environment > profile > default) and handed down."""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional

from interncli import config, credentials

DEFAULT_BASE_URL = "https://chat.intern-ai.org.cn/api/v1"
DEFAULT_MODEL = "intern-latest"
DEFAULT_TIMEOUT = 130.0  # the service cuts a reply at 120 s
DEFAULT_MAX_RETRIES = 2


class Settings:
    """Everything a command needs to know about where and how to talk to the API.

    A plain class rather than a dataclass: building dataclasses costs start-up time."""

    __slots__ = ("base_url", "model", "profile", "timeout", "max_retries", "proxy", "ca_bundle",
                 "verbose", "debug", "config_dir", "token_source", "token")

    def __init__(self, *, base_url: str, model: str, profile: str, timeout: float, max_retries: int,
                 proxy: Optional[str], ca_bundle: Optional[str], verbose: bool, debug: bool,
                 config_dir: str, token_source: str, token: Optional[str] = None) -> None:
        self.base_url, self.model, self.profile = base_url, model, profile
        self.timeout, self.max_retries = timeout, max_retries
        self.proxy, self.ca_bundle = proxy, ca_bundle
        self.verbose, self.debug = verbose, debug
        self.config_dir = config_dir
        self.token_source, self.token = token_source, token

    def __repr__(self) -> str:  # never the token
        return "Settings(profile={!r}, base_url={!r}, token_source={!r})".format(
            self.profile, self.base_url, self.token_source)


class AppContext:
    """Handed to every command: the raw global options, resolved into Settings on first use."""

    def __init__(self, options: Dict[str, Any], environ: Mapping[str, str], config_dir: str) -> None:
        self.options = options
        self.environ = environ
        self.config_dir = config_dir
        self.json_errors = False
        self._settings: Optional[Settings] = None

    def redact(self, text: str) -> str:
        """``text`` without any token the user gave, for error messages that quote the server."""
        secrets = [self.options.get("api_key") or "", self.environ.get("INTERN_API_KEY", "")]
        if self._settings is not None and self._settings.token:
            secrets.append(self._settings.token)
        return credentials.redact(text, secrets)

    @property
    def settings(self) -> Settings:
        """The resolved settings (reads the config file the first time)."""
        if self._settings is None:
            self._settings = resolve_settings(self.options, self.environ, self.config_dir)
        return self._settings


def _pick(flag: Any, env_name: Optional[str], environ: Mapping[str, str], profile: Dict[str, Any],
          key: str, parse: Callable[[Any, str], Any], default: Any, flag_name: str) -> Any:
    if flag is not None:
        return parse(flag, flag_name)
    if env_name and environ.get(env_name, "").strip():
        return parse(environ[env_name], env_name)
    if key in profile:
        return profile[key]
    return default


def resolve_settings(options: Dict[str, Any], environ: Mapping[str, str], config_dir: str) -> Settings:
    """Resolve every setting from the flags given, the environment and the config file."""
    cfg = config.load_config(config_dir)
    profile_name = (options.get("profile") or environ.get("INTERN_PROFILE", "").strip()
                    or str(cfg.get("default_profile") or "default"))
    config.check_profile(cfg, profile_name)
    profile = config.profile_settings(cfg, profile_name, config.config_path(config_dir))

    base_url = _pick(options.get("base_url"), "INTERN_BASE_URL", environ, profile, "base_url",
                     config.parse_base_url, DEFAULT_BASE_URL, "--base-url")
    timeout = _pick(options.get("timeout"), "INTERN_TIMEOUT", environ, profile, "timeout",
                    config.parse_timeout, DEFAULT_TIMEOUT, "--timeout")
    retries = _pick(options.get("max_retries"), "INTERN_MAX_RETRIES", environ, profile, "max_retries",
                    config.parse_max_retries, DEFAULT_MAX_RETRIES, "--max-retries")
    # requests reads HTTPS_PROXY/NO_PROXY itself; a profile's proxy applies only when no proxy
    # variable is set, so the environment still wins over the file.
    proxy_env = any(environ.get(name) for name in
                    ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"))
    proxy = _pick(options.get("proxy"), None, environ, {} if proxy_env else profile, "proxy",
                  config.parse_proxy, None, "--proxy")
    ca_env = "REQUESTS_CA_BUNDLE" if environ.get("REQUESTS_CA_BUNDLE") else "SSL_CERT_FILE"
    ca_bundle = _pick(options.get("ca_bundle"), ca_env, environ, profile, "ca_bundle",
                      config.parse_text, None, "--ca-bundle")
    token, source = credentials.resolve_token(options.get("api_key"), environ)
    return Settings(
        base_url=base_url,
        model=profile.get("model", DEFAULT_MODEL),
        profile=profile_name,
        timeout=timeout,
        max_retries=retries,
        proxy=proxy,
        ca_bundle=ca_bundle,
        verbose=bool(options.get("verbose")),
        debug=bool(options.get("debug")),
        config_dir=config_dir,
        token=token,
        token_source=source,
    )
