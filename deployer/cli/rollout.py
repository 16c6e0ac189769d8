"""`deployer rollback SPEC --endpoint NAME`: restore an endpoint's last verified split.

Thin: load the spec, find the endpoint, call `deployer.reconcile.rollout.rollback_endpoint`,
say what it did. Must not: decide anything itself, or import google.cloud at module level.
"""

from __future__ import annotations

import click

from deployer.cli.flags import spec_argument
from deployer.errors import ConfigError


@click.command("rollback")
@spec_argument
@click.option("--endpoint", "endpoint_name", required=True, help="The endpoint's name in SPEC.")
def rollback(spec_path: str, endpoint_name: str) -> None:
    """Restore ENDPOINT's last verified traffic split (recorded by rollouts in the stack
    bucket) and undeploy the version of a failed or held rollout."""
    from deployer.cli.stack import _load, make_provider
    from deployer.reconcile.executor import ApplyOptions
    from deployer.reconcile.rollout import rollback_endpoint
    from deployer.state import endpoint_id

    spec = _load(spec_path, check_artifacts=False)
    endpoints = [e.name for e in spec.endpoints]
    if endpoint_name not in endpoints:
        raise ConfigError(
            f"no endpoint named {endpoint_name!r} in {spec_path}",
            hint=f"use one of: {', '.join(endpoints) or '(the spec has no endpoints)'}",
        )
    eid = endpoint_id(spec.stack, endpoint_name)
    record, undeployed, names = rollback_endpoint(
        make_provider(spec), spec.stack, spec.bucket.name, eid, ApplyOptions()
    )
    split = ", ".join(f"{names.get(d, d)} {t}%" for d, t in record.split if t)
    click.echo(f"Restored the verified split of {endpoint_name}: {split}.")
    if undeployed:
        click.echo(
            f"Undeployed {names.get(undeployed, undeployed)} "
            "(the version of a rollout that failed, was held or did not finish)."
        )
