"""`deployer completion SHELL`: print the shell completion script (bash, zsh or fish).

Thin: click's own completion (`click.shell_completion`) does the work; this command only
prints its source so users need not know click's `_DEPLOYER_COMPLETE` protocol. Completion
walks the lazy command table, so completing a subcommand's options imports just that
command's module.
"""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_DEPLOYER_COMPLETE"  # click's convention: _{PROG}_COMPLETE, upper-cased


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    bash:  eval "$(deployer completion bash)"      (add it to ~/.bashrc)
    zsh:   eval "$(deployer completion zsh)"       (add it to ~/.zshrc)
    fish:  deployer completion fish > ~/.config/fish/completions/deployer.fish
    """
    from click.shell_completion import get_completion_class

    from deployer.cli import cli

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click ships all three
        raise click.UsageError(f"click has no completion for {shell}")
    click.echo(cls(cli, {}, "deployer", COMPLETE_VAR).source())
