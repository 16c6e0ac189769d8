"""What a spec asks of Vertex that the local emulator stores and returns but does not act on.

Owns the one list `apply` names once, on target local, as "not simulated locally" (issue 16):
private networking, customer-managed keys, identities, Spot, resource pools, logging
switches, dedicated endpoints, batch model parameters. Not in it, because the emulator acts
on them: autoscaling targets (it scales replicas against them,
deployer.emulator.vertex.autoscale, capped by DEPLOYER_EMULATOR_MAX_REPLICAS; an accelerator
duty cycle is measured as CPU), request/response logging and a batch job's BigQuery input and
output (each simulated by a local table file,
`<data dir>/bigquery/<project>.<dataset>.<table>.jsonl`:
deployer.emulator.vertex.reqlog and batch_tables).
Pure: reads the frozen spec only.

Must not: call a provider, or claim the emulator simulates a setting it only stores.
"""

from __future__ import annotations

from deployer.spec import Spec, Target


def not_simulated_locally(spec: Spec) -> list[str]:
    """The settings of `spec` the emulator stores without acting on them, each named once."""
    if spec.target is not Target.LOCAL:
        return []
    found: dict[str, list[str]] = {}

    def add(what: str, owner: str) -> None:
        owners = found.setdefault(what, [])
        if owner not in owners:
            owners.append(owner)

    for model in spec.models:
        if model.kms_key_name:
            add("customer-managed encryption keys", f"model {model.name}")
    for ep in spec.endpoints:
        s, where = ep.settings, f"endpoint {ep.name}"
        if s.private:
            add("private networking", where)
        if s.kms_key_name:
            add("customer-managed encryption keys", where)
        if s.dedicated_endpoint_enabled:
            add("dedicated endpoints", where)
        for d in ep.deployments:
            ds, at = d.settings, f"{ep.name}/{d.ref}"
            if ds.service_account:
                add("service accounts", at)
            if ds.spot:
                add("Spot VMs (never preempted here)", at)
            if ds.shared_resources:
                add("deployment resource pools", at)
            if ds.enable_access_logging or ds.disable_container_logging:
                add("Cloud Logging switches", at)
    for job in spec.batch_jobs:
        js, at = job.settings, f"batch job {job.name}"
        if js.kms_key_name:
            add("customer-managed encryption keys", at)
        if js.service_account:
            add("service accounts", at)
        if js.model_parameters_json is not None:
            # The pre-built TensorFlow containers drop "parameters", and so does the emulator.
            add("batch model_parameters", at)
    return [f"{what} ({', '.join(owners)})" for what, owners in found.items()]
