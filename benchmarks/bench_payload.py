"""Benchmark 5: payload encoding for online prediction: what the official client sends vs what
`deployer predict` sends, and the other encodings a client can use.

Owns: for a random 28x28, a real MNIST digit and a random 224x224x3 float32 image, the bytes
per float32 and the encode+decode time per instance of each request encoding, and how many
instances fit in Vertex AI's 1.5 MB online request limit each way.

- official client: the body `PredictionServiceClient.predict` (GAPIC over REST, what the SDK's
  `endpoint.predict` calls) puts on the wire, captured by a loopback HTTP sink: indented
  JSON, every value widened to a 17-digit double. Size only (its encode is not separable).
- JSON list: `json.dumps({"instances": [x.tolist()]})`, decoded with `json.loads` +
  `np.asarray(float32)` (what TF Serving's REST API parses).
- deployer predict, float input: `deployer.predict.payload` for a float32 signature (shortest
  float32 repr, integers without ".0", no spaces).
- deployer predict, decode_raw input: `deployer.predict.payload` for a string input the model
  decodes
  with `tf.io.decode_raw`: `{"b64": base64(x.tobytes())}` (TF Serving decodes `b64` itself).
- raw bytes: `x.tobytes()` as the body of `:rawPredict` with `application/octet-stream`.

Random values in [0, 1) are dense, JSON's worst case; a real MNIST digit (0..255, ~80% zeros)
is its best.

Must not: import TensorFlow or start anything but the loopback sink (client-side cost only).
"""

from __future__ import annotations

import base64
import http.server
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import BenchResult, Stats, fmt_num, mnist_test_images, summarize
from deployer.predict.payload import encode_instances, request_bodies
from deployer.wire.savedmodel import Signature, TensorSpec

TITLE = "5. Payload encoding"

# Vertex AI online prediction request limit ("1.5 MB"); read as MiB, the larger reading, so the
# fit counts below are upper bounds.
VERTEX_ONLINE_LIMIT = int(1.5 * 1024 * 1024)

SHAPES: dict[str, tuple[int, ...]] = {"28x28": (28, 28), "224x224x3": (224, 224, 3)}
_OUT = (TensorSpec("output_0", "DT_FLOAT", (-1, 10)),)
FLOAT_SIG = Signature("serving_default", (TensorSpec("x", "DT_FLOAT", None),), _OUT, frozenset())
RAW_SIG = Signature(
    "serving_default", (TensorSpec("x", "DT_STRING", (-1,)),), _OUT, frozenset({"DT_FLOAT"})
)


class _Sink:
    """A loopback HTTP server that keeps the last request body and answers an empty prediction."""

    def __init__(self) -> None:
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sink.body = self.rfile.read(int(self.headers["Content-Length"]))
                out = b'{"predictions": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.body = b""
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud.aiplatform_v1.services.prediction_service import PredictionServiceClient

        self.client = PredictionServiceClient(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options=ClientOptions(
                api_endpoint=f"http://127.0.0.1:{self.server.server_port}"
            ),
        )

    def official_body(self, xs: list[np.ndarray]) -> bytes:
        from google.protobuf import json_format, struct_pb2

        self.client.predict(
            endpoint="projects/p/locations/us-central1/endpoints/1",
            instances=[json_format.ParseDict(x.tolist(), struct_pb2.Value()) for x in xs],
        )
        return self.body

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _json_list(xs: list[np.ndarray]) -> bytes:
    return json.dumps({"instances": [x.tolist() for x in xs]}).encode()


