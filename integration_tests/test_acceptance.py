"""Airbyte's standard connector tests, driven by `acceptance-test-config.yml`, against the Stripe simulator.

The suite (`airbyte_cdk.test.standard_tests.SourceTestSuiteBase`) runs spec, check, discover and full-refresh
read in-process for each config the YAML file lists, and checks what Airbyte checks before publishing a
connector: one valid SPEC whose secrets are marked, configs that validate against it, the declared check
status, a catalog without problems, records for every stream that match the stream's schema, a failing read
for a bad catalog, and no secret value anywhere in the output.

How the scenarios reach the simulator: its port is chosen by the OS when it starts, so the YAML names its
configs `simulator/<name>.json` and this module builds them. `SCENARIO_CONFIGS` and `SCENARIO_CATALOGS`
below are the factories; at collection each scenario's path is moved into this session's temporary
directory, and the session fixture `acceptance_simulator` starts one simulator and writes every file there
before the first test runs. Only 127.0.0.1 is reached.

The suite's Docker image tests are skipped here: this repository builds and tests its image with Podman in
`integration_tests/test_image.py` (marker `image_tests`), and the suite's versions need a Docker daemon and
pull base images from a registry.

Run: python -m pytest integration_tests/test_acceptance.py -q
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping

import pytest
from boltons.typeutils import classproperty

from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import SourceTestSuiteBase
from airbyte_cdk.test.standard_tests.docker_base import DockerConnectorTestSuite
from airbyte_cdk.test.standard_tests.pytest_hooks import pytest_generate_tests  # noqa: F401  (parametrizes `scenario`)
from integration_tests.connector_cli import simulator_config
from integration_tests.stripe_simulator import StripeSimulator, keys
from source_stripe_ontologie.source import SourceStripeOntologie

CONNECTOR_NAME = "source-stripe-ontologie"
# The directory the YAML's `simulator/...` paths are written to: one per test session (and process).
SESSION_DIR = Path(tempfile.gettempdir()) / f"stripe-acceptance-{os.getpid()}"
SCENARIO_PREFIX = "simulator"
# A well-formed restricted key the simulator has never issued: Stripe answers 401.
UNKNOWN_KEY = "rk_test_51SimUnknownKey000000000000000000000000000000000000000000000000000000000000000000000000Zz9"
# Registered at session start with read access to everything but payouts: Stripe answers 403 on /v1/payouts.
KEY_WITHOUT_PAYOUTS = "rk_live_51SimNoPayouts0000000000000000000000000000000000000000000000000000000000000000000000Pp1"
MONEY_STREAMS = ("charges", "subscriptions", "payouts")


# Config name (the YAML's `simulator/<name>.json`) -> factory of that config from the simulator's URL.
SCENARIO_CONFIGS: Mapping[str, Callable[[str], Dict[str, Any]]] = {
    "test_mode_key": lambda url: {**simulator_config(url, keys.TEST_KEY), "start_date": "2020-01-01T00:00:00Z"},
    "live_mode_key": lambda url: simulator_config(url, keys.LIVE_KEY),
    "unknown_key": lambda url: simulator_config(url, UNKNOWN_KEY),
    "revoked_key": lambda url: simulator_config(url, keys.REVOKED_KEY),
    "publishable_key": lambda url: simulator_config(url, keys.PUBLISHABLE_KEY),
    "key_without_payouts_access": lambda url: simulator_config(url, KEY_WITHOUT_PAYOUTS),
}


def configured_catalog(streams) -> Dict[str, Any]:
    """A configured catalog naming `streams` (the suite takes each stream's definition from `discover`)."""
    return {
        "streams": [
            {"stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
             "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
            for name in streams
        ]
    }


SCENARIO_CATALOGS: Mapping[str, Callable[[], Dict[str, Any]]] = {
    "money_streams_catalog": lambda: configured_catalog(MONEY_STREAMS),
}


def session_path(path: Path | None) -> Path | None:
    """Where a `simulator/<name>.json` path of the YAML is written this session; other paths are kept."""
    if path is None or path.parts[:1] != (SCENARIO_PREFIX,):
        return path
    name = path.stem
    if name not in SCENARIO_CONFIGS and name not in SCENARIO_CATALOGS:
        raise ValueError(f"acceptance-test-config.yml names {path}, which no factory in {__name__} builds")
    return SESSION_DIR / path.name


def write_scenario_files(directory: Path, url: str) -> List[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make_config in SCENARIO_CONFIGS.items():
        written.append(directory / f"{name}.json")
        written[-1].write_text(json.dumps(make_config(url)))
    for name, make_catalog in SCENARIO_CATALOGS.items():
        written.append(directory / f"{name}.json")
        written[-1].write_text(json.dumps(make_catalog()))
    return written


@pytest.fixture(scope="session", autouse=True)
def acceptance_simulator():
    """One simulator for the whole suite, and the scenario files that point at it."""
    sim = StripeSimulator(seed=7, size="small")
    sim.add_key(KEY_WITHOUT_PAYOUTS, mode="live",
                resources={"customers", "charges", "subscriptions", "invoices", "products"})
    sim.start()
    try:
        write_scenario_files(SESSION_DIR, sim.url)
        yield sim
    finally:
        sim.stop()
        shutil.rmtree(SESSION_DIR, ignore_errors=True)


DOCKER_SKIP_REASON = (
    "the CDK's Docker image tests need a Docker daemon and pull base images from a registry; this "
    "connector's image is built and tested with Podman in integration_tests/test_image.py (marker image_tests)"
)


def skipped(test: Callable) -> Callable:
    """A copy of an inherited suite test that pytest reports as skipped, leaving the CDK's own function alone."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return test(*args, **kwargs)

    wrapper.pytestmark = [*getattr(test, "pytestmark", []), pytest.mark.skip(reason=DOCKER_SKIP_REASON)]
    return wrapper


class TestStripeOntologieStandardSuite(SourceTestSuiteBase):
    """The CDK's standard source suite, with our source built from each scenario's config."""

    @classproperty
    def connector_name(cls) -> str:
        # The suite names the connector after its directory, which is a worktree or clone name here.
        return CONNECTOR_NAME

    @classmethod
    def get_scenarios(cls) -> List[ConnectorTestScenario]:
        return [
            scenario.model_copy(update={
                "config_path": session_path(scenario.config_path),
                "configured_catalog_path": session_path(scenario.configured_catalog_path),
            })
            for scenario in super().get_scenarios()
        ]

    @classmethod
    def create_connector(cls, scenario: ConnectorTestScenario | None) -> SourceStripeOntologie:
        """Our source, built with the scenario's config: CDK 7 reads with the config given at construction."""
        config = scenario.get_config_dict(connector_root=cls.get_connector_root_dir(), empty_if_missing=True) \
            if scenario is not None else None
        return SourceStripeOntologie(config=config or None)


# Skipped with the reason rather than deselected, so `-m image_tests` still shows why they did not run.
for _name in dir(DockerConnectorTestSuite):
    if _name.startswith("test_docker_image"):
        setattr(TestStripeOntologieStandardSuite, _name, skipped(getattr(DockerConnectorTestSuite, _name)))
