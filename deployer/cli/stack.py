"""`deployer plan | apply | status | predict | teardown | force-unlock`: the stack commands.

Thin: load the spec, wire the real provider for its target, call the library
(plan/apply/teardown), render with deployer.cli.render. `plan --out FILE` saves the plan
and `apply` tells such a file from a spec by its content (JSON with a format marker; a
spec is YAML). Errors are our error tree, rendered
by the CLI root without a traceback. SDK imports stay inside the command bodies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from deployer.cli.flags import output_option, spec_argument, yes_option
from deployer.errors import ConfigError, DeployerError, NotFound

if TYPE_CHECKING:
    from deployer.cost import Estimate
    from deployer.providers import Provider
    from deployer.spec import Spec
    from deployer.state import StackState


def _load(spec_path: str, *, check_artifacts: bool = True) -> Spec:
    from deployer.spec import load_spec

    return load_spec(spec_path, check_artifacts=check_artifacts)


def make_provider(spec: Spec) -> Provider:
    """The real provider for the spec's target (local emulator or Vertex AI)."""
    from deployer.providers.vertex import connect

    return connect(spec.target.value, spec.project, spec.region)


def _estimates(spec: Spec, observed: StackState | None) -> tuple[Estimate, Estimate | None]:
    from deployer.batch.sizing import job_instance_counts
    from deployer.cost import estimate_deployments, estimate_spec, load_price_table

    table = load_price_table()
    after = estimate_spec(spec, table, job_instance_counts(spec))
    if observed is None:
        return after, None
    return after, estimate_deployments(_observed_deployments(observed), spec.region, table)


def _observed_deployments(observed: StackState) -> list[tuple[str, Any]]:
    from deployer.spec import Accelerator, Deployment

    out = []
    for e in observed.endpoints:
        traffic = dict(e.traffic)
        for d in e.deployments:
            model, _, alias = d.display_name.partition("@")
            acc = (
                Accelerator(d.accelerator_type, d.accelerator_count) if d.accelerator_type else None
            )
            out.append(
                (
                    e.name,
                    Deployment(
                        model,
                        alias or d.version_id,
                        traffic.get(d.id, 0),
                        d.machine_type,
                        d.min_replicas,
                        d.max_replicas,
                        acc,
                    ),
                )
            )
    return out


def _echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, default=str))


# --------------------------------------------------------------------------- plan


@click.command()
@spec_argument
@output_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    metavar="FILE",
    help="Save the plan to FILE (JSON); `deployer apply FILE` executes exactly it, or "
    "refuses if the stack, the spec or an artifact changed since.",
)
def plan(spec_path: str, output: str, detailed_exitcode: bool, out: str | None) -> None:
    """Show what apply would change in SPEC's stack, and what it would cost. Changes nothing."""
    from deployer.cli.render import plan_json, plan_text
    from deployer.reconcile.apply import make_plan

    try:
        spec = _load(spec_path)
        the_plan, observed, inputs = make_plan(spec, make_provider(spec))
        after, now = _estimates(spec, observed)
        if out is not None:
            from deployer.reconcile.saved import make_saved_plan, write_saved_plan

            saved = make_saved_plan(spec, spec_path, the_plan, observed, inputs)
            write_saved_plan(out, saved)
    except DeployerError as exc:
        if not detailed_exitcode:
            raise
        click.secho(f"error: {exc.render()}", fg="red", err=True)
        sys.exit(1)
    if output == "json":
        doc = plan_json(the_plan, after, now)
        if out is not None:
            doc["plan_file"] = out
            doc["fingerprint"] = saved.fingerprint.digest
        _echo_json(doc)
    else:
        click.echo(plan_text(the_plan, after, now))
        if out is not None:
            click.echo(f"Saved this plan to {out}. Apply exactly it with: deployer apply {out}")
    if detailed_exitcode and not the_plan.is_empty:
        sys.exit(2)


# -------------------------------------------------------------------------- apply


