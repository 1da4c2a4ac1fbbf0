"""Each stream is declared once, in the manifest: the package derives what it needs and names no stream."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from unit_tests.factories import FACTS

PACKAGE = Path(__file__).resolve().parents[1] / "source_stripe_ontologie"


def string_literals(path: Path):
    """Every string constant of a module except docstrings (they may give examples)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_module_of_the_package_names_a_stream_or_its_resource():
    names = {word for facts in FACTS.streams.values() for word in (facts.name, facts.resource)}
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b")

    found = {f"{path.name}: {text!r}" for path in PACKAGE.glob("*.py") for text in string_literals(path)
             if pattern.search(text)}

    assert found == set()


def test_every_stream_declares_its_resource_object_permission_and_how_it_stays_current():
    for name, facts in FACTS.streams.items():
        assert facts.resource and facts.object_name, name
        assert facts.permission.name.startswith("rak_"), name
        assert facts.change_events or facts.unsettled, name  # events announce changes, or the stream re-reads
        assert set(facts.deletion_events) <= set(facts.change_events), name
