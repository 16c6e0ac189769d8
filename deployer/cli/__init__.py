"""The `deployer` command line: the root group, lazy subcommands, error rendering.

Thin by design: commands parse arguments, call the library and render. Each
command group lives in its own module and is imported only when invoked, so
`deployer --help` never imports TensorFlow or google.cloud. Every
`DeployerError` is rendered as its message (and fix) on stderr with the error's
exit code; users never see a traceback for an error we anticipated.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from deployer import __version__
from deployer.errors import DeployerError
from deployer.settings import SettingError

# command name -> (module, attribute, one-line help shown by `deployer --help`)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "plan": ("deployer.cli.stack", "plan", "Show what apply would change, and what it would cost."),
    "apply": (
        "deployer.cli.stack",
        "apply",
        "Upload artifacts, register versions, deploy, shift traffic.",
    ),
    "status": ("deployer.cli.stack", "status", "Show what exists for the stack, with costs."),
    "predict": (
        "deployer.cli.stack",
        "predict",
        "Send an online prediction request to an endpoint.",
    ),
    "teardown": ("deployer.cli.stack", "teardown", "Remove everything the stack owns."),
    "force-unlock": ("deployer.cli.stack", "force_unlock", "Release a stale stack lock."),
    "rollback": (
        "deployer.cli.rollout",
        "rollback",
        "Restore an endpoint's last verified traffic split.",
    ),
    "batch-predict": (
        "deployer.cli.batch",
        "batch_predict",
        "Run a batch prediction job and bring the results home.",
    ),
    "init": (
        "deployer.cli.init",
        "init",
        "Write a starter spec for a model folder (framework, signature, machine, cost).",
    ),
    "schema": ("deployer.cli.spec", "schema", "Print the JSON Schema of the spec."),
    "validate": ("deployer.cli.spec", "validate", "Validate a spec without calling any API."),
    "prices": (
        "deployer.cli.cost",
        "prices",
        "Show or refresh the price table used for estimates.",
    ),
    "reap": ("deployer.cli.cost", "reap", "Tear down stacks past their expiry (guards.ttl)."),
    "local": ("deployer.cli.local", "local", "Run the local Vertex AI + Cloud Storage emulator."),
    "serve": (
        "deployer.cli.serve",
        "serve",
        "Serve SavedModels with TF Serving's REST and gRPC APIs.",
    ),
    "completion": (
        "deployer.cli.completion",
        "completion",
        "Print the shell completion script (bash, zsh or fish).",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr, _ = entry
        module = importlib.import_module(module_name)
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from the table, so listing commands imports nothing.
        rows = [(name, help_) for name, (_, _, help_) in _COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deployer")
def cli() -> None:
    """Declarative deployments of TensorFlow models to Vertex AI.

    A YAML spec (see `deployer schema`) describes a bucket, model versions,
    endpoints with traffic splits, and batch jobs. The default target is the
    embedded local emulator, so the whole flow runs on one machine.
    """


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: run the CLI and turn our errors into exit codes."""
    try:
        return cli.main(args=argv, prog_name="deployer", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DeployerError as exc:
        click.secho(f"error: {exc.render()}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except SettingError as exc:  # a DEPLOYER_* variable (settings sits below the error tree)
        click.secho(f"error: {exc.message}\n  fix: {exc.hint}", fg="red", err=True)
        sys.exit(3)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
