"""Hand-encoded saved_model.pb files for tests that must not import TensorFlow.

Owns: the protobuf wire encoding of a minimal SavedModel (a `serve` meta graph holding the
given signatures, no graph), and the broken variants the spec corpus refuses: truncated,
random bytes, signature-less. `python -m tests.support.savedmodel_pb` rewrites the corpus
fixtures under tests/unit/specs/artifacts/; tests/unit/test_savedmodel_spec.py checks they
are what this module writes.
Must not: import TensorFlow or google.protobuf (unit tests stay light), or build a model
anything can serve (there is no graph: replicas need tests/support/savedmodels.py).

Field numbers: see deployer/wire/savedmodel.py's docstring.
"""

from __future__ import annotations

import random
from pathlib import Path

DT_FLOAT = 1
ARTIFACTS = Path(__file__).resolve().parents[1] / "unit" / "specs" / "artifacts"


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negatives as 64-bit two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _bytes(number: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _tensor_info(tensor: str, dtype: int, shape: tuple[int, ...]) -> bytes:
    dims = b"".join(_bytes(2, _int(1, d)) for d in shape)
    return _bytes(1, tensor) + _int(2, dtype) + _bytes(3, dims)


def _signature(inputs: dict[str, tuple[int, ...]], outputs: dict[str, tuple[int, ...]]) -> bytes:
    def entries(number: int, tensors: dict[str, tuple[int, ...]], prefix: str) -> bytes:
        return b"".join(
            _bytes(number, _bytes(1, k) + _bytes(2, _tensor_info(f"{prefix}{k}:0", DT_FLOAT, s)))
            for k, s in tensors.items()
        )

    return (
        entries(1, inputs, "serving_default_")
        + entries(2, outputs, "StatefulPartitionedCall_")
        + _bytes(3, "tensorflow/serving/predict")
    )


def saved_model_pb(signatures: tuple[str, ...] = ("serving_default",)) -> bytes:
    """A SavedModel with one `serve` meta graph whose signatures each take `flatten_input`
    float32 [-1, 28, 28] to `output_0` float32 [-1, 10] (the MNIST model's interface)."""
    sig = _signature({"flatten_input": (-1, 28, 28)}, {"output_0": (-1, 10)})
    meta_graph = _bytes(1, _bytes(4, "serve")) + b"".join(
        _bytes(5, _bytes(1, name) + _bytes(2, sig)) for name in signatures
    )
    return _int(1, 1) + _bytes(2, meta_graph)


def broken_variants() -> dict[str, bytes]:
    """saved_model.pb of each corpus artifact directory, by directory name."""
    whole = saved_model_pb()
    return {
        "mnist/0001": whole,
        "mnist/0002": whole,
        "corrupt_truncated": whole[: len(whole) // 2],
        "corrupt_random": random.Random(15).randbytes(512),
        "no_signature": saved_model_pb(signatures=()),
    }


def write_fixtures(root: Path = ARTIFACTS) -> None:
    for name, data in broken_variants().items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "saved_model.pb").write_bytes(data)


if __name__ == "__main__":
    write_fixtures()
