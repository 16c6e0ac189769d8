"""`deployer batch-predict`: run a spec's batch job and bring the results home.

Thin: parses options, calls deployer.batch.runner, renders progress (state,
completed / failed counts, elapsed) and results with rich on stderr, and turns
Ctrl-C into a choice: cancel the job, or leave it running and say how to
re-attach. stdout carries only the machine-readable summary with --json.

Must not: hold batch logic (deployer.batch does), or import google.cloud at
import time (the provider is imported when the command runs).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from deployer.cli.flags import spec_argument
from deployer.errors import Aborted, ConfigError

if TYPE_CHECKING:
    from deployer.batch.runner import Collected
    from deployer.batch.staging import StagedInput
    from deployer.providers import Jobs, JobStatus, Provider
    from deployer.spec import Spec


def _console() -> Any:
    from rich.console import Console

    # soft_wrap: job names and paths stay on one line (greppable) when stderr is a pipe;
    # a pipe has no width, and rich's 80 columns would cut job ids in tables.
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 160
    return console


def _backend(spec: Spec) -> Provider:
    from deployer.cli.stack import make_provider

    return make_provider(spec)


@click.command("batch-predict")
@spec_argument
@click.option("--job", "job_name", default=None, metavar="NAME", help="Batch job name in the spec.")
@click.option(
    "--input",
    "input_path",
    default=None,
    metavar="PATH",
    help="Input file, folder or gs:// URI (overrides the spec's input).",
)
@click.option(
    "--output",
    "output_path",
    default=None,
    metavar="FILE",
    help="Merged predictions file (default: <job>.predictions.jsonl next to the spec).",
)
@click.option(
    "--output-format",
    type=click.Choice(["jsonl", "npy"]),
    default=None,
    help="JSON Lines (one prediction per input row) or a .npy array (default: from --output).",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait for the job and collect its results, or return once it is running.",
)
@click.option(
    "--resume", is_flag=True, help="Re-attach to the job the last run started, whatever its state."
)
@click.option(
    "--labels",
    "labels_path",
    default=None,
    metavar="FILE",
    help="Known labels (.json list, .npy, or one per line): print accuracy and a confusion matrix.",
)
@click.option("--list", "list_jobs", is_flag=True, help="List the stack's batch jobs.")
@click.option(
    "--cancel",
    "cancel_ref",
    default=None,
    metavar="JOB",
    help="Cancel a job of the stack (logical name or job id).",
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Give up waiting after this long.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def batch_predict(
    spec_path: str,
    job_name: str | None,
    input_path: str | None,
    output_path: str | None,
    output_format: str | None,
    wait: bool,
    resume: bool,
    labels_path: str | None,
    list_jobs: bool,
    cancel_ref: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Run SPEC's batch prediction job and merge its results in input order.

    Re-running (or --resume) re-attaches to a job still running instead of
    starting a second one. Ctrl-C asks whether to cancel the job or leave it running.
    """
    from deployer.batch import runner
    from deployer.spec import load_spec

    spec = load_spec(spec_path)
    console = _console()
    backend = _backend(spec)
    if list_jobs:
        _render_list(console, runner.list_jobs(backend, spec), as_json)
        return
    if cancel_ref:
        found = runner.find_for_cancel(backend, spec, cancel_ref)
        if found.terminal:
            console.print(
                f"{found.resource} already ended ({_state(found.state)}); nothing to cancel."
            )
            return
        backend.cancel_job(found.resource)
        console.print(f"Cancelling {found.resource} ({found.label('deployer-name')}).")
        return

    job = runner.pick_job(spec, job_name)
    version = runner.resolve_version(backend, spec, job)
    staged: StagedInput | None = None
    try:
        with console.status("Staging input..."):
            staged = runner.stage(backend, spec, job, input_path)
    except ConfigError as exc:
        if not resume:
            raise
        # The job already has its input in the bucket: follow it, merge in output order.
        console.print(
            f"[yellow]note:[/] input not readable ({exc.message}); rows are taken in output order"
        )
    if staged is not None:
        rows = f"{len(staged.index):,}" if staged.index else "?"
        console.print(
            f"Input: {rows} rows ({staged.format}), "
            f"{len(staged.uris)} file(s); uploaded {_size(staged.uploaded_bytes)} "
            f"of {_size(staged.total_bytes)}."
        )
    journal = runner.BatchJobJournal.for_spec(spec)
    status, attached = runner.start_or_attach(
        backend, spec, job, staged, version, journal, resume=resume
    )
    verb = "Re-attached to" if attached else "Started"
    console.print(f"{verb} batch job {status.resource} ({_state(status.state)}) on {version}.")
    resume_cmd = f"deployer batch-predict {spec_path} --job {job.name} --resume"
    if not wait:
        console.print(f"Not waiting. Collect the results later with: {resume_cmd}")
        if as_json:
            click.echo(
                json.dumps({"job": status.resource, "state": status.state, "attached": attached})
            )
        return
    try:
        final = _wait_with_progress(console, backend, status, timeout)
    except KeyboardInterrupt:
        _interrupted(console, backend, status.resource, resume_cmd)
        return
    runner.raise_if_failed(final)
    if final.bigquery_output:  # nothing to download: say where the rows are
        _render_table(console, spec, final, as_json)
        return
    out = Path(output_path) if output_path else _default_output(spec, job.name, output_format)
    fmt = output_format or ("npy" if out.suffix.lower() == ".npy" else "jsonl")
    with console.status("Collecting results..."):
        collected = runner.collect(
            backend,
            final,
            staged,
            out,
            output_format=fmt,
            labels_file=Path(labels_path) if labels_path else None,
        )
    picture: Path | None = None
    if collected.score is not None:
        from deployer.batch.chart import png_path_for, write_confusion_png

        with console.status("Drawing the confusion matrix..."):
            picture = write_confusion_png(
                collected.score, png_path_for(collected.output), title=f"{job.name} ({job.ref})"
            )
    _render_collected(console, final, collected, as_json, picture)


