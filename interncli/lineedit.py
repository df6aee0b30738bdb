"""The repl's line editor on a terminal, built on prompt_toolkit (as pgcli and litecli are):
editing, multi-line entries (Alt+Enter, bracketed paste), Tab completion in a menu, history
across sessions with Ctrl-R search. Imported by repl.open_reader only when stdin and stderr are
a terminal: a script never loads it, and no other command does."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, List, TextIO, Tuple, cast

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import History
from prompt_toolkit.input.defaults import create_input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output.defaults import create_output

from interncli.iostreams import IOStreams


class SessionHistory(History):
    """The entries of earlier sessions, and of this one as the session keeps them: prompt_toolkit
    would store every accepted line itself, each line of a ``\"\"\"`` block apart and a line
    holding the token too, so its own appending is turned off and ``keep`` stores instead."""

    def __init__(self, earlier: List[str], store: Callable[[str], None]) -> None:
        super().__init__()
        self._earlier = earlier
        self._store = store

    def load_history_strings(self) -> Iterable[str]:
        """The earlier entries, newest first."""
        return reversed(self._earlier)

    def store_string(self, string: str) -> None:
        """Write one entry (through the session's store)."""
        self._store(string)

    def append_string(self, string: str) -> None:
        """What prompt_toolkit calls on Enter: nothing (see the class)."""

    def keep(self, entry: str) -> None:
        """Remember an entry: for Up and Ctrl-R now, and in the file."""
        super().append_string(entry)


class SlashCompleter(Completer):
    """Completes with ``complete(text before the cursor) -> (start of the word, candidates)``."""

    def __init__(self, complete: Callable[[str], Tuple[int, List[str]]]) -> None:
        self._complete = complete

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        """The candidates for the word before the cursor."""
        text = document.text_before_cursor
        start, candidates = self._complete(text)
        for candidate in candidates:
            yield Completion(candidate, start_position=start - len(text))


class TerminalReader:
    """Entries read with prompt_toolkit: the prompt and the editing on stderr's terminal (stdout
    stays for the replies), input from stdin."""

    def __init__(self, io: IOStreams, earlier: List[str], store: Callable[[str], None],
                 complete: Callable[[str], Tuple[int, List[str]]]) -> None:
        self.history = SessionHistory(earlier, store)
        bindings = KeyBindings()

        @bindings.add("escape", "enter")
        def _newline(event: KeyPressEvent) -> None:
            # Alt+Enter (terminals send it as Esc, Enter): a new line in the entry, not sending it.
            event.current_buffer.insert_text("\n")

        self.session: PromptSession[str] = PromptSession(
            history=self.history, completer=SlashCompleter(complete), complete_while_typing=False,
            key_bindings=bindings, input=create_input(cast(TextIO, io.stdin)),
            output=create_output(cast(TextIO, io.stderr)),
            # The lines after the first of an entry, dotted under the prompt.
            prompt_continuation=lambda width, line_number, wrap_count: "." * (width - 1) + " ")

    def read(self, prompt: str) -> str:
        """One entry; KeyboardInterrupt on Ctrl-C, EOFError on Ctrl-D at an empty prompt."""
        text: Any = self.session.prompt(prompt)
        return str(text)

    def keep(self, entry: str) -> None:
        """Remember a whole entry."""
        self.history.keep(entry)
