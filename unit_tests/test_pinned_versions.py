"""The versions the tests run are the versions users get (issue 11, part 2).

pyproject.toml pins airbyte-cdk exactly, at the version manifest.yaml declares; constraints.txt (written by
`make lock`) pins everything else that `make install` and the Dockerfile install. If the installed environment
drifts from the lock (someone installed without `-c constraints.txt`, or edited one file and not the other),
these tests fail.
"""
from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PROJECT = "source-stripe-ontologie"


def constraints() -> dict:
    """constraints.txt as {canonical name: version}."""
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt pins exact versions only: {line!r}"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def project_requirements() -> list:
    return [Requirement(r) for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]]


def runtime_closure() -> set:
    """Canonical names of every distribution the installed connector needs at run time (markers evaluated)."""
    seen, todo = set(), [(r, ()) for r in project_requirements()]
    while todo:
        req, extras = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (extras or ("",))):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        for raw in metadata.requires(req.name) or []:
            todo.append((Requirement(raw), tuple(req.extras)))
    return seen


def test_airbyte_cdk_is_pinned_exactly_at_the_version_the_manifest_declares():
    cdk = next(r for r in project_requirements() if canonicalize_name(r.name) == "airbyte-cdk")
    manifest_version = yaml.safe_load((REPO / "manifest.yaml").read_text())["version"]

    assert str(cdk.specifier) == f"=={manifest_version}"
    assert constraints()["airbyte-cdk"] == manifest_version


def test_every_runtime_dependency_is_installed_at_its_pinned_version():
    pins = constraints()
    closure = runtime_closure()

    assert {"airbyte-cdk", "requests", "pyyaml", "pydantic"} <= closure
    unpinned = sorted(closure - set(pins))
    drifted = {name: (metadata.version(name), pins[name]) for name in closure & set(pins)
               if metadata.version(name) != pins[name]}
    assert unpinned == [], "missing from constraints.txt: run make lock"
    assert drifted == {}, "installed (left) differs from constraints.txt (right): run make install or make lock"


def test_the_lock_does_not_pin_the_project_itself():
    assert canonicalize_name(PROJECT) not in constraints()


def test_make_install_and_the_image_install_through_the_lock():
    dockerfile = (REPO / "Dockerfile").read_text()
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}

    assert "constraints.txt" in next(line for line in dockerfile.splitlines() if line.startswith("COPY pyproject"))
    assert "pip install --no-cache-dir -c constraints.txt ." in dockerfile
    assert not ignored & {"constraints.txt", "*.txt"}
    assert '-c constraints.txt ".[dev]"' in (REPO / "Makefile").read_text()
