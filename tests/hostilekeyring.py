"""A keyring backend that fails in a hostile way, for in-process tests: its error quotes the
password it was given (as a careless backend's may)."""

from __future__ import annotations

from typing import Optional

from keyring.backend import KeyringBackend


class QuotingKeyring(KeyringBackend):
    """Refuses to store, quoting the password in its error."""

    priority = 1

    def get_password(self, service: str, username: str) -> Optional[str]:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("cannot store {!r} for {}".format(password, username))

    def delete_password(self, service: str, username: str) -> None:
        raise RuntimeError("nothing to delete")
