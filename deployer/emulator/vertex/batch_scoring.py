"""Scoring one batch of a job's instances on one replica: the array path and the JSON path.

Owns: a block of JSON Lines rows sent to a TensorFlow replica as ONE array (decoded by
`batch_arrays`, posted to the replica's `:predictArrays` route, predictions encoded per row
from the output arrays), and everything else, or a block that path does not take, sent as TF
Serving JSON (`{"instances": [...]}`), retried one instance at a time when the batch fails so
one bad instance does not fail its neighbours. Each row comes back as (field, echoed JSON,
prediction JSON, error): what the shard writer writes. JSON Lines rows that take the JSON path
are validated here (the job's count pass no longer parses them), with the file and line.

Must not: read inputs, write outputs, touch job state, or import TensorFlow or
deployer.serving (replicas are processes).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from google.rpc import code_pb2

from deployer.emulator.http import ServiceError
from deployer.emulator.vertex import batch_arrays
from deployer.emulator.vertex.batch_arrays import Block
from deployer.emulator.vertex.batch_formats import InputError
from deployer.wire import batch_formats as formats

log = logging.getLogger("deployer.emulator.batch")

# One output row: (field, echoed JSON, prediction JSON or None, error or None).
Row = tuple[bytes, bytes, bytes | None, dict[str, Any] | None]


class Scorer:
    """Scores the batches of one job (called from several threads at once).

    `arrays`: try the array path for JSON Lines blocks (every replica is the TF replica and
    instance_config asks for no reshaping). The first refusal (a signature the route does not
    serve, string outputs, a replica without the route) turns it off for the rest of the job.
    """

    def __init__(self, shaper: Any, *, arrays: bool) -> None:
        self.shaper = shaper  # batch_runner.InstanceShaper
        self.arrays = arrays

    def score(self, replica: Any, item: Block | list[bytes]) -> list[Row]:
        if isinstance(item, Block):
            return self._block(replica, item)
        return self._json(replica, item)

    def _block(self, replica: Any, block: Block) -> list[Row]:
        if self.arrays:
            values = batch_arrays.decode_block(block.lines)
            if values is not None:
                rows = self._arrays(replica, values, block.lines)
                if rows is not None:
                    return rows
        for line, number in zip(block.lines, block.numbers, strict=True):
            try:
                formats.parse_jsonl_line(line, line_no=number)
            except formats.FormatError as exc:
                raise InputError(
                    f"Malformed jsonl input {block.source}, {exc.where}: {exc.reason}"
                ) from exc
        return self._json(replica, block.lines)

    def _arrays(self, replica: Any, values: Any, lines: list[bytes]) -> list[Row] | None:
        path = replica.predict_path.rsplit(":", 1)[0] + batch_arrays.ARRAYS_ACTION
        try:
            status, body = replica.request("POST", path, batch_arrays.npy_body(values))
        except Exception as exc:  # unreachable: the JSON path reports it per row
            self._refuse(f"replica unreachable: {exc}")
            return None
        if status != 200:
            self._refuse(f"HTTP {status}: {body[:300]!r}")
            return None
        try:
            predictions = batch_arrays.prediction_rows(batch_arrays.read_npz(body), len(lines))
        except (ValueError, OSError, KeyError) as exc:
            self._refuse(f"unreadable answer: {exc}")
            return None
        if predictions is None:
            self._refuse("outputs have no row format")
            return None
        return [
            (b"instance", line, prediction, None)
            for line, prediction in zip(lines, predictions, strict=True)
        ]

    def _refuse(self, why: str) -> None:
        if self.arrays:
            self.arrays = False
            log.info("batch: array path off for this job (%s); sending JSON", why)

    def _json(self, replica: Any, raw: list[bytes]) -> list[Row]:
        shaped = [self.shaper(instance) for instance in raw]
        outcomes = predict_json(replica, [sent for sent, _ in shaped])
        return [
            (field, echo, prediction, error)
            for (_, (field, echo)), (prediction, error) in zip(shaped, outcomes, strict=True)
        ]


def predict_json(
    replica: Any, batch: list[bytes]
) -> list[tuple[bytes | None, dict[str, Any] | None]]:
    """(prediction JSON, error) per instance; a failed batch is retried one by one so a
    single bad instance does not take its neighbours down with it."""
    try:
        return [(p, None) for p in _call(replica, batch)]
    except _PredictError as exc:
        if len(batch) == 1:
            return [(None, {"code": exc.code, "message": exc.message})]
    out: list[tuple[bytes | None, dict[str, Any] | None]] = []
    for instance in batch:
        try:
            out.append((_call(replica, [instance])[0], None))
        except _PredictError as exc:
            out.append((None, {"code": exc.code, "message": exc.message}))
    return out


class _PredictError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _call(replica: Any, batch: list[bytes]) -> list[bytes]:
    body = b'{"instances":[' + b",".join(batch) + b"]}"
    try:
        raw = replica.predict(body)
    except ServiceError as exc:
        raise _PredictError(status_code(exc.status), exc.message) from exc
    except Exception as exc:
        status = getattr(exc, "http_status", 500)
        code = code_pb2.INVALID_ARGUMENT if status == 400 else code_pb2.INTERNAL
        raise _PredictError(
            code, getattr(exc, "message", "") or str(exc) or type(exc).__name__
        ) from exc
    try:
        answer = _loads(raw)
    except ValueError as exc:
        raise _PredictError(code_pb2.INTERNAL, f"replica answered non-JSON: {raw[:200]!r}") from exc
    if isinstance(answer, dict) and "error" in answer:
        raise _PredictError(code_pb2.INVALID_ARGUMENT, str(answer["error"]))
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != len(batch):
        raise _PredictError(code_pb2.INTERNAL, "replica answered a wrong number of predictions")
    return [dumps(p) for p in predictions]


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)  # what orjson refuses (e.g. integers past 64 bits), or ValueError


def dumps(value: Any) -> bytes:
    """Compact JSON, as the TF replica writes it (orjson), for any JSON value."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):  # integers past 64 bits
        return json.dumps(value, separators=(",", ":")).encode()


def status_code(status: str) -> int:
    known = set(code_pb2.Code.keys())
    return int(code_pb2.Code.Value(status)) if status in known else code_pb2.UNKNOWN
