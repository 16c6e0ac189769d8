"""Refresh the price table from the Cloud Billing Catalog API (`deployer prices --refresh`).

Owns the one network path of cost estimation: list the Vertex AI service's SKUs
over the Catalog REST API (v1, `services` and `services/{id}/skus`) with
google-auth credentials, turn the on-demand prediction SKUs into per-region
rates, and write them as a user cache (`$DEPLOYER_HOME/prices.json`) in the
packaged table's format. google-cloud-billing is not a dependency: two REST
list calls do not justify it. Parsing (`table_from_skus`) is pure and tested on
fixtures; this module never runs during plan or apply.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from deployer import settings
from deployer.errors import ApiError, ConfigError

CATALOG_API = "https://cloudbilling.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/cloud-billing.readonly",)
SERVICE_NAME = "Vertex AI"

# SKU family word -> the catalog families it prices (deployer.spec.catalog names).
_FAMILIES = {
    "N1": ("n1-standard", "n1-highmem", "n1-highcpu"),
    "N2": ("n2-standard", "n2-highmem", "n2-highcpu"),
    "N2D": ("n2d-standard",),
    "E2": ("e2-standard", "e2-highmem", "e2-highcpu"),
    "C2": ("c2-standard",),
    "A2": ("a2-highgpu", "a2-megagpu", "a2-ultragpu"),
    "A3": ("a3-highgpu",),
    "G2": ("g2-standard",),
}
# Checked in order: "A100 80GB" before "A100", "P100" before "P4".
_GPUS = (
    (re.compile(r"\bA100 80GB\b", re.IGNORECASE), "NVIDIA_A100_80GB"),
    (re.compile(r"\bA100\b", re.IGNORECASE), "NVIDIA_TESLA_A100"),
    (re.compile(r"\bH100\b", re.IGNORECASE), "NVIDIA_H100_80GB"),
    (re.compile(r"\bL4\b", re.IGNORECASE), "NVIDIA_L4"),
    (re.compile(r"\bT4\b", re.IGNORECASE), "NVIDIA_TESLA_T4"),
    (re.compile(r"\bV100\b", re.IGNORECASE), "NVIDIA_TESLA_V100"),
    (re.compile(r"\bP100\b", re.IGNORECASE), "NVIDIA_TESLA_P100"),
    (re.compile(r"\bP4\b", re.IGNORECASE), "NVIDIA_TESLA_P4"),
)
_FAMILY_WORD = re.compile(r"\b(N2D|N1|N2|E2|C2|A2|A3|G2)\b")
_EXCLUDE = re.compile(r"preemptible|spot|commit|training|tpu|reserved|sole tenancy", re.IGNORECASE)


def _unit_price(sku: Mapping[str, Any]) -> float | None:
    try:
        rates = sku["pricingInfo"][0]["pricingExpression"]["tieredRates"]
        money = rates[-1][
            "unitPrice"
        ]  # on-demand SKUs have one tier; the last is the marginal rate
        return int(money.get("units", 0) or 0) + int(money.get("nanos", 0) or 0) / 1e9
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def table_from_skus(
    skus: Iterable[Mapping[str, Any]], base: Mapping[str, Any], *, as_of: str
) -> dict[str, Any]:
    """A price table document: `base` (the packaged table) plus per-region prices from the SKUs."""
    regions: dict[str, dict[str, dict[str, Any]]] = {}
    used = 0
    for sku in skus:
        text = str(sku.get("description", ""))
        category = sku.get("category", {}) or {}
        if "Prediction" not in text or _EXCLUDE.search(text):
            continue
        if category.get("usageType", "OnDemand") != "OnDemand":
            continue
        price = _unit_price(sku)
        if price is None:
            continue
        unit = sku.get("pricingInfo", [{}])[0].get("pricingExpression", {}).get("usageUnit", "")
        targets: list[tuple[str, str, str]] = []  # (section, key, field)
        gpu = next((name for pattern, name in _GPUS if pattern.search(text)), None)
        if gpu and "GPU" in text.upper():
            targets.append(("accelerators", gpu, ""))
        else:
            word = _FAMILY_WORD.search(text)
            if word is None:
                continue
            if re.search(r"\bcore\b", text, re.IGNORECASE) and unit == "h":
                targets += [("families", fam, "vcpu_hour") for fam in _FAMILIES[word[1]]]
            elif re.search(r"\bram\b", text, re.IGNORECASE) and unit.startswith("GiBy"):
                targets += [("families", fam, "gb_hour") for fam in _FAMILIES[word[1]]]
        if not targets:
            continue
        used += 1
        for region in sku.get("serviceRegions", []) or []:
            quoted = regions.setdefault(region, {"families": {}, "accelerators": {}})
            for section, key, field in targets:
                if section == "accelerators":
                    quoted["accelerators"][key] = price
                else:
                    quoted["families"].setdefault(key, {})[field] = price
    # A family needs both rates to price a machine; drop halves.
    for quoted in regions.values():
        quoted["families"] = {
            k: v for k, v in quoted["families"].items() if "vcpu_hour" in v and "gb_hour" in v
        }
    doc = dict(base)
    doc.update(
        source="Cloud Billing Catalog API (Vertex AI SKUs)",
        details=(
            f"{used} on-demand Vertex AI prediction SKUs fetched {as_of}; regions or families "
            "without a SKU fall back to the packaged table: " + str(base.get("details", ""))
        ),
        as_of=as_of,
        region_prices={
            r: q for r, q in sorted(regions.items()) if q["families"] or q["accelerators"]
        },
    )
    return doc


def _pages(session: Any, url: str, key: str, params: dict[str, str]) -> Iterator[Mapping[str, Any]]:
    token = ""
    while True:
        query = dict(params, pageToken=token) if token else dict(params)
        response = session.get(url, params=query, timeout=60)
        if response.status_code != 200:
            raise ApiError(
                f"Cloud Billing Catalog API answered {response.status_code} for {url}: "
                f"{response.text[:300]}",
                http_status=response.status_code,
                hint="check that the Cloud Billing API is enabled for your project",
            )
        body = response.json()
        yield from body.get(key, [])
        token = body.get("nextPageToken", "")
        if not token:
            return


def default_credentials() -> Any:
    """Application Default Credentials for the Catalog API, or ConfigError."""
    import google.auth
    from google.auth import exceptions

    try:
        credentials, _ = google.auth.default(scopes=list(SCOPES))
    except exceptions.DefaultCredentialsError as exc:
        raise ConfigError(
            f"no Google Cloud credentials to fetch prices with ({exc})",
            hint="run `gcloud auth application-default login` (or set "
            "GOOGLE_APPLICATION_CREDENTIALS); "
            "estimates keep using the packaged table meanwhile",
        ) from exc
    return credentials


def fetch_vertex_skus(session: Any, *, api: str = CATALOG_API) -> list[Mapping[str, Any]]:
    """Every SKU of the Vertex AI service, priced in USD."""
    service = next(
        (
            s
            for s in _pages(session, f"{api}/v1/services", "services", {"pageSize": "5000"})
            if s.get("displayName") == SERVICE_NAME
        ),
        None,
    )
    if service is None:
        raise ApiError(f"the Cloud Billing catalog lists no {SERVICE_NAME!r} service")
    url = f"{api}/v1/{service['name']}/skus"
    return list(_pages(session, url, "skus", {"currencyCode": "USD", "pageSize": "5000"}))


def refresh_price_table(
    destination: Path,
    base: Mapping[str, Any],
    *,
    credentials_loader: Callable[[], Any] = default_credentials,
    api: str | None = None,
    today: str | None = None,
) -> dict[str, Any]:
    """Fetch current SKUs, write the user cache atomically, return the written document."""
    from google.auth.transport.requests import AuthorizedSession

    credentials = credentials_loader()
    session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    try:
        skus = fetch_vertex_skus(session, api=api or settings.BILLING_API.get() or CATALOG_API)
    except ApiError:
        raise
    except Exception as exc:  # transport failures (requests, google.auth refresh) end here
        raise ApiError(
            f"could not reach the Cloud Billing Catalog API: {exc}",
            hint="check your network and credentials, then retry",
        ) from exc
    finally:
        session.close()  # type: ignore[no-untyped-call]
    doc = table_from_skus(skus, base, as_of=today or dt.datetime.now(dt.UTC).date().isoformat())
    if not doc["region_prices"]:
        raise ApiError(
            f"the catalog returned {len(skus)} Vertex AI SKUs but none priced prediction "
            "machines; the cache was not written",
            hint="report this: the SKU descriptions may have changed",
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Write-then-rename so a crash never leaves a torn cache that breaks every plan.
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=".prices-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(doc, out, indent=1, sort_keys=True)
    os.replace(tmp, destination)
    return doc
