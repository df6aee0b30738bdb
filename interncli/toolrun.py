"""The tool-call loop and the runner that executes a tool safely: argv only (never a shell),
placeholders filled inside argv elements, the arguments as JSON on stdin, the spec's folder as
working directory, an environment without the token, a time limit that kills the whole process
group, and output capped."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import string
import subprocess
import threading
import time
from typing import IO, Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from interncli.client import parse_arguments
from interncli.errors import ToolError
from interncli.timelimit import TooSlow, time_limit

OUTPUT_LIMIT = 64 * 1024
ARGUMENTS_LIMIT = 64 * 1024  # bytes of one call's raw arguments text
CALLS_LIMIT = 16  # tool calls in one reply
SHOW_LIMIT = 4000  # characters of argv and stdin an approval prompt shows whole
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_TURNS = 8
TRUNCATED = "\n[output truncated at 64 KiB]"
PIPE_GRACE = 0.5  # seconds the output may take to arrive after the tool has exited
# Seconds checking one call's arguments may take: a spec's `pattern` such as ^(a+)+$ backtracks
# exponentially on a string the model chooses (Python's re), which would hang the run for ever.
SCHEMA_TIME_LIMIT = 5.0


class ToolCall:
    """One call the model asked for, parsed and checked."""

    __slots__ = ("id", "name", "raw_arguments", "arguments", "problem")

    def __init__(self, call: Dict[str, Any], fallback_id: str) -> None:
        function = call.get("function") or {}
        self.id = str(call.get("id") or fallback_id)
        self.name = str(function.get("name") or "")
        self.raw_arguments = function.get("arguments", "")
        raw = self.raw_arguments if isinstance(self.raw_arguments, str) else json.dumps(self.raw_arguments)
        size = len(raw.encode("utf-8", errors="replace"))
        self.arguments: Dict[str, Any] = {}
        self.problem: Optional[str] = None
        if size > ARGUMENTS_LIMIT:  # not even parsed: the Python-literal parser is slow on big input
            self.problem = "the arguments are {} bytes; at most {} are accepted".format(size, ARGUMENTS_LIMIT)
            return
        parsed = parse_arguments(self.raw_arguments if self.raw_arguments not in (None, "") else "{}")
        if isinstance(parsed, dict):
            try:
                # JSON may escape a lone surrogate ("\ud800"): no UTF-8 text holds one, so it
                # could be neither given to the tool (stdin, argv) nor shown on the prompt.
                json.dumps(parsed, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as exc:
                self.problem = "the arguments hold a lone surrogate (\\u{:04x}), which is not text".format(
                    ord(exc.object[exc.start]))
                return
            self.arguments = parsed
        else:
            self.problem = "the arguments are not a JSON object: {!r}".format(self.raw_arguments)[:500]

    def stdin_text(self) -> str:
        """What the tool reads on stdin: the argument object as JSON."""
        return json.dumps(self.arguments, ensure_ascii=False)


class ToolRun:
    """What running one tool did."""

    __slots__ = ("call", "argv", "exit_code", "duration", "output", "stderr", "size", "truncated",
                 "timed_out", "error")

    def __init__(self, call: ToolCall, argv: List[str]) -> None:
        self.call = call
        self.argv = argv
        self.exit_code: Optional[int] = None
        self.duration = 0.0
        self.output = ""
        self.stderr = ""
        self.size = 0
        self.truncated = False
        self.timed_out = False
        self.error: Optional[str] = None

    @property
    def ok(self) -> bool:
        """The tool ran and exited 0."""
        return self.error is None and self.exit_code == 0 and not self.timed_out

    def message_content(self) -> str:
        """What the model is told: the output, or what went wrong."""
        if self.ok:
            return self.output
        report: Dict[str, Any] = {"error": self.error or (
            "the tool timed out" if self.timed_out else "the tool exited with status {}".format(self.exit_code))}
        if self.exit_code is not None:
            report["exit_code"] = self.exit_code
        if self.output:
            report["stdout"] = self.output
        if self.stderr:
            report["stderr"] = self.stderr
        return json.dumps(report, ensure_ascii=False)

    def to_dict(self) -> Dict[str, Any]:
        """The run, for the ``--json`` transcript."""
        return {"tool_call_id": self.call.id, "name": self.call.name, "arguments": self.call.arguments,
                "argv": self.argv, "exit_code": self.exit_code, "duration": round(self.duration, 3),
                "bytes": self.size, "truncated": self.truncated, "timed_out": self.timed_out, "error": self.error}


def fill_argv(command: List[str], arguments: Mapping[str, Any]) -> List[str]:
    """The argv with ``{param}`` placeholders replaced by the values, each inside its own element:
    a value can never become a second argument, let alone shell syntax. Every placeholder's
    parameter must be given (:func:`argv_problem` says so first); ``{{`` and ``}}`` stand for
    literal braces."""
    argv = []
    for template in command:
        parts = []
        for literal, field, _spec, _conversion in string.Formatter().parse(template):
            parts.append(literal)
            if field is not None:
                parts.append(_as_text(arguments[field]))
        argv.append("".join(parts))
    return argv


def argv_problem(command: List[str], arguments: Mapping[str, Any]) -> Optional[str]:
    """Why the arguments may not fill the argv, for the model: a placeholder whose parameter is
    missing (it never becomes an empty string), or a value that starts an element with "-",
    which the program could take as an option (``sort -o FILE``), also when the element is
    made of several placeholders (``{a}{b}``) or a value and text (``{a}-x``). Elements after a
    literal ``--`` that ends the options of the program itself (not a wrapper's, not an
    interpreter's: see commandcheck.options_end) are operands, so a leading "-" is plain data
    there."""
    from interncli.commandcheck import options_end

    missing = sorted({field for template in command for _, field, _, _ in string.Formatter().parse(template)
                      if field is not None and field not in arguments})
    if missing:
        return "missing argument{} {}: the command needs {}".format(
            "" if len(missing) == 1 else "s", ", ".join(repr(m) for m in missing),
            "it" if len(missing) == 1 else "them")
    end = options_end(command)
    for j, template in enumerate(command[1:], start=1):
        if j == end:
            return None
        parsed = list(string.Formatter().parse(template))
        if parsed and not parsed[0][0] and parsed[0][1] is not None:
            filled = fill_argv([template], arguments)[0]
            if filled.startswith("-"):
                return "the value of {!r} starts with '-' where the program could take it as an option".format(
                    parsed[0][1])
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def tool_environment(environ: Mapping[str, str], secrets: List[str]) -> Dict[str, str]:
    """The environment a tool gets: the user's, without the token variable and without any
    variable whose value holds a token."""
    secrets = [s for s in secrets if s]
    return {key: value for key, value in environ.items()
            if key != "INTERN_API_KEY" and not any(secret in value for secret in secrets)}


def _drain(stream: IO[bytes], keep: List[bytes], counter: List[int]) -> None:
    """Read a pipe to its end, keeping the first OUTPUT_LIMIT+1 bytes: a flood costs no memory,
    and the tool never blocks on a full pipe. os.read returns what is there, so output written
    before a child took the pipe over is not held back waiting for a full buffer."""
    fd = stream.fileno()
    kept = 0
    while True:
        try:
            block = os.read(fd, 65536)
        except OSError:
            return
        if not block:
            return
        counter[0] += len(block)
        if kept <= OUTPUT_LIMIT:
            keep.append(block[:OUTPUT_LIMIT + 1 - kept])
            kept += len(keep[-1])


def _feed(stream: IO[bytes], text: str) -> None:
    """Write the arguments as JSON to the tool's stdin, then close it."""
    try:
        stream.write(text.encode("utf-8"))
    except OSError:
        pass  # the tool did not read its stdin, or has ended: that is its choice
    finally:
        try:  # closed whatever happened, or a tool reading to the end would wait for ever
            stream.close()
        except OSError:
            pass


def run_tool(call: ToolCall, tool: Dict[str, Any], argv: List[str], cwd: str, env: Dict[str, str]) -> ToolRun:
    """Run one tool for one call with the argv that was approved; whatever happens comes back
    as a ToolRun, never an exception."""
    from interncli import orphans

    run = ToolRun(call, argv)
    timeout = float(tool.get("timeout", DEFAULT_TIMEOUT))
    started = time.monotonic()
    before = orphans.children()
    proc: "Optional[subprocess.Popen[bytes]]" = None
    out: List[bytes] = []
    err: List[bytes] = []
    out_size = [0]
    err_size = [0]
    try:
        # Python's default SIGINT handler raises wherever the main thread is, and inside
        # subprocess that loses the tool: raised as Popen returns, it leaves a running tool with
        # no handle on it; raised in Popen.wait just after it took its internal lock, the lock
        # stays taken, and the wait below for the killed tool never ends. So while the tool
        # starts and runs, the signals that stop us are only noted, and raised after the wait.
        with _signals_held(_STOP_SIGNALS) as stopped:
            try:
                proc = subprocess.Popen(run.argv, cwd=cwd, env=dict(env, PWD=cwd), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            except (OSError, ValueError) as exc:  # ValueError: a NUL byte in an argument
                run.error = "cannot run {}: {}".format(run.argv[0], getattr(exc, "strerror", None) or exc)
            if proc is not None:
                # Every pipe in its own thread: a tool that neither reads its stdin nor stops
                # writing cannot stall the run past its time limit.
                workers = [threading.Thread(target=_drain, args=(proc.stdout, out, out_size), daemon=True),
                           threading.Thread(target=_drain, args=(proc.stderr, err, err_size), daemon=True),
                           threading.Thread(target=_feed, args=(proc.stdin, call.stdin_text()), daemon=True)]
                for worker in workers:
                    worker.start()
                if not _wait_for_exit(proc, timeout, stopped, workers[0]) and not stopped:
                    run.timed_out = True
                    run.error = "the tool did not finish within {:g}s and was stopped".format(timeout)
        if proc is None:
            return run
        # Whatever the tool left running in its group (a daemon still holding the pipes, say) is
        # stopped once the output has had a moment to arrive: nothing outlives the call.
        for worker in workers[:2]:
            worker.join(PIPE_GRACE)
    finally:
        # At the end, and on Ctrl-C or a cancelled job's SIGTERM at any moment (cleaning up in a
        # `finally` leaves no gap between the wait and the clean-up): the tool must not outlive
        # us, nor what left its group (setsid, a double fork), reparented to us, the subreaper.
        if proc is not None:
            _kill_group(proc)
        orphans.stop_leftovers(before)
    for worker in workers:
        worker.join(PIPE_GRACE)
    run.duration = time.monotonic() - started
    run.exit_code = proc.returncode
    data = b"".join(out)
    run.size = out_size[0]
    run.truncated = run.size > OUTPUT_LIMIT
    run.output = data[:OUTPUT_LIMIT].decode("utf-8", errors="replace") + (TRUNCATED if run.truncated else "")
    run.stderr = b"".join(err)[:4096].decode("utf-8", errors="replace")
    return run


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    """Stop the tool and everything it started in its process group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:  # the group is already gone
        if proc.poll() is None:
            proc.kill()
    proc.wait()


def check_arguments(call: ToolCall, tool: Dict[str, Any]) -> Optional[str]:
    """Why the call's arguments do not fit the tool's schema, or None if they do. Only the
    properties the schema declares may be given: the tool gets nothing it did not ask for.
    A check that takes longer than SCHEMA_TIME_LIMIT seconds (a backtracking ``pattern``) is
    a problem too: the call does not run."""
    if call.problem:
        return call.problem
    try:
        with time_limit(SCHEMA_TIME_LIMIT):
            return _schema_problem(call, tool)
    except TooSlow:
        return ("checking the arguments against the tool's schema took more than {:g}s (a pattern that "
                "backtracks?), so the call did not run".format(SCHEMA_TIME_LIMIT))


def _schema_problem(call: ToolCall, tool: Dict[str, Any]) -> Optional[str]:
    from interncli.toolspec import parameters_validator

    schema = tool.get("parameters") or {"type": "object"}
    undeclared = _undeclared(schema, call.arguments)
    if undeclared:
        return "the arguments do not fit the tool's schema: {} {} not declared (the tool takes: {})".format(
            ", ".join(repr(k) for k in undeclared[:5]), "is" if len(undeclared) == 1 else "are",
            ", ".join(sorted(schema.get("properties") or {})) or "no arguments")
    try:
        errors = sorted(parameters_validator(schema).iter_errors(call.arguments), key=str)
    except Exception as exc:  # noqa: BLE001 -- an unusable schema (bad $ref, regex) is the spec's fault
        return "the tool's schema cannot check these arguments: {}".format(" ".join(str(exc).split())[:200])
    if not errors:
        return None
    return "the arguments do not fit the tool's schema: " + "; ".join(
        "{}{}".format("/".join(str(p) for p in e.absolute_path) + ": " if e.absolute_path else "", e.message)
        for e in errors[:5])


def _undeclared(schema: Dict[str, Any], arguments: Mapping[str, Any]) -> List[str]:
    """The argument names neither ``properties`` nor ``patternProperties`` declares."""
    import re

    properties = schema.get("properties")
    patterns = schema.get("patternProperties")
    properties = properties if isinstance(properties, dict) else {}
    patterns = patterns if isinstance(patterns, dict) else {}

    def matches(pattern: Any, key: str) -> bool:
        try:
            return re.search(pattern, key) is not None
        except (re.error, TypeError):  # an ECMA-only pattern: it declares nothing Python can see
            return False

    return [key for key in arguments if key not in properties and not any(matches(p, key) for p in patterns)]


# Letters and symbols a terminal draws as blank space: Hangul fillers, the braille blank. Shown
# as they are, "rm\u3164-rf" reads as two arguments, rm and -rf.
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _visible(c: str) -> bool:
    """Whether ``c`` can be shown as itself on an approval prompt: printable, and neither a
    combining or enclosing mark (invisible ones such as U+034F and U+FE0F, or ones that draw over
    their neighbours, such as U+0338), nor a format character, nor a blank-looking letter."""
    import unicodedata

    return c.isprintable() and c not in _BLANK_LOOKING and unicodedata.category(c) not in ("Mn", "Me", "Cf")


def shown(value: Any, limit: Optional[int] = 300) -> str:
    """A value from the model made safe to show on a terminal: JSON for data, every control
    escaped (safetext), and every other character that is not plainly visible (bidirectional
    overrides, zero-width ones, combining marks, blank-looking letters) as ``\\uNNNN``; cut
    at ``limit`` characters unless None."""
    from interncli.safetext import escape_line

    text = escape_line(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    text = "".join(c if _visible(c) else "\\u{:04x}".format(ord(c)) for c in text)
    return text if limit is None or len(text) <= limit else text[:limit] + "…"


def shown_json(dumped: str) -> str:
    """A ``json.dumps(..., ensure_ascii=False)`` text safe to show and still the same JSON value:
    DEL and C1 controls (safetext) and every other character that is not plainly visible
    written as ``\\uNNNN`` (a surrogate pair above U+FFFF)."""
    from interncli.safetext import escape_json_text

    def escaped(c: str) -> str:
        if _visible(c):
            return c
        code = ord(c)
        if code < 0x10000:
            return "\\u{:04x}".format(code)
        code -= 0x10000
        return "\\u{:04x}\\u{:04x}".format(0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))

    return "".join(escaped(c) for c in escape_json_text(dumped))


def shown_argv(argv: List[str]) -> str:
    """An argv on one line: every element that is not plain quoted as JSON, so a value from the
    model can neither hide itself nor pass for two arguments; everything escaped."""
    return " ".join(shown_json(json.dumps(a, ensure_ascii=False))
                    if (not a or any(c.isspace() or not _visible(c) or c in "\"'\\$`" for c in a))
                    else shown(a, limit=None) for a in argv)


def approval_text(call: ToolCall, argv: List[str]) -> Optional[str]:
    """What the approval prompt shows: the tool, the exact argv and the exact stdin with its size
    in bytes, all escaped (a quoted element and the stdin as JSON that decodes to the very
    text the tool gets); None when that is too long to show whole (it then cannot be approved
    on a prompt)."""
    stdin = call.stdin_text()
    argv_line = shown_argv(argv)
    stdin_line = shown_json(stdin)
    if len(argv_line) + len(stdin_line) > SHOW_LIMIT:
        return None
    return "interncli: tool call {}\n  argv: {}\n  stdin ({} bytes): {}\ninterncli: run it?".format(
        shown(call.name), argv_line, len(stdin.encode("utf-8")), stdin_line)


# A tool runs in a session of its own, so the terminal's hangup (the window closed) and quit
# (Ctrl-\) reach only us; their default action would end us at once, without stopping it.
_UNWIND_SIGNALS = tuple(getattr(signal, name) for name in ("SIGHUP", "SIGQUIT") if hasattr(signal, name))


@contextlib.contextmanager
def _signals_unwind(signals: Tuple[int, ...]) -> Iterator[None]:
    """Inside the block, each of ``signals`` raises SystemExit(128 + its number), which the
    runner's clean-up sees as it sees Ctrl-C; the previous handlers come back after. Only on the
    main thread, where handlers can be set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def unwind(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = {number: signal.signal(number, unwind) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


# What ends a run while a tool runs: Ctrl-C, a cancelled job's SIGTERM, and the two above.
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name)) \
    + _UNWIND_SIGNALS


@contextlib.contextmanager
def _signals_held(signals: Tuple[int, ...]) -> Iterator[List[int]]:
    """Inside the block, each of ``signals`` that has a Python handler (the ones that unwind
    the run) is only noted in the list the block gets; when the block ends, the first one noted
    goes to its handler, which raises there. Only on the main thread, where handlers can be set
    (elsewhere the list stays empty: signals reach the main thread only)."""
    noted: List[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return
    previous: Dict[int, Callable[[int, Any], Any]] = {}
    for number in signals:
        handler = signal.getsignal(number)
        if callable(handler):  # SIG_DFL and SIG_IGN stay: nothing of ours runs on those
            previous[number] = handler
            signal.signal(number, lambda signum, _frame: noted.append(signum))
    try:
        yield noted
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if noted:
            previous[noted[0]](noted[0], None)


def _wait_for_exit(proc: "subprocess.Popen[bytes]", timeout: float, stopped: List[int],
                   stdout_reader: threading.Thread) -> bool:
    """Whether the tool exited within ``timeout`` seconds; gives up early once ``stopped``
    holds a signal, looking at it at least every 50 ms: never blocking with a signal pending.
    While the tool's stdout is open, waits on the thread reading it, which ends as the tool
    exits (its stdout closes then, unless it closed it earlier), so the exit is seen at once,
    not at the next poll: polling as Popen.wait does (from 1 ms up to 50 ms apart) added up to
    half the run of a tool that takes tens of milliseconds. Then polls that way."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while proc.poll() is None:
        left = deadline - time.monotonic()
        if stopped or left <= 0:
            return False
        if stdout_reader.is_alive():
            stdout_reader.join(min(left, 0.05))
            continue  # polls from 1 ms again: the tool is about to exit, or closed its stdout early
        delay = min(delay * 2, left, 0.05)
        time.sleep(delay)
    return True


# Whether a final answer is accepted: None, else the messages that ask again (--schema).
Accept = Callable[[Dict[str, Any]], Optional[List[Dict[str, Any]]]]

# Whether a call may run. False means nobody could be asked (no terminal): hence the hint below.
# An approver that did ask and was told no raises a ToolError of its own saying so.
Approve = Callable[[ToolCall, List[str]], bool]


class ToolLoop:
    """Sends the conversation with the tools, runs each call the model makes, sends the results
    back, until the model answers without calling a tool."""

    def __init__(self, spec: Dict[str, Any], spec_dir: str, send: Callable[[List[Dict[str, Any]]], Dict[str, Any]],
                 approve: Approve, env: Dict[str, str], max_turns: int,
                 notify: Callable[[str], None], accept: Optional[Accept] = None) -> None:
        self.tools = {tool["name"]: tool for tool in spec["tools"]}
        self.spec_dir = spec_dir
        self.send = send
        self.approve = approve
        self.env = env
        self.max_turns = max_turns
        self.notify = notify
        self.accept = accept
        self.runs: List[ToolRun] = []
        self.turns = 0
        self.reasks = 0  # turns that asked again for an answer ``accept`` refused: not tool turns

    def run(self, messages: List[Dict[str, Any]]) -> Dict[str, Any]:
        """The final reply message; ``messages`` grows with every turn. While it runs, this
        process is the subreaper of what the tools leave behind (Linux), and a hangup or quit
        signal unwinds it like Ctrl-C, so the running tool is stopped too."""
        from interncli import orphans

        previous = orphans.become_subreaper()
        try:
            with _signals_unwind(_UNWIND_SIGNALS):
                return self._loop(messages)
        finally:
            orphans.restore_subreaper(previous)

    def _loop(self, messages: List[Dict[str, Any]]) -> Dict[str, Any]:
        from interncli.client import assistant_message

        while True:
            if self.turns - self.reasks >= self.max_turns:
                raise ToolError("the model was still calling tools after {} turns".format(self.max_turns),
                                hint="Raise --max-turns (or max_turns in the spec), or ask more precisely.")
            self.turns += 1
            reply = self.send(messages)
            message = assistant_message(reply["choices"][0].get("message") or {})
            calls = message.get("tool_calls") or []
            messages.append(message)  # kept for the --json transcript, also when refused below
            if len(calls) > CALLS_LIMIT:
                raise ToolError("the model asked for {} tool calls in one reply; at most {} are run, so none "
                                "of them ran".format(len(calls), CALLS_LIMIT),
                                hint="Ask for fewer things at once.")
            if not calls:
                follow = self.accept(message) if self.accept is not None else None
                if not follow:
                    return message
                messages.extend(follow)
                self.reasks += 1
                continue
            for number, raw in enumerate(calls):
                # A call without an id gets one (kept in the history too), so its answer matches it.
                call = ToolCall(raw, fallback_id="call_{}_{}".format(self.turns, number))
                raw["id"] = call.id
                messages.append({"role": "tool", "tool_call_id": call.id, "content": self.answer(call)})

    def answer(self, call: ToolCall) -> str:
        """Run one call (if it may run) and return what the model is told."""
        tool = self.tools.get(call.name)
        if tool is None:
            self.notify("→ {} (no such tool)".format(shown(call.name)))
            return json.dumps({"error": "there is no tool named {!r}; the tools are: {}".format(
                call.name, ", ".join(self.tools))}, ensure_ascii=False)
        problem = check_arguments(call, tool) or argv_problem(tool["command"], call.arguments)
        if problem:
            self.notify("→ {} {} (refused: {})".format(shown(call.name), shown(call.arguments), shown(problem)))
            return json.dumps({"error": problem}, ensure_ascii=False)
        argv = fill_argv(tool["command"], call.arguments)
        if not self.approve(call, argv):
            raise ToolError("the call of {} was not approved: nothing ran".format(shown(call.name)),
                            hint="Run it on a terminal to approve each call, or pass --yes to approve all.")
        self.notify("→ {} {}".format(shown(call.name), shown(call.arguments)))
        run = run_tool(call, tool, argv, self.spec_dir, self.env)
        self.runs.append(run)
        self.notify("← {} bytes, {}".format(run.size, "exit {}".format(run.exit_code) if not run.timed_out
                                              and run.error is None else shown(run.error)))
        return run.message_content()
