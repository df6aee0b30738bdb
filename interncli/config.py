"""The YAML config file: profiles and their validation."""

from __future__ import annotations

import os
from typing import Any, Dict

from interncli.errors import UsageError

CONFIG_FILE = "config.yaml"


def parse_timeout(value: Any, source: str) -> float:
    """A positive number of seconds."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0 or number == float("inf"):
        raise UsageError(
            "{} must be a positive number of seconds, not {!r}".format(source, value),
            hint="For example: --timeout 60",
        )
    return number


def parse_max_retries(value: Any, source: str) -> int:
    """A whole number of retries, zero or more."""
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if number < 0 or isinstance(value, float) or isinstance(value, bool):
        raise UsageError(
            "{} must be a whole number of 0 or more, not {!r}".format(source, value),
            hint="For example: --max-retries 3 (0 turns retries off)",
        )
    return number


def parse_text(value: Any, source: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise UsageError("{} must be a non-empty string, not {!r}".format(source, value))
    return value.strip()


# Each profile key and its parser; the parsers also check values given by flag or environment.
PARSERS = {
    "base_url": parse_text,
    "model": parse_text,
    "timeout": parse_timeout,
    "max_retries": parse_max_retries,
    "proxy": parse_text,
    "ca_bundle": parse_text,
}


def config_path(config_dir: str) -> str:
    """Where the config file lives."""
    return os.path.join(config_dir, CONFIG_FILE)


def load_config(config_dir: str) -> Dict[str, Any]:
    """The parsed config file, or an empty config when there is none."""
    path = config_path(config_dir)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError("cannot read {}: {}".format(path, exc.strerror)) from exc
    import yaml  # only when there is a file: keeps start-up light

    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise UsageError(
            "{} is not valid YAML: {}".format(path, " ".join(str(exc).split())),
            hint="Fix the file, or move it away to start from the defaults.",
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("profiles", {}), dict):
        raise UsageError(
            "{} must be a mapping with a 'profiles' mapping".format(path),
            hint="See `interncli config --help` for the file's layout.",
        )
    return data


def profile_settings(config: Dict[str, Any], profile: str, path: str) -> Dict[str, Any]:
    """The validated settings of one profile; an unknown profile has none."""
    entry = (config.get("profiles") or {}).get(profile) or {}
    if not isinstance(entry, dict):
        raise UsageError("profile {!r} in {} must be a mapping".format(profile, path))
    settings = {}
    for key, value in entry.items():
        if key not in PARSERS:
            raise UsageError(
                "unknown key {!r} in profile {!r} of {}".format(key, profile, path),
                hint="Valid keys: " + ", ".join(PARSERS),
            )
        settings[key] = PARSERS[key](value, "{} (profile {!r})".format(key, profile))
    return settings
