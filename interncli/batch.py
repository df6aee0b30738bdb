"""``chat batch``'s core: the OpenAI batch-file format in and out, checked whole before anything
is sent; the output file, which is how a batch resumes (answered custom_ids are skipped, a cut
last line is repaired); and the pool of workers that send the requests.

Exactly once: each answer is one line appended with a single write as soon as it arrives, and
synced to disk at least every FSYNC_EVERY seconds, so a crash loses at most the requests in flight
(and what the last seconds' sync had not reached the disk, on a power cut). A request whose line
is not complete in the file is sent again by the next run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

from interncli import files
from interncli.errors import EXIT_MEANINGS, MAX_RETRY_AFTER, AuthError, InternCliError, RateLimitError, UsageError
from interncli.safetext import escape_json_text

# The request urls a chat batch accepts (the OpenAI batch file names /v1/chat/completions; the
# base URL already holds the API's prefix, so both are sent to its chat/completions).
CHAT_URLS = ("/v1/chat/completions", "/chat/completions")
FSYNC_EVERY = 2.0  # seconds: answers reach the disk at least this often
# A request refused for its rate this many times in a row (each time after the retries) stops
# the batch, unwritten: the account's quota is spent, and the next run can resume.
RATE_LIMIT_ROUNDS = 10
MAX_PROBLEMS = 50  # bad input lines listed; the count says how many more there were
QUOTE_LIMIT = 100  # characters of a bad value quoted in its problem
# A \uD800-\uDFFF escape: maybe half of a pair written out, maybe a lone surrogate that no
# UTF-8 request can carry (wire.encode_body would refuse it when its turn came).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_MEANINGS = {int(code): word for code, word, _ in EXIT_MEANINGS}


class BatchRequest:
    """One line of the input: its custom_id, the body to send, and its line number."""

    __slots__ = ("custom_id", "body", "line")

    def __init__(self, custom_id: str, body: Dict[str, Any], line: int) -> None:
        self.custom_id = custom_id
        self.body = body
        self.line = line


class InputError(UsageError):
    """The input has bad lines (exit 2, nothing sent): each problem as (line, message)."""

    def __init__(self, path: str, problems: List[Tuple[int, str]], total: int) -> None:
        more = " (the first {} are listed)".format(len(problems)) if total > len(problems) else ""
        super().__init__("{}: {} bad line{}{}; nothing was sent".format(
            path, total, "" if total == 1 else "s", more),
            hint="Each line is one JSON object: {\"custom_id\": \"...\", \"method\": \"POST\", \"url\": "
                 "\"/v1/chat/completions\", \"body\": {\"messages\": [...]}}, each custom_id used once.")
        self.path = path
        self.problems = problems


def load_input(path: str, model: str) -> List[BatchRequest]:
    """The requests of a batch input file, every line checked (InputError lists the bad ones).
    A body without ``model`` gets ``model``, the profile's; blank lines are skipped."""
    requests: List[BatchRequest] = []
    problems: List[Tuple[int, str]] = []
    seen: Dict[str, int] = {}
    try:
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, 1):  # a line at a time: only the bodies are kept
                if not raw.strip():
                    continue
                found = _check_line(raw, seen)
                if isinstance(found, str):
                    problems.append((number, found))
                    continue
                custom_id, body = found
                seen[custom_id] = number
                requests.append(BatchRequest(custom_id, {"model": model, **body} if "model" not in body else body,
                                             number))
    except OSError as exc:
        raise UsageError("cannot read {}: {}".format(path, exc.strerror or exc),
                         hint="Give the path of a JSONL batch file.") from exc
    if problems:
        raise InputError(path, problems[:MAX_PROBLEMS], len(problems))
    if not requests:
        raise UsageError("{} holds no request".format(path), hint="Each line is one request, as JSON.")
    return requests


