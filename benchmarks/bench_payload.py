"""Benchmark 5: payload encoding for online prediction (JSON lists vs {"b64": ...} vs raw bytes).

Owns: for a 28x28 and a 224x224x3 float32 image, the bytes per float32 and the encode+decode
time per instance of the three request encodings a client can use, and how many instances fit
in Vertex AI's 1.5 MB online request limit each way.

- JSON list: `{"instances": [x.tolist()]}`, decoded with `json.loads` + `np.asarray(float32)`
  (what the SDK's `endpoint.predict` sends and TF Serving's REST API parses).
- base64: `{"instances": [{"b64": base64(x.tobytes())}]}` (needs a signature taking a string
  input that it decodes with `tf.io.decode_raw`; TF Serving's REST API decodes `b64` itself).
- raw bytes: `x.tobytes()` as the body of `:rawPredict` with `application/octet-stream`.

Values are uniform random float32 in [0, 1): dense, the worst case for JSON (about 20 characters
per value; a real MNIST digit is ~80% zeros, so ~6 B/float). Needs nothing but numpy.

Must not: start servers or import TensorFlow (this is pure client-side encoding cost).
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import BenchResult, Stats, fmt_num, summarize

TITLE = "5. Payload encoding"

# Vertex AI online prediction request limit ("1.5 MB"); read as MiB, the larger reading, so the
# fit counts below are upper bounds.
VERTEX_ONLINE_LIMIT = int(1.5 * 1024 * 1024)

SHAPES: dict[str, tuple[int, ...]] = {"28x28": (28, 28), "224x224x3": (224, 224, 3)}


def _json_list(xs: list[np.ndarray]) -> bytes:
    return json.dumps({"instances": [x.tolist() for x in xs]}).encode()


def _json_list_decode(body: bytes, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(json.loads(body)["instances"], dtype=np.float32)


def _b64(xs: list[np.ndarray]) -> bytes:
    return json.dumps(
        {"instances": [{"b64": base64.b64encode(x.tobytes()).decode("ascii")} for x in xs]}
    ).encode()


def _b64_decode(body: bytes, shape: tuple[int, ...]) -> np.ndarray:
    items = json.loads(body)["instances"]
    return np.stack(
        [np.frombuffer(base64.b64decode(it["b64"]), dtype=np.float32).reshape(shape) for it in items]
    )


def _raw(xs: list[np.ndarray]) -> bytes:
    return np.stack(xs).tobytes()


def _raw_decode(body: bytes, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(body, dtype=np.float32).reshape((-1, *shape))


# name -> (encode(list of instances) -> body, decode(body, shape) -> array)
ENCODINGS: dict[str, tuple[Callable[[list[np.ndarray]], bytes], Callable[[bytes, tuple[int, ...]], np.ndarray]]] = {
    "JSON list": (_json_list, _json_list_decode),
    'base64 {"b64"}': (_b64, _b64_decode),
    "raw tensor bytes": (_raw, _raw_decode),
}


def fit_in_limit(encode: Callable[[list[np.ndarray]], bytes], x: np.ndarray, limit: int) -> tuple[int, float]:
    """(instances that fit under `limit`, bytes per instance) for a request of copies of x.

    Request size is affine in the instance count (envelope + n * (instance + separator)),
    so two sizes give the line.
    """
    one, two = len(encode([x])), len(encode([x, x]))
    per = two - one
    envelope = one - per
    return max(0, math.floor((limit - envelope) / per)), float(per)


def time_roundtrip(
    encode: Callable[[list[np.ndarray]], bytes], decode: Callable[[bytes, tuple[int, ...]], Any],
    x: np.ndarray, *, samples: int, min_sample_s: float = 0.02,
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


def run(ctx: Any) -> BenchResult:
    res = BenchResult(name="payload", title=TITLE)
    samples = ctx.repeats(full=15, quick=5)
    rng = np.random.default_rng(0)
    for label, shape in SHAPES.items():
        x = rng.random(shape, dtype=np.float32)
        n_floats = x.size
        base_bytes: float | None = None
        base_time: Stats | None = None
        for enc_name, (encode, decode) in ENCODINGS.items():
            # Correctness first: a fast wrong encoding is no result.
            back = decode(encode([x]), shape)
            if not np.array_equal(back.reshape(shape), x):
                raise AssertionError(f"{enc_name} does not round-trip {label}")
            fit, per = fit_in_limit(encode, x, VERTEX_ONLINE_LIMIT)
            stats = time_roundtrip(encode, decode, x, samples=samples)
            if base_bytes is None:
                base_bytes, base_time = per, stats
            assert base_time is not None
            res.add(
                f"{label} {enc_name}: size", per / n_floats, "B/float",
                spread=f"{fmt_num(per / 1024)} KB/instance; {fit} fit in 1.5 MB",
                ratio=base_bytes / per if enc_name != "JSON list" else None,
                baseline="smaller than JSON",
            )
            res.add(
                f"{label} {enc_name}: encode+decode", stats.median * 1e6, "us/instance",
                spread=f"{fmt_num(stats.median * 1e9 / n_floats)} ns/float; "
                       f"IQR {fmt_num(stats.q1 * 1e6)}–{fmt_num(stats.q3 * 1e6)} (n={stats.n})",
                ratio=base_time.median / stats.median if enc_name != "JSON list" else None,
                baseline="faster than JSON",
            )
    res.notes += [
        ("Random float32 values in [0, 1) (dense: JSON's worst case, ~20 characters per value); "
        "a real MNIST digit is ~80% zeros (printed as 0.0), so its JSON is roughly 2.5x smaller."),
        (f"Fit counts use {VERTEX_ONLINE_LIMIT:,} bytes (1.5 MiB) for the whole request body, "
         "envelope included; raw bytes go through :rawPredict, which has the same limit."),
        ('{"b64": ...} only works for a signature with a string input (e.g. tf.io.decode_raw or '
         "decode_png inside the model); a float32 signature needs the JSON list form."),
        ("Encode = client side (json.dumps / base64 / tobytes); decode = server side down to a "
         "float32 numpy array, as the serving runtime needs it."),
    ]
    return res
