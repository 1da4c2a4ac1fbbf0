"""The container image behaves like the installed connector: spec, check, discover and read.

Marked `image_tests` (part of `make test`; skipped with the reason where podman is missing): it builds the image with `scripts/image.sh base` and
`scripts/image.sh build` (Podman with runc; the base step is skipped when the stand-in base is already on
the machine), then runs the image with `--network host` so the connector inside reaches the Stripe
simulator on the host's 127.0.0.1. Run it with:

    python -m pytest -m image_tests integration_tests/test_image.py

It skips, with the reason, when podman or runc is not installed, when the connector package is not in the
repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pytest

from integration_tests.connector_cli import STREAMS as ALL_STREAMS, configured_catalog, simulator_config
from integration_tests.stripe_simulator import StripeSimulator, keys

pytestmark = pytest.mark.image_tests

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE_SH = REPO_ROOT / "scripts" / "image.sh"
IMAGE_TAG = os.environ.get("IMAGE_TAG", "source-stripe-ontologie:dev")
RUNC = os.environ.get("RUNC", "/usr/sbin/runc")
CONNECTOR_NAME = "source-stripe-ontologie"
STREAMS = set(ALL_STREAMS)
PACKAGE_FILES = ("pyproject.toml", "README.md", "manifest.yaml", "source_stripe_ontologie/__init__.py")
# Where the mounted config/catalog files appear inside the container.
MOUNT_POINT = "/secrets"


def missing_container_tools() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed (scripts/image.sh deps installs it)"
    if not os.access(RUNC, os.X_OK):
        return f"runc is not installed at {RUNC} (scripts/image.sh deps installs it)"
    return None


def missing_package_files() -> str | None:
    missing = [name for name in PACKAGE_FILES if not (REPO_ROOT / name).exists()]
    return f"connector package not in the repository yet: {', '.join(missing)}" if missing else None


def image_script(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(IMAGE_SH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "IMAGE_TAG": IMAGE_TAG},
    )


@dataclass
class ImageRun:
    """What one `podman run <image> ARGS` printed: Airbyte messages on stdout, stderr, the exit code."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m.get("type") == kind]

    def records(self, stream: str) -> list[dict]:
        return [m["record"]["data"] for m in self.of_type("RECORD") if m["record"]["stream"] == stream]


def run_image(image: str, command: str, files: Mapping[str, Any], tmp_path: Path) -> ImageRun:
    """Run `<image> command --<name> /secrets/<name>.json ...` with each file written from `files`.

    The directory is mounted read-only; it and its files are made world-readable because the connector runs
    as the unprivileged `airbyte` user (uid 1000) while the test writes them as whoever runs pytest.
    """
    mount = tmp_path / "mounted"
    mount.mkdir()
    args = [command]
    for name, content in files.items():
        path = mount / f"{name}.json"
        path.write_text(json.dumps(content))
        path.chmod(0o644)
        args += [f"--{name}", f"{MOUNT_POINT}/{path.name}"]
    mount.chmod(0o755)
    proc = subprocess.run(
        ["bash", str(IMAGE_SH), "run", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "IMAGE_TAG": image, "PODMAN_RUN_OPTS": f"-v {mount}:{MOUNT_POINT}:ro"},
    )
    messages = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return ImageRun(proc.returncode, proc.stdout, proc.stderr, messages)


