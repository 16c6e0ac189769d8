"""The confusion-matrix PNG: a valid picture of the size promised, for 2 classes and for 10."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from deployer.batch.chart import DPI, figure_inches, png_path_for, write_confusion_png
from deployer.batch.results import Score, score


def _pixels(classes: int) -> tuple[int, int]:
    w, h = figure_inches(classes)
    return round(w * DPI), round(h * DPI)


@pytest.mark.parametrize("classes", [2, 10])
def test_a_known_matrix_renders_as_a_png_of_the_size_for_its_class_count(
    tmp_path: Path, classes: int
) -> None:
    labels = [i % classes for i in range(200)]
    predictions = [
        [1.0 if j == (y if i % 7 else (y + 1) % classes) else 0.0 for j in range(classes)]
        for i, y in enumerate(labels)
    ]
    s = score(predictions, labels)

    path = write_confusion_png(s, tmp_path / "out" / "m.png")

    assert path == tmp_path / "out" / "m.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == _pixels(classes)
        # Not a blank canvas: the cells are drawn in more than a handful of colours.
        assert len(img.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50
    assert not list(path.parent.glob(".*.tmp"))


def test_the_picture_grows_with_the_number_of_classes() -> None:
    assert _pixels(2) == (450, 400)
    assert _pixels(10)[0] > _pixels(2)[0]
    assert _pixels(10)[1] > _pixels(2)[1]


def test_string_classes_and_failed_rows_render(tmp_path: Path) -> None:
    s = Score(total=100, correct=83, classes=("cat", "dog"), matrix=((40, 7), (10, 43)), skipped=2)

    path = write_confusion_png(s, tmp_path / "cats.png")

    with Image.open(path) as img:
        assert img.size == _pixels(2)


def test_the_picture_sits_beside_the_results_file() -> None:
    assert png_path_for(Path("out/mnist-batch.jsonl")) == Path("out/mnist-batch.confusion.png")
    assert png_path_for(Path("/x/preds.npy")) == Path("/x/preds.confusion.png")
