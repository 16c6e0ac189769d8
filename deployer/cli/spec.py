"""`deployer schema` and `deployer validate`: the spec's JSON Schema and an offline check.

Thin: load and validate through `deployer.spec`, render a summary. Pydantic is
imported here (not at the CLI root) so `deployer --help` stays fast. Never calls
an API.
"""

from __future__ import annotations

import json
from typing import Any

import click

from deployer.cli.flags import output_option, spec_argument


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "markdown"]),
    default="json",
    show_default=True,
    help="json: JSON Schema for editors; markdown: a field reference table.",
)
def schema(fmt: str) -> None:
    """Print the JSON Schema of the spec (for editors: yaml-language-server, VS Code)."""
    from deployer.spec.schema import json_schema_text, markdown_reference

    click.echo(json_schema_text() if fmt == "json" else markdown_reference(), nl=False)


@click.command()
@spec_argument
@output_option
@click.option(
    "--skip-artifacts",
    is_flag=True,
    help="Do not check that local artifact dirs and batch inputs exist.",
)
def validate(spec_path: str, output: str, skip_artifacts: bool) -> None:
    """Validate SPEC without calling any API; print a summary, or every problem (exit 3)."""
    from deployer.spec import load_spec

    spec = load_spec(spec_path, check_artifacts=not skip_artifacts)
    summary = _summary(spec)
    if output == "json":
        click.echo(json.dumps(summary, indent=2))
        return
    versions = sum(len(m.versions) for m in spec.models)
    deployments = sum(len(e.deployments) for e in spec.endpoints)
    click.echo(
        f"{spec_path}: valid. stack {spec.stack!r} (target {spec.target.value}, "
        f"{spec.project}/{spec.region}, bucket {spec.bucket.name})"
    )
    click.echo(
        f"  {_n(len(spec.models), 'model')} ({_n(versions, 'version')}), "
        f"{_n(len(spec.endpoints), 'endpoint')} ({_n(deployments, 'deployment')}), "
        f"{_n(len(spec.batch_jobs), 'batch job')}"
    )
    for endpoint in spec.endpoints:
        split = ", ".join(f"{d.ref} {d.traffic}%" for d in endpoint.deployments)
        click.echo(f"  endpoint {endpoint.name}: {split}")
    from deployer.cost import format_usd

    cost = summary["cost"]
    click.echo(
        f"  estimated cost: {format_usd(cost['hourly_min'])}/h steady, "
        f"{format_usd(cost['hourly_max'])}/h at max replicas, "
        f"{format_usd(cost['monthly_min'])}-{format_usd(cost['monthly_max'])}/month "
        f"(prices: {cost['table_source']}, {cost['table_as_of']})"
    )
    for item in cost["items"]:
        if item["kind"] == "batch_job" and item["total_max"] is not None:
            click.echo(
                f"  batch job {item['name']}: up to {format_usd(item['total_max'])} per run "
                f"({item['note']})"
            )
    for name in cost["unknown"]:
        click.echo(f"  no price for {name}: not included in the totals")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _summary(spec: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "valid": True,
        "stack": spec.stack,
        "project": spec.project,
        "region": spec.region,
        "target": spec.target.value,
        "bucket": spec.bucket.name,
        "models": {m.name: [v.alias for v in m.versions] for m in spec.models},
        "endpoints": {e.name: {d.ref: d.traffic for d in e.deployments} for e in spec.endpoints},
        "batch_jobs": [j.name for j in spec.batch_jobs],
    }
    from deployer.batch.sizing import job_instance_counts
    from deployer.cost import estimate_spec

    summary["cost"] = estimate_spec(spec, instance_counts=job_instance_counts(spec)).to_dict()
    return summary
