"""Run the connector's command line the way Airbyte does, and read what it printed.

End-to-end tests, the demo and the benchmark all go through this one runner, so they exercise the same
`spec|check|discover|read` entry point a user's Airbyte deployment calls. Every run also checks that the key it
was given never appears whole in what the connector printed. `Syncs` chains reads the way a scheduler does (each
sync gets the previous one's final state) and can kill a sync mid-way.
"""
from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections import Counter
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence

from source_stripe_ontologie import SourceStripeOntologie

REPO = Path(__file__).resolve().parents[1]
STREAMS = tuple(SourceStripeOntologie().facts.names)  # every stream the manifest declares
# The first six streams, whose simulator resource is their name and whose tests compare them to it by that name; the
# money trail's streams (issue #13) have their own end-to-end tests (test_money_trail_e2e.py).
SIX_STREAMS = ("customers", "charges", "subscriptions", "invoices", "products", "payouts")
# Functional tests run the simulator without rate limits, so they lift the connector's pacing with the knob for
# accounts with raised limits. The benchmark, the demo and the pacing tests keep the default (what users get).
UNPACED = {"max_requests_per_second": 10_000, "max_requests_per_endpoint_per_second": 10_000}


def simulator_config(url: str, key: str, **overrides: Any) -> dict:
    """The config of a functional test against the simulator at `url`."""
    return {"client_secret": key, "api_base_url": url, **UNPACED, **overrides}


def connector_command() -> List[str]:
    """The installed console script, as Airbyte runs it, when it is this checkout's code; else this checkout's module.

    A stale install (code changed since `make install`) would test yesterday's connector, so it is used only
    when every installed file equals the checkout's.
    """
    script = Path(sys.executable).parent / "source-stripe-ontologie"
    if script.exists() and _installed_package_matches_checkout():
        return [str(script)]
    return [sys.executable, "-m", "source_stripe_ontologie.run"]


@functools.lru_cache(maxsize=1)
def _installed_package_matches_checkout() -> bool:
    try:
        dist = importlib.metadata.distribution("source-stripe-ontologie")
    except importlib.metadata.PackageNotFoundError:
        return False
    installed = [f for f in dist.files or [] if f.parts[0] == "source_stripe_ontologie" and f.suffix in (".py", ".json", ".yaml")]
    if not installed:
        return False
    for file in installed:
        relative = Path(*file.parts[1:])
        ours = REPO / "manifest.yaml" if relative == Path("manifest.yaml") else REPO / "source_stripe_ontologie" / relative
        if not ours.exists() or ours.read_bytes() != Path(file.locate()).read_bytes():
            return False
    checkout = {p.relative_to(REPO / "source_stripe_ontologie") for p in (REPO / "source_stripe_ontologie").rglob("*")
                if p.suffix in (".py", ".json") and "__pycache__" not in p.parts}
    return checkout <= {Path(*f.parts[1:]) for f in installed}


def configured_catalog(streams: Iterable[str] = STREAMS, sync_mode: str = "full_refresh") -> dict:
    return {
        "streams": [
            {
                "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"],
                           "source_defined_cursor": True, "default_cursor_field": ["created"],
                           "source_defined_primary_key": [["id"]]},
                "sync_mode": sync_mode,
                "destination_sync_mode": "append" if sync_mode == "incremental" else "overwrite",
                **({"cursor_field": ["created"]} if sync_mode == "incremental" else {}),
                "primary_key": [["id"]],
            }
            for name in streams
        ]
    }


@dataclass
class CliRun:
    """What one command printed: the Airbyte messages on stdout, stderr, the exit code and the wall time."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    messages: List[dict] = field(default_factory=list)
    peak_rss_mb: Optional[float] = None

    def of_type(self, kind: str) -> List[dict]:
        return [m for m in self.messages if m.get("type") == kind]

    def records(self, stream: Optional[str] = None) -> List[dict]:
        return [m["record"]["data"] for m in self.of_type("RECORD") if stream in (None, m["record"]["stream"])]

    def record_ids(self, stream: str) -> List[str]:
        return [r["id"] for r in self.records(stream)]

    ids = record_ids

    def cursor(self, stream: str) -> Optional[int]:
        """The `created` of the last state emitted for `stream` (None if none was)."""
        states = [s for s in self.states() if s["stream"]["stream_descriptor"]["name"] == stream]
        return int(states[-1]["stream"]["stream_state"]["created"]) if states else None

    def states(self) -> List[dict]:
        return [m["state"] for m in self.of_type("STATE")]

    def final_state(self) -> List[dict]:
        """The last state message per stream, ready to be written as the next sync's `--state` file."""
        latest: dict = {}
        for state in self.states():
            latest[state["stream"]["stream_descriptor"]["name"]] = state
        return list(latest.values())

    next_state = final_state

    def logs(self, level: Optional[str] = None) -> List[str]:
        return [m["log"]["message"] for m in self.of_type("LOG") if level in (None, m["log"]["level"])]

    def traces(self, kind: Optional[str] = None) -> List[dict]:
        return [m["trace"] for m in self.of_type("TRACE") if kind in (None, m["trace"]["type"])]

    def errors(self) -> List[dict]:
        return [t["error"] for t in self.traces("ERROR")]

    def stream_statuses(self, stream: str) -> List[str]:
        return [t["stream_status"]["status"] for t in self.traces("STREAM_STATUS")
                if t["stream_status"]["stream_descriptor"]["name"] == stream]

    def connection_status(self) -> dict:
        return self.of_type("CONNECTION_STATUS")[0]["connectionStatus"]

    def catalog(self) -> dict:
        return self.of_type("CATALOG")[0]["catalog"]