def _render_table(console: Any, spec: Spec, final: JobStatus, as_json: bool) -> None:
    """A BigQuery output: the table's URI and, on the local emulator, the table's file."""
    from deployer.spec import Target

    where = final.bigquery_output or ""
    local = _local_table_file(where) if spec.target is Target.LOCAL else None
    console.print(
        f"{_state(final.state)}: {final.successful:,} predictions, {final.failed:,} failed rows, "
        f"in BigQuery table {where} (not downloaded)"
    )
    if local is not None:
        console.print(f"On the local emulator that table is the file {local}")
    if as_json:
        doc = {
            "job": final.resource,
            "state": final.state,
            "bigquery_output": where,
            "local_table_file": str(local) if local is not None else None,
            "predictions": final.successful,
            "failed_rows": final.failed,
        }
        click.echo(json.dumps(doc, default=str))


def _local_table_file(uri: str) -> Path | None:
    """`<data dir>/bigquery/<project>.<dataset>.<table>.jsonl` of the emulator in use, where
    it stands for the table (None if the emulator does not answer)."""
    from deployer.emulator.instance import health
    from deployer.providers.clients import emulator_url

    doc = health(emulator_url())
    if doc is None or not doc.get("data_dir"):
        return None
    return Path(doc["data_dir"]) / "bigquery" / f"{uri.removeprefix('bq://')}.jsonl"


def _default_output(spec: Spec, job: str, fmt: str | None) -> Path:
    base = spec.source.parent if spec.source else Path.cwd()
    return base / f"{job}.predictions.{'npy' if fmt == 'npy' else 'jsonl'}"


def _wait_with_progress(
    console: Any, backend: Jobs, status: JobStatus, timeout: float | None
) -> JobStatus:
    from rich.live import Live

    from deployer.batch import runner

    started = time.monotonic()
    if not console.is_terminal:
        # Logs and CI: one line when the state changes, else at most every 30 s.
        last: dict[str, Any] = {"state": None, "at": 0.0}

        def log_line(s: JobStatus) -> None:
            now = time.monotonic()
            if s.state != last["state"] or now - last["at"] >= 30:
                console.print(_progress_line(s, now - started))
                last.update(state=s.state, at=now)

        return runner.wait(backend, status.resource, timeout=timeout, on_status=log_line)
    with Live(
        _progress_line(status, 0.0), console=console, transient=False, refresh_per_second=4
    ) as live:
        return runner.wait(
            backend,
            status.resource,
            timeout=timeout,
            on_status=lambda s: live.update(_progress_line(s, time.monotonic() - started)),
        )


