"""Long-running operations of the emulated Vertex AI: creation helpers and the operations API.

Owns `start_operation` (the one way handlers create an operation, with the
--op-delay fault applied) and the routes get / list / wait / cancel / delete
under any resource path, via both `/v1/` and `/ui/` (the SDK's LRO poller uses
`/ui/`). `done` is honest: an operation is done only when its effect is
final and its delay has passed; a failed one carries `error`.

Must not: perform the operations' effects (models.py / endpoints.py do), or
import TensorFlow.
"""

from __future__ import annotations

import re
import time
from typing import Any

from google.cloud.aiplatform_v1.types import operation as operation_t
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.rpc import code_pb2, status_pb2

from deployer.emulator.context import EmulatorContext
from deployer.emulator.http import Request, Response, ServiceError
from deployer.emulator.vertex import protos
from deployer.emulator.vertex.names import API, PARENT_RE, SEG, Routes, operation_name
from deployer.emulator.vertex.store import VertexStore

GenericOperationMetadata = protos.pb(operation_t.GenericOperationMetadata)

# How long one :wait call may block at most (the client re-issues it).
_MAX_WAIT_S = 30.0
# google-duration in JSON and query strings: decimal seconds with an "s" suffix.
_DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]{1,9})?)s")


def generic_metadata(created: float | None = None) -> Any:
    meta = GenericOperationMetadata()
    meta.create_time.CopyFrom(protos.now_ts(created))
    meta.update_time.CopyFrom(protos.now_ts())
    return meta


def start_operation(
    store: VertexStore,
    ctx: EmulatorContext,
    *,
    resource: str,
    kind: str,
    metadata: Any,
    response: Any | None = None,
    running: bool = False,
) -> operations_pb2.Operation:
    """Create and persist an operation under `resource`.

    With `running=False` the effect has already been committed by the caller (in
    the same store transaction, when called inside `store.tx()`) and `response`
    is the final result; with `running=True` a worker will call
    `store.finish_operation` later. Either way the client sees `done: false`
    until `ctx.faults.op_delay` seconds have passed.
    """
    op = operations_pb2.Operation(name=operation_name(resource))
    op.metadata.CopyFrom(protos.pack(metadata))
    if not running:
        op.done = True
        op.response.CopyFrom(protos.pack(response if response is not None else empty_pb2.Empty()))
    done_at = time.time() + float(getattr(ctx.faults, "op_delay", 0.0) or 0.0)
    store.insert_operation(
        op, resource=resource, kind=kind, state="running" if running else "done", done_at=done_at
    )
    shown = operations_pb2.Operation()
    shown.CopyFrom(op)
    if running or done_at > time.time():
        shown.done = False
        shown.ClearField("result")
    return shown


def _duration_s(text: str | None) -> float:
    """Seconds of a google-duration query value ("3s", "0.5s"); absent or empty: the maximum."""
    if not text:
        return _MAX_WAIT_S
    m = _DURATION_RE.fullmatch(text)
    if m is None:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"Invalid value at 'timeout' (google.protobuf.Duration): {text!r}; give seconds "
            "with an 's' suffix, e.g. '2.5s'.",
        )
    return float(m[1])


def error_status(code: int, message: str) -> status_pb2.Status:
    return status_pb2.Status(code=code, message=message)


CANCELLED = code_pb2.CANCELLED
ABORTED = code_pb2.ABORTED
FAILED_PRECONDITION = code_pb2.FAILED_PRECONDITION
INTERNAL = code_pb2.INTERNAL
INVALID_ARGUMENT = code_pb2.INVALID_ARGUMENT
NOT_FOUND = code_pb2.NOT_FOUND


def register(router: Routes, ctx: EmulatorContext, store: VertexStore) -> None:
    """Routes for google.longrunning.Operations on every Vertex resource path."""
    op_path = rf"{API}(?P<name>{PARENT_RE}(?:/{SEG}/{SEG})*/operations/{SEG})"
    res_path = rf"{API}(?P<name>{PARENT_RE}(?:/{SEG}/{SEG})*)/operations"

    def require(name: str) -> operations_pb2.Operation:
        op = store.visible_operation(name)
        if op is None:
            raise ServiceError(404, "NOT_FOUND", f"Operation {name} not found.")
        return op

    def get_op(req: Request, m: re.Match[str]) -> Response:
        return protos.proto_response(req, require(m["name"]))

    def list_ops(req: Request, m: re.Match[str]) -> Response:
        ops = store.operations_under(m["name"])
        flt = (req.q("filter") or "").replace(" ", "")
        if flt in ("done=true", "done=false"):
            want = flt.endswith("true")
            ops = [o for o in ops if o.done == want]
        size = int(req.q("pageSize") or req.q("page_size") or 0) or 100
        start = int(req.q("pageToken") or req.q("page_token") or 0)
        page = ops[start : start + size]
        out = operations_pb2.ListOperationsResponse(operations=page)
        if start + size < len(ops):
            out.next_page_token = str(start + size)
        return protos.proto_response(req, out)

    def wait_op(req: Request, m: re.Match[str]) -> Response:
        # operations.wait has no body; its `timeout` is a query parameter (google-duration).
        timeout = min(_MAX_WAIT_S, _duration_s(req.q("timeout")))
        deadline = time.time() + timeout
        op = require(m["name"])
        while not op.done and time.time() < deadline:
            time.sleep(0.05)
            op = require(m["name"])
        return protos.proto_response(req, op)

    def cancel_op(req: Request, m: re.Match[str]) -> Response:
        require(m["name"])
        # Best effort, as Google documents: a running worker checks the flag;
        # an operation whose effect is already committed completes as it would.
        store.request_cancel(m["name"])
        return protos.proto_response(req, empty_pb2.Empty())

    def delete_op(req: Request, m: re.Match[str]) -> Response:
        if not store.delete_operation(m["name"]):
            raise ServiceError(404, "NOT_FOUND", f"Operation {m['name']} not found.")
        return protos.proto_response(req, empty_pb2.Empty())

    router.add("GET", op_path, get_op, name="getOperation", mutating=False)
    router.add("POST", op_path + ":wait", wait_op, name="waitOperation", mutating=False)
    router.add("POST", op_path + ":cancel", cancel_op, name="cancelOperation", mutating=True)
    router.add("DELETE", op_path, delete_op, name="deleteOperation", mutating=True)
    router.add("GET", res_path, list_ops, name="listOperations", mutating=False)
