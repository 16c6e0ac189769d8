"""PyTorch, as Vertex's pre-built `pytorch-*` images (TorchServe) serve a `model.mar`.

Owns: opening `model.mar` (a TorchServe model archive: a zip whose `MAR-INF/MANIFEST.json`
names `model.serializedFile`, `model.handler` and, for eager models, `model.modelFile`) into a
private directory, loading the model as TorchServe's default handler does, and predicting
with the request shape of Vertex's image, whose TorchServe runs with the JSON service
envelope: `{"instances": [...]}` -> the handler gets the instances as one list (a
`{"b64": ...}` value decoded to bytes), and returns one prediction per instance ->
`{"predictions": [...]}`. `parameters` are ignored, as the envelope ignores them.

What runs, without TorchServe's Java frontend:
- handler `base_handler` (or none): TorchServe's BaseHandler semantics: the serializedFile
  `*.pt` loaded with `torch.jit.load` (TorchScript), or with a `modelFile` the one
  `nn.Module` class it defines built and given the serializedFile's state_dict; then
  `torch.as_tensor(instances)` -> `model(tensor)` under `torch.inference_mode()` ->
  `.tolist()`.
- a custom handler `.py` in the archive (`handler.py`, or `handler.py:function`), run as
  TorchServe's model loader runs it: a module-level `handle(data, context)` function (called
  once with `data=None` at load), or the one class the module defines (`initialize(context)`
  at load, then `handle(data, context)`). The context carries `manifest`,
  `system_properties` (`model_dir`, `gpu_id` None, `batch_size` 1), `model_name` and
  `model_yaml_config` ({}). Handlers that import TorchServe's own `ts` package (subclasses of
  `ts.torch_handler.*`) need TorchServe: they fail at load with a message saying so.
- TorchServe's other built-in handlers (image_classifier, text_classifier, ...) and ONNX or
  AOT-compiled serialized files are refused at load, naming what is supported.
One call runs at a time through a custom handler (TorchServe's one worker per model does
the same; handlers keep state); the default handler's TorchScript model is called
concurrently.
Must not: speak HTTP or know the emulator. Importing this module imports torch: an
ImportError here is the "install the extra" answer (`frameworks.load` words it).
"""

from __future__ import annotations

import atexit
import base64
import importlib
import inspect
import json
import shutil
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deployer.serving.frameworks import (
    ModelLoadError,
    artifact_path,
    prediction_failed,
    to_list,
)
from deployer.wire.prebuilt import Framework

MANIFEST = "MAR-INF/MANIFEST.json"
DEFAULT_HANDLERS = ("", "base_handler", "ts.torch_handler.base_handler")
# Intra-op threads per replica: replicas share the machine's cores with each other and with
# the emulator; one thread is what a small model wants (no fork-join per layer).
THREADS = 1
_MAX_ARCHIVE_BYTES = 8 << 30  # uncompressed; a bound against a zip bomb, far above real models


@dataclass
class HandlerContext:
    """The subset of TorchServe's `Context` a handler sees here."""

    model_name: str
    manifest: dict[str, Any]
    system_properties: dict[str, Any]
    model_yaml_config: dict[str, Any] = field(default_factory=dict)

    def get_request_header(self, idx: int, key: str) -> str | None:
        return None  # the emulator forwards no per-request headers to the handler


@dataclass(frozen=True)
class TorchPredictor:
    handle: Callable[[list[Any]], Any]  # instances -> one prediction per instance
    artifact: Path
    handler: str  # what the manifest named ("base_handler" when it named none)
    lock: threading.Lock | None  # serialises custom handlers
    framework: Framework = Framework.PYTORCH

    def predict(
        self, instances: Sequence[Any], parameters: Mapping[str, Any] | None = None
    ) -> list[Any]:
        rows = [_decode_b64(row) for row in instances]
        try:
            if self.lock is None:
                out = self.handle(rows)
            else:
                with self.lock:
                    out = self.handle(rows)
            predictions = to_list(out)
        except Exception as exc:  # the handler's or the model's complaint, any type
            # TorchScript's errors carry both tracebacks; the cause is their last line.
            lines = str(exc).strip().splitlines()
            cause = type(exc)(lines[-1]) if len(lines) > 1 else exc
            raise prediction_failed(self.framework, cause) from exc
        if len(predictions) != len(rows):
            raise prediction_failed(
                self.framework,
                ValueError(
                    f"the handler returned {len(predictions)} predictions for {len(rows)} instances"
                ),
            )
        return predictions


