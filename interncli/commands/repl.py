"""``interncli chat repl``: an interactive chat (the session itself is interncli.repl)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import click

from interncli.commands.common import Command, pass_app, require_token
from interncli.commands.completers import complete_models
from interncli.context import AppContext

SendChat = Callable[..., None]


def repl_command(send_chat: SendChat) -> click.Command:
    """The ``chat repl`` command, sending each turn with ``send_chat`` (chat create's send path,
    handed in by commands/chat.py, which registers this command: no import cycle)."""

    @click.command("repl", cls=Command)
    @click.option("-m", "--model", metavar="MODEL", shell_complete=complete_models,
                  help="Model [default: the profile's, else intern-latest]; /model changes it.")
    @click.option("--conversation", metavar="FILE", type=click.Path(dir_okay=False),
                  help="JSON file of the conversation: loaded at the start, written atomically after every turn "
                       "(created if missing).")
    @click.option("--system", metavar="TEXT", help="The system message (replaces the conversation's); /system "
                                                   "changes it.")
    @click.option("--thinking", is_flag=True, help="Thinking mode (as chat create --thinking); /thinking on|off.")
    @click.option("--show-reasoning", is_flag=True, help="Show the model's reasoning on stderr, dimmed.")
    @pass_app
    def chat_repl(app: AppContext, model: Optional[str], conversation: Optional[str], system: Optional[str],
                  thinking: bool, show_reasoning: bool) -> int:
        """Chat interactively, replies streamed.

        On a terminal: line editing, history across sessions (Up, Ctrl-R; a 0600 file in the
        state folder, never holding the token), Tab completion of /commands and /model names,
        Alt+Enter (or Esc Enter) for a new line, or a message between lines starting and ending
        with \"\"\". Ctrl-C stops a reply (the part received is kept, marked [interrupted]) or
        clears the line; Ctrl-D leaves. Errors are shown and the session goes on. /help lists
        the commands: /exit, /save FILE, /reset, /model NAME, /system TEXT, /thinking on|off.

        Without a terminal, each line of stdin is a message (or a /command) and the replies go
        to stdout; the exit code is the first error's, else 0.

        \b
        Examples:
          interncli chat repl --conversation talk.json
          printf 'Hello\\nAnd in French?\\n' | interncli chat repl
        """
        from interncli import repl

        require_token(app)

        def send(body: Dict[str, Any], keep: Callable[[Dict[str, Any]], None],
                 cut: Callable[[Dict[str, Any]], None]) -> None:
            send_chat(app, body, as_json=False, show_reasoning=show_reasoning, keep=keep, cut=cut)

        session = repl.Session(app, send, model=model or app.settings.model, store=conversation, system=system,
                               thinking=thinking, interactive=app.io.interactive)
        return session.run(repl.open_reader(app, session))

    return chat_repl
