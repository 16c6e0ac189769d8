"""Bring a batch job's outputs home: merge shards in input order, list failed rows, score.

Owns: reading `prediction.results-*` and `prediction.errors_stats-*` shard files
(already downloaded) in shard order, placing each prediction on its input row
through the `RowIndex` (outputs echo their instance; Vertex does not promise
order, the emulator keeps it), writing the merged file (JSON Lines: line k holds
the prediction for input row k, `null` where the row failed; or a .npy array
with NaN rows), and accuracy plus a confusion matrix against known labels.

Must not: talk to any API (the runner downloads), or import TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.batch import formats
from deployer.batch.staging import RowIndex
from deployer.errors import ConfigError


@dataclass(frozen=True)
class RowError:
    """One input row the model could not predict."""

    row: int | None  # 0-based input row, None if it could not be matched to the input
    source: str  # input file ("" if unknown)
    line: int | None  # line (or record) number in that file
    message: str


@dataclass
class Merged:
    predictions: list[Any]  # in input order; None for failed or missing rows
    errors: list[RowError] = field(default_factory=list)
    unmatched: int = 0  # outputs whose instance matched no input row (should be 0)

    @property
    def succeeded(self) -> int:
        return sum(p is not None for p in self.predictions)


def merge(result_files: Sequence[Path], error_files: Sequence[Path], index: RowIndex | None) -> Merged:
    """Place every output row; without an index, shard order is taken as input order."""
    ordered = sorted(result_files, key=_shard_order)
    if index is None:
        preds: list[Any] = []
        for path in ordered:
            for rec in _records(path):
                preds.append(rec.get("prediction"))
        errors = [RowError(None, "", None, _message(rec.get("error")))
                  for path in sorted(error_files, key=_shard_order) for rec in _records(path)]
        return Merged(preds, errors)
    out = Merged([None] * len(index))
    for path in ordered:
        for rec in _records(path):
            row = index.claim(rec.get("instance"))
            if row is None:
                out.unmatched += 1
                continue
            out.predictions[row] = rec.get("prediction")
    for path in sorted(error_files, key=_shard_order):
        for rec in _records(path):
            row = index.claim(rec.get("instance"))
            if row is None:
                out.unmatched += 1
                out.errors.append(RowError(None, "", None, _message(rec.get("error"))))
                continue
            source, line = index.where[row]
            out.errors.append(RowError(row, source, line, _message(rec.get("error"))))
    out.errors.sort(key=lambda e: (e.row is None, e.row or 0))
    return out


def _shard_order(path: Path) -> tuple[int, str]:
    parsed = formats.parse_shard_name(path.name)
    return (parsed[1] if parsed else 1 << 30, path.name)


def _records(path: Path) -> Any:
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise ConfigError(f"output shard {path.name}, line {n} is not JSON: {exc}") from exc


def _message(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or json.dumps(error))
    return str(error)


def write_output(merged: Merged, path: Path, output_format: str) -> None:
    """Write the merged predictions atomically (a partial file never has the final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if output_format == "npy":
        _write_npy(merged.predictions, tmp)
    else:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(p, separators=(",", ":")) + "\n" for p in merged.predictions)
    os.replace(tmp, path)


def _write_npy(predictions: list[Any], tmp: Path) -> None:
    import numpy as np

    sample = next((p for p in predictions if p is not None), None)
    if sample is None:
        raise ConfigError("no prediction to write", hint="every row failed; see the errors above")
    if isinstance(sample, dict):
        if len(sample) != 1:
            raise ConfigError("predictions have several outputs; .npy holds one array",
                              hint="use --output-format jsonl")
        (key,) = sample
        predictions = [p[key] if isinstance(p, dict) else None for p in predictions]
        sample = sample[key]
    try:
        shape = np.shape(sample)
        filled = [p if p is not None else np.full(shape, np.nan) for p in predictions]
        array = np.asarray(filled, dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"predictions are not numeric arrays of one shape ({exc})",
                          hint="use --output-format jsonl") from exc
    with open(tmp, "wb") as fh:
        np.save(fh, array)


# --- scoring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    total: int  # rows with both a label and a prediction
    correct: int
    classes: tuple[Any, ...]  # sorted class labels (union of labels and predicted classes)
    matrix: tuple[tuple[int, ...], ...]  # matrix[i][j]: label classes[i] predicted as classes[j]
    skipped: int  # rows without a prediction (failed)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def predicted_class(prediction: Any) -> Any:
    """The class a prediction names: argmax of scores, or the value of a scalar/one-key output."""
    if isinstance(prediction, dict):
        for key in ("classes", "class", "label", "labels"):
            if key in prediction and not isinstance(prediction[key], list | dict):
                return prediction[key]
        if len(prediction) == 1:
            return predicted_class(next(iter(prediction.values())))
        for key in ("scores", "probabilities", "logits", "output_0"):
            if key in prediction:
                return predicted_class(prediction[key])
        raise ConfigError("cannot tell the predicted class from outputs " + ", ".join(prediction),
                          hint="drop --labels, or give the model one output")
    if isinstance(prediction, list):
        if len(prediction) == 1 and isinstance(prediction[0], list):
            return predicted_class(prediction[0])
        if not prediction:
            raise ConfigError("an empty prediction has no class")
        best = max(range(len(prediction)), key=lambda i: -math.inf if prediction[i] is None else prediction[i])
        return best
    if isinstance(prediction, float) and prediction.is_integer():
        return int(prediction)
    return prediction


def load_labels(path: Path) -> list[Any]:
    """Known labels from .json (a list), .npy, or text (one per line)."""
    if not path.is_file():
        raise ConfigError(f"labels file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        import numpy as np

        return list(np.load(path, allow_pickle=False).tolist())
    if suffix == ".json":
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            data = data.get("labels", data.get("y"))
        if not isinstance(data, list):
            raise ConfigError(f"{path} must hold a JSON list of labels")
        return data
    return [_number_or_text(line.strip()) for line in path.read_text().splitlines() if line.strip()]


def _number_or_text(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def score(predictions: Sequence[Any], labels: Sequence[Any]) -> Score:
    """Accuracy and confusion matrix of predicted classes against labels (input order)."""
    if len(labels) != len(predictions):
        raise ConfigError(f"{len(labels)} labels for {len(predictions)} input rows",
                          hint="give one label per input row, in input order")
    pairs = []
    skipped = 0
    for p, y in zip(predictions, labels, strict=True):
        if p is None:
            skipped += 1
            continue
        y = int(y) if isinstance(y, float) and y.is_integer() else y
        pairs.append((y, predicted_class(p)))
    classes = tuple(sorted({c for pair in pairs for c in pair}, key=lambda c: (str(type(c)), c)))
    pos = {c: i for i, c in enumerate(classes)}
    matrix = [[0] * len(classes) for _ in classes]
    correct = 0
    for y, c in pairs:
        matrix[pos[y]][pos[c]] += 1
        correct += y == c
    return Score(len(pairs), correct, classes, tuple(tuple(r) for r in matrix), skipped)
