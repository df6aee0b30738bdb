"""Writing files so that nothing is lost: a reader sees the old file or the new one, never half."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional

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


def make_dir(path: str) -> None:
    """The config folder, created private if missing; a clear error if it cannot be."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise UsageError("cannot create the folder {}: {}".format(path, exc.strerror),
                         hint="Choose a writable folder with INTERNCLI_CONFIG_DIR.") from exc


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


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path``.lock while a file is read, changed and written back,
    so that two runs changing it at once do not lose each other's change."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, atomic writes still
        yield
        return
    make_dir(os.path.dirname(os.path.abspath(path)))
    try:
        fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise UsageError("cannot lock {}: {}".format(path, exc.strerror),
                         hint="Check the folder's permissions.") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
