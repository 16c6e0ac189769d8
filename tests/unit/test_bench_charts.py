"""Benchmark charts: a small synthetic results file becomes the two PNGs BENCHMARKS.md shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import charts
from benchmarks.common import BenchResult


def _results() -> list[BenchResult]:
    serving = BenchResult(name="serving", title="3. Online prediction")
    serving.add("in-process signature, 1 instance", 0.4, "ms", spread="p99 0.9 ms (n=3)")
    for server, p50, p99, tput in (
        ("emulator endpoint (:predict)", 2.1, 4.0, (400.0, 1500.0, 2100.0)),
        ("replica, batching on", 1.2, 2.5, (700.0, 2600.0, 3900.0)),
    ):
        serving.add(
            f"{server}: latency, 1 client",
            p50,
            "ms",
            spread=f"p99 {p99} ms (n=100)",
            figures={"p99": p99},
        )
        for clients, value in zip((1, 8, 32), tput, strict=True):
            serving.add(
                f"{server}: throughput, {clients} client{'s' if clients > 1 else ''}",
                value,
                "pred/s",
                spread="IQR 1–2 (n=1)",
            )
    # A server whose row carries no p99 figure: its display text is never read back.
    serving.add("naive Flask + model.predict: latency, 1 client", 9.5, "ms", spread="p99 30 ms")
    # A single-point series (one client count) is left out of the line chart.
    serving.add("CNN (0002) replica, batching off: throughput, 32 clients", 900.0, "pred/s")
    skipped = BenchResult(name="upload", title="1. Upload", skipped="no emulator")
    return [serving, skipped]


def test_a_results_file_round_trips_and_yields_the_serving_series(tmp_path: Path) -> None:
    path = charts.write_results(
        tmp_path / "r" / "results.json", _results(), {"date": "2026-12-01 15:00 UTC"}, "cmd"
    )

    doc = charts.load_results(path)

    assert doc["results"][1]["skipped"] == "no emulator"
    latency_rows = [r for r in doc["results"][0]["rows"] if r["case"].endswith("latency, 1 client")]
    assert [r["figures"] for r in latency_rows] == [{"p99": 4.0}, {"p99": 2.5}, {}]
    assert charts.serving_latency(doc) == {
        "emulator endpoint (:predict)": {"p50": 2.1, "p99": 4.0},
        "replica, batching on": {"p50": 1.2, "p99": 2.5},
        "naive Flask + model.predict": {"p50": 9.5},
    }
    assert charts.serving_throughput(doc) == {
        "emulator endpoint (:predict)": {1: 400.0, 8: 1500.0, 32: 2100.0},
        "replica, batching on": {1: 700.0, 8: 2600.0, 32: 3900.0},
    }


def test_the_charts_are_pngs_of_the_promised_size(tmp_path: Path) -> None:
    path = charts.write_results(tmp_path / "results.json", _results(), {}, "cmd")

    assert charts.main([str(path)]) == 0

    expected = (
        round(charts.SIZE_INCHES[0] * charts.DPI),
        round(charts.SIZE_INCHES[1] * charts.DPI),
    )
    for name in (charts.LATENCY_PNG, charts.THROUGHPUT_PNG):
        with Image.open(tmp_path / name) as img:
            img.verify()
        with Image.open(tmp_path / name) as img:
            assert (img.format, img.size) == ("PNG", expected)
            assert len(img.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 20


def test_results_without_serving_figures_draw_nothing_and_say_so(tmp_path: Path) -> None:
    path = charts.write_results(tmp_path / "results.json", _results()[1:], {}, "cmd")

    assert charts.main([str(path)]) == 1
    assert not list(tmp_path.glob("*.png"))


def test_a_file_that_is_not_a_results_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="not a benchmark results file"):
        charts.load_results(path)


def test_the_committed_charts_are_the_ones_benchmarks_md_shows() -> None:
    text = (charts.REPO_ROOT / "BENCHMARKS.md").read_text()
    for name in (charts.LATENCY_PNG, charts.THROUGHPUT_PNG):
        assert f"](benchmarks/charts/{name})" in text
        with Image.open(charts.CHART_DIR / name) as img:
            assert img.format == "PNG"
    charts.load_results(charts.RESULTS_FILE)