class KeyLeaked(AssertionError):
    """The connector printed a whole API key."""


def run_connector(command: str, config: Optional[Mapping[str, Any]] = None, catalog: Optional[Mapping] = None,
                  state: Optional[Sequence[Mapping]] = None, *, timeout: float = 300, cwd: Optional[Path] = None,
                  stdout_path: Optional[Path] = None, extra_env: Optional[Mapping[str, str]] = None,
                  stop_when: Optional[Callable[["CliRun"], bool]] = None,
                  checkout: Optional[Path] = None) -> CliRun:
    """Run `source-stripe-ontologie <command>` with the given files; parse stdout unless sent to `stdout_path`.

    `stop_when(run so far)`, checked after every line, kills the process there (a crashed sync); `checkout` runs the
    connector's module from another copy of the repository (e.g. one with an extra stream).
    """
    workdir = Path(tempfile.mkdtemp(prefix="stripe-cli-"))
    try:
        args = (connector_command() if checkout is None else [sys.executable, "-m", "source_stripe_ontologie.run"])
        args = args + [command]
        for flag, content in (("--config", config), ("--catalog", catalog), ("--state", state)):
            if content is not None:
                path = workdir / f"{flag[2:]}.json"
                path.write_text(json.dumps(content))
                args += [flag, str(path)]
        env = {**os.environ, **(extra_env or {})}
        if args[0] == sys.executable:  # running a checkout's module: make it importable from any cwd
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout or REPO), env.get("PYTHONPATH")]))
        out = open(stdout_path, "wb") if stdout_path is not None else subprocess.PIPE
        started = time.monotonic()
        try:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE, cwd=cwd or workdir, env=env)
            peak = PeakRssWatcher(proc.pid)
            run = CliRun(0, "", "", 0.0)
            if stop_when is not None:
                stdout_bytes, stderr_bytes = _read_until(proc, run, stop_when, timeout)
            else:
                try:
                    stdout_bytes, stderr_bytes = proc.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()
                    raise
        finally:
            if stdout_path is not None:
                out.close()
        run.returncode, run.seconds, run.peak_rss_mb = proc.returncode, time.monotonic() - started, peak.stop()
        run.stdout = stdout_bytes.decode() if stdout_bytes else ""
        run.stderr = stderr_bytes.decode() if stderr_bytes else ""
        if stop_when is None:  # else: the messages up to the kill, as read
            run.messages = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        _refuse_leaked_key(config, run)
        return run
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _read_until(proc: subprocess.Popen, run: CliRun, stop_when: Callable[[CliRun], bool],
                timeout: float) -> tuple[bytes, bytes]:
    """Read stdout line by line into `run.messages`; kill the process once `stop_when(run)` is true."""
    lines = []
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(b"{"):
                run.messages.append(json.loads(line))
            if stop_when(run):
                proc.kill()
                break
        rest, stderr = proc.communicate()
    finally:
        killer.cancel()
    return b"".join(lines) + (rest or b""), stderr


def _refuse_leaked_key(config: Optional[Mapping[str, Any]], run: CliRun) -> None:
    key = str((config or {}).get("client_secret") or "").strip()
    if len(key) > 12 and (key in run.stdout or key in run.stderr):
        raise KeyLeaked("the full API key leaked into the connector's output")


class Syncs:
    """Successive `read`s of one account, each with the previous one's final state when given `state=`."""

    def __init__(self, api_base_url: str, key: Optional[str] = None, **config: Any) -> None:
        from integration_tests.stripe_simulator import keys

        self.config = simulator_config(api_base_url, key or keys.TEST_KEY, **config)

    def read(self, streams: Iterable[str] = STREAMS, state: Optional[List[dict]] = None,
             sync_mode: str = "incremental", stop_when: Optional[Callable[[CliRun], bool]] = None,
             **config: Any) -> CliRun:
        return run_connector("read", {**self.config, **config}, configured_catalog(streams, sync_mode), state,
                             cwd=REPO, stop_when=stop_when)


def repeated(ids: Iterable[str]) -> List[str]:
    """Ids that appear more than once."""
    return sorted(i for i, n in Counter(ids).items() if n > 1)


class PeakRssWatcher:
    """Samples a child's peak resident memory (VmHWM, Linux) until it exits: the benchmark's peak RSS figure."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self._path = Path(f"/proc/{pid}/status")
        self._interval = interval
        self._peak_kb = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            try:
                for line in self._path.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self._peak_kb = max(self._peak_kb, int(line.split()[1]))
            except (OSError, ValueError):
                return
            self._done.wait(self._interval)

    def stop(self) -> Optional[float]:
        self._done.set()
        self._thread.join()
        return self._peak_kb / 1024 if self._peak_kb else None
