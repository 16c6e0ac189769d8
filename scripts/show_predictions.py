"""Print online predictions for a few MNIST digits next to their labels (for the quickstart).

Owns: reading `deployer predict --output json` (stdin or a file: `{"predictions": [[p0..p9],
...], "deployedModelId": ...}`), the instances that were sent and their labels, and printing
each digit as small ASCII art with its label, the predicted class and its probability.
Also `--batch FILE --labels FILE --min-accuracy X`: checks a merged batch-predict output
against labels and exits 1 below the threshold (the quickstart's pass/fail gate).
Must not: call deployer or any API.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

_SHADES = " .:-=+*#%@"


def ascii_digit(image: np.ndarray) -> list[str]:
    """28x28 -> 14 lines of 14 characters (2x2 blocks, darkest pixel wins)."""
    img = np.asarray(image, dtype=np.float32).reshape(28, 28)
    blocks = img.reshape(14, 2, 14, 2).max(axis=(1, 3))
    idx = np.clip((blocks / 256.0 * len(_SHADES)).astype(int), 0, len(_SHADES) - 1)
    return ["".join(_SHADES[i] for i in row) for row in idx]


def _probabilities(prediction: Any) -> np.ndarray:
    # A single-output signature answers a list of 10 probabilities per instance; a
    # multi-output one an object: take its first list-valued field.
    if isinstance(prediction, dict):
        prediction = next(v for v in prediction.values() if isinstance(v, list))
    return np.asarray(prediction, dtype=np.float64).reshape(-1)


def show_online(result: dict[str, Any], instances: list[Any], labels: list[int]) -> int:
    predictions = result.get("predictions") or []
    if len(predictions) != len(instances):
        print(
            f"error: {len(predictions)} predictions for {len(instances)} instances", file=sys.stderr
        )
        return 1
    model = result.get("model", "") or ""
    version = result.get("modelVersionId", "")
    print(
        f"served by deployed model {result.get('deployedModelId', '?')} "
        f"({model.rsplit('/', 1)[-1]}{'@' + version if version else ''})"
    )
    arts = [ascii_digit(np.asarray(x)) for x in instances]
    for row in range(14):
        print("   ".join(a[row] for a in arts))
    correct = 0
    cells = []
    for probs, label in zip(predictions, labels, strict=True):
        p = _probabilities(probs)
        guess = int(p.argmax())
        correct += guess == label
        mark = "ok" if guess == label else "WRONG"
        cells.append(f"{label}->{guess} {p[guess]:.2f} {mark}".ljust(14))
    print("   ".join(cells))
    print(f"label->predicted probability: {correct}/{len(labels)} correct")
    return 0


def check_batch(path: Path, labels: list[int], min_accuracy: float) -> int:
    predicted = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if isinstance(row, dict) and "prediction" in row:
            row = row["prediction"]
        predicted.append(int(_probabilities(row).argmax()))
    if len(predicted) != len(labels):
        print(
            f"error: {len(predicted)} predictions in {path} for {len(labels)} labels",
            file=sys.stderr,
        )
        return 1
    accuracy = float(np.mean(np.asarray(predicted) == np.asarray(labels)))
    verdict = "ok" if accuracy >= min_accuracy else f"BELOW {min_accuracy}"
    print(f"batch accuracy on {len(labels):,} test images: {accuracy:.4f} ({verdict})")
    return 0 if accuracy >= min_accuracy else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", nargs="?", default="-", help="predict JSON (default stdin)")
    parser.add_argument("--instances", type=Path, help="the instances file that was sent")
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--batch", type=Path, help="merged batch-predict output to score")
    parser.add_argument("--min-accuracy", type=float, default=0.97)
    args = parser.parse_args(argv)
    labels = [int(v) for v in json.loads(args.labels.read_text())]
    if args.batch:
        return check_batch(args.batch, labels, args.min_accuracy)
    if args.instances is None:
        parser.error("--instances is required to show online predictions")
    text = sys.stdin.read() if args.result == "-" else Path(args.result).read_text()
    doc = json.loads(args.instances.read_text())
    instances = doc["instances"] if isinstance(doc, dict) else doc
    return show_online(json.loads(text), instances, labels)


if __name__ == "__main__":
    sys.exit(main())
