"""`deployer local run | up | down | status`: the local Vertex AI + Cloud Storage emulator.

Thin: parses options and calls `deployer.emulator.server.run` (foreground) or
`deployer.emulator.instance` (background instance), then renders. Must not
hold emulator logic, or import anything heavy at import time (the server
modules are imported inside the commands).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from deployer.cli.flags import output_option


def _server_options(func: Any) -> Any:
    options = [
        click.option(
            "--host",
            default="127.0.0.1",
            show_default=True,
            help="Address to bind; loopback unless you really mean otherwise.",
        ),
        click.option(
            "--port",
            type=int,
            default=None,
            help="Port to listen on [default: 8765, or the next free one for `up`; 0 = any free].",
        ),
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Where state lives [default: $DEPLOYER_HOME/local/data].",
        ),
        click.option(
            "--request-log",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Append one JSON line per API call to this file.",
        ),
        click.option(
            "--request-log-bodies",
            is_flag=True,
            default=False,
            help="Also record request and response bodies in the request log (credentials "
            "redacted; bodies over 256 KiB as their size).",
        ),
        click.option(
            "--inject-faults",
            type=click.FloatRange(0, 1),
            default=0.0,
            show_default=True,
            help="Probability that an API call first fails with 503 or 429 (before any effect).",
        ),
        click.option(
            "--drop-responses",
            type=click.FloatRange(0, 1),
            default=0.0,
            show_default=True,
            help="Probability that a mutating call takes effect, then its connection closes "
            "unanswered.",
        ),
        click.option(
            "--op-delay",
            type=click.FloatRange(min=0),
            default=0.0,
            show_default=True,
            help="Seconds long-running operations stay done:false.",
        ),
        click.option(
            "--latency",
            type=click.FloatRange(0, 60_000),
            default=0.0,
            show_default=True,
            metavar="MS",
            help="Milliseconds every API request waits before it is handled, as a round trip "
            "over a wide-area network adds (admin routes excepted).",
        ),
        click.option(
            "--latency-jitter",
            type=click.FloatRange(0, 60_000),
            default=0.0,
            show_default=True,
            metavar="MS",
            help="Each request's delay is drawn uniformly from --latency +/- this many "
            "milliseconds (never below 0).",
        ),
        click.option(
            "--seed",
            type=int,
            default=None,
            help="Seed for the fault injection and the latency jitter, for reproducible runs.",
        ),
        click.option(
            "--log-level",
            type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
            default="INFO",
            show_default=True,
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _access_options(func: Any) -> Any:
    """Who may drive the emulator (deployer.emulator.access); kept apart from the others."""
    func = click.option(
        "--allow-host",
        "allow_hosts",
        multiple=True,
        metavar="NAME[:PORT]",
        help="Also accept this Host name (repeatable; e.g. for a tunnel or port forwarding). "
        "Other names are refused (DNS rebinding guard).",
    )(func)
    return click.option(
        "--auth-token",
        default=None,
        metavar="TOKEN",
        help="Require `Authorization: Bearer TOKEN` on every request [default: "
        "$DEPLOYER_EMULATOR_TOKEN]; required with a non-loopback --host. Prefer the variable "
        "(a command line is visible to other users) and set it for clients too.",
    )(func)


def _access_args(host: str, auth_token: str | None, allow_hosts: tuple[str, ...]) -> str | None:
    """The effective token, after refusing a bad one or a non-loopback host without one."""
    from deployer import settings
    from deployer.emulator.access import check_bind

    token = auth_token or settings.EMULATOR_TOKEN.get()
    check_bind(host, token)
    return token


def _extra_args(
    request_log: Path | None,
    request_log_bodies: bool,
    inject_faults: float,
    drop_responses: float,
    op_delay: float,
    latency: float,
    latency_jitter: float,
    seed: int | None,
    log_level: str,
) -> list[str]:
    args = ["--log-level", log_level]
    if request_log is not None:
        args += ["--request-log", str(request_log.resolve())]
    if request_log_bodies:
        args += ["--request-log-bodies"]
    if inject_faults:
        args += ["--inject-faults", str(inject_faults)]
    if drop_responses:
        args += ["--drop-responses", str(drop_responses)]
    if op_delay:
        args += ["--op-delay", str(op_delay)]
    if latency:
        args += ["--latency", str(latency)]
    if latency_jitter:
        args += ["--latency-jitter", str(latency_jitter)]
    if seed is not None:
        args += ["--seed", str(seed)]
    return args


@click.group("local")
def local() -> None:
    """Run the local Vertex AI + Cloud Storage emulator (one port serves both APIs)."""


@local.command("run")
@_server_options
@_access_options
def run(
    auth_token: str | None,
    allow_hosts: tuple[str, ...],
    host: str,
    port: int | None,
    data_dir: Path | None,
    request_log: Path | None,
    request_log_bodies: bool,
    inject_faults: float,
    drop_responses: float,
    op_delay: float,
    latency: float,
    latency_jitter: float,
    seed: int | None,
    log_level: str,
) -> None:
    """Run the emulator in the foreground (logs to stderr; Ctrl-C stops it cleanly)."""
    from deployer import settings
    from deployer.emulator import instance, server
    from deployer.emulator.latency import Latency

    settings.check(read_by=settings.EMULATOR)  # a bad value fails here, not in a job later
    try:
        delay = Latency(latency, latency_jitter, seed)
    except ValueError as exc:  # nan passes click's range check
        raise click.BadParameter(str(exc), param_hint="--latency / --latency-jitter") from None
    code = server.run(
        host=host,
        auth_token=_access_args(host, auth_token, allow_hosts),
        allow_hosts=allow_hosts,
        port=instance.DEFAULT_PORT if port is None else port,
        data_dir=data_dir or instance.local_dir() / "data",
        request_log=request_log,
        request_log_bodies=request_log_bodies,
        fault_rate=inject_faults,
        drop_rate=drop_responses,
        op_delay=op_delay,
        seed=seed,
        log_level=log_level,
        latency=delay,
    )
    raise SystemExit(code)


def _render_settings(info: dict[str, Any], *, headline: str) -> None:
    click.echo(headline)
    click.echo(f"  pid {info['pid']}, data dir {info['data_dir']}, log {info['log']}")
    click.echo("Point the official clients at it with:")
    click.echo(
        f'  Vertex AI:      api_endpoint="{info["url"]}"  (api_transport="rest", anonymous '
        f"credentials)"
    )
    click.echo(f"  Cloud Storage:  export STORAGE_EMULATOR_HOST={info['url']}")


@local.command("up")
@_server_options
@_access_options
@output_option
def up(
    auth_token: str | None,
    allow_hosts: tuple[str, ...],
    host: str,
    port: int | None,
    data_dir: Path | None,
    request_log: Path | None,
    request_log_bodies: bool,
    inject_faults: float,
    drop_responses: float,
    op_delay: float,
    latency: float,
    latency_jitter: float,
    seed: int | None,
    log_level: str,
    output: str,
) -> None:
    """Start a background emulator (idempotent) and print the settings clients need."""
    from deployer.emulator import instance

    token = _access_args(host, auth_token, allow_hosts)
    inst, already = instance.up(
        host=host,
        port=port,
        data_dir=data_dir.resolve() if data_dir else None,
        extra_args=_extra_args(
            request_log,
            request_log_bodies,
            inject_faults,
            drop_responses,
            op_delay,
            latency,
            latency_jitter,
            seed,
            log_level,
        )
        + [arg for name in allow_hosts for arg in ("--allow-host", name)],
        # The token travels in the environment, not on a command line other users can read.
        token=token,
    )
    info = inst.to_json(already_running=already)
    if already:
        differs = [
            f"{what} {have} (asked {asked})"
            for what, asked, have in (
                ("port", port or None, inst.port),  # 0 = any port: never a mismatch
                ("data dir", data_dir.resolve() if data_dir else None, Path(inst.data_dir)),
            )
            if asked is not None and asked != have
        ]
        if differs:
            click.echo(
                "warning: an emulator is already running with "
                + ", ".join(differs)
                + "; run `deployer local down` first to change its settings.",
                err=True,
            )
    if output == "json":
        click.echo(json.dumps(info))
        return
    verb = "already running" if already else "started"
    _render_settings(info, headline=f"Local emulator {verb} at {inst.url}")
    if token:
        click.echo(
            "  Auth:           every request needs the token: set DEPLOYER_EMULATOR_TOKEN where "
            "deployer runs (other clients: `Authorization: Bearer <token>`)"
        )


@local.command("down")
@output_option
def down(output: str) -> None:
    """Stop the background emulator (its data dir is kept)."""
    from deployer.emulator import instance

    inst = instance.down()
    if output == "json":
        click.echo(json.dumps({"stopped": inst is not None, **(inst.to_json() if inst else {})}))
        return
    click.echo(
        f"Stopped the local emulator at {inst.url} (pid {inst.pid})."
        if inst
        else "No local emulator is running."
    )


@local.command("status")
@output_option
def status(output: str) -> None:
    """Show the background emulator; exits 1 if it is not running."""
    from deployer.emulator import instance

    inst = instance.running()
    if output == "json":
        click.echo(json.dumps({"running": inst is not None, **(inst.to_json() if inst else {})}))
    elif inst is not None:
        _render_settings(inst.to_json(), headline=f"Local emulator running at {inst.url}")
    else:
        click.echo("No local emulator is running (start one with `deployer local up`).", err=True)
    if inst is None:
        raise SystemExit(1)
