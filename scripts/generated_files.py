"""Writing generated files, or telling which ones drifted from a fresh run: shared by the generators in scripts/
(`generate_schemas.py`, `extract_openapi.py`) and the regeneration tests."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Mapping


def stale(rendered: Mapping[str, str], directory: Path) -> list[str]:
    """The names whose file in `directory` is missing or differs from its freshly rendered text."""
    return [name for name, text in rendered.items()
            if not (directory / name).is_file() or (directory / name).read_text() != text]


def write_or_check(rendered: Mapping[str, str], directory: Path, check: bool, script: str) -> int:
    """Write every rendered file (exit code 0), or with `check` report the stale ones (exit code 1 if any)."""
    if check:
        drifted = stale(rendered, directory)
        for name in drifted:
            print(f"out of date: {directory / name} (run {script}, or make schemas)", file=sys.stderr)
        return 1 if drifted else 0
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (directory / name).write_text(text)
        print(f"wrote {directory / name} ({len(text):,} bytes)")
    return 0
