"""Write the MNIST test set in the formats the example configs and the quickstart send.

Owns (under `data/`, ignored by git; `--out-dir` moves it):
- `mnist_test.jsonl`: one instance per line, the 28x28 image as nested lists of ints 0..255
  (what `models/my_mnist_model/*` take as `flatten_input`; see train_mnist.py).
- `mnist_test_labels.json`: a JSON list of the labels, in the same order (for `--labels`).
- `mnist_png/test_00000.png` ...: 8-bit grayscale 28x28 PNGs (what `models/mnist_png` takes).
- `mnist_png_files.txt`: the file list for Vertex's `file-list` format, one path per line,
  relative to the folder of the list file (`mnist_png/test_00000.png`).
- `mnist_png_labels.json`: labels in the file list's order (the same as the jsonl's).
- `sample_instances.json`: `{"instances": [...]}` with the first `--samples` test images, the
  body `deployer predict --instances` sends; `sample_labels.json`: their labels.
- `.mnist_inputs.json`: a stamp (count, source, content hash); a re-run with the same data
  rewrites nothing.

Must not: touch the network (data comes from mnist_data.py's offline sources) or train.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mnist_data

DATA_DIR = mnist_data.REPO_ROOT / "data"
STAMP = ".mnist_inputs.json"
FORMAT_VERSION = 1  # bump when a file's layout changes, so old outputs are rewritten


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode one uint8 [h, w] image as an 8-bit grayscale PNG (deterministic bytes).

    Written with zlib alone so the quickstart needs no imaging library; any PNG decoder
    (Pillow, tf.io.decode_png) reads it.
    """
    img = np.ascontiguousarray(image, dtype=np.uint8)
    height, width = img.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    # IHDR: width, height, bit depth 8, colour type 0 (gray), compression, filter, interlace.
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # Each scanline starts with its filter type, 0 (none).
    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), img]).tobytes()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def write_inputs(
    out_dir: Path = DATA_DIR,
    *,
    count: int | None = None,
    samples: int = 5,
    source: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write every file listed in the module docstring; return the stamp."""
    (_, _), (x_test, y_test) = mnist_data.load_data(source)
    if count is not None:
        x_test, y_test = x_test[:count], y_test[:count]
    digest = hashlib.sha256(x_test.tobytes() + y_test.tobytes()).hexdigest()
    stamp = {
        "format_version": FORMAT_VERSION,
        "count": len(x_test),
        "samples": samples,
        "source": mnist_data.describe_source(source),
        "sha256": digest,
    }
    stamp_path = out_dir / STAMP
    if not force and stamp_path.is_file():
        try:
            if json.loads(stamp_path.read_text()) == stamp and _complete(out_dir, len(x_test)):
                print(f"[make_batch_inputs] {out_dir} is up to date ({len(x_test)} images)")
                return stamp
        except json.JSONDecodeError:
            pass

    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = [int(v) for v in y_test]
    lines = (json.dumps(img.tolist(), separators=(",", ":")) for img in x_test)
    _write_text(out_dir / "mnist_test.jsonl", "\n".join(lines) + "\n")
    _write_text(out_dir / "mnist_test_labels.json", json.dumps(labels) + "\n")

    png_dir = out_dir / "mnist_png"
    png_dir.mkdir(exist_ok=True)
    names = [f"test_{i:05d}.png" for i in range(len(x_test))]
    keep = set(names)
    for stale in png_dir.glob("*.png"):  # a smaller --count must not leave extra files behind
        if stale.name not in keep:
            stale.unlink()
    for name, img in zip(names, x_test, strict=True):
        (png_dir / name).write_bytes(png_bytes(img))
    _write_text(out_dir / "mnist_png_files.txt", "".join(f"mnist_png/{n}\n" for n in names))
    _write_text(out_dir / "mnist_png_labels.json", json.dumps(labels) + "\n")

    sample = {"instances": [img.tolist() for img in x_test[:samples]]}
    _write_text(out_dir / "sample_instances.json", json.dumps(sample) + "\n")
    _write_text(out_dir / "sample_labels.json", json.dumps(labels[:samples]) + "\n")
    _write_text(stamp_path, json.dumps(stamp, indent=2) + "\n")
    print(
        f"[make_batch_inputs] wrote {len(x_test)} instances (jsonl + PNG file list) "
        f"to {out_dir} in {time.monotonic() - started:.1f}s"
    )
    return stamp


def _complete(out_dir: Path, count: int) -> bool:
    names = [
        "mnist_test.jsonl",
        "mnist_test_labels.json",
        "mnist_png_files.txt",
        "mnist_png_labels.json",
        "sample_instances.json",
        "sample_labels.json",
    ]
    if not all((out_dir / n).is_file() for n in names):
        return False
    return sum(1 for _ in (out_dir / "mnist_png").glob("*.png")) == count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--count", type=int, help="only the first N test images (default all)")
    parser.add_argument("--samples", type=int, default=5, help="instances in sample_instances.json")
    parser.add_argument("--source", choices=mnist_data.SOURCES, default=None)
    parser.add_argument("--force", action="store_true", help="rewrite even if up to date")
    args = parser.parse_args(argv)
    try:
        write_inputs(
            args.out_dir,
            count=args.count,
            samples=args.samples,
            source=args.source,
            force=args.force,
        )
    except mnist_data.MnistDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