def _json_list_decode(body: bytes, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(json.loads(body)["instances"], dtype=np.float32)


def _deployer(signature: Signature) -> Callable[[list[np.ndarray]], bytes]:
    def encode(xs: list[np.ndarray]) -> bytes:
        instances = encode_instances([x.tolist() for x in xs], signature).instances
        ((_, body),) = request_bodies(instances, limit=1 << 40)  # sizes past the limit too
        return body

    return encode


def _b64_decode(body: bytes, shape: tuple[int, ...]) -> np.ndarray:
    items = json.loads(body)["instances"]
    return np.stack(
        [
            np.frombuffer(base64.b64decode(it["b64"]), dtype=np.float32).reshape(shape)
            for it in items
        ]
    )


def _raw(xs: list[np.ndarray]) -> bytes:
    return np.stack(xs).tobytes()


def _raw_decode(body: bytes, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(body, dtype=np.float32).reshape((-1, *shape))


# name -> (encode(list of instances) -> body, decode(body, shape) -> array); the official
# client's encoder is added per run (it needs the sink).
ENCODINGS: dict[
    str, tuple[Callable[[list[np.ndarray]], bytes], Callable[[bytes, tuple[int, ...]], np.ndarray]]
] = {
    "JSON list": (_json_list, _json_list_decode),
    "deployer predict, float input": (_deployer(FLOAT_SIG), _json_list_decode),
    "deployer predict, decode_raw input": (_deployer(RAW_SIG), _b64_decode),
    "raw tensor bytes": (_raw, _raw_decode),
}
OFFICIAL = "official client (SDK endpoint.predict)"


def fit_in_limit(
    encode: Callable[[list[np.ndarray]], bytes], x: np.ndarray, limit: int
) -> tuple[int, float]:
    """(instances that fit under `limit`, bytes per instance) for a request of copies of x.

    Request size is affine in the instance count (envelope + n * (instance + separator)),
    so two sizes give the line.
    """
    one, two = len(encode([x])), len(encode([x, x]))
    per = two - one
    envelope = one - per
    return max(0, math.floor((limit - envelope) / per)), float(per)


def time_roundtrip(
    encode: Callable[[list[np.ndarray]], bytes],
    decode: Callable[[bytes, tuple[int, ...]], Any],
    x: np.ndarray,
    *,
    samples: int,
    min_sample_s: float = 0.02,
) -> Stats:
    """Seconds per encode+decode of one single-instance request, over `samples` samples."""
    shape = x.shape
    # Calibrate the loop count so each sample lasts ~min_sample_s (timer noise stays small).
    loops = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(loops):
            decode(encode([x]), shape)
        dt = time.perf_counter() - t0
        if dt >= min_sample_s or loops >= 1 << 16:
            break
        loops *= 2
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(loops):
            decode(encode([x]), shape)
        out.append((time.perf_counter() - t0) / loops)
    return summarize(out)


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    images = {label: rng.random(shape, dtype=np.float32) for label, shape in SHAPES.items()}
    digits, _ = mnist_test_images(1)
    images = {"28x28": images["28x28"], "MNIST digit": digits[0], "224x224x3": images["224x224x3"]}
    return images


def run(ctx: Any) -> BenchResult:
    res = BenchResult(name="payload", title=TITLE)
    samples = ctx.repeats(full=15, quick=5)
    sink = _Sink()
    try:
        for label, x in _images().items():
            _one_image(res, label, x, sink, samples)
    finally:
        sink.close()
    res.notes += [
        (
            "28x28 and 224x224x3: random float32 values in [0, 1) (dense: JSON's worst case); "
            "MNIST "
            "digit: test image 0 of the real test set, 0..255 with ~80% zeros (JSON's best case)."
        ),
        (
            f"Fit counts use {VERTEX_ONLINE_LIMIT:,} bytes (1.5 MiB) for the whole request body, "
            "envelope included; raw bytes go through :rawPredict, which has the same limit. "
            "`deployer predict` splits larger inputs into several requests."
        ),
        (
            "The decode_raw form only works for a signature with a string input the model decodes "
            "with tf.io.decode_raw; `deployer predict` reads the signature from the artifact and "
            "picks it where it applies, else the compact float form."
        ),
        (
            "Encode = client side (json.dumps / deployer.predict.payload / base64 / tobytes); "
            "decode = server "
            "side down to a float32 numpy array, as the serving runtime needs it. Size ratios are "
            "against the official client's body; time ratios against the JSON list."
        ),
    ]
    return res


def _one_image(res: BenchResult, label: str, x: np.ndarray, sink: _Sink, samples: int) -> None:
    n_floats = x.size
    shape = x.shape
    official = sink.official_body([x])
    if not np.array_equal(_json_list_decode(official, shape).reshape(shape), x):
        raise AssertionError(f"the official client's body does not round-trip {label}")
    fit, base_bytes = fit_in_limit(sink.official_body, x, VERTEX_ONLINE_LIMIT)
    res.add(
        f"{label} {OFFICIAL}: size",
        base_bytes / n_floats,
        "B/float",
        spread=f"{fmt_num(base_bytes / 1024)} KB/instance; {fit} fit in 1.5 MB",
    )
    base_time: Stats | None = None
    for enc_name, (encode, decode) in ENCODINGS.items():
        # Correctness first: a fast wrong encoding is no result.
        back = decode(encode([x]), shape)
        if not np.array_equal(back.reshape(shape), x):
            raise AssertionError(f"{enc_name} does not round-trip {label}")
        fit, per = fit_in_limit(encode, x, VERTEX_ONLINE_LIMIT)
        stats = time_roundtrip(encode, decode, x, samples=samples)
        if base_time is None:
            base_time = stats
        res.add(
            f"{label} {enc_name}: size",
            per / n_floats,
            "B/float",
            spread=f"{fmt_num(per / 1024)} KB/instance; {fit} fit in 1.5 MB",
            ratio=base_bytes / per,
            baseline="smaller than the official client",
        )
        res.add(
            f"{label} {enc_name}: encode+decode",
            stats.median * 1e6,
            "us/instance",
            spread=f"{fmt_num(stats.median * 1e9 / n_floats)} ns/float; "
            f"IQR {fmt_num(stats.q1 * 1e6)}–{fmt_num(stats.q3 * 1e6)} (n={stats.n})",
            ratio=base_time.median / stats.median if enc_name != "JSON list" else None,
            baseline="faster than JSON",
        )
    if label == "MNIST digit":
        _png_row(res, x, base_bytes)


def _png_row(res: BenchResult, x: np.ndarray, base_bytes: float) -> None:
    """An 8-bit PNG of the digit as {"b64"} (`deployer predict --file`, for models that decode
    PNGs such as models/mnist_png): lossless for MNIST's 0..255 integers."""
    try:
        from PIL import Image
    except ImportError:
        res.notes.append("PNG row skipped: Pillow is not installed (pip install -e .[test]).")
        return
    import io

    def encode(xs: list[np.ndarray]) -> bytes:
        items = []
        for img in xs:
            buf = io.BytesIO()
            Image.fromarray(img.astype(np.uint8), mode="L").save(buf, format="PNG")
            items.append({"b64": base64.b64encode(buf.getvalue()).decode("ascii")})
        return json.dumps({"instances": items}, separators=(",", ":")).encode()

    body = encode([x])
    png = base64.b64decode(json.loads(body)["instances"][0]["b64"])
    if not np.array_equal(np.asarray(Image.open(io.BytesIO(png)), dtype=np.float32), x):
        raise AssertionError("the PNG does not round-trip the MNIST digit")
    fit, per = fit_in_limit(encode, x, VERTEX_ONLINE_LIMIT)
    res.add(
        "MNIST digit PNG file (deployer predict --file): size",
        per / x.size,
        "B/float",
        spread=f"{fmt_num(per / 1024)} KB/instance; {fit} fit in 1.5 MB",
        ratio=base_bytes / per,
        baseline="smaller than the official client",
    )
