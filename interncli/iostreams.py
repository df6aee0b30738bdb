"""The standard streams of a run and what each is connected to (gh's ``iostreams``, httpie's
``Environment``): built once, by ``cli.run`` from the process or by a test from any streams, and
handed down on the AppContext, so that nothing else asks ``sys`` or the environment."""

from __future__ import annotations

from typing import IO, Any, Mapping, Optional


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` says it is a terminal (a closed or odd stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class IOStreams:
    """stdin (None when the process was started with it closed), stdout and stderr; whether each
    is a terminal; whether colour is on; and whether stderr is in JSON mode.

    Colour: only stderr is ever coloured (the error and warning prefixes, dimmed reasoning), on a
    terminal, and never when NO_COLOR is set to anything (https://no-color.org).
    ``json``: set once ``--json`` is parsed; from then on every stderr line is one JSON object."""

    __slots__ = ("stdin", "stdout", "stderr", "stdin_tty", "stdout_tty", "stderr_tty", "color", "json")

    def __init__(self, stdin: Optional[IO[str]], stdout: IO[str], stderr: IO[str],
                 environ: Mapping[str, str]) -> None:
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.stdin_tty = stdin is not None and is_terminal(stdin)
        self.stdout_tty = is_terminal(stdout)
        self.stderr_tty = is_terminal(stderr)
        self.color = self.stderr_tty and "NO_COLOR" not in environ
        self.json = False

    @property
    def interactive(self) -> bool:
        """Whether a person can be asked: stdin and stderr (where the question goes) are terminals."""
        return self.stdin_tty and self.stderr_tty
