"""The connector installs as a wheel that carries its manifest and schemas and runs from any directory."""
from __future__ import annotations

import json
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
                   check=True)
    return next(out.glob("source_stripe_ontologie-*.whl"))


def test_wheel_carries_the_manifest_and_every_schema(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "source_stripe_ontologie/manifest.yaml" in names
    for stream in ("customers", "charges", "subscriptions", "invoices", "products", "payouts"):
        assert f"source_stripe_ontologie/schemas/{stream}.json" in names
    packaged = zipfile.ZipFile(wheel).read("source_stripe_ontologie/manifest.yaml")
    assert packaged == (REPO / "manifest.yaml").read_bytes()


def test_installed_wheel_runs_from_another_directory_and_ignores_a_stray_manifest(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # Reuse this interpreter's dependencies (the CDK) and install only our wheel, so the test needs no network.
    new_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    Path(new_site, "outer_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)], check=True)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    (workdir / "manifest.yaml").write_text("this: is not our manifest\n")

    result = subprocess.run([str(env_dir / "bin" / "source-stripe-ontologie"), "spec"], cwd=workdir,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    spec = next(json.loads(line) for line in result.stdout.splitlines() if '"SPEC"' in line)
    assert "client_secret" in spec["spec"]["connectionSpecification"]["properties"]