def _check_line(raw: bytes, seen: Dict[str, int]) -> Any:
    """(custom_id, body) of a good line, else what is wrong with it."""
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except (ValueError, RecursionError) as exc:
        return "not valid JSON: {}".format(exc if not isinstance(exc, RecursionError) else "nested too deeply")
    if not isinstance(obj, dict):
        return "not a JSON object"
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return "custom_id must be a non-empty string"
    if custom_id in seen:
        return "custom_id {} is used already, on line {}".format(_quoted(custom_id), seen[custom_id])
    if obj.get("method", "POST") != "POST":
        return "method must be POST, not {}".format(_quoted(obj.get("method")))
    if obj.get("url") not in CHAT_URLS:
        return "url must be /v1/chat/completions (a chat batch), not {}".format(_quoted(obj.get("url")))
    body = obj.get("body")
    if not isinstance(body, dict):
        return "body must be a JSON object (the chat completion request)"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "body.messages must be a non-empty list"
    if body.get("stream"):
        return "body.stream must not be true: each answer is written whole"
    if "model" in body and (not isinstance(body["model"], str) or not body["model"]):
        return "body.model must be a non-empty string"
    if _SURROGATE_ESCAPE.search(raw) is not None:  # rare: only then is the body encoded to see
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return "body holds text that is not valid Unicode (a lone surrogate such as \\ud800)"
    return custom_id, body


def _refuse_constant(name: str) -> Any:
    """Python reads NaN and Infinity, which JSON has not (and no request can carry)."""
    raise ValueError("{} is not a JSON number".format(name))


def _quoted(value: Any) -> str:
    """``value`` as Python shows it, cut to QUOTE_LIMIT characters: a bad value may be megabytes
    long, and each bad line is one line on the terminal."""
    shown = repr(value[:QUOTE_LIMIT + 1] if isinstance(value, str) else value)
    return shown if len(shown) <= QUOTE_LIMIT else shown[:QUOTE_LIMIT] + "..."


class Answered:
    """What the output file already holds: the custom_ids answered and those that failed."""

    def __init__(self) -> None:
        self.succeeded: Set[str] = set()
        self.failed: Set[str] = set()
        self.repaired = False  # a cut last line was removed
        self.rewritten = False  # the failed rows were dropped: the output is a new file


