"""Adding a stream is one manifest entry plus `make schemas`: a throwaway stream proves it.

A copy of the connector gets one more entry in its manifest (Stripe's tax rates, which the connector does not ship)
and that entry's generated schema, nothing else. Synced from the simulator, which serves every list endpoint of
Stripe's API with objects generated from its schema, the new stream works like the shipped ones: check probes it
and names its permission, full refresh equals the simulator, incremental syncs read its windows and then its
changes through events, and a key without its permission fails that stream alone, naming the permission.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from integration_tests.connector_cli import REPO, configured_catalog, run_connector, simulator_config
from integration_tests.stripe_simulator import keys
from integration_tests.stripe_simulator.spec import components

NEW_STREAM = """
  - $ref: "#/definitions/stream"
    $parameters:
      name: tax_rates
      resource: tax_rates
      object: tax_rate
      permission: rak_tax_rate_read
      permission_label: "Tax Rates: Read"
      change_events:
        tax_rate.updated: id
"""
LIMITED_KEY = "rk_test_51SimNewStreamNoTaxRates00000000000000000000000000000000000000000000000000000000000Tx1"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the connector with the throwaway stream: the manifest entry, then its schema from `make schemas`'s
    generator (fed the committed OpenAPI extract, since a clone has no full description beside it)."""
    copy = tmp_path_factory.mktemp("connector-with-a-new-stream")
    shutil.copytree(REPO / "source_stripe_ontologie", copy / "source_stripe_ontologie",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "scripts", copy / "scripts")
    manifest = (REPO / "manifest.yaml").read_text()
    marker = "\n# Windows and streams read in parallel"
    assert marker in manifest, "the test inserts the stream before the manifest's concurrency section"
    (copy / "manifest.yaml").write_text(manifest.replace(marker, NEW_STREAM + marker, 1))
    spec = copy / "spec-from-extract.json"
    spec.write_text(json.dumps({"components": {"schemas": components()}}))
    subprocess.run([sys.executable, str(copy / "scripts" / "generate_schemas.py"), "--spec", str(spec)], check=True,
                   capture_output=True, cwd=copy)
    assert (copy / "source_stripe_ontologie" / "schemas" / "tax_rates.json").exists()
    return copy


def by_id(records):
    return sorted(records, key=lambda record: record["id"])


def sim_config(sim, key=keys.TEST_KEY, **overrides):
    return simulator_config(sim.url, key, start_date="2020-01-01T00:00:00Z", read_lag_seconds=2, **overrides)


def test_the_new_stream_is_discovered_and_checked_with_its_permission(checkout, stripe_simulator):
    sim = stripe_simulator
    discover = run_connector("discover", sim_config(sim), checkout=checkout)
    assert "tax_rates" in [s["name"] for s in discover.catalog()["streams"]]

    sim.add_key(LIMITED_KEY, mode="test", resources={"customers", "charges", "events"})
    check = run_connector("check", sim_config(sim, LIMITED_KEY), checkout=checkout)

    assert check.connection_status()["status"] == "SUCCEEDED"
    assert "tax_rates: grant Tax Rates: Read (rak_tax_rate_read), or do not select tax_rates" in \
        check.connection_status()["message"]


def test_full_refresh_of_the_new_stream_equals_the_simulator(checkout, stripe_simulator):
    run = run_connector("read", sim_config(stripe_simulator), configured_catalog(["tax_rates"]), checkout=checkout)

    assert run.returncode == 0, run.stderr[-2000:]
    assert by_id(run.records("tax_rates")) == by_id(stripe_simulator.objects("tax_rates"))


def test_incremental_syncs_read_new_objects_by_window_and_changes_through_events(checkout, stripe_simulator):
    sim = stripe_simulator
    catalog = configured_catalog(["tax_rates"], sync_mode="incremental")
    first = run_connector("read", sim_config(sim), catalog, checkout=checkout)
    assert sorted(first.ids("tax_rates")) == sorted(o["id"] for o in sim.objects("tax_rates"))

    changed = sim.objects("tax_rates")[-1]
    sim.update("tax_rates", changed["id"], active=not changed["active"])
    added = sim.create("tax_rates")
    time.sleep(3.2)  # past the read lag
    second = run_connector("read", sim_config(sim), catalog, first.final_state(), checkout=checkout)

    assert second.returncode == 0, second.stderr[-2000:]
    assert sorted(second.ids("tax_rates")) == sorted([changed["id"], added["id"]])
    record = {r["id"]: r for r in second.records("tax_rates")}[changed["id"]]
    assert record["active"] is (not changed["active"])


def test_a_key_without_the_new_streams_permission_fails_that_stream_alone(checkout, stripe_simulator):
    sim = stripe_simulator
    sim.add_key(LIMITED_KEY, mode="test", resources={"customers", "events"})
    run = run_connector("read", sim_config(sim, LIMITED_KEY), configured_catalog(["customers", "tax_rates"]),
                        checkout=checkout)

    assert run.returncode == 1
    assert by_id(run.records("customers")) == by_id(sim.objects("customers"))
    errors = [e["message"] for e in run.errors() if (e.get("stream_descriptor") or {}).get("name") == "tax_rates"]
    assert errors and "grant Tax Rates: Read (rak_tax_rate_read), or do not select tax_rates" in errors[0]
