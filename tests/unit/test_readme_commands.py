"""README and the CLI stay in step: every command is in README's command table, and every
option the table names for a command is one the command accepts."""

from __future__ import annotations

import re
from pathlib import Path

import click

from deployer.cli import _COMMANDS, cli

README = Path(__file__).resolve().parents[2] / "README.md"


def _rows() -> list[str]:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Commands") : text.index("## Costs and guardrails")]
    return [line for line in table.splitlines() if line.startswith("| `deployer ")]


def _options(command: click.Command) -> set[str]:
    names = {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for sub in command.list_commands(ctx):
            sub_cmd = command.get_command(ctx, sub)
            assert sub_cmd is not None
            names |= _options(sub_cmd)
    return names


def test_every_command_is_in_the_readme_table_with_options_it_accepts() -> None:
    rows = _rows()
    documented: dict[str, set[str]] = {}
    for row in rows:
        for span in re.findall(r"`(deployer [^`]+)`", row.split(" | ")[0]):
            name = span.split()[1]
            documented.setdefault(name, set()).update(re.findall(r"--[a-z][a-z-]*", span))
    assert set(documented) == set(_COMMANDS), "README's command table and the CLI differ"
    ctx = click.Context(cli)
    for name, options in documented.items():
        command = cli.get_command(ctx, name)
        assert command is not None
        unknown = options - _options(command)
        assert not unknown, (
            f"README names {sorted(unknown)} for `deployer {name}`, which has no such option"
        )
