"""``interncli chat batch``: many chat completions from an OpenAI batch file, at the rate limit,
resumable; its progress on stderr."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, TextIO, Tuple, cast

import click

from interncli.commands.common import (
    Command,
    Integer,
    json_option,
    open_transport,
    pass_app,
    require_token,
    with_retries,
)
from interncli.config import MAX_RPM
from interncli.context import AppContext
from interncli.errors import InternCliError, UsageError
from interncli.iostreams import IOStreams

if TYPE_CHECKING:  # the core is imported only when the command runs
    from interncli.batch import Pool

DEFAULT_CONCURRENCY = 8
# Each request in flight may hold a reply of up to 4 MiB, parsed and then written out: about
# 9 MiB at its peak, 2.3 GB measured at 256 in flight; 64 keep it under one.
MAX_CONCURRENCY = 64
TICK = 0.2  # seconds between looks at the workers (the bar moves this often)
PROGRESS_EVERY = 5.0  # seconds between plain progress lines (not on a terminal)
# After Ctrl-C, answers already on their way get this long to arrive and be written.
INTERRUPT_GRACE = 1.0


def _set_rpm(ctx: click.Context, param: click.Parameter, value: Optional[int]) -> Optional[int]:
    app = ctx.find_object(AppContext)
    if value is not None and app is not None:
        app.options["rpm"] = value  # as the global --rpm (which it overrides)
    return value


@click.command("batch", cls=Command)
@click.argument("input_path", metavar="INPUT.jsonl", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "output_path", required=True, metavar="OUTPUT.jsonl",
              type=click.Path(dir_okay=False),
              help="Where the answers go, one JSON line each as they arrive; the output of an earlier run "
                   "resumes it.")
@click.option("--rpm", type=Integer(min=0, max=MAX_RPM), expose_value=False, callback=_set_rpm, metavar="N",
              help="Requests a minute, shared with every interncli run of the profile (as the global --rpm).")
@click.option("--concurrency", type=Integer(min=1, max=MAX_CONCURRENCY), default=DEFAULT_CONCURRENCY,
              show_default=True, metavar="N", help="Requests in flight at once.")
@click.option("--retry-failed", is_flag=True, help="Send again the requests that failed in an earlier run.")
@json_option
@pass_app
def chat_batch(app: AppContext, input_path: str, output_path: str, concurrency: int, retry_failed: bool,
               as_json: bool) -> None:
    """Send many chat completions from a batch file (the OpenAI batch format).

    Each line of INPUT.jsonl is {"custom_id", "method": "POST", "url": "/v1/chat/completions",
    "body"}; the body is sent as given (with the profile's model when it names none). Every line
    is checked before anything is sent. Each answer is appended to OUTPUT.jsonl as
    {"id", "custom_id", "response": {"status_code", "body"}, "error"} as soon as it arrives;
    running the same command again skips the custom_ids answered (and repairs a line cut by a
    crash). A failed request's row holds its error and the batch goes on; rate-limit answers are
    retried (never written as failures) and slow every interncli run of the account down. An
    auth error stops the batch (exit 3), and so does a rate limit that will not end (exit 4);
    Ctrl-C stops sending (exit 130); the same command resumes it. Exit 0 when every request
    succeeded, else 1.

    \b
    Examples:
      interncli chat batch requests.jsonl -o answers.jsonl
      interncli chat batch requests.jsonl -o answers.jsonl --retry-failed
      jq -r 'select(.error == null) | .response.body.choices[0].message.content' answers.jsonl
    """
    from interncli import batch, files, output

    started = time.monotonic()
    out = files.check_writable(output_path, "output")
    # The same file by another name (a hard link) counts too: the inode, not the path.
    if os.path.realpath(input_path) == out or (os.path.exists(out) and os.path.exists(input_path)
                                               and os.path.samefile(input_path, out)):
        raise UsageError("the output would overwrite the input {}".format(input_path),
                         hint="Give -o another file.")
    try:
        requests = batch.load_input(input_path, app.settings.model)
    except batch.InputError as err:
        for line, message in err.problems:
            output.spec_problem(input_path, line, message, app.io)
        raise
    require_token(app)
    with contextlib.ExitStack() as held:
        held.enter_context(files.locked(out, wait=False))  # one run at a time writes an output file
        held.enter_context(batch.holding(out))
        answered = batch.read_output(out, retry_failed)
        if answered.rewritten:  # a new file (renamed into place): the lock held is on the old one
            held.enter_context(batch.holding(out))
        if answered.repaired:
            output.warn("{}: its last line was cut (a run was stopped while writing it): removed, and that "
                        "request is sent again".format(output_path), app.io)
        todo = [r for r in requests if r.custom_id not in answered.succeeded and r.custom_id not in answered.failed]
        earlier_failed = sum(1 for r in requests if r.custom_id in answered.failed)
        pool, interrupted = _run(app, todo, out, concurrency)
    skipped = len(requests) - len(todo)
    _summary(app.io, pool, skipped, earlier_failed, output_path, time.monotonic() - started)
    if interrupted:
        raise KeyboardInterrupt()  # exit 130, as for any command
    if pool.fatal is not None:
        raise pool.fatal
    failed = pool.failed + earlier_failed
    if failed:
        raise InternCliError("{} of {} requests failed: their rows in {} say why".format(
            failed, len(requests), output_path), hint="Send them again with --retry-failed.")


def _run(app: AppContext, todo: list, out: str, concurrency: int) -> Tuple[Pool, bool]:
    """Send ``todo``, the workers writing to ``out``, showing progress until they are done or
    Ctrl-C stops them: the pool, and whether it was interrupted."""
    from interncli import batch
    from interncli.client import ChatClient

    stop = threading.Event()
    log = batch.AnswerLog(out)
    pool = batch.Pool(todo, log, app.redact, stop)
    inner = app.sleep

    def sleep(seconds: float) -> None:
        # Waits (a retry's, the rate budget's) end the worker once the batch is stopped; a real
        # one at once, on the stop itself: at one request a minute a turn is a minute away, and
        # a run stopped by an auth error must not sit that long before it exits. (Another
        # sleep, injected, is called as it is.)
        if stop.is_set():
            raise batch.Stopped()
        if inner is time.sleep:
            stop.wait(seconds)
        else:
            inner(seconds)
        if stop.is_set():
            raise batch.Stopped()

    app.sleep = sleep  # before the budget is made: it waits with app.sleep

    def before_slot() -> None:
        # A worker queued for its turn when the batch stopped must not reserve a slot on its
        # way out: if another run of the account reserved after it, the slot could not be
        # handed back, and that run would wait for nothing.
        if stop.is_set():
            raise batch.Stopped()

    app.before_slot = before_slot

    def sender() -> Callable[[Dict[str, Any]], Dict[str, Any]]:
        client = ChatClient(open_transport(app))  # each worker its own session
        return lambda body: with_retries(app, lambda: client.create(body), on_retry=pool.count_retry)

    progress = Progress(app.io, pool)
    interrupted = False
    try:
        if todo:
            pool.start([sender() for _ in range(min(concurrency, len(todo)))])
            while not pool.wait(TICK):
                progress.tick()
                log.sync()
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        pool.wait(INTERRUPT_GRACE)
    finally:
        log.close()
        progress.end()
    return pool, interrupted


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return "{}h{:02d}m".format(seconds // 3600, seconds % 3600 // 60)
    if seconds >= 60:
        return "{}m{:02d}s".format(seconds // 60, seconds % 60)
    return "{}s".format(seconds)


class Progress:
    """done/failed/total, rate and ETA on stderr: click's bar on a terminal, else a plain line
    every PROGRESS_EVERY seconds (a JSON line under --json)."""

    def __init__(self, io: IOStreams, pool: Pool, clock: Callable[[], float] = time.monotonic) -> None:
        self._io = io
        self._pool = pool
        self._clock = clock
        self._started = clock()
        self._shown_at = self._started
        self._shown = 0
        self._bar: Any = None
        if io.stderr_tty and not io.json and pool.total:
            self._bar = click.progressbar(range(pool.total), label="batch", file=cast(TextIO, io.stderr), show_eta=True,
                                          show_pos=True, item_show_func=lambda _: self._status())
            self._bar.__enter__()

    def _status(self) -> str:
        pool = self._pool
        parts = ["{} failed".format(pool.failed)] if pool.failed else []
        if pool.rate_limited:
            parts.append("{} rate-limited".format(pool.rate_limited))
        parts.append("{:.1f}/min".format(self._per_minute()))
        return ", ".join(parts)

    def _per_minute(self) -> float:
        elapsed = self._clock() - self._started
        return self._pool.finished * 60.0 / elapsed if elapsed > 0 else 0.0

    def tick(self) -> None:
        """Show the progress if it is time to."""
        finished = self._pool.finished
        if self._bar is not None:
            if finished > self._shown:
                self._bar.update(finished - self._shown)
                self._shown = finished
            else:
                self._bar.render_progress()
            return
        if self._clock() - self._shown_at >= PROGRESS_EVERY:
            self.line()

    def line(self) -> None:
        """One plain progress line (or JSON line) now."""
        pool = self._pool
        self._shown_at = self._clock()
        rate = self._per_minute()
        left = pool.total - pool.finished
        eta = left * 60.0 / rate if rate > 0 else None
        if self._io.json:
            from interncli.output import write_diagnostic

            write_diagnostic({"progress": {"done": pool.succeeded, "failed": pool.failed, "total": pool.total,
                                           "rate_limited": pool.rate_limited, "per_minute": round(rate, 2),
                                           "eta_seconds": round(eta) if eta is not None else None}},
                             self._io.stderr)
            return
        self._io.stderr.write("interncli: batch: {}/{} done, {}; ETA {}\n".format(
            pool.finished, pool.total, self._status(), _duration(eta) if eta is not None else "unknown"))
        self._io.stderr.flush()

    def end(self) -> None:
        """The workers are done (or stopped): the bar's last state, the line ended."""
        if self._bar is not None:
            self.tick()
            self._bar.__exit__(None, None, None)
            self._bar = None


def _summary(io: IOStreams, pool: Pool, skipped: int, earlier_failed: int, output_path: str,
             elapsed: float) -> None:
    """What the run did, on stderr: ``interncli: batch: ...``, or ``{"summary": {...}}``."""
    if io.json:
        from interncli.output import write_diagnostic

        write_diagnostic({"summary": {"succeeded": pool.succeeded, "failed": pool.failed, "skipped": skipped,
                                      "failed_before": earlier_failed, "not_sent": pool.total - pool.finished,
                                      "rate_limited": pool.rate_limited, "seconds": round(elapsed, 1),
                                      "output": output_path}}, io.stderr)
        return
    from interncli.safetext import escape_line

    parts = ["{} answered".format(pool.succeeded), "{} failed".format(pool.failed)]
    if skipped:
        parts.append("{} skipped (in the output already{})".format(
            skipped, ", {} of them failed: --retry-failed sends them again".format(earlier_failed)
            if earlier_failed else ""))
    if pool.total - pool.finished:
        parts.append("{} not sent".format(pool.total - pool.finished))
    io.stderr.write("interncli: batch: {} in {}; answers in {}\n".format(
        ", ".join(parts), _duration(elapsed), escape_line(output_path)))
    io.stderr.flush()
