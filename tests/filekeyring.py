"""A keyring backend for subprocess tests: passwords in a JSON file named by the
INTERNCLI_TEST_KEYRING_FILE variable (kept outside the config dir and HOME, as a real keyring's
store is outside what the CLI writes). Chosen with
PYTHON_KEYRING_BACKEND=tests.filekeyring.FileKeyring and PYTHONPATH=<repo root>."""

from __future__ import annotations

import json
import os
from typing import Dict, Optional

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

PATH_VARIABLE = "INTERNCLI_TEST_KEYRING_FILE"


class FileKeyring(KeyringBackend):
    """service/user -> password, in one JSON file."""

    priority = 1

    @staticmethod
    def _path() -> str:
        path = os.environ.get(PATH_VARIABLE)
        if not path:
            raise RuntimeError(PATH_VARIABLE + " is not set")
        return path

    def _load(self) -> Dict[str, str]:
        try:
            with open(self._path(), encoding="utf-8") as fh:
                return dict(json.load(fh))
        except FileNotFoundError:
            return {}

    def _save(self, data: Dict[str, str]) -> None:
        with open(self._path(), "w", encoding="utf-8") as fh:
            json.dump(data, fh)

    @staticmethod
    def _key(service: str, username: str) -> str:
        return service + "/" + username

    def get_password(self, service: str, username: str) -> Optional[str]:
        return self._load().get(self._key(service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[self._key(service, username)] = password
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(self._key(service, username), None) is None:
            raise PasswordDeleteError("not found")
        self._save(data)