def _decode_b64(row: Any) -> Any:
    """TorchServe's JSON envelope: `{"b64": s}` and `{"col": {"b64": s}}` become bytes."""
    if not isinstance(row, dict):
        return row
    if list(row) == ["b64"] and isinstance(row["b64"], str):
        return base64.b64decode(row["b64"])
    return {
        k: base64.b64decode(v["b64"])
        if isinstance(v, dict) and list(v) == ["b64"] and isinstance(v["b64"], str)
        else v
        for k, v in row.items()
    }


def load(artifact_dir: Path) -> TorchPredictor:
    path = artifact_path(Framework.PYTORCH, artifact_dir)
    model_dir = Path(tempfile.mkdtemp(prefix="deployer-mar-"))
    atexit.register(shutil.rmtree, model_dir, ignore_errors=True)
    manifest = _extract(path, model_dir)
    torch.set_num_threads(THREADS)
    model = manifest.get("model") if isinstance(manifest.get("model"), dict) else None
    if model is None:
        raise ModelLoadError(f'{path.name}: {MANIFEST} has no "model" object')
    handler = str(model.get("handler") or "")
    context = HandlerContext(
        model_name=str(model.get("modelName") or "model"),
        manifest=manifest,
        system_properties={"model_dir": str(model_dir), "gpu_id": None, "batch_size": 1},
    )
    module_name, _, function = handler.partition(":")
    module_name = module_name.removesuffix(".py")
    if handler in DEFAULT_HANDLERS:
        net = _load_model(model, model_dir, path.name)
        return TorchPredictor(
            handle=lambda rows: _default_handle(net, rows),
            artifact=path,
            handler="base_handler",
            lock=None,
        )
    if not (model_dir / f"{module_name}.py").is_file():
        raise ModelLoadError(
            f"{path.name}: handler {handler!r} is not served locally: the emulator runs "
            f"TorchServe's base_handler (TorchScript or eager state_dict models) and custom "
            f"handler .py files inside the archive, not TorchServe's other built-in handlers; "
            "serve this archive from a custom container with TorchServe to run it locally"
        )
    entry = _custom_handler(model_dir, module_name, function or "handle", context, path.name)
    return TorchPredictor(
        handle=lambda rows: entry(rows, context),
        artifact=path,
        handler=handler,
        lock=threading.Lock(),
    )


