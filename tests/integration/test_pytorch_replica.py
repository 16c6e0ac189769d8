"""The pre-built PyTorch replica (`python -m deployer.serving.prebuilt --framework pytorch`):
a TorchServe model archive (model.mar) served with the request shape of Vertex's PyTorch image,
by TorchServe's base_handler semantics and by custom handler.py files in the archive; what is
not supported fails at load naming why; without torch the replica says how to install it."""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_serve_support import ServerProcess, http
from tests.support.frameworks import ROOT, _load, in_process, no_torch_env, require_torch, rows
from tests.support.frameworks import train_all as _train_all

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    require_torch()
    return _train_all(tmp_path_factory.mktemp("torch"))


def _pack(path: Path, files: dict[str, bytes], handler: str) -> Path:
    train = _load("train_frameworks", ROOT / "scripts" / "train_frameworks.py")
    train.pack_mar(path / "model.mar", files, handler=handler)
    return path


def _script(model_dir: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(model_dir / "model.mar") as mar:
        return mar.read("model.pt")


def _start(tmp_path: Path, artifact: Path, env: dict[str, str] | None = None) -> ServerProcess:
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        args = ["-m", "deployer.serving.prebuilt", "--framework", "pytorch", "--port", "0"]
        return ServerProcess([*args, "--artifact", str(artifact)], tmp_path / "replica.log")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    started: list[ServerProcess] = []

    def start(artifact: Path) -> str:
        server = _start(tmp_path, artifact)
        started.append(server)
        base = f"http://127.0.0.1:{server.bound_port('HTTP')}"
        server.wait_ready(base + "/health")
        return base

    yield start
    for server in started:
        assert server.terminate() == 0, server.log[-2000:]


def _exit_log(server: ServerProcess) -> tuple[int, str]:
    deadline = time.monotonic() + 90
    while server.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return server.terminate(), server.log


def test_base_handler_serves_the_torchscript_model_as_in_process(
    examples: tuple[Path, Path], serve: object
) -> None:
    models, data = examples
    base = serve(models / "pytorch_wine")  # type: ignore[operator]
    instances = rows(data, "wine")
    status, body = http("POST", base + "/predict", {"instances": instances})
    assert status == 200
    assert body == {"predictions": in_process("wine", models, instances)}

    status, body = http("POST", base + "/predict", {"instances": [[1.0, 2.0]]})
    assert status == 400
    assert body["error"].startswith("Prediction failed: Exception during pytorch prediction: ")
    assert "must match the size" in body["error"] and "Traceback" not in body["error"]


def test_an_eager_model_file_with_a_state_dict_is_built_and_loaded(
    examples: tuple[Path, Path], tmp_path: Path, serve: object
) -> None:
    import torch

    _, data = examples
    source = b"""
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(13, 3)

    def forward(self, x):
        return self.linear(x.float() / 100.0)
"""
    namespace: dict[str, object] = {}
    exec(compile(source, "model.py", "exec"), namespace)  # the same class, in this process
    torch.manual_seed(1)
    net = namespace["Net"]()  # type: ignore[operator]
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)  # type: ignore[attr-defined]
    art = _pack(
        tmp_path / "eager", {"model.pth": buf.getvalue(), "model.py": source}, "base_handler"
    )
    base = serve(art)  # type: ignore[operator]
    instances = rows(data, "wine")[:5]
    with torch.inference_mode():
        want = net(torch.as_tensor(instances)).tolist()  # type: ignore[operator]
    status, body = http("POST", base + "/predict", {"instances": instances})
    assert (status, body) == (200, {"predictions": want})


