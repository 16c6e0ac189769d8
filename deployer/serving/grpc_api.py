"""TF Serving's gRPC API: PredictionService.Predict / GetModelMetadata and
ModelService.GetModelStatus.

Owns: the protobuf side (TensorProto <-> numpy with `tf.make_ndarray` / `tf.make_tensor_proto`,
ModelSpec versions, output_filter, status codes), using the `tensorflow-serving-api` package's
generated services, so TF Serving clients (e.g. `PredictionServiceStub(channel).Predict(request,
timeout=10.0)`) work unchanged. Must not: decide anything about batching, versions or shapes
(the shared `ModelServer` does, exactly as for REST).
"""

from __future__ import annotations

from concurrent import futures
from typing import Any

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from deployer.serving.server import ModelServer, ServingError

_MAX_MESSAGE = 2**31 - 1  # TF Serving accepts messages up to INT_MAX


def _abort(context: grpc.ServicerContext, exc: ServingError) -> Any:
    context.abort(getattr(grpc.StatusCode, exc.code, grpc.StatusCode.UNKNOWN), exc.message)


def _version(spec: Any) -> int | None:
    if spec.HasField("version"):
        return int(spec.version.value)
    if spec.version_label:
        raise ServingError("NOT_FOUND", 404, "version labels are not supported")
    return None


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    def __init__(self, server: ModelServer) -> None:
        import tensorflow as tf

        self._server = server
        self._make_ndarray = tf.make_ndarray
        self._make_tensor_proto = tf.make_tensor_proto

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            self._server.check_name(request.model_spec.name)
            arrays = {k: self._make_ndarray(v) for k, v in request.inputs.items()}
            version, sig, outputs, _ = self._server.predict_arrays(
                _version(request.model_spec), request.model_spec.signature_name or None, arrays
            )
            wanted = list(request.output_filter) or list(outputs)
            unknown = [n for n in wanted if n not in outputs]
            if unknown:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    400,
                    f"output_filter names unknown outputs {unknown}; "
                    f"signature '{sig.name}' has {list(outputs)}",
                )
            response = predict_pb2.PredictResponse()
            response.model_spec.name = self._server.name
            response.model_spec.version.value = version
            response.model_spec.signature_name = sig.name
            for name in wanted:
                response.outputs[name].CopyFrom(self._make_tensor_proto(outputs[name]))
            return response
        except ServingError as exc:
            return _abort(context, exc)
        except (ValueError, TypeError) as exc:  # make_ndarray on a malformed TensorProto
            return _abort(
                context, ServingError("INVALID_ARGUMENT", 400, f"bad input tensor: {exc}")
            )

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            self._server.check_name(request.model_spec.name)
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    400,
                    f"metadata_field must be ['signature_def'], got {fields}",
                )
            version, sig_map = self._server.metadata(_version(request.model_spec))
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = self._server.name
            response.model_spec.version.value = version
            response.metadata["signature_def"].Pack(sig_map)
            return response
        except ServingError as exc:
            return _abort(context, exc)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
    def __init__(self, server: ModelServer) -> None:
        self._server = server

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            self._server.check_name(request.model_spec.name)
            version = _version(request.model_spec)
        except ServingError as exc:
            return _abort(context, exc)
        statuses = self._server.manager.statuses(version)
        if not statuses:
            return _abort(
                context,
                ServingError(
                    "NOT_FOUND",
                    404,
                    f"Could not find version {version} of model {self._server.name}",
                ),
            )
        response = get_model_status_pb2.GetModelStatusResponse()
        for s in statuses:
            entry = response.model_version_status.add()
            entry.version = int(s["version"])
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(s["state"])
            entry.status.error_message = s["status"]["error_message"]
            if s["status"]["error_code"] != "OK":
                entry.status.error_code = 2  # tensorflow.error.UNKNOWN
        return response


def start_grpc_server(
    server: ModelServer, host: str, port: int, max_workers: int = 64
) -> tuple[grpc.Server, int]:
    """Start the gRPC front end; returns (server, bound port). Raises RuntimeError if it cannot
    bind."""
    # Enough workers that 32+ concurrent clients reach the batcher instead of queuing here.
    grpc_server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(server), grpc_server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(server), grpc_server)
    try:
        bound = grpc_server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        raise RuntimeError(f"cannot listen for gRPC on {host}:{port}: {exc}") from exc
    if bound == 0:
        raise RuntimeError(f"cannot listen for gRPC on {host}:{port}")
    grpc_server.start()
    return grpc_server, bound
