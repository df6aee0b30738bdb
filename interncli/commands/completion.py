"""``interncli completion bash|zsh|fish``: the shell completion script, from click."""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")


def completion_script(shell: str) -> str:
    """click's completion script for ``shell`` (it calls interncli back to complete)."""
    from click.shell_completion import get_completion_class

    from interncli.cli import cli

    cls = get_completion_class(shell)
    assert cls is not None, shell
    source = cls(cli, {}, "interncli", "_INTERNCLI_COMPLETE").source()
    if shell == "zsh":
        # Autoloaded from fpath, click's script completes the first Tab but leaves the function
        # `_interncli` (this file) in charge, which on the next Tab only registers and completes
        # nothing: register the real function on the first call too.
        source = source.replace(
            "    # autoload from fpath, call function directly\n    _interncli_completion \"$@\"",
            "    # autoload from fpath: register the real function, then complete\n"
            "    compdef _interncli_completion interncli\n    _interncli_completion \"$@\"")
    return source


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    Enable it for this session, or for good:
      eval "$(interncli completion bash)"         # or: >> ~/.bashrc
      interncli completion zsh > "${fpath[1]}/_interncli"
      interncli completion fish > ~/.config/fish/completions/interncli.fish
    """
    click.echo(completion_script(shell), nl=False)
