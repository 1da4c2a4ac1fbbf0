"""Every generated file equals a fresh run of its generator on Stripe's full OpenAPI description.

Only these tests need the full description (spec3.json, ~7 MB, not in the repository): everything else reads the
committed outputs. They take its path from $STRIPE_OPENAPI_SPEC, else ../shared/stripe-openapi/spec3.json beside
the repository, and skip, naming the variable, when neither exists. CI (.ci/run) runs them with the file.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC_ENV = "STRIPE_OPENAPI_SPEC"

pytestmark = pytest.mark.regeneration


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def openapi_file() -> Path:
    path = Path(os.environ.get(SPEC_ENV) or REPO.parent / "shared" / "stripe-openapi" / "spec3.json")
    if not path.is_file():
        pytest.skip(f"Stripe's full OpenAPI file not found at {path}: set {SPEC_ENV} to its path "
                    f"(spec3.json, API 2024-06-20) to check the generated files against it")
    return path


def _stale(rendered: dict, directory: Path) -> list:
    return _script("generated_files").stale(rendered, directory)


def test_stream_schemas_regenerate_without_diff(openapi_file):
    generate_schemas = _script("generate_schemas")
    rendered = generate_schemas.render_all(openapi_file)

    assert len(rendered) >= 6
    assert _stale(rendered, generate_schemas.SCHEMA_DIR) == [], "stale or hand-edited: run make schemas"


def test_openapi_extracts_regenerate_without_diff(openapi_file):
    extract_openapi = _script("extract_openapi")
    rendered = extract_openapi.render_all(openapi_file)

    assert sorted(rendered) == ["components.json", "endpoints.json", "event_types.json"]
    assert _stale(rendered, extract_openapi.OUT_DIR) == [], "stale or hand-edited: run make schemas"