def _extract(path: Path, into: Path) -> dict[str, Any]:
    """Unpack the archive under `into` (every member checked to stay inside); its manifest."""
    try:
        with zipfile.ZipFile(path) as mar:
            members = mar.infolist()
            if sum(m.file_size for m in members) > _MAX_ARCHIVE_BYTES:
                raise ModelLoadError(f"{path.name} unpacks to more than {_MAX_ARCHIVE_BYTES} bytes")
            root = into.resolve()
            for member in members:
                target = (root / member.filename).resolve()
                if not target.is_relative_to(root):
                    raise ModelLoadError(
                        f"{path.name}: member {member.filename!r} leaves the archive"
                    )
            mar.extractall(root)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelLoadError(
            f"{path.name} is not a TorchServe model archive (a zip): {exc}"
        ) from exc
    try:
        manifest = json.loads((into / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(
            f"{path.name} has no {MANIFEST}: not a TorchServe model archive"
        ) from None
    except ValueError as exc:
        raise ModelLoadError(f"{path.name}: {MANIFEST} is not JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ModelLoadError(f"{path.name}: {MANIFEST} is not a JSON object")
    return manifest


def _load_model(model: Mapping[str, Any], model_dir: Path, mar: str) -> Any:
    """BaseHandler.initialize's loading: eager (modelFile + state_dict) or TorchScript (.pt)."""
    serialized = str(model.get("serializedFile") or "")
    weights = model_dir / serialized if serialized else None
    model_file = str(model.get("modelFile") or "")
    try:
        if model_file:
            module = _import_from(model_dir, model_file.removesuffix(".py"), mar)
            classes = _classes_defined_in(module)
            if len(classes) != 1:
                names = [c.__name__ for c in classes]
                raise ModelLoadError(
                    f"{mar}: {model_file} must define exactly one model class (found {names})"
                )
            net = classes[0]()
            if weights is not None:
                net.load_state_dict(torch.load(weights, map_location="cpu"))
        elif weights is not None and weights.suffix == ".pt":
            net = torch.jit.load(str(weights), map_location="cpu")
        else:
            raise ModelLoadError(
                f"{mar}: no model weights could be loaded from serializedFile {serialized!r}: "
                "the emulator loads TorchScript (*.pt) and eager state_dicts with a modelFile"
            )
        net.eval()
    except ModelLoadError:
        raise
    except Exception as exc:  # torch's own load errors (RuntimeError, pickle errors, ...)
        raise ModelLoadError(f"{mar}: cannot load {serialized or model_file}: {exc}") from exc
    return net


def _default_handle(net: Any, rows: list[Any]) -> Any:
    with torch.inference_mode():
        return net(torch.as_tensor(rows)).tolist()


def _custom_handler(
    model_dir: Path, module_name: str, function: str, context: HandlerContext, mar: str
) -> Callable[[list[Any], HandlerContext], Any]:
    """TorchServe's model loader: a module function (initialised with data=None) or a class."""
    module = _import_from(model_dir, module_name, mar)
    try:
        if callable(getattr(module, function, None)):
            entry: Callable[[list[Any], HandlerContext], Any] = getattr(module, function)
            entry(None, context)  # type: ignore[arg-type]  # TorchServe's initialisation call
            return entry
        classes = _classes_defined_in(module)
        if len(classes) != 1:
            raise ModelLoadError(
                f"{mar}: handler {module_name}.py must define a {function}(data, context) "
                f"function or exactly one handler class (found {[c.__name__ for c in classes]})"
            )
        service = classes[0]()
        if not callable(getattr(service, function, None)):
            raise ModelLoadError(f"{mar}: {classes[0].__name__} has no {function}() method")
        initialize = getattr(service, "initialize", None)
        if callable(initialize):
            initialize(context)
        method: Callable[[list[Any], HandlerContext], Any] = getattr(service, function)
        return method
    except ModelLoadError:
        raise
    except Exception as exc:  # whatever the user's initialisation raises
        raise ModelLoadError(
            f"{mar}: handler {module_name}.py failed to initialise: {type(exc).__name__}: {exc}"
        ) from exc


def _import_from(model_dir: Path, module_name: str, mar: str) -> Any:
    if str(model_dir) not in sys.path:
        sys.path.insert(0, str(model_dir))  # TorchServe puts the model dir on the path too
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "ts":
            raise ModelLoadError(
                f"{mar}: {module_name}.py imports TorchServe's `ts` package, which needs "
                "TorchServe: the emulator runs handlers without it. Write the handler as a "
                "handle(data, context) function or a class with initialize/handle that does not "
                "import ts, or serve the archive from a custom container with TorchServe"
            ) from exc
        raise ModelLoadError(f"{mar}: cannot import {module_name}.py: {exc}") from exc
    except Exception as exc:  # the module's top-level code raised
        raise ModelLoadError(
            f"{mar}: importing {module_name}.py failed: {type(exc).__name__}: {exc}"
        ) from exc


def _classes_defined_in(module: Any) -> list[type]:
    return [
        c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__
    ]