@click.command()
@click.argument("source", metavar="SPEC|PLAN_FILE", type=click.Path(dir_okay=False, path_type=str))
@output_option
@yes_option
@click.option(
    "--lock-timeout",
    type=float,
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long for another apply's lock on the stack.",
)
@click.option(
    "--max-hourly-usd",
    type=float,
    default=None,
    metavar="USD",
    help="Budget guard for this run (overrides guards.max_hourly_usd).",
)
@click.option("--allow-over-budget", is_flag=True, help="Apply even above the budget guard.")
def apply(
    source: str,
    output: str,
    yes: bool,
    lock_timeout: float,
    max_hourly_usd: float | None,
    allow_over_budget: bool,
) -> None:
    """Make a stack match its spec: upload, register versions, deploy, shift traffic, remove.

    Given a SPEC, it plans, shows the plan, asks (unless --yes) and executes that plan; if
    the stack changed while you read it, it refuses (exit 9) instead of doing something else.
    Given a PLAN_FILE written by `deployer plan SPEC --out PLAN_FILE`, it executes exactly
    that plan, and refuses (exit 9) before changing anything if the stack, the spec file or
    an artifact changed since the plan was written. A saved plan applies once: applying
    changes the stack, so the same file is stale afterwards.
    """
    from dataclasses import replace

    from deployer.cli.render import ConsoleReporter, apply_json, plan_text
    from deployer.cost import check_budget
    from deployer.reconcile.apply import ApplyOptions, apply_saved, apply_spec
    from deployer.reconcile.saved import is_saved_plan, read_saved_plan

    saved = read_saved_plan(source) if is_saved_plan(source) else None
    if saved is not None and not Path(saved.spec.path).is_file():
        raise ConfigError(
            f"{source} was made from the spec {saved.spec.path}, which is not there "
            "(relative paths count from the current directory)",
            hint="run apply from the folder `deployer plan` ran in",
        )
    spec = _load(saved.spec.path if saved is not None else source)
    after, _ = _estimates(spec, None)
    if not allow_over_budget:
        # Before any API call: an over-budget spec never reaches the cloud.
        check_budget(
            after, max_hourly_usd if max_hourly_usd is not None else spec.guards.max_hourly_usd
        )
    if not yes and not sys.stdin.isatty():
        raise ConfigError(
            "apply needs confirmation but stdin is not a terminal",
            hint="pass --yes to apply without asking (e.g. in CI)",
        )
    provider = make_provider(spec)
    shown: dict[str, Any] = {}

    class Reporter(ConsoleReporter):
        def plan_ready(self, the_plan: Any, observed: StackState) -> None:
            shown["now"] = _estimates(spec, observed)[1]

    reporter = Reporter()

    def confirm(the_plan: Any) -> bool:
        if output != "json":
            click.echo(plan_text(the_plan, after, shown.get("now")))
        if yes:
            return True
        what = "this saved plan" if saved is not None else "these changes"
        return click.confirm(f"Apply {what}?", default=False, err=True)

    options = replace(ApplyOptions(), lock_timeout=lock_timeout)
    if saved is not None:
        report = apply_saved(
            saved,
            spec,
            provider,
            plan_file=source,
            reporter=reporter,
            options=options,
            confirm=confirm,
        )
    else:
        report = apply_spec(spec, provider, reporter=reporter, options=options, confirm=confirm)
    if output == "json":
        _echo_json(apply_json(report, after, shown.get("now")))
    elif report.plan.is_empty:
        click.echo(plan_text(report.plan, after, None))
    else:
        sent = sum(u.bytes_uploaded for u in report.uploads)
        click.echo(
            f"Apply complete: {len(report.results)} action(s), "
            f"{sent:,} bytes uploaded, {provider.api_calls} API calls."
        )


# ------------------------------------------------------------------------- status


@click.command()
@spec_argument
@output_option
def status(spec_path: str, output: str) -> None:
    """Show what exists for SPEC's stack: versions, endpoints, traffic, replicas, costs, URLs."""
    from deployer.cli.render import status_rows, status_text
    from deployer.cost import estimate_deployments, load_price_table

    spec = _load(spec_path, check_artifacts=False)
    provider = make_provider(spec)
    state = provider.observe(spec.stack, spec.bucket.name)
    table = load_price_table()
    hourly: dict[tuple[str, str], float | None] = {}
    for e in state.endpoints:
        for d, (_, dep) in zip(
            e.deployments,
            _observed_deployments(type(state)(state.stack, state.bucket, (), (e,))),
            strict=True,
        ):
            est = estimate_deployments([(e.name, dep)], spec.region, table)
            hourly[(e.name, d.id)] = est.items[0].hourly_min if est.items else None
    urls = {e.name: provider.endpoint_url(e.endpoint_id) for e in state.endpoints}
    doc = status_rows(state, hourly, urls)
    click.echo(json.dumps(doc, indent=2) if output == "json" else status_text(doc))


# ------------------------------------------------------------------------ predict


