"""Local autoscaling: deployed models with min < max replicas follow their autoscaling target.

Owns: the scaling decision (`desired_replicas`, pure: Kubernetes' HPA rule, which Vertex's
autoscaler follows), the per-deployed-model request meter the predict path feeds
(`Meter.hit`, wired in as `Routing.meter`), CPU sampling of replica processes from
`/proc/<pid>/stat`, the local replica cap (`replica_cap`), and `Autoscaler`: a thread owned
by the emulator (stopped at shutdown) that every `DEPLOYER_EMULATOR_AUTOSCALE_INTERVAL`
seconds measures each deployed model whose replica bounds differ and resizes its replica
set (`resize`, also used by mutateDeployedModel through `fit`). Scale-up is at once;
scale-down only to the highest replica count wanted during the last
`DEPLOYER_EMULATOR_AUTOSCALE_COOLDOWN` seconds (Vertex waits minutes; HPA's stabilization
window). Metrics, as Vertex documents `autoscaling_metric_specs`:

- `.../cpu/utilization`: target percent (default 60); locally the mean over replicas of each
  replica process's CPU time per second, in percent of one core.
- `.../accelerator/duty_cycle`: no accelerator here: measured as CPU utilization (said in
  the log when such a deployment is first evaluated).
- `.../request_count`: target requests per minute per replica, counted on :predict and
  :rawPredict.

Must not: start replicas except through ReplicaManager, change stored resources, or import
TensorFlow.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.cloud.aiplatform_v1.types import endpoint as endpoint_t

from deployer import settings
from deployer.emulator.context import EmulatorContext
from deployer.emulator.vertex import protos
from deployer.emulator.vertex.predict import Routing
from deployer.emulator.vertex.replicas import Replica, ReplicaManager
from deployer.emulator.vertex.store import VertexStore

log = logging.getLogger("deployer.emulator.vertex")

CPU = "aiplatform.googleapis.com/prediction/online/cpu/utilization"
DUTY_CYCLE = "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle"
REQUEST_COUNT = "aiplatform.googleapis.com/prediction/online/request_count"
# Vertex's default when a deployment with min < max names no metric: CPU at 60%.
DEFAULT_TARGET = 60
# Within this fraction of the target the count stays (HPA's tolerance: no flapping).
TOLERANCE = 0.1
# A replica taken out of the rotation serves the requests already routed to it this long
# before it is stopped (it then drains what is in flight on SIGTERM).
RETIRE_GRACE_S = 1.0

DeployedModel = protos.pb(endpoint_t.DeployedModel)
Key = tuple[str, str]  # (endpoint resource name, deployed model id)


def replica_cap() -> int:
    """Most replica processes one deployed model runs locally ($DEPLOYER_EMULATOR_MAX_REPLICAS)."""
    return settings.EMULATOR_MAX_REPLICAS.get()


def desired_replicas(
    *, target: float, observed: float, current: int, min_replicas: int, max_replicas: int
) -> int:
    """Replicas wanted for one metric: ceil(current * observed / target), within the bounds.

    Within TOLERANCE of the target the current count stays. `observed` is the per-replica
    average (percent, or requests per minute per replica) over the last interval.
    """
    low, high = min_replicas, max(min_replicas, max_replicas)
    if current < 1 or target <= 0:
        return max(low, min(high, current))
    ratio = observed / target
    want = current if abs(ratio - 1.0) <= TOLERANCE else math.ceil(current * ratio - 1e-9)
    return max(low, min(high, want))


def bounds(dm: Any) -> tuple[int, int]:
    """(min, max) replicas of a DeployedModel proto, both capped by `replica_cap()`."""
    res = dm.dedicated_resources if dm.HasField("dedicated_resources") else dm.automatic_resources
    low = max(1, res.min_replica_count)
    high = max(low, res.max_replica_count)
    cap = replica_cap()
    return min(low, cap), min(high, cap)


def metric_targets(dm: Any) -> list[tuple[str, int]]:
    """(metric name, target) pairs of a DeployedModel; Vertex's default when none is named."""
    specs = (
        dm.dedicated_resources.autoscaling_metric_specs
        if dm.HasField("dedicated_resources")
        else []
    )
    out = [(s.metric_name, s.target or DEFAULT_TARGET) for s in specs]
    return out or [(CPU, DEFAULT_TARGET)]


