"""Draw a batch job's score as a confusion-matrix PNG (the picture beside the results).

Owns: the layout of that one picture (class labels on both axes, the count in each
cell, accuracy in the title, a size that grows with the number of classes) and
writing it atomically.

matplotlib is imported when a picture is drawn, never at import time (`deployer
--help` stays fast), and only through its object API (`Figure` on the Agg canvas):
no pyplot, no global backend switch, no display needed.

Must not: compute the score (deployer.batch.results does), talk to any API, or
import TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

from deployer.batch.results import Score

DPI = 100
# Above this many classes the counts no longer fit in their cells: colour only.
_MAX_ANNOTATED = 30


def figure_inches(classes: int) -> tuple[float, float]:
    """Width and height in inches: about 0.6 in per class, never smaller than 4.5 x 4."""
    side = 0.6 * classes
    return (max(4.5, side + 2.5), max(4.0, side + 2.0))


def png_path_for(output: Path) -> Path:
    """Where the picture goes: beside the merged results, `<stem>.confusion.png`."""
    return output.with_name(f"{output.stem}.confusion.png")


def write_confusion_png(score: Score, path: Path, *, title: str = "Confusion matrix") -> Path:
    """Render `score` to `path` (PNG, figure_inches() x DPI pixels) and return the path."""
    from matplotlib.figure import Figure

    n = len(score.classes)
    labels = [str(c) for c in score.classes]
    fig = Figure(figsize=figure_inches(n), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    peak = max((v for row in score.matrix for v in row), default=0)
    image = ax.imshow(
        score.matrix if n else [[0]], cmap="Blues", vmin=0, vmax=max(peak, 1), aspect="equal"
    )
    fig.colorbar(image, ax=ax, shrink=0.8, label="rows")
    ax.set_xticks(
        range(n), labels=labels, rotation=45 if max(map(len, labels), default=0) > 3 else 0
    )
    ax.set_yticks(range(n), labels=labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("label")
    skipped = f"; {score.skipped:,} rows without prediction" if score.skipped else ""
    ax.set_title(
        f"{title}\naccuracy {score.accuracy:.4f} ({score.correct:,} / {score.total:,}{skipped})",
        fontsize=11,
    )
    if n <= _MAX_ANNOTATED:
        size = 10 if n <= 12 else 7
        for i, row in enumerate(score.matrix):
            for j, value in enumerate(row):
                # White on dark cells, dark on light ones: the count stays legible.
                colour = "white" if peak and value > peak / 2 else "#222222"
                ax.text(j, i, f"{value:,}", ha="center", va="center", color=colour, fontsize=size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        # No bbox_inches="tight": the file keeps figure_inches() x DPI pixels exactly.
        fig.savefig(tmp, format="png", dpi=DPI)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
