"""metadata.yaml must be a registry entry Airbyte accepts and must agree with the package and image.

Two layers of checks:
- Airbyte's own model of the file (``airbyte_connector_models``' ConnectorMetadataDefinitionV0, the
  model Airbyte's metadata validator uses) must accept it, and must reject broken copies of it, which
  proves the model is really checking the fields we rely on.
- Our own rules the schema does not express: the image tag is the pyproject version, the base image is
  pinned by digest and is the same one the Dockerfile builds from, the entrypoint is our console script,
  and the platform may only reach api.stripe.com.

Only the tests that read pyproject.toml skip, and only while it is absent (it exists once the package
branch is merged).
"""

from __future__ import annotations

import copy
import re
import tomllib
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
METADATA_PATH = REPO_ROOT / "metadata.yaml"
PYPROJECT_PATH = REPO_ROOT / "pyproject.toml"
DOCKERFILE_PATH = REPO_ROOT / "Dockerfile"

CONNECTOR_NAME = "source-stripe-ontologie"
REGISTRY_REQUIRED_FIELDS = (
    "name",
    "definitionId",
    "connectorType",
    "dockerRepository",
    "dockerImageTag",
    "license",
    "documentationUrl",
    "githubIssueLabel",
    "connectorSubtype",
    "releaseStage",
)
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
PINNED_PYTHON_BASE = re.compile(
    r"^docker\.io/airbyte/python-connector-base:\d+\.\d+\.\d+@sha256:[0-9a-f]{64}$"
)

needs_pyproject = pytest.mark.skipif(
    not PYPROJECT_PATH.exists(),
    reason="pyproject.toml is not in the repository yet (the package branch adds it)",
)


def load_metadata() -> dict[str, Any]:
    return yaml.safe_load(METADATA_PATH.read_text(encoding="utf-8"))


def metadata_with(path: str, value: Any = None, *, delete: bool = False) -> dict[str, Any]:
    """A copy of metadata.yaml with one dotted field replaced (or deleted)."""
    document = copy.deepcopy(load_metadata())
    *parents, leaf = path.split(".")
    node = document
    for key in parents:
        node = node[key]
    if delete:
        del node[leaf]
    else:
        node[leaf] = value
    return document


def load_pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT_PATH.read_text(encoding="utf-8"))


def dockerfile_text() -> str:
    return DOCKERFILE_PATH.read_text(encoding="utf-8")


def dockerfile_default_base_image() -> str:
    match = re.search(r"^ARG BASE_IMAGE=(\S+)\s*$", dockerfile_text(), re.MULTILINE)
    assert match, "Dockerfile must declare `ARG BASE_IMAGE=<image>` with a default"
    return match.group(1)


def airbyte_metadata_model():
    try:
        from airbyte_connector_models.metadata.v0.connector_metadata_definition_v0 import (
            ConnectorMetadataDefinitionV0,
        )
    except ImportError as error:  # a failure, not a skip: the check must not vanish silently
        pytest.fail(
            "airbyte-connector-models is not installed; it carries Airbyte's metadata model. "
            f"Install the project's dev dependencies (airbyte-connector-models==0.1.12). ({error})"
        )
    return ConnectorMetadataDefinitionV0


# --- Airbyte's own model ----------------------------------------------------------------------


def test_airbyte_metadata_model_accepts_metadata_yaml():
    model = airbyte_metadata_model()
    parsed = model.model_validate(load_metadata())
    assert str(parsed.data.definition_id) == load_metadata()["data"]["definitionId"]


@pytest.mark.parametrize(
    ("field", "bad_value", "delete"),
    [
        ("data.definitionId", "not-a-uuid", False),
        ("data.githubIssueLabel", None, True),
        ("data.connectorSubtype", "rest", False),
        ("data.releaseStage", "preview", False),
        ("data.supportLevel", "official", False),
        ("metadataSpecVersion", None, True),
    ],
)
def test_airbyte_metadata_model_rejects_a_broken_copy(field, bad_value, delete):
    from pydantic import ValidationError

    model = airbyte_metadata_model()
    with pytest.raises(ValidationError):
        model.model_validate(metadata_with(field, bad_value, delete=delete))