class Meter:
    """Requests per (endpoint, deployed model) since the last `take`; fed by the predict path."""

    def __init__(self) -> None:
        self._counts: dict[Key, int] = {}
        self._lock = threading.Lock()

    def hit(self, endpoint: str, deployed_model_id: str) -> None:
        key = (endpoint, deployed_model_id)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def take(self) -> dict[Key, int]:
        with self._lock:
            counts, self._counts = self._counts, {}
        return counts


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (from /proc), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces) start at state; utime, stime are
    # the 14th and 15th fields of the line.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class _Track:
    """What the evaluator remembers of one deployed model between intervals."""

    wanted: collections.deque[tuple[float, int]]  # (monotonic time, desired) in the cool-down
    warned_duty_cycle: bool = False


class Autoscaler:
    """The evaluator thread and the replica-set resize shared with mutateDeployedModel."""

    def __init__(
        self,
        ctx: EmulatorContext,
        store: VertexStore,
        routing: Routing,
        replicas: ReplicaManager,
    ) -> None:
        self.store = store
        self.routing = routing
        self.replicas = replicas
        self.meter = Meter()
        routing.meter = self.meter.hit
        self._cpu: dict[int, float] = {}  # pid -> CPU seconds at the last sample
        self._tracks: dict[Key, _Track] = {}
        self._busy: set[Key] = set()  # keys with a resize in progress
        self._locks: dict[Key, threading.Lock] = collections.defaultdict(threading.Lock)
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._last = time.monotonic()
        self._thread: threading.Thread | None = None
        ctx.on_shutdown(self.stop)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="autoscaler")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(settings.EMULATOR_AUTOSCALE_INTERVAL.get()):
            try:
                self.evaluate()
            except Exception:  # one bad round must not end autoscaling for the emulator's life
                log.exception("autoscaler round failed")

    # -- measuring and deciding -------------------------------------------------------

    def evaluate(self) -> None:
        """One round: measure every autoscaled deployed model and resize those off target."""
        now = time.monotonic()
        elapsed, self._last = max(now - self._last, 1e-3), now
        counts = self.meter.take()
        live = self.routing.all_replicas()
        cpu_now = {r.process.pid: cpu_seconds(r.process.pid) for rs in live.values() for r in rs}
        cpu_before, self._cpu = self._cpu, {p: s for p, s in cpu_now.items() if s is not None}
        cooldown = settings.EMULATOR_AUTOSCALE_COOLDOWN.get()
        for row in self.store.deployments():
            key = (row["endpoint"], row["deployed_model_id"])
            current = live.get(key, [])
            if row["state"] != "deployed" or not current or key in self._busy:
                continue
            dm = protos.loads(row["body"], DeployedModel)
            low, high = bounds(dm)
            if low == high:
                continue
            track = self._tracks.setdefault(key, _Track(collections.deque()))
            cpu = _cpu_percent(current, cpu_before, self._cpu, elapsed)
            rpm = counts.get(key, 0) * 60.0 / elapsed / len(current)
            wanted = []
            for metric, target in metric_targets(dm):
                if metric == DUTY_CYCLE and not track.warned_duty_cycle:
                    track.warned_duty_cycle = True
                    log.info("deployed model %s: accelerator duty cycle measured as CPU", key[1])
                observed = rpm if metric == REQUEST_COUNT else cpu
                if observed is None:
                    continue
                wanted.append(
                    desired_replicas(
                        target=target,
                        observed=observed,
                        current=len(current),
                        min_replicas=low,
                        max_replicas=high,
                    )
                )
            desired = max(wanted) if wanted else len(current)
            track.wanted.append((now, desired))
            while track.wanted and track.wanted[0][0] < now - cooldown:
                track.wanted.popleft()
            new = scale_step(len(current), desired, [d for _, d in track.wanted])
            if new != len(current):
                log.info(
                    "autoscaling %s on %s: %d -> %d replica(s) (%.0f req/min per replica, cpu %s)",
                    key[1],
                    key[0],
                    len(current),
                    new,
                    rpm,
                    "n/a" if cpu is None else f"{cpu:.0f}%",
                )
                self._resize_async(key, new)
        for key in set(self._tracks) - set(live):
            del self._tracks[key]  # undeployed

    def _resize_async(self, key: Key, want: int) -> None:
        with self._guard:
            self._busy.add(key)

        def work() -> None:
            try:
                self.resize(key[0], key[1], want)
            except Exception as exc:
                log.error("autoscaling %s on %s to %d failed: %s", key[1], key[0], want, exc)
            finally:
                with self._guard:
                    self._busy.discard(key)

        threading.Thread(target=work, daemon=True, name=f"autoscale-{key[1]}").start()

    # -- resizing ---------------------------------------------------------------------

    def fit(self, endpoint: str, dm: Any) -> None:
        """Bring a deployed model's replica count within its (possibly new) bounds."""
        low, high = bounds(dm)
        current = len(self.routing.replicas_of(endpoint, dm.id))
        want = max(low, min(high, current))
        if want != current:
            self.resize(endpoint, dm.id, want)

    def resize(self, endpoint: str, deployed_model_id: str, want: int) -> None:
        """Start or retire replicas of one deployed model until it has `want` serving."""
        key = (endpoint, deployed_model_id)
        with self._locks[key]:
            current = self.routing.replicas_of(endpoint, deployed_model_id)
            if want > len(current):
                fresh = self._start(endpoint, deployed_model_id, current, want - len(current))
                if not self._deployed(endpoint, deployed_model_id):
                    for r in fresh:  # undeployed meanwhile
                        self.replicas.stop(r)
                    return
                serving = self.routing.replicas_of(endpoint, deployed_model_id)
                self.routing.set_replicas(endpoint, deployed_model_id, serving + fresh)
                if not self._deployed(endpoint, deployed_model_id):
                    # Undeployed between the check and the swap: take back what it left.
                    self._stop_all(self.routing.pop_replicas(endpoint, deployed_model_id))
            elif want < len(current):
                keep, retire = current[:want], current[want:]
                self.routing.set_replicas(endpoint, deployed_model_id, keep)
                threading.Timer(RETIRE_GRACE_S, self._stop_all, args=(retire,)).start()

    def _stop_all(self, retire: Sequence[Replica]) -> None:
        for r in retire:
            self.replicas.stop(r)

    def _deployed(self, endpoint: str, deployed_model_id: str) -> bool:
        rows = [
            r
            for r in self.store.deployments(endpoint=endpoint)
            if r["deployed_model_id"] == deployed_model_id
        ]
        return bool(rows) and rows[0]["state"] == "deployed"

    def _start(
        self, endpoint: str, deployed_model_id: str, current: list[Replica], count: int
    ) -> list[Replica]:
        rows = [
            r
            for r in self.store.deployments(endpoint=endpoint)
            if r["deployed_model_id"] == deployed_model_id
        ]
        if not rows:
            return []
        model = self.store.resolve_model(f"{rows[0]['model_base']}@{rows[0]['version']}")
        prefix = f"{endpoint.rsplit('/', 1)[1]}-{deployed_model_id}-"
        taken = {r.name for r in current}
        names = [n for n in (f"{prefix}{i}" for i in range(len(taken) + count)) if n not in taken]
        started: list[Replica] = []
        with ThreadPoolExecutor(count) as pool:
            futures = [
                pool.submit(
                    self.replicas.start,
                    model.artifact_uri,
                    name=name,
                    model_name=deployed_model_id,
                    container=model.container_spec,
                    endpoint=endpoint,
                )
                for name in names[:count]
            ]
            errors = []
            for f in futures:
                try:
                    started.append(f.result())
                except Exception as exc:
                    errors.append(exc)
        if errors and not started:
            raise errors[0]
        return started


def scale_step(current: int, desired: int, recent: Sequence[int]) -> int:
    """The count to move to now: up to `desired` at once; down only to the highest count
    wanted in the cool-down window (`recent`, which includes `desired`)."""
    if desired >= current:
        return desired
    return min(current, max([desired, *recent]))


def _cpu_percent(
    current: Sequence[Replica],
    before: dict[int, float],
    now: dict[int, float],
    elapsed: float,
) -> float | None:
    """Mean CPU of the replicas over the interval, in percent of one core; None when no
    replica was sampled both times (all just started)."""
    used = [
        (now[r.process.pid] - before[r.process.pid]) / elapsed * 100.0
        for r in current
        if r.process.pid in now and r.process.pid in before
    ]
    return sum(used) / len(used) if used else None
