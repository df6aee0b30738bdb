"""Streams for injected I/O (interncli.iostreams): text buffers that say whether they are a
terminal, so that a test can run a command "on a terminal", in a pipe, or with NO_COLOR, in
process and without a pty (gh's ``iostreams.Test()``)."""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Dict, Optional, Sequence

from interncli.cli import run
from interncli.iostreams import IOStreams


class FakeStream(io.StringIO):
    """A text buffer that is a terminal, or not, as told. It has no file descriptor: a hidden
    prompt reads it as it is (no echo to turn off)."""

    def __init__(self, text: str = "", terminal: bool = False) -> None:
        super().__init__(text)
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def fake_io(stdin: Optional[str] = "", *, stdin_tty: bool = False, stdout_tty: bool = False,
            stderr_tty: bool = False, environ: Optional[Dict[str, str]] = None) -> IOStreams:
    """IOStreams over fake streams; ``stdin`` None: started with stdin closed. ``environ``: what
    the colour rule reads (NO_COLOR), by default none of it set."""
    return IOStreams(None if stdin is None else FakeStream(stdin, stdin_tty), FakeStream(terminal=stdout_tty),
                     FakeStream(terminal=stderr_tty), {} if environ is None else environ)


def terminal_io(stdin: Optional[str] = "", environ: Optional[Dict[str, str]] = None) -> IOStreams:
    """Every stream a terminal, as when a person runs the command in a shell."""
    return fake_io(stdin, stdin_tty=True, stdout_tty=True, stderr_tty=True, environ=environ)


@dataclasses.dataclass
class FakeRun:
    exit_code: int
    stdout: str
    stderr: str


def _no_wait(seconds: float) -> None:
    """Stands in for time.sleep between retries: the in-process tests wait for nothing."""


def run_with(streams: IOStreams, args: Sequence[str]) -> FakeRun:
    """Run a command line in-process with the given streams; what it wrote to each, apart."""
    assert os.environ.get("INTERNCLI_CONFIG_DIR"), "run under conftest's isolated environment"
    code = run(list(args), io=streams, sleep=_no_wait)
    stdout, stderr = streams.stdout, streams.stderr
    assert isinstance(stdout, FakeStream) and isinstance(stderr, FakeStream)
    return FakeRun(code, stdout.getvalue(), stderr.getvalue())
