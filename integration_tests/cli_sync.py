"""Run the connector's `read` command as a user's scheduler does: a subprocess with config, catalog and state files."""
from __future__ import annotations

import json
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

from integration_tests.connector_cli import configured_catalog, connector_command, simulator_config
from integration_tests.stripe_simulator import keys

REPO_ROOT = Path(__file__).resolve().parent.parent
STREAMS = ["customers", "charges", "subscriptions", "invoices", "products", "payouts"]


@dataclass
class SyncResult:
    records: Dict[str, List[dict]] = field(default_factory=lambda: defaultdict(list))
    state_messages: Dict[str, List[dict]] = field(default_factory=lambda: defaultdict(list))
    errors: List[str] = field(default_factory=list)
    exit_code: Optional[int] = None

    def ids(self, stream: str) -> List[str]:
        return [r["id"] for r in self.records[stream]]

    def cursor(self, stream: str) -> Optional[int]:
        """The `created` of the last state emitted for `stream` (None if none was)."""
        messages = self.state_messages[stream]
        return int(messages[-1]["stream"]["stream_state"]["created"]) if messages else None

    def next_state(self) -> List[dict]:
        """What a scheduler saves for the next sync: the last state message of every stream."""
        return [messages[-1] for messages in self.state_messages.values() if messages]

    def take(self, line: str) -> None:
        message = json.loads(line)
        if message["type"] == "RECORD":
            self.records[message["record"]["stream"]].append(message["record"]["data"])
        elif message["type"] == "STATE":
            state = message["state"]
            self.state_messages[state["stream"]["stream_descriptor"]["name"]].append(state)
        elif message["type"] == "TRACE" and message["trace"]["type"] == "ERROR":
            self.errors.append(message["trace"]["error"]["message"])


class CliSync:
    """Writes the three files into `workdir` and runs the connector's `read` on them, reading its output as it comes
    (so a test can kill it mid-sync; `connector_cli.run_connector` waits for the end)."""

    def __init__(self, workdir: Path, api_base_url: str, **config: Any) -> None:
        self.workdir = workdir
        self.config = simulator_config(api_base_url, keys.TEST_KEY, **config)
        self._runs = 0

    def read(self, streams: Iterable[str] = STREAMS, state: Optional[List[dict]] = None,
             sync_mode: str = "incremental", stop_when: Optional[Callable[[SyncResult], bool]] = None,
             **config: Any) -> SyncResult:
        """One sync; `stop_when(result so far)` true after a line kills the process there (a crashed sync)."""
        command = self._command(list(streams), state, sync_mode, {**self.config, **config})
        result = SyncResult()
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True)
        try:
            for line in process.stdout:
                if line.startswith("{"):
                    result.take(line)
                if stop_when and stop_when(result):
                    process.kill()
                    break
        finally:
            process.stdout.close()
            result.exit_code = process.wait(timeout=300)
        return result

    def _command(self, streams: List[str], state: Optional[List[dict]], sync_mode: str,
                 config: Dict[str, Any]) -> List[str]:
        self._runs += 1
        config_path = self._write(f"config_{self._runs}.json", config)
        catalog_path = self._write(f"catalog_{self._runs}.json", configured_catalog(streams, sync_mode))
        command = connector_command() + ["read", "--config", str(config_path), "--catalog", str(catalog_path)]
        if state is not None:
            command += ["--state", str(self._write(f"state_{self._runs}.json", state))]
        return command

    def _write(self, name: str, content: Any) -> Path:
        path = self.workdir / name
        path.write_text(json.dumps(content))
        return path


def repeated(ids: Iterable[str]) -> List[str]:
    return sorted(i for i, n in Counter(ids).items() if n > 1)
