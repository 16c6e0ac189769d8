"""What the console shows, read in-process from the emulator's own stores.

Owns the console's read model: `models` (each registry model with its versions and aliases),
`endpoints` (traffic split, and per deployed model its state, replicas and recent traffic
from `activity`), `jobs` (batch prediction jobs with progress and errors), and the bucket
browser's `buckets` / `objects` pages. Everything comes from the stores the API handlers use
(the Vertex store, the routing table, the object store), so the console and the API never
disagree.

Must not: change state, talk HTTP (not even to this emulator), or import the core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployer.emulator.console.activity import Activity, Stats
from deployer.emulator.gcstypes import ObjectMeta
from deployer.emulator.objects import ObjectStore
from deployer.emulator.vertex import VertexState, protos
from deployer.emulator.vertex.batch_jobs import BatchPredictionJob
from deployer.emulator.vertex.batch_runner import state_name
from deployer.emulator.vertex.store import Model


def _time(ts: Any) -> str:
    """A protobuf Timestamp as RFC 3339 (seconds), "" when unset."""
    if not ts.seconds and not ts.nanos:
        return ""
    text: str = ts.ToJsonString()
    return text.split(".")[0].rstrip("Z") + "Z"


@dataclass(frozen=True)
class VersionView:
    version_id: str
    aliases: tuple[str, ...]
    created: str
    artifact_uri: str
    image: str


@dataclass(frozen=True)
class ModelView:
    name: str  # projects/N/locations/L/models/ID
    display_name: str
    labels: dict[str, str]
    versions: tuple[VersionView, ...]


def models(vertex: VertexState) -> list[ModelView]:
    """Every model of every project, its versions oldest first."""
    with vertex.store.tx() as c:
        rows = c.execute("SELECT base, body FROM models ORDER BY base, version").fetchall()
    by_base: dict[str, list[Any]] = {}
    for base, body in rows:
        by_base.setdefault(base, []).append(protos.loads(body, Model))
    out = []
    for base, versions in by_base.items():
        latest = versions[-1]
        out.append(
            ModelView(
                name=base,
                display_name=latest.display_name,
                labels=dict(latest.labels),
                versions=tuple(
                    VersionView(
                        version_id=m.version_id,
                        aliases=tuple(m.version_aliases),
                        created=_time(m.version_create_time) or _time(m.create_time),
                        artifact_uri=m.artifact_uri,
                        image=m.container_spec.image_uri,
                    )
                    for m in versions
                ),
            )
        )
    return out


@dataclass(frozen=True)
class DeployedView:
    deployed_model_id: str
    model: str  # registry model name, without @version
    version_id: str
    display_name: str
    traffic: int  # percent of the endpoint's traffic
    state: str  # "deployed" | "deploying"
    replicas: int  # serving replicas now
    replicas_alive: int  # of those, processes still running
    min_replicas: int
    max_replicas: int
    machine_type: str
    stats: Stats | None  # traffic in the activity window; None when nothing was recorded


@dataclass(frozen=True)
class EndpointView:
    name: str
    display_name: str
    labels: dict[str, str]
    deployed: tuple[DeployedView, ...]
    unattributed: Stats | None  # calls that failed before a deployed model was chosen


def endpoints(vertex: VertexState, activity: Activity | None) -> list[EndpointView]:
    out = []
    for ep in vertex.store.all_endpoints():
        stats = activity.endpoint_stats(ep.name) if activity is not None else {}
        deployed = []
        for dm in ep.deployed_models:
            res = dm.dedicated_resources if dm.HasField("dedicated_resources") else None
            auto = dm.automatic_resources
            replicas = vertex.routing.replicas_of(ep.name, dm.id)
            deployed.append(
                DeployedView(
                    deployed_model_id=dm.id,
                    model=dm.model.split("@")[0],
                    version_id=dm.model_version_id,
                    display_name=dm.display_name,
                    traffic=int(ep.traffic_split.get(dm.id, 0)),
                    state="deployed",
                    replicas=len(replicas),
                    replicas_alive=sum(1 for r in replicas if r.alive()),
                    min_replicas=res.min_replica_count if res else auto.min_replica_count,
                    max_replicas=res.max_replica_count if res else auto.max_replica_count,
                    machine_type=res.machine_spec.machine_type if res else "automatic",
                    stats=stats.get(dm.id),
                )
            )
        known = {d.deployed_model_id for d in deployed}
        for row in vertex.store.deployments(endpoint=ep.name):
            if row["deployed_model_id"] in known:
                continue
            deployed.append(  # still deploying: not on the endpoint yet
                DeployedView(
                    deployed_model_id=row["deployed_model_id"],
                    model=row["model_base"],
                    version_id=str(row["version"]),
                    display_name="",
                    traffic=0,
                    state=row["state"],
                    replicas=len(vertex.routing.replicas_of(ep.name, row["deployed_model_id"])),
                    replicas_alive=0,
                    min_replicas=0,
                    max_replicas=0,
                    machine_type="",
                    stats=stats.get(row["deployed_model_id"]),
                )
            )
        out.append(
            EndpointView(
                name=ep.name,
                display_name=ep.display_name,
                labels=dict(ep.labels),
                deployed=tuple(deployed),
                unattributed=stats.get(None),
            )
        )
    return out


@dataclass(frozen=True)
class JobView:
    name: str
    display_name: str
    state: str  # JOB_STATE_...
    model: str
    done: int  # instances answered (successful + failed)
    total: int  # done + incomplete
    successful: int
    failed: int
    error: str  # the job's error message, "" if none
    partial_failures: tuple[str, ...]
    output: str  # gs:// output directory, "" until known
    created: str
    ended: str


def jobs(vertex: VertexState) -> list[JobView]:
    with vertex.store.tx() as c:
        rows = c.execute("SELECT body FROM batch_jobs ORDER BY created DESC, name").fetchall()
    out = []
    for (body,) in rows:
        job = protos.loads(body, BatchPredictionJob)
        stats = job.completion_stats
        done = stats.successful_count + stats.failed_count
        out.append(
            JobView(
                name=job.name,
                display_name=job.display_name,
                state=state_name(job.state),
                model=job.model,
                done=done,
                total=done + stats.incomplete_count,
                successful=stats.successful_count,
                failed=stats.failed_count,
                error=job.error.message,
                partial_failures=tuple(p.message for p in job.partial_failures),
                output=job.output_info.gcs_output_directory,
                created=_time(job.create_time),
                ended=_time(job.end_time),
            )
        )
    return out


@dataclass(frozen=True)
class Listing:
    """One page of a bucket, folders first."""

    bucket: str
    prefix: str
    prefixes: tuple[str, ...]
    objects: tuple[ObjectMeta, ...]
    next_page_token: str | None


PAGE_SIZE = 200


def buckets(objects: ObjectStore) -> list[dict[str, Any]]:
    return objects.list_buckets()


def listing(objects: ObjectStore, bucket: str, prefix: str, page_token: str | None) -> Listing:
    """Objects and folders directly under `prefix` ("/" is the folder separator)."""
    page = objects.list_page(
        bucket, prefix=prefix, delimiter="/", page_token=page_token, max_results=PAGE_SIZE
    )
    return Listing(bucket, prefix, tuple(page.prefixes), tuple(page.items), page.next_page_token)
