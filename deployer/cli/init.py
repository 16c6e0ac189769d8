"""`deployer init ARTIFACT_DIR`: write a commented starter spec for a model folder.

Thin: deployer.predict.starter detects the framework, reads the serving signature
and suggests a machine with its price; this module writes the file (refusing to
overwrite one without --force) and says what to run next. Never calls an API.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from deployer.errors import ConfigError


@click.command()
@click.argument("artifact_dir", metavar="ARTIFACT_DIR", type=click.Path(file_okay=False))
@click.option(
    "--out",
    "out_path",
    default=None,
    metavar="SPEC",
    help="Where to write the spec (default: <name>.yaml in the current folder).",
)
@click.option(
    "--name",
    default=None,
    metavar="NAME",
    help="Stack, model and endpoint name (default: from the folder's name).",
)
@click.option("--force", is_flag=True, help="Overwrite SPEC if it exists.")
def init(artifact_dir: str, out_path: str | None, name: str | None, force: bool) -> None:
    """Write a starter spec for the model in ARTIFACT_DIR.

    The framework comes from the folder's files (saved_model.pb: TensorFlow;
    model.joblib or model.pkl: scikit-learn; model.bst: XGBoost; model.mar: PyTorch),
    with Vertex AI's pre-built serving image; a SavedModel's serving signature is
    read and described. One endpoint takes 100% of the traffic on a machine sized
    for the artifact, with its hourly cost. Comments in the YAML explain each field.
    """
    from deployer.cost import load_price_table
    from deployer.predict import starter

    folder = Path(artifact_dir)
    stack = name or (starter.derive_name(folder) if folder.is_dir() else "model")
    out = Path(out_path) if out_path else Path(f"{stack}.yaml")
    plan = starter.plan_starter(folder, out, name, load_price_table())  # a bad folder first
    if out.exists() and not force:
        raise ConfigError(f"{out} already exists", hint="pass --force to overwrite it")
    text = starter.render(plan, command=f"deployer init {artifact_dir}", spec=str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    from deployer.cost import format_usd

    price = f", about {format_usd(plan.hourly_usd)}/hour" if plan.hourly_usd is not None else ""
    click.echo(
        f"Wrote {out}: {plan.rule.label} model {plan.stack!r} "
        f"(found {plan.marker}) on {plan.machine}{price}."
    )
    click.echo(f"Next: deployer validate {out} && deployer apply {out}")
