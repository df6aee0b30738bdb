"""Writing files so that nothing is lost: a reader sees the old file or the new one, never half."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import Iterable, Iterator, Optional, Union

from interncli.errors import UsageError


def check_writable(path: str, what: str) -> str:
    """The real path a file will be written to, checked before any work is done: a regular
    file that may be changed or nothing yet, in a folder that exists and can be written."""
    real = os.path.realpath(path)
    if os.path.exists(real) and not os.path.isfile(real):
        raise UsageError("{} {} is not a regular file".format(what, path),
                         hint="Give the path of a file (it is created if missing).")
    if os.path.exists(real) and not _may_write(real):
        # Replacing it by rename would succeed all the same: a read-only file must be refused here.
        raise UsageError("cannot write {} {}: the file is read-only".format(what, path),
                         hint="Make it writable (chmod u+w), or choose another file.")
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise UsageError("cannot write {} {}: folder {} does not exist".format(what, path, folder),
                         hint="Create the folder first, or choose another path.")
    if not _may_write(folder):
        raise UsageError("cannot write {} {}: folder {} is not writable".format(what, path, folder),
                         hint="Choose a path in a folder you can write to.")
    return real


def _may_write(path: str) -> bool:
    # access() says yes to root whatever the mode: a file or folder that nobody may write to
    # was made read-only on purpose, and is treated as such for root too.
    try:
        return os.access(path, os.W_OK) and bool(os.stat(path).st_mode & 0o222)
    except OSError:
        return False


def make_dir(path: str) -> None:
    """The config folder, created private if missing; a clear error if it cannot be."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise UsageError("cannot create the folder {}: {}".format(path, exc.strerror),
                         hint="Choose a writable folder with INTERNCLI_CONFIG_DIR.") from exc


def write_atomic(path: str, text: Union[str, Iterable[str]], mode: Optional[int] = None) -> None:
    """Replace ``path`` (a symlink's target, not the link) with ``text`` in one step, durably:
    the data and then the folder's entry are synced to disk. ``text`` may come in pieces (an
    iterable), for a file too large to hold.

    ``mode`` forces the permissions; otherwise an existing file keeps its own and a new one
    is private (0600). Any failure is an error that names ``path``."""
    import tempfile  # slow to import: only when a file is written

    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".interncli-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if isinstance(text, str):
                fh.write(text)
            else:
                fh.writelines(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif os.path.exists(real):
            os.chmod(tmp, os.stat(real).st_mode & 0o7777)
        os.replace(tmp, real)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from exc
        raise
    _sync_folder(folder)


def _write_error(path: str, exc: OSError) -> UsageError:
    return UsageError("cannot write {}: {}".format(path, exc.strerror or exc),
                      hint="Check that its folder exists and is writable, and that the disk is not full.")


def _sync_folder(folder: str) -> None:
    # Without this, a crash just after the rename can bring the old file back.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the rename itself is done
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: str, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``path``.lock while a file is read, changed and written back,
    so that two runs changing it at once do not lose each other's change. The lock file is
    removed on release, so none is left behind. Without ``wait``, a lock another run holds is
    an error (a run that holds it long, such as a batch writing its output)."""
    lock_path = path + ".lock"
    make_dir(os.path.dirname(os.path.abspath(path)))
    fd = _acquire(lock_path, wait)
    try:
        yield
    finally:
        # Unlinked while still held: a run waiting on this file then finds it gone from the
        # path, and starts again with a new one (see _acquire).
        try:
            os.unlink(lock_path)
        except OSError:
            pass
        os.close(fd)


def lock_open_file(fd: int, name: str, wait: bool = True) -> None:
    """An exclusive lock on the open file ``fd``, held until it is closed (a killed process's
    too: the kernel releases it). Without ``wait``, a lock another run holds is an error. A file
    system that cannot lock (NFS without its lock service: ENOLCK) is an error naming ``name``
    too: going on unlocked could lose another run's work. Where there is no fcntl (not POSIX)
    nothing is locked."""
    try:
        import fcntl
    except ImportError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UsageError("{} is in use by another interncli run".format(name),
                         hint="Wait for it to finish, or choose another file.") from None
    except OSError as exc:
        raise UsageError("cannot lock {}: {}".format(name, exc.strerror or exc),
                         hint="Keep the file on a local disk: this file system does not lock files."
                         if exc.errno == errno.ENOLCK else "Check the file and its folder.") from exc


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``: a regular file takes it in one write, and a short write
    (a full disk) leaves the rest to the next, which raises."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _acquire(lock_path: str, wait: bool = True) -> int:
    """An fd holding the lock on the file now at ``lock_path``."""
    while True:
        try:
            # Not through a symlink: in a shared folder another user could plant one.
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:
            raise UsageError("cannot lock {}: {}".format(lock_path[:-len(".lock")], exc.strerror),
                             hint="Check the folder's permissions.") from exc
        try:
            lock_open_file(fd, lock_path[:-len(".lock")], wait)
            held = os.fstat(fd)
            current = os.lstat(lock_path)
        except FileNotFoundError:  # removed by the run that held it before us: start again
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
            return fd
        os.close(fd)  # the path now names a newer lock file than the one we locked


def append_private(path: str, text: str) -> None:
    """Add ``text`` to the end of ``path`` in one write (appends of concurrent runs do not mix),
    the file created private (0600) from the start, never readable by others for a moment, and
    made private again if it was not; never through a symlink. Any failure is an error naming
    ``path``."""
    data = text.encode("utf-8")
    try:
        # O_NONBLOCK: a FIFO planted at the path would block the open for ever (a FIFO with no
        # reader fails at once with ENXIO); anything but a regular file is refused below.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0), 0o600)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
        write_all(fd, data)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    finally:
        os.close(fd)
