"""`prices --refresh`: Catalog SKUs -> per-region prices -> user cache -> estimates.

The Catalog API is played by a loopback HTTP server answering the two REST
list calls (services, skus) with paginated fixture pages shaped like the real
API's; credentials are anonymous. Parsing is also tested on its own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
from google.auth.credentials import AnonymousCredentials

from deployer import cost
from deployer.errors import ApiError, ConfigError
from deployer.providers import billing


def sku(
    description: str, regions: list[str], price: float, unit: str = "h", usage: str = "OnDemand"
) -> dict[str, Any]:
    units, nanos = int(price), round((price - int(price)) * 1e9)
    return {
        "name": f"services/C7E2-9256-1C43/skus/{abs(hash(description)) % 10**8:08d}",
        "description": description,
        "category": {
            "serviceDisplayName": "Vertex AI",
            "resourceFamily": "Compute",
            "usageType": usage,
        },
        "serviceRegions": regions,
        "pricingInfo": [
            {
                "pricingExpression": {
                    "usageUnit": unit,
                    "tieredRates": [
                        {
                            "startUsageAmount": 0,
                            "unitPrice": {
                                "currencyCode": "USD",
                                "units": str(units),
                                "nanos": nanos,
                            },
                        }
                    ],
                }
            }
        ],
    }


SKUS = [
    sku(
        "Vertex AI: Online/Batch Prediction N1 Predefined Instance Core running in Americas",
        ["us-central1", "us-east1"],
        0.04,
    ),
    sku(
        "Vertex AI: Online/Batch Prediction N1 Predefined Instance Ram running in Americas",
        ["us-central1", "us-east1"],
        0.005,
        unit="GiBy.h",
    ),
    sku(
        "Vertex AI: Online/Batch Prediction Nvidia Tesla T4 GPU running in Americas",
        ["us-central1"],
        0.45,
    ),
    sku(
        "Vertex AI: Online/Batch Prediction Nvidia Tesla A100 80GB GPU running in Netherlands",
        ["europe-west4"],
        5.0,
    ),
    sku(
        "Vertex AI: Online/Batch Prediction Nvidia Tesla A100 GPU running in Netherlands",
        ["europe-west4"],
        3.9,
    ),
    # Ignored: training, preemptible, commitments, only half of a family's rates.
    sku(
        "Vertex AI: Training N1 Predefined Instance Core running in Americas", ["us-central1"], 9.0
    ),
    sku("Vertex AI: Online/Batch Prediction Preemptible Nvidia Tesla T4 GPU", ["us-central1"], 0.1),
    sku(
        "Vertex AI: Online/Batch Prediction E2 Instance Core running in Belgium",
        ["europe-west1"],
        0.03,
    ),
    sku(
        "Vertex AI: Online/Batch Prediction Nvidia L4 GPU running in Americas",
        ["us-central1"],
        0.7,
        usage="Commit1Yr",
    ),
]


class Catalog(BaseHTTPRequestHandler):
    pages: ClassVar[list[list[dict[str, Any]]]] = [SKUS[:4], SKUS[4:]]
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        Catalog.requests.append(self.path)
        if url.path == "/v1/services":
            body: dict[str, Any] = {
                "services": [
                    {
                        "name": "services/6F81-5844-456A",
                        "serviceId": "6F81-5844-456A",
                        "displayName": "Compute Engine",
                    },
                    {
                        "name": "services/C7E2-9256-1C43",
                        "serviceId": "C7E2-9256-1C43",
                        "displayName": "Vertex AI",
                    },
                ]
            }
        elif url.path == "/v1/services/C7E2-9256-1C43/skus" and query.get("currencyCode") == [
            "USD"
        ]:
            page = int(query.get("pageToken", ["0"])[0])
            body = {"skus": self.pages[page]}
            if page + 1 < len(self.pages):
                body["nextPageToken"] = str(page + 1)
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def catalog_api() -> Iterator[str]:
    Catalog.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Catalog)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def base() -> dict[str, Any]:
    return json.loads(cost.packaged_table_text())


def test_skus_become_region_prices() -> None:
    doc = billing.table_from_skus(SKUS, base(), as_of="2030-01-02")
    assert doc["as_of"] == "2030-01-02" and doc["source"].startswith("Cloud Billing Catalog API")
    prices = doc["region_prices"]
    assert set(prices) == {"us-central1", "us-east1", "europe-west4"}
    assert prices["us-central1"]["families"]["n1-standard"] == {"vcpu_hour": 0.04, "gb_hour": 0.005}
    assert prices["us-central1"]["families"]["n1-highcpu"] == {"vcpu_hour": 0.04, "gb_hour": 0.005}
    assert prices["us-central1"]["accelerators"] == {
        "NVIDIA_TESLA_T4": 0.45
    }  # not the preemptible one
    assert prices["europe-west4"]["accelerators"] == {
        "NVIDIA_A100_80GB": 5.0,
        "NVIDIA_TESLA_A100": 3.9,
    }
    assert "6 on-demand" in doc["details"]  # the lone E2 core SKU is read, then dropped
    # The packaged rows stay as the fallback.
    assert doc["families"] == base()["families"]


@pytest.mark.timeout(30)
def test_refresh_writes_a_cache_that_estimates_then_use(catalog_api: str, tmp_path: Path) -> None:
    destination = tmp_path / "home" / "prices.json"
    doc = billing.refresh_price_table(
        destination,
        base(),
        credentials_loader=AnonymousCredentials,
        api=catalog_api,
        today="2099-12-31",
    )
    assert json.loads(destination.read_text()) == json.loads(json.dumps(doc))
    assert any("pageToken=1" in r for r in Catalog.requests)  # both pages were read
    table = cost.load_price_table({"DEPLOYER_HOME": str(tmp_path / "home")})
    assert table.as_of == "2099-12-31" and table.source.startswith("Cloud Billing Catalog API")
    assert table.hourly("n1-standard-4", "us-central1") == pytest.approx(4 * 0.04 + 15 * 0.005)
    assert table.hourly("n1-standard-4", "us-central1", "NVIDIA_TESLA_T4", 2) == pytest.approx(
        0.235 + 0.9
    )
    # A region the catalog did not quote falls back to the packaged base x multiplier.
    assert table.hourly("n1-standard-4", "asia-east1") == pytest.approx(0.2191 * 1.16, abs=1e-3)


def test_no_credentials_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="no Google Cloud credentials") as info:
        billing.refresh_price_table(tmp_path / "prices.json", base())
    assert info.value.hint is not None and "application-default login" in info.value.hint
    assert not (tmp_path / "prices.json").exists()


@pytest.mark.timeout(30)
def test_an_api_error_leaves_the_cache_alone(catalog_api: str, tmp_path: Path) -> None:
    destination = tmp_path / "prices.json"
    destination.write_text("previous")
    with pytest.raises(ApiError, match="404"):
        billing.refresh_price_table(
            destination,
            base(),
            credentials_loader=AnonymousCredentials,
            api=catalog_api + "/nowhere",
        )
    assert destination.read_text() == "previous"


@pytest.mark.timeout(30)
def test_a_catalog_without_prediction_skus_is_refused(
    catalog_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Catalog, "pages", [[SKUS[5]]])
    with pytest.raises(ApiError, match="none priced prediction machines"):
        billing.refresh_price_table(
            tmp_path / "prices.json",
            base(),
            credentials_loader=AnonymousCredentials,
            api=catalog_api,
        )
    assert not (tmp_path / "prices.json").exists()
