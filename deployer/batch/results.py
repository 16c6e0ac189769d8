"""Bring a batch job's outputs home: merge shards in input order, list failed rows, score.

Owns: reading `prediction.results-*` and `prediction.errors_stats-*` shard files
(already downloaded) in shard order, placing each prediction on its input row
through the `RowIndex` (outputs echo their instance; Vertex does not promise
order, the emulator keeps it), writing the merged file (JSON Lines: line k holds
the prediction for input row k, `null` where the row failed; or a .npy array
with NaN rows), and accuracy plus a confusion matrix against known labels.

Streams: one output record in memory at a time; placements go to the row index's
on-disk table, predictions to a spool file, scores are (label, predicted) counts.

Must not: talk to any API (the runner downloads), import TensorFlow, or keep
anything per row in memory (failed rows excepted: each becomes a `RowError`).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from deployer.batch.rows import RowIndex
from deployer.errors import ConfigError
from deployer.wire import batch_formats as formats


@dataclass(frozen=True)
class RowError:
    """One input row the model could not predict."""

    row: int | None  # 0-based input row, None if it could not be matched to the input
    source: str  # input file ("" if unknown)
    line: int | None  # line (or record) number in that file
    message: str


class Merged:
    """The merged outputs, spooled to disk: memory stays constant (plus failed rows' errors).

    Predictions are appended to a spool file as they are read (in any order). With a
    row index, each claimed row records its prediction's spool offset in the index's
    on-disk table, and readers walk that table in input order; without one, arrival
    order is input order and readers walk the spool itself.
    """

    def __init__(self, spool: Path, index: RowIndex | None = None) -> None:
        self._spool_path = spool
        self._spool = open(spool, "w+b")
        self._index = index
        self._arrived = 0  # predictions spooled
        self.errors: list[RowError] = []
        self.unmatched = 0  # outputs whose instance matched no input row (should be 0)

    def _spool_prediction(self, prediction: Any) -> int:
        offset = self._spool.tell()
        self._spool.write(json.dumps(prediction, separators=(",", ":")).encode() + b"\n")
        self._arrived += 1
        return offset

    @property
    def rows(self) -> int:
        return len(self._index) if self._index is not None else self._arrived

    @property
    def succeeded(self) -> int:
        return self._arrived

    def iter_json(self) -> Iterator[bytes | None]:
        """Each row's prediction as JSON text (no newline), in input order; None if it failed."""
        self._spool.flush()
        with open(self._spool_path, "rb") as fh:
            if self._index is None:
                for line in fh:
                    yield line.rstrip(b"\n")
                return
            for offset in self._index.outputs():
                if offset is None:
                    yield None
                else:
                    # Outputs usually arrive in input order: then the next line is already
                    # under the read head and the seek is skipped.
                    if fh.tell() != offset:
                        fh.seek(offset)
                    yield fh.readline().rstrip(b"\n")

    def iter_predictions(self) -> Iterator[Any]:
        for text in self.iter_json():
            yield None if text is None else json.loads(text)

    def predictions(self) -> list[Any]:
        """All predictions in memory (small outputs and tests; writers stream instead)."""
        return list(self.iter_predictions())

    def close(self) -> None:
        self._spool.close()


def merge(
    result_files: Sequence[Path],
    error_files: Sequence[Path],
    index: RowIndex | None,
    *,
    spool: Path,
) -> Merged:
    """Place every output row; without an index, shard order is taken as input order.

    Streams: one output record in memory at a time; placements go to the index's table.
    """
    out = Merged(spool, index)
    for path in sorted(result_files, key=_shard_order):
        for rec in _records(path):
            if index is None:
                out._spool_prediction(rec.get("prediction"))
                continue
            offset = out._spool.tell()
            row = index.claim(rec.get("instance"), output=offset)
            if row is None:
                out.unmatched += 1
                continue
            out._spool_prediction(rec.get("prediction"))
    for path in sorted(error_files, key=_shard_order):
        for rec in _records(path):
            message = _message(rec.get("error"))
            if index is None:  # rows unknown: the error is reported without a position
                out.errors.append(RowError(None, "", None, message))
                continue
            row = index.claim(rec.get("instance"))
            if row is None:
                out.unmatched += 1
                out.errors.append(RowError(None, "", None, message))
                continue
            source, line = index.position(row)
            out.errors.append(RowError(row, source, line, message))
    out.errors.sort(key=lambda e: (e.row is None, e.row or 0))
    return out


# Vertex's CSV output files: predictions_0001.csv, ..., errors_0001.csv, ...
_CSV_SHARD_RE = re.compile(r"(predictions|errors)_(\d{4,})\.csv$")


def csv_shard(name: str) -> tuple[str, int] | None:
    """("predictions" | "errors", number) of a CSV output file's name (or object name)."""
    m = _CSV_SHARD_RE.fullmatch(name.rsplit("/", 1)[-1])
    return (m[1], int(m[2])) if m else None


def _shard_order(path: Path) -> tuple[int, str]:
    parsed = formats.parse_shard_name(path.name)
    if parsed is None and (as_csv := csv_shard(path.name)) is not None:
        return (as_csv[1], path.name)
    return (parsed[1] if parsed else 1 << 30, path.name)


def _records(path: Path) -> Any:
    if csv_shard(path.name) is not None:
        yield from _csv_records(path)
        return
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise ConfigError(
                        f"output shard {path.name}, line {n} is not JSON: {exc}"
                    ) from exc


def _csv_records(path: Path) -> Iterator[dict[str, Any]]:
    """A CSV output file's rows as JSON Lines records: the header names the columns
    (`instance` or `key`, then `prediction` or `error`), each cell holds JSON text."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        for n, cells in enumerate(reader, start=2):
            try:
                yield {k: json.loads(v) for k, v in zip(header, cells, strict=True)}
            except ValueError as exc:
                raise ConfigError(
                    f"output file {path.name}, line {n} is not a row of JSON cells: {exc}"
                ) from exc


def _message(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or json.dumps(error))
    return str(error)


def write_output(merged: Merged, path: Path, output_format: str) -> None:
    """Write the merged predictions atomically (a partial file never has the final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if output_format == "npy":
            _write_npy(merged, tmp)
        else:
            with open(tmp, "wb") as fh:
                fh.writelines(
                    (text if text is not None else b"null") + b"\n" for text in merged.iter_json()
                )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_npy(merged: Merged, tmp: Path) -> None:
    """A float32 array [rows, ...], NaN where a row failed, written through a memory map."""
    import numpy as np

    sample = next((p for p in merged.iter_predictions() if p is not None), None)
    if sample is None:
        raise ConfigError("no prediction to write", hint="every row failed; see the errors above")
    key = None
    if isinstance(sample, dict):
        if len(sample) != 1:
            raise ConfigError(
                "predictions have several outputs; .npy holds one array",
                hint="use --output-format jsonl",
            )
        (key,) = sample
        sample = sample[key]
    shape = np.shape(sample)
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(merged.rows, *shape))
    try:
        for i, p in enumerate(merged.iter_predictions()):
            if p is None:
                out[i] = np.nan
                continue
            value = p[key] if key is not None else p
            try:
                out[i] = np.asarray(value, dtype=np.float32)
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"predictions are not numeric arrays of one shape (row {i}: {exc})",
                    hint="use --output-format jsonl",
                ) from exc
        out.flush()
    finally:
        del out


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
        raise ConfigError(
            "cannot tell the predicted class from outputs " + ", ".join(prediction),
            hint="drop --labels, or give the model one output",
        )
    if isinstance(prediction, list):
        if len(prediction) == 1 and isinstance(prediction[0], list):
            return predicted_class(prediction[0])
        if not prediction:
            raise ConfigError("an empty prediction has no class")
        best = max(
            range(len(prediction)),
            key=lambda i: -math.inf if prediction[i] is None else prediction[i],
        )
        return best
    if isinstance(prediction, float) and prediction.is_integer():
        return int(prediction)
    return prediction


