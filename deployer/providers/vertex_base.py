"""What every part of the real provider shares: the clients, the call counter, names, snapshots.

Owns: `VertexBase`, the base of the classes that together make `VertexProvider`
(vertex.py: inventory, registry, storage and operations; vertex_endpoints.py; batch_jobs.py):
the official clients of one `ClientTarget`, the retry policy, the thread-safe API call count,
the storage half (`GcsStore`), resource names, and `Operation` snapshots of GAPIC operations.

Must not: make API calls itself, or import the SDK at module import time.
"""

from __future__ import annotations

import threading
from typing import Any

from deployer.providers import Operation
from deployer.providers.calls import CountedCalls
from deployer.providers.clients import Clients, ClientTarget
from deployer.providers.gcs import GcsStore
from deployer.providers.retry import RetryPolicy


class VertexBase(CountedCalls):
    def __init__(self, target: ClientTarget, *, policy: RetryPolicy | None = None) -> None:
        self.target = target
        self.project, self.region = target.project, target.region
        self.clients = Clients(target)
        self.policy = policy or RetryPolicy.from_env()
        self.connect_hint = target.connect_hint
        self._calls = 0
        self._lock = threading.Lock()
        self._gcs: GcsStore | None = None

    def _count(self, n: int) -> None:
        with self._lock:
            self._calls += n

    @property
    def api_calls(self) -> int:
        return self._calls

    @property
    def gcs(self) -> GcsStore:
        if self._gcs is None:
            self._gcs = GcsStore(
                self.clients.storage, self.policy, self._count, connect_hint=self.connect_hint
            )
        return self._gcs

    def _parent(self) -> str:
        return self.target.parent

    def _model_name(self, model_id: str) -> str:
        return f"{self._parent()}/models/{model_id}"

    def _endpoint_name(self, endpoint_id: str) -> str:
        return f"{self._parent()}/endpoints/{endpoint_id}"

    @staticmethod
    def _operation(op: Any) -> Operation:
        """Snapshot of a google.api_core Operation future or an operations_pb2.Operation."""
        pb = getattr(op, "operation", op)
        error = None
        if pb.HasField("error") and pb.error.code:
            error = pb.error.message or f"operation failed with code {pb.error.code}"
        result = None
        if (
            pb.done
            and pb.HasField("response")
            and pb.response.type_url.endswith("UploadModelResponse")
        ):
            from google.cloud.aiplatform_v1.types.model_service import UploadModelResponse

            resp = UploadModelResponse.pb()()
            pb.response.Unpack(resp)
            result = f"{resp.model}@{resp.model_version_id}"
        return Operation(pb.name, bool(pb.done), error, result)