@contextlib.contextmanager
def holding(path: str) -> Iterator[None]:
    """Hold the output file itself (created if missing) locked while a run writes it, or
    UsageError if another run holds it: the lock file beside a path (files.locked) does not see
    the same file given by another name, a hard link, and two runs would answer every request."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise UsageError("cannot write {}: {}".format(path, exc.strerror or exc),
                         hint="Give a writable file for -o (it is created if missing).") from exc
    try:
        files.lock_open_file(fd, path, wait=False)
        yield
    finally:
        os.close(fd)  # releases the lock


def read_output(path: str, retry_failed: bool) -> Answered:
    """Read the output of an earlier run of the batch, if any, a line at a time: its cut last
    line (a run killed while writing it) is removed; with ``retry_failed`` its failed rows are
    removed too (the file is rewritten atomically), so that every custom_id ends with one row."""
    answered = Answered()
    try:
        fh = open(path, "r+b", opener=lambda name, flags: os.open(name, flags | getattr(os, "O_NOFOLLOW", 0)))
    except FileNotFoundError:
        return answered
    except OSError as exc:
        raise UsageError("cannot open {}: {}".format(path, exc.strerror or exc),
                         hint="Give a writable file for -o (it is created if missing).") from exc
    with fh:
        offset = 0
        for number, raw in enumerate(iter(fh.readline, b""), 1):
            if not raw.endswith(b"\n"):
                fh.truncate(offset)
                os.fsync(fh.fileno())
                answered.repaired = True
                break
            offset += len(raw)
            if raw.strip():
                _take_row(path, number, _parse_row(raw), answered)
    if retry_failed and answered.failed:
        from interncli.files import write_atomic

        # Read again rather than held: the output of a long batch may be gigabytes.
        write_atomic(path, _kept_rows(path))
        answered.failed = set()
        answered.rewritten = True
    return answered


def _parse_row(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _take_row(path: str, number: int, row: Any, answered: Answered) -> None:
    """Count one row of the output in."""
    # The keys every row has: a request line (the input given as -o by mistake) has a custom_id
    # too, and would otherwise be taken for an answer, and its request never sent.
    if not isinstance(row, dict) or not isinstance(row.get("custom_id"), str) or not {"response", "error"} <= set(row):
        raise UsageError("{}:{}: not a batch answer: is it the output of another program?".format(path, number),
                         hint="Give -o the output of this batch (an earlier run's, to resume it), or a new file.")
    custom_id = row["custom_id"]
    if row.get("error") is None:
        answered.succeeded.add(custom_id)
        answered.failed.discard(custom_id)
    elif custom_id not in answered.succeeded:
        answered.failed.add(custom_id)


def _kept_rows(path: str) -> Iterator[str]:
    """The rows of the output (read by read_output already) but those of failed requests, a line
    at a time: a request that failed is sent again, so its row goes."""
    with open(path, "rb") as fh:
        for raw in fh:
            row = _parse_row(raw) if raw.strip() else None
            # A failed row goes even when its id also succeeded (a hand-merged output): each
            # custom_id ends with one row.
            if row is not None and row.get("error") is None:
                yield raw.decode("utf-8")


class AnswerLog:
    """The output file, opened for appending: one whole line per answer, from any thread."""

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic) -> None:
        try:
            self._fd: Optional[int] = os.open(
                path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:
            raise UsageError("cannot write {}: {}".format(path, exc.strerror or exc),
                             hint="Give a writable file for -o (it is created if missing).") from exc
        self.path = path
        self._lock = threading.Lock()
        self._clock = clock
        self._synced = clock()
        self._dirty = False  # written since the last sync

    def append(self, row: Dict[str, Any]) -> bool:
        """Write one row as one line, at once (False once the log is closed: the run was stopped)."""
        # DEL and C1 controls escaped, as --json does: the same value, and `cat` stays safe.
        data = (escape_json_text(json.dumps(row, ensure_ascii=False, separators=(",", ":"))) + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                return False
            # Only this run writes the file (its lock): its size is where this line starts.
            start = os.fstat(self._fd).st_size
            try:
                files.write_all(self._fd, data)
            except OSError:
                self._take_back(start)
                raise
            self._dirty = True
            if self._clock() - self._synced >= FSYNC_EVERY:
                self._sync()
            return True

    def _take_back(self, start: int) -> None:
        """A line could not be written whole: remove its part, and write no more (the batch
        stops), so that no later row lands after a cut line, in the middle of the file, where
        no resume could repair it."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, start)
        except OSError:  # then the cut part is the file's last line, which a resume repairs
            pass
        os.close(self._fd)
        self._fd = None

    def sync(self) -> None:
        """Put what was written on the disk, if FSYNC_EVERY seconds have passed since the last
        time (called often: it also covers a quiet spell after a last answer)."""
        with self._lock:
            if self._fd is not None and self._dirty and self._clock() - self._synced >= FSYNC_EVERY:
                self._sync()

    def _sync(self) -> None:
        assert self._fd is not None
        os.fsync(self._fd)
        self._synced = self._clock()
        self._dirty = False

    def close(self) -> None:
        """Sync and close: rows that arrive later are dropped (their requests are sent again)."""
        with self._lock:
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                finally:
                    os.close(self._fd)
                    self._fd = None


def answer_row(custom_id: str, reply: Dict[str, Any], row_id: str) -> Dict[str, Any]:
    """The output row of an answered request."""
    return {"id": row_id, "custom_id": custom_id, "response": {"status_code": 200, "body": reply}, "error": None}


def error_row(custom_id: str, err: InternCliError, row_id: str) -> Dict[str, Any]:
    """The output row of a request that failed: the error's code and message, and the exit code
    that one request would have ended with (and its meaning, as in the exit-code table)."""
    exit_code = int(err.exit_code)
    response = {"status_code": err.http_status, "body": None} if err.http_status else None
    return {"id": row_id, "custom_id": custom_id, "response": response,
            "error": {"code": err.code, "message": err.message, "http_status": err.http_status,
                      "exit_code": exit_code, "meaning": _MEANINGS.get(exit_code, "failure")}}


class Stopped(Exception):
    """The batch was stopped (Ctrl-C, an auth error) while a worker waited: send nothing more."""


Sender = Callable[[Dict[str, Any]], Dict[str, Any]]


