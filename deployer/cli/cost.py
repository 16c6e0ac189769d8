"""`deployer prices` (show or refresh the price table) and `deployer reap` (expired stacks).

Thin: `prices` renders `deployer.cost`'s table and delegates `--refresh` to
`deployer.providers.billing`; `reap` parses options and calls
`deployer.reconcile.reaper.reap` (the teardown engine's entry point), rendering whatever
report it returns. No pricing logic and no API calls live here.
"""

from __future__ import annotations

import json
from typing import Any

import click

from deployer.cli.flags import output_option
from deployer.errors import ConfigError


@click.command()
@click.option(
    "--region", default="us-central1", show_default=True, help="Region to show prices for."
)
@click.option(
    "--refresh",
    is_flag=True,
    help="Fetch current prices from the Cloud Billing Catalog API (needs credentials) "
    "and write them to $DEPLOYER_HOME/prices.json.",
)
@output_option
def prices(region: str, refresh: bool, output: str) -> None:
    """Show the price table estimates use (source, date, per-region rates), or refresh it."""
    from deployer import cost

    if refresh:
        from deployer.providers import billing

        destination = cost.user_cache_path()
        base = json.loads(cost.packaged_table_text())
        doc = billing.refresh_price_table(destination, base)
        if output == "json":
            click.echo(
                json.dumps(
                    {
                        "written": str(destination),
                        "as_of": doc["as_of"],
                        "regions": sorted(doc["region_prices"]),
                    },
                    indent=2,
                )
            )
        else:
            click.echo(
                f"wrote {destination}: {doc['source']}, as of {doc['as_of']}, "
                f"{len(doc['region_prices'])} regions quoted"
            )
        return

    table = cost.load_price_table()
    rows = _rows(table, region)
    if output == "json" and rows:
        click.echo(
            json.dumps(
                {
                    "source": table.source,
                    "as_of": table.as_of,
                    "path": table.path,
                    "region": region,
                    "prices": rows,
                },
                indent=2,
            )
        )
        return
    if not rows:
        known = ", ".join(sorted(set(table.regions) | set(table.region_prices)))
        raise ConfigError(
            f"the price table has no figures for region {region!r}",
            hint=f"regions with prices: {known}",
        )
    click.echo(f"prices: {table.source}, as of {table.as_of} ({table.path})")
    click.echo(f"region {region}, USD per hour:")
    for row in rows:
        click.echo(f"  {row['name']:<24} {cost.format_usd(row['hourly']):>10}   {row['what']}")


def _rows(table: Any, region: str) -> list[dict[str, Any]]:
    from deployer.spec import catalog

    rows: list[dict[str, Any]] = []
    for family in catalog.MACHINE_FAMILIES:
        sizes = catalog.machine_sizes(family)
        example = next((m for m in sizes if m.endswith(("-4", "-1g"))), sizes[0])
        hourly = table.machine_hourly(example, region)
        if hourly is not None:
            rows.append(
                {"name": example, "hourly": round(hourly, 4), "what": f"{family}-* (machine only)"}
            )
    for accelerator in catalog.ACCELERATOR_TYPES:
        hourly = table.accelerator_hourly(accelerator, region)
        if hourly is not None:
            rows.append(
                {"name": accelerator, "hourly": round(hourly, 4), "what": "per accelerator"}
            )
    return rows


@click.command()
@click.option("--project", required=True, help="Google Cloud project to search.")
@click.option("--region", required=True, help="Region to search, e.g. us-central1.")
@click.option(
    "--target",
    type=click.Choice(["vertex", "local"]),
    default="vertex",
    show_default=True,
    help="Real Vertex AI, or the local emulator (for tests and demos).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List what would be removed and its hourly cost; change nothing.",
)
@output_option
def reap(project: str, region: str, target: str, dry_run: bool, output: str) -> None:
    """Tear down every stack past its expiry label (guards.ttl); touch nothing unlabelled."""
    from deployer.cost import load_price_table
    from deployer.providers.vertex import connect
    from deployer.reconcile.reaper import reap as reap_expired

    result = reap_expired(
        project,
        region,
        provider=connect(target, project, region),
        dry_run=dry_run,
        table=load_price_table(),
    )
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(result.render())
