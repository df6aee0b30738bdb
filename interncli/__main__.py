"""The entry point of the console script and of ``python -m interncli``.

Start-up takes tens of milliseconds of imports before ``cli.run`` can catch anything, and a
Ctrl-C in that time would print a traceback. So the process enters here, where only modules
that Python has already loaded are used: until interncli.cli is imported, a Ctrl-C ends the
process at once with exit 130. Here too stderr is made one whose failures are ignored, and
stdout one that cannot fail on a character its encoding lacks.
"""

# The C module under `signal`, loaded by the interpreter itself: `signal` wraps it in enums,
# which can cost milliseconds of imports before the handler is in place.
import _signal
import io
import os
import sys

# ExitCode.INTERRUPTED, spelled out: importing interncli.errors here would widen the window.
INTERRUPTED = 130


class _DroppingWriter(io.RawIOBase):
    """fd 2 for ``sys.stderr``, where a write that fails (stderr closed, a full disk, a reader
    gone) is dropped: losing a diagnostic must not change the exit code, nor end in a traceback."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        try:
            return os.isatty(self._fd)
        except OSError:
            return False

    def write(self, data: bytes) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            pass
        return len(data)


def guard_stderr() -> None:
    """Make ``sys.stderr`` safe to write whatever fd 2 is: closed (``2>&-``) or full
    (``2>/dev/full``)."""
    try:
        os.fstat(2)
    except OSError:
        # Closed: put /dev/null there, or the next file opened would become "stderr".
        fd = os.open(os.devnull, os.O_WRONLY)
        if fd != 2:
            os.dup2(fd, 2)
            os.close(fd)
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    sys.stderr = io.TextIOWrapper(_DroppingWriter(2), encoding=encoding,
                                  errors="backslashreplace", line_buffering=True, write_through=True)


def guard_stdout() -> None:
    """Make text that stdout's encoding cannot hold come out as ``\\uNNNN`` instead of failing:
    with PYTHONIOENCODING=ascii, or a legacy locale, a model's reply in Chinese ended the run
    with nothing printed (UTF-8, the usual case, holds everything and is not changed)."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")


def main() -> None:
    """Run interncli; a Ctrl-C at any point, even while it is still being imported, ends with
    one line on stderr and exit 130, never a traceback."""
    previous = _signal.getsignal(_signal.SIGINT)
    if previous is _signal.default_int_handler:  # not when started with Ctrl-C ignored (nohup, &)
        _signal.signal(_signal.SIGINT, _exit_interrupted)
    try:
        guard_stderr()
        guard_stdout()
        from interncli.cli import main as run

        # From here cli.run turns a Ctrl-C into exit 130, keeping what was printed.
        _signal.signal(_signal.SIGINT, previous)
        run()
    except KeyboardInterrupt:  # after the imports, before or around cli.run's own handler
        sys.stderr.write("\ninterncli: interrupted\n")
        sys.exit(INTERRUPTED)


def _exit_interrupted(signum: int, frame: object) -> None:
    # Nothing has been printed or started yet: end at once, wherever the interpreter is. A
    # KeyboardInterrupt raised instead could land in one of importlib's weakref callbacks,
    # where Python prints it as "Exception ignored ... Traceback" and carries on (seen here).
    try:
        os.write(2, b"\ninterncli: interrupted\n")
    except OSError:
        pass
    os._exit(INTERRUPTED)


if __name__ == "__main__":
    main()
