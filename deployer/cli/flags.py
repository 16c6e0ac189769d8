"""Options shared by several commands, defined once (SkyPilot's flags.py idea)."""

from __future__ import annotations

import click

spec_argument = click.argument(
    "spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=str)
)

output_option = click.option(
    "--output",
    "-o",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Render for people (text) or machines (json).",
)

yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
