"""Writing files so that nothing is lost: a reader sees the old file or the new one, never half."""

from __future__ import annotations

import os
from typing import Optional

from interncli.errors import UsageError


def check_writable(path: str, what: str) -> str:
    """The real path a file will be written to, checked before any work is done: a regular
    file or nothing yet, in a folder that exists and can be written."""
    real = os.path.realpath(path)
    if os.path.exists(real) and not os.path.isfile(real):
        raise UsageError("{} {} is not a regular file".format(what, path),
                         hint="Give the path of a file (it is created if missing).")
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise UsageError("cannot write {} {}: folder {} does not exist".format(what, path, folder),
                         hint="Create the folder first, or choose another path.")
    if not os.access(folder, os.W_OK):
        raise UsageError("cannot write {} {}: folder {} is not writable".format(what, path, folder),
                         hint="Choose a path in a folder you can write to.")
    return real


def write_atomic(path: str, text: str, mode: Optional[int] = None) -> None:
    """Replace ``path`` (a symlink's target, not the link) with ``text`` in one step.

    ``mode`` forces the permissions; otherwise an existing file keeps its own and a new one
    is private (0600)."""
    import tempfile  # slow to import: only when a file is written

    real = os.path.realpath(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".interncli-", suffix=".tmp", dir=os.path.dirname(real))
    except OSError as exc:
        raise UsageError("cannot write {}: {}".format(path, exc.strerror),
                         hint="Check that the folder exists and is writable.") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif os.path.exists(real):
            os.chmod(tmp, os.stat(real).st_mode & 0o7777)
        os.replace(tmp, real)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