@pytest.fixture(scope="module")
def built_image() -> str:
    for reason in (missing_container_tools(), missing_package_files()):
        if reason:
            pytest.skip(reason)
    for step, timeout in (("base", 1200), ("build", 1200)):
        proc = image_script(step, timeout=timeout)
        if proc.returncode != 0:
            pytest.fail(f"scripts/image.sh {step} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return IMAGE_TAG


# --- without the simulator ----------------------------------------------------------------------------


def test_image_answers_spec_with_the_connector_spec(built_image, tmp_path):
    run = run_image(built_image, "spec", {}, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    specs = run.of_type("SPEC")
    assert len(specs) == 1, run.stdout[-2000:]
    properties = specs[0]["spec"]["connectionSpecification"]["properties"]
    secret_fields = [name for name, prop in properties.items() if prop.get("airbyte_secret")]
    assert secret_fields, "the API key must be declared airbyte_secret so Airbyte masks it"


def test_image_spec_is_the_spec_in_this_checkouts_manifest(built_image, tmp_path):
    import yaml

    manifest = yaml.safe_load((REPO_ROOT / "manifest.yaml").read_text(encoding="utf-8"))

    run = run_image(built_image, "spec", {}, tmp_path)

    assert run.of_type("SPEC"), run.stdout[-2000:]
    in_image = run.of_type("SPEC")[0]["spec"]["connectionSpecification"]
    assert in_image == manifest["spec"]["connection_specification"]


def test_image_runs_the_console_script_as_the_airbyte_user(built_image):
    proc = subprocess.run(
        ["podman", "image", "inspect", built_image], capture_output=True, text=True, timeout=60, check=True
    )
    config = json.loads(proc.stdout)[0]["Config"]

    assert config["Entrypoint"] == [CONNECTOR_NAME]
    assert f"AIRBYTE_ENTRYPOINT={CONNECTOR_NAME}" in config["Env"]
    assert config["User"] == "airbyte"


# --- against the Stripe simulator ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulator():
    with StripeSimulator(seed=7, size="tiny") as sim:
        yield sim, keys


def test_image_check_succeeds_with_a_valid_key_against_the_simulator(built_image, simulator, tmp_path):
    sim, keys = simulator

    run = run_image(built_image, "check", {"config": simulator_config(sim.url, keys.TEST_KEY)}, tmp_path)

    statuses = run.of_type("CONNECTION_STATUS")
    assert statuses, run.stdout[-2000:] + run.stderr[-2000:]
    assert statuses[0]["connectionStatus"]["status"] == "SUCCEEDED"


def test_image_check_fails_with_an_unknown_key_and_never_prints_it(built_image, simulator, tmp_path):
    sim, _keys = simulator
    unknown_key = "rk_test_" + "Z9" * 12 + "wxyz"

    run = run_image(built_image, "check", {"config": simulator_config(sim.url, unknown_key)}, tmp_path)

    statuses = run.of_type("CONNECTION_STATUS")
    assert statuses and statuses[0]["connectionStatus"]["status"] == "FAILED", run.stdout[-2000:]
    assert unknown_key not in run.stdout
    assert unknown_key not in run.stderr


def test_image_discover_lists_the_six_streams(built_image, simulator, tmp_path):
    sim, keys = simulator

    run = run_image(built_image, "discover", {"config": simulator_config(sim.url, keys.TEST_KEY)}, tmp_path)

    catalogs = run.of_type("CATALOG")
    assert catalogs, run.stdout[-2000:] + run.stderr[-2000:]
    assert {stream["name"] for stream in catalogs[0]["catalog"]["streams"]} == STREAMS


def test_image_read_returns_every_simulated_charge_with_exact_amounts(built_image, simulator, tmp_path):
    sim, keys = simulator
    expected = {charge["id"]: charge for charge in sim.objects("charges", mode="test")}
    assert expected, "the tiny simulator should hold some test-mode charges"

    run = run_image(
        built_image,
        "read",
        {"config": simulator_config(sim.url, keys.TEST_KEY), "catalog": configured_catalog(["charges"])},
        tmp_path,
    )

    assert run.returncode == 0, run.stderr[-2000:]
    records = run.records("charges")
    assert sorted(record["id"] for record in records) == sorted(expected)
    for record in records:
        assert isinstance(record["amount"], int)
        assert record["amount"] == expected[record["id"]]["amount"]
        assert record["currency"] == expected[record["id"]]["currency"]