def test_a_custom_handler_function_gets_the_instances_with_b64_decoded(
    examples: tuple[Path, Path], tmp_path: Path, serve: object
) -> None:
    models, data = examples
    handler = b"""
import io
import torch

state = {}

def handle(data, context):
    if data is None:  # TorchServe's initialisation call
        props = context.system_properties
        path = props["model_dir"] + "/" + context.manifest["model"]["serializedFile"]
        state["model"] = torch.jit.load(path)
        return None
    out = []
    for row in data:
        if isinstance(row, dict):  # {"features": [...], "tag": {"b64": ...}}
            probs = state["model"](torch.tensor([row["features"]]))[0]
            out.append({"class": int(probs.argmax()), "tag": row["tag"].decode()})
        else:
            out.append(int(state["model"](torch.tensor([row]))[0].argmax()))
    return out
"""
    art = _pack(
        tmp_path / "fn",
        {"model.pt": _script(models / "pytorch_wine"), "handler.py": handler},
        handler="handler.py",
    )
    base = serve(art)  # type: ignore[operator]
    instances = rows(data, "wine")[:4]
    want = [max(range(3), key=p.__getitem__) for p in in_process("wine", models, instances)]
    status, body = http("POST", base + "/predict", {"instances": instances})
    assert (status, body) == (200, {"predictions": want})
    tagged = [{"features": instances[0], "tag": {"b64": base64.b64encode(b"red").decode()}}]
    status, body = http("POST", base + "/predict", {"instances": tagged})
    assert (status, body) == (200, {"predictions": [{"class": want[0], "tag": "red"}]})


def test_a_custom_handler_class_is_initialised_then_handles(
    examples: tuple[Path, Path], tmp_path: Path, serve: object
) -> None:
    models, data = examples
    handler = b"""
import torch

class Doubler:
    def initialize(self, context):
        self.name = context.model_name
        self.model = torch.jit.load(
            context.system_properties["model_dir"] + "/model.pt", map_location="cpu"
        )

    def handle(self, data, context):
        probs = self.model(torch.tensor(data))
        return [{"model": self.name, "top": float(p.max())} for p in probs]
"""
    art = _pack(
        tmp_path / "cls",
        {"model.pt": _script(models / "pytorch_wine"), "my_handler.py": handler},
        handler="my_handler",
    )
    base = serve(art)  # type: ignore[operator]
    instances = rows(data, "wine")[:3]
    status, body = http("POST", base + "/predict", {"instances": instances})
    want = [{"model": "model", "top": max(p)} for p in in_process("wine", models, instances)]
    assert (status, body) == (200, {"predictions": want})


@pytest.mark.parametrize(
    ("files", "handler", "why"),
    [
        (
            {"model.pt": b"", "handler.py": b"from ts.torch_handler.base_handler import X\n"},
            "handler.py",
            "imports TorchServe's `ts` package",
        ),
        ({"model.pt": b""}, "image_classifier", "handler 'image_classifier' is not served locally"),
        ({"model.onnx": b"onnx"}, "base_handler", "no model weights could be loaded"),
    ],
    ids=["imports-ts", "builtin-image-classifier", "onnx"],
)
def test_what_is_not_supported_fails_at_load_naming_why(
    tmp_path: Path, files: dict[str, bytes], handler: str, why: str
) -> None:
    require_torch()
    art = _pack(tmp_path / "bad", files, handler=handler)
    code, log = _exit_log(_start(tmp_path, art))
    assert code == 1
    assert why in log, log[-2000:]
    assert "Traceback" not in log


def test_a_zip_member_that_leaves_the_archive_is_refused(tmp_path: Path) -> None:
    import zipfile

    require_torch()
    (tmp_path / "m").mkdir()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as mar:
        mar.writestr("MAR-INF/MANIFEST.json", '{"model": {"serializedFile": "model.pt"}}')
        mar.writestr("../escape.py", "print('x')")
    (tmp_path / "m" / "model.mar").write_bytes(buf.getvalue())
    code, log = _exit_log(_start(tmp_path, tmp_path / "m"))
    assert code == 1 and "leaves the archive" in log, log[-2000:]
    assert not (tmp_path / "escape.py").exists()


def test_without_torch_the_replica_exits_saying_how_to_install_it(
    examples: tuple[Path, Path], tmp_path: Path
) -> None:
    models, _ = examples
    server = _start(tmp_path, models / "pytorch_wine", env=no_torch_env(tmp_path))
    code, log = _exit_log(server)
    assert code == 1
    assert (
        "error: pytorch model failed to load: serving pytorch models needs torch, which is not "
        "installed: pip install 'deployer[pytorch]'"
    ) in log, log[-2000:]
    assert "Traceback" not in log