@click.command()
@spec_argument
@output_option
@click.option("--endpoint", "endpoint_name", required=True, help="Endpoint name in the spec.")
@click.option(
    "--instances",
    "instances_path",
    type=click.Path(exists=True, dir_okay=False),
    help='JSON list, {"instances": [...]}, JSON Lines (always, for a .jsonl name), or .npy '
    "(a row per instance).",
)
@click.option(
    "--file",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A file whose bytes are one instance, e.g. an image for a model that decodes "
    "it (a string input); repeatable.",
)
@click.option(
    "--as-is",
    is_flag=True,
    help="Send the instances exactly as given, not re-encoded for the signature.",
)
def predict(
    spec_path: str,
    output: str,
    endpoint_name: str,
    instances_path: str | None,
    files: tuple[str, ...],
    as_is: bool,
) -> None:
    """Send an online prediction request to one of SPEC's endpoints; print the predictions.

    Instances are encoded as compactly as the serving signature of the deployed artifact
    allows: float inputs as JSON numbers at float32 precision, numbers for a string input
    the model decodes with tf.io.decode_raw as {"b64": ...} of the raw bytes; each --file as
    {"b64": ...} of its bytes. More instances than fit in one 1.5 MB request are sent in
    several, predictions kept in order.
    """
    from deployer.predict.instances import read_instances
    from deployer.predict.payload import (
        check_takes_bytes,
        encode_instances,
        file_instance,
        merge_responses,
        request_bodies,
        serving_signature,
    )
    from deployer.state import endpoint_id

    spec = _load(spec_path, check_artifacts=False)
    if endpoint_name not in {e.name for e in spec.endpoints}:
        raise ConfigError(
            f"no endpoint {endpoint_name!r} in {spec_path}",
            hint="one of: " + ", ".join(e.name for e in spec.endpoints),
        )
    if (instances_path is None) == (not files):
        raise ConfigError(
            "give the instances with --instances FILE or with --file PATH (repeatable)",
            hint="--instances takes JSON, JSON Lines or .npy; --file sends a file's bytes",
        )
    if files:
        instances = [file_instance(Path(f)) for f in files]
    else:
        assert instances_path is not None
        instances = read_instances(instances_path)
    how = "as given (--as-is)"
    if not as_is:
        signature, source = serving_signature(spec, endpoint_name)
        if files:
            if signature is not None:
                check_takes_bytes(signature, source)
            how = f'each file\'s bytes as {{"b64": ...}} ({source})'
        elif signature is None:
            how = f"as given ({source})"
        else:
            encoded = encode_instances(instances, signature)
            instances = encoded.instances
            forms = "; ".join(f"{k}: {v}" for k, v in encoded.forms.items()) or "as given"
            how = f"{forms} (from {source})"
    bodies = request_bodies(instances)
    provider = make_provider(spec)
    eid = endpoint_id(spec.stack, endpoint_name)
    responses = []
    for n, (first, body) in enumerate(bodies, 1):
        if len(bodies) > 1:
            last = bodies[n][0] if n < len(bodies) else len(instances)
            click.echo(
                f"request {n}/{len(bodies)}: instances {first}..{last - 1} "
                f"({len(body) / 1024:,.0f} KiB)",
                err=True,
            )
        try:
            responses.append(provider.predict(eid, body))
        except NotFound as exc:
            raise NotFound(
                f"endpoint {endpoint_name!r} of stack {spec.stack} does not exist ({exc.message})",
                status=exc.status,
                http_status=exc.http_status,
                hint=f"deploy it first: deployer apply {spec_path}",
            ) from None
    size = sum(len(b) for _, b in bodies)
    click.echo(
        f"Sent {len(instances)} instance(s) in {len(bodies)} request(s), "
        f"{size / 1024:,.1f} KiB: {how}.",
        err=True,
    )
    result = merge_responses(responses)
    if output == "json":
        _echo_json(result)
        return
    click.echo(f"deployed model {result.get('deployedModelId', '?')}:")
    for i, p in enumerate(result.get("predictions", [])):
        click.echo(f"  [{i}] {json.dumps(p)}")


# ----------------------------------------------------------------------- teardown


@click.command()
@spec_argument
@output_option
@yes_option
@click.option("--keep-bucket", is_flag=True, help="Keep the bucket even if the stack created it.")
@click.option("--keep-outputs", is_flag=True, help="Keep batch prediction outputs.")
@click.option("--dry-run", is_flag=True, help="List what would be removed; change nothing.")
def teardown(
    spec_path: str, output: str, yes: bool, keep_bucket: bool, keep_outputs: bool, dry_run: bool
) -> None:
    """Remove everything labelled with SPEC's stack, in a safe order, and verify it is gone."""
    from deployer.cli.render import ConsoleReporter, teardown_json, teardown_text
    from deployer.reconcile.teardown import teardown_stack

    spec = _load(spec_path, check_artifacts=False)
    provider = make_provider(spec)
    outputs = tuple(j.output_prefix for j in spec.batch_jobs)
    kwargs: dict[str, Any] = {
        "keep_bucket": keep_bucket,
        "keep_outputs": keep_outputs,
        "output_prefixes": outputs,
    }
    preview = teardown_stack(provider, spec.stack, spec.bucket.name, dry_run=True, **kwargs)
    if dry_run or preview.nothing_to_do:
        if output == "json":
            _echo_json(teardown_json(preview))
        else:
            click.echo(teardown_text(preview))
        return
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                "teardown needs confirmation but stdin is not a terminal",
                hint="pass --yes to tear down without asking",
            )
        click.echo(teardown_text(preview))
        if not click.confirm("Remove all of this?", default=False, err=True):
            from deployer.errors import Aborted

            raise Aborted("teardown cancelled; nothing was changed")
    report = teardown_stack(
        provider, spec.stack, spec.bucket.name, reporter=ConsoleReporter(), **kwargs
    )
    click.echo(
        json.dumps(teardown_json(report), indent=2) if output == "json" else teardown_text(report)
    )


@click.command("force-unlock")
@spec_argument
def force_unlock(spec_path: str) -> None:
    """Release SPEC's stack lock left by a run that died. Only when no apply is running."""
    from deployer.reconcile.journal import force_unlock as unlock

    spec = _load(spec_path, check_artifacts=False)
    who = unlock(make_provider(spec), spec.bucket.name, spec.stack)
    click.echo(
        f"Released the lock of stack {spec.stack} (held by {who})."
        if who
        else f"Stack {spec.stack} was not locked."
    )