def _progress_line(s: JobStatus, elapsed: float) -> str:
    done = s.successful + s.failed
    total = done + s.incomplete
    pct = f" ({100 * done / total:.0f}%)" if total else ""
    return (
        f"[bold]{_state(s.state)}[/]  completed {s.successful:,}  failed {s.failed:,}"
        f"{f' of {total:,}' if total else ''}{pct}  elapsed {elapsed:,.0f}s"
    )


def _interrupted(console: Any, backend: Jobs, resource: str, resume_cmd: str) -> None:
    """Ctrl-C while waiting: cancel the job or leave it running (non-interactive: leave it)."""
    if sys.stdin.isatty():
        choice = click.prompt(
            "\nInterrupted. Cancel the batch job, or leave it running?",
            type=click.Choice(["cancel", "leave"]),
            default="leave",
            err=True,
        )
        if choice == "cancel":
            backend.cancel_job(resource)
            console.print(f"Cancelling {resource}.")
            raise Aborted("batch job cancelled at the user's request")
    console.print(f"\nThe batch job {resource} keeps running. Re-attach with: {resume_cmd}")
    raise Aborted("interrupted; the batch job was left running")


def _render_collected(
    console: Any, final: JobStatus, c: Collected, as_json: bool, picture: Path | None
) -> None:
    from rich.table import Table

    console.print(
        f"{_state(final.state)}: {c.succeeded:,} predictions, {len(c.errors):,} failed rows, "
        f"merged from {c.shards} result shard(s) -> {c.output}"
    )
    for note in c.notes:
        console.print(f"[yellow]note:[/] {note}")
    for e in c.errors[:20]:
        where = f"{e.source}:{e.line}" if e.line is not None else "(unmatched row)"
        console.print(f"[red]row error[/] {where}: {e.message}")
    if len(c.errors) > 20:
        console.print(f"... and {len(c.errors) - 20:,} more failed rows")
    if c.score is not None:
        s = c.score
        console.print(
            f"Accuracy: {s.accuracy:.4f} ({s.correct:,} / {s.total:,}"
            f"{f'; {s.skipped} rows without prediction' if s.skipped else ''})"
        )
        if len(s.classes) <= 20:
            table = Table(title="Confusion matrix (rows: label, columns: predicted)")
            table.add_column("label", justify="right")
            for cls in s.classes:
                table.add_column(str(cls), justify="right")
            for i, (cls, row) in enumerate(zip(s.classes, s.matrix, strict=True)):
                cells = [
                    f"[green]{v}[/]" if i == j else (str(v) if v else "·")
                    for j, v in enumerate(row)
                ]
                table.add_row(str(cls), *cells)
            console.print(table)
    if picture is not None:
        console.print(f"Confusion matrix picture: {picture}")
    if as_json:
        doc: dict[str, Any] = {
            "job": final.resource,
            "state": final.state,
            "output": str(c.output),
            "predictions": c.succeeded,
            "failed_rows": len(c.errors),
            "errors": [
                {"row": e.row, "source": e.source, "line": e.line, "message": e.message}
                for e in c.errors
            ],
        }
        if c.score is not None:
            doc["accuracy"] = c.score.accuracy
            doc["confusion_matrix"] = {
                "classes": list(c.score.classes),
                "matrix": [list(r) for r in c.score.matrix],
            }
        if picture is not None:
            doc["confusion_png"] = str(picture)
        click.echo(json.dumps(doc, default=str))


def _render_list(console: Any, jobs: list[JobStatus], as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "job": j.resource,
                        "name": j.label("deployer-name"),
                        "state": j.state,
                        "successful": j.successful,
                        "failed": j.failed,
                        "error": j.error,
                        "output_dir": j.output_dir,
                    }
                    for j in jobs
                ]
            )
        )
        return
    from rich.table import Table

    table = Table(title="Batch prediction jobs")
    for col in ("name", "job id", "state", "completed", "failed", "created"):
        table.add_column(col)
    for j in jobs:
        created = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.create_time))
            if j.create_time
            else ""
        )
        table.add_row(
            j.label("deployer-name") or "",
            j.resource.rsplit("/", 1)[-1],
            _state(j.state),
            f"{j.successful:,}",
            f"{j.failed:,}",
            created,
        )
    console.print(table if jobs else "No batch jobs for this stack.")


def _state(state: str) -> str:
    return state.removeprefix("JOB_STATE_")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)