class LabelSeq(Protocol):
    """Known labels in input order: counted, then streamed (never needs to be a list)."""

    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...


def load_labels(path: Path) -> LabelSeq:
    """Known labels from .json (a list), .npy (memory-mapped), or text (one per line, streamed)."""
    if not path.is_file():
        raise ConfigError(f"labels file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _NpyLabels(path)
    if suffix == ".json":  # a JSON list has to be parsed whole; the other formats stream
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            data = data.get("labels", data.get("y"))
        if not isinstance(data, list):
            raise ConfigError(f"{path} must hold a JSON list of labels")
        return data
    return _TextLabels(path)


class _NpyLabels:
    def __init__(self, path: Path) -> None:
        import numpy as np

        self._array = np.load(path, allow_pickle=False, mmap_mode="r")

    def __len__(self) -> int:
        return len(self._array)

    def __iter__(self) -> Iterator[Any]:
        for y in self._array:
            yield y.tolist()


class _TextLabels:
    def __init__(self, path: Path) -> None:
        self._path = path
        with open(path, encoding="utf-8") as fh:
            self._count = sum(1 for line in fh if line.strip())

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Any]:
        with open(self._path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield _number_or_text(line.strip())


def _number_or_text(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def score(predictions: Iterable[Any], labels: LabelSeq, *, rows: int | None = None) -> Score:
    """Accuracy and confusion matrix of predicted classes against labels (input order).

    Streams both: `predictions` may be an iterator (then say how many `rows` it holds);
    only the (label, predicted) pair counts are kept, so memory is classes², not rows.
    """
    count = rows if rows is not None else len(predictions)  # type: ignore[arg-type]
    if len(labels) != count:
        raise ConfigError(
            f"{len(labels)} labels for {count} input rows",
            hint="give one label per input row, in input order",
        )
    pairs: Counter[tuple[Any, Any]] = Counter()
    skipped = 0
    for p, y in zip(predictions, labels, strict=True):
        if p is None:
            skipped += 1
            continue
        y = int(y) if isinstance(y, float) and y.is_integer() else y
        pairs[(y, predicted_class(p))] += 1
    classes = tuple(sorted({c for pair in pairs for c in pair}, key=lambda c: (str(type(c)), c)))
    pos = {c: i for i, c in enumerate(classes)}
    matrix = [[0] * len(classes) for _ in classes]
    correct = 0
    for (y, c), n in pairs.items():
        matrix[pos[y]][pos[c]] += n
        correct += n if y == c else 0
    return Score(sum(pairs.values()), correct, classes, tuple(tuple(r) for r in matrix), skipped)