# --- field by field -------------------------------------------------------------------------


def test_metadata_declares_every_field_the_registry_requires():
    document = load_metadata()
    assert document["metadataSpecVersion"] == "1.0"
    missing = [field for field in REGISTRY_REQUIRED_FIELDS if not document["data"].get(field)]
    assert missing == []


def test_metadata_describes_a_community_alpha_api_source():
    data = load_metadata()["data"]
    assert data["name"] == "Stripe (Ontologie)"
    assert data["connectorType"] == "source"
    assert data["connectorSubtype"] == "api"
    assert data["releaseStage"] == "alpha"
    assert data["supportLevel"] == "community"
    assert data["license"] == "MIT"
    assert data["githubIssueLabel"] == CONNECTOR_NAME
    assert data["dockerRepository"] == f"ontologie/{CONNECTOR_NAME}"
    assert data["documentationUrl"].startswith("https://")


def test_definition_id_is_a_canonical_uuid():
    definition_id = load_metadata()["data"]["definitionId"]
    assert str(uuid.UUID(definition_id)) == definition_id


def test_docker_image_tag_is_semver():
    tag = load_metadata()["data"]["dockerImageTag"]
    assert isinstance(tag, str), "quote-free YAML numbers like 1.0 would not be a tag string"
    assert SEMVER.match(tag), tag


@needs_pyproject
def test_docker_image_tag_is_the_pyproject_version():
    assert load_metadata()["data"]["dockerImageTag"] == load_pyproject()["project"]["version"]


def test_dockerfile_version_label_is_the_image_tag():
    label = re.search(r"^LABEL io\.airbyte\.version=(\S+)\s*$", dockerfile_text(), re.MULTILINE)
    assert label, "Dockerfile must carry LABEL io.airbyte.version"
    assert label.group(1) == load_metadata()["data"]["dockerImageTag"]


def test_base_image_is_airbyte_python_base_pinned_by_digest():
    base_image = load_metadata()["data"]["connectorBuildOptions"]["baseImage"]
    assert PINNED_PYTHON_BASE.match(base_image), base_image


def test_dockerfile_builds_from_the_metadata_base_image_by_default():
    assert dockerfile_default_base_image() == load_metadata()["data"]["connectorBuildOptions"]["baseImage"]
    assert re.search(r"^FROM \$\{BASE_IMAGE\}\s*$", dockerfile_text(), re.MULTILINE)


def test_dockerfile_entrypoint_is_the_connector_console_script():
    text = dockerfile_text()
    assert re.search(rf'^ENTRYPOINT \["{CONNECTOR_NAME}"\]\s*$', text, re.MULTILINE)
    assert re.search(rf'^ENV AIRBYTE_ENTRYPOINT="{CONNECTOR_NAME}"\s*$', text, re.MULTILINE)
    last_user = re.findall(r"^USER (\S+)\s*$", text, re.MULTILINE)[-1]
    assert last_user == "airbyte", "the image must not run the connector as root"


@needs_pyproject
def test_pyproject_names_the_package_and_script_the_image_runs():
    project = load_pyproject()["project"]
    assert project["name"] == CONNECTOR_NAME
    assert CONNECTOR_NAME in project.get("scripts", {}), "console script the ENTRYPOINT calls"


def test_allowed_hosts_are_only_the_stripe_api():
    assert load_metadata()["data"]["allowedHosts"]["hosts"] == ["api.stripe.com"]


def test_tags_say_python_low_code():
    tags = load_metadata()["data"]["tags"]
    assert "language:python" in tags
    assert "cdk:low-code" in tags


def test_registry_overrides_enable_oss_and_cloud():
    overrides = load_metadata()["data"]["registryOverrides"]
    assert overrides["oss"]["enabled"] is True
    assert overrides["cloud"]["enabled"] is True


def test_icon_named_in_metadata_is_an_svg_in_the_repo():
    icon = REPO_ROOT / load_metadata()["data"]["icon"]
    root = ET.parse(icon).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
