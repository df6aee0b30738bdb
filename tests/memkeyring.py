"""Keyring backends for tests, installed through keyring's own API (keyring.set_keyring, or
PYTHON_KEYRING_BACKEND for a subprocess): one in memory, one that never answers."""

from __future__ import annotations

import threading
from typing import Dict, Optional, Tuple

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """A keyring that keeps passwords in a dict."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        # Not KeyringBackend.__init__: all it does is read KEYRING_PROPERTY_* settings, none of
        # which this backend has, by going over the whole environment (one backend per test).
        self.passwords: Dict[Tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> Optional[str]:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


class HangingKeyring(KeyringBackend):
    """A keyring that waits forever, as a locked one waiting for a prompt does."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> Optional[str]:
        threading.Event().wait()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        threading.Event().wait()

    def delete_password(self, service: str, username: str) -> None:
        threading.Event().wait()