class Pool:
    """Workers that send the requests, ``concurrency`` at a time, each with its own sender (its
    own HTTP session), writing each answer to the log as it arrives. A request error goes into its
    row; an auth error stops the batch (every request would fail); a rate-limit answer is retried
    (the shared budget has slowed down meanwhile) and never written as a failure."""

    def __init__(self, requests: List[BatchRequest], log: AnswerLog, redact: Callable[[str], str],
                 stop: threading.Event) -> None:
        import queue
        import uuid

        self._uuid = uuid
        self._pending: "queue.Queue[BatchRequest]" = queue.Queue()
        for request in requests:
            self._pending.put(request)
        self._log = log
        self._redact = redact
        self.stop = stop
        self.total = len(requests)
        self.succeeded = 0
        self.failed = 0
        self.rate_limited = 0  # rate-limit answers met (each retried)
        self.retried = 0  # other retries (5xx, connection failures)
        self.fatal: Optional[InternCliError] = None  # what stopped the batch, if anything did
        self._counts = threading.Lock()
        self._threads: List[threading.Thread] = []

    @property
    def finished(self) -> int:
        """Requests answered or failed so far, in this run."""
        return self.succeeded + self.failed

    def start(self, senders: List[Sender]) -> None:
        """Start one worker per sender (daemon threads: a Ctrl-C does not wait for an answer in
        flight)."""
        for number, sender in enumerate(senders):
            thread = threading.Thread(target=self._work, args=(sender,), name="interncli-batch-{}".format(number),
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for every worker to end; whether they have."""
        deadline = time.monotonic() + seconds
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def count_retry(self, err: InternCliError) -> None:
        """A request is being retried after ``err``: for the progress shown."""
        with self._counts:
            if isinstance(err, RateLimitError):
                self.rate_limited += 1
            else:
                self.retried += 1

    def _work(self, send: Sender) -> None:
        import queue

        while not self.stop.is_set():
            try:
                request = self._pending.get_nowait()
            except queue.Empty:
                return
            try:
                row = self._answer(send, request)
                if row is None or not self._log.append(row):
                    return
            except Stopped:
                return
            except OSError as exc:  # the output cannot be written (a full disk): nothing more can be kept
                self._halt(InternCliError("cannot write {}: {}".format(self._log.path, exc.strerror or exc),
                                          hint="Free some space (or fix the file), then run the same command "
                                               "again to resume."))
                return
            except BaseException as exc:  # a worker's own bug must stop the batch, not vanish with its thread
                self._halt(InternCliError("unexpected {}: {}".format(type(exc).__name__, self._redact(str(exc))),
                                          hint="Please report it; run the same command again to resume."))
                return
            with self._counts:
                if row["error"] is None:
                    self.succeeded += 1
                else:
                    self.failed += 1

    def _answer(self, send: Sender, request: BatchRequest) -> Optional[Dict[str, Any]]:
        """The row for one request, or None when the batch is to stop without one."""
        row_id = "batch_req_" + self._uuid.uuid4().hex
        for _ in range(RATE_LIMIT_ROUNDS):
            if self.stop.is_set():
                raise Stopped()
            try:
                return answer_row(request.custom_id, send(request.body), row_id)
            except RateLimitError as err:
                if err.retry_after is not None and err.retry_after > MAX_RETRY_AFTER:
                    # The server asked for a longer wait than interncli makes (its hint says
                    # so): every round would be refused the same way.
                    self._halt(err)
                    return None
                last = err
                self.count_retry(err)
            except AuthError as err:
                self._halt(err)
                return None
            except InternCliError as err:
                err.message = self._redact(err.message)
                if isinstance(err.code, str):  # the server's, which may quote the token back
                    err.code = self._redact(err.code)
                return error_row(request.custom_id, err, row_id)
        last.message = "{} (refused for its rate {} rounds of retries in a row)".format(last.message, RATE_LIMIT_ROUNDS)
        last.hint = "The account's quota may be spent for now: run the same command later to resume the batch."
        self._halt(last)
        return None

    def _halt(self, err: InternCliError) -> None:
        with self._counts:
            if self.fatal is None:
                self.fatal = err
        self.stop.set()
