"""Run Airbyte's own Stripe source (the "peer") against a local Stripe simulator and measure it.

The peer is `airbyte-source-stripe==5.14.1`, installed from PyPI into its own virtualenv
(default `<repo>/.cache/peer-venv`, gitignored). Nothing of the peer is copied into this repo:
at run time a small launcher (generated from `_LAUNCHER_SOURCE` below into the cache dir) is
executed by the peer venv's python. It imports the peer's `source_stripe` package, loads the
manifest.yaml shipped inside it, rewrites every `url_base`/`url` that points at
`https://api.stripe.com` to the simulator, and runs the peer's own `SourceStripe` class through
the CDK's `AirbyteEntrypoint` for `read`.

Measured: wall time of the whole command (interpreter start + imports + manifest parsing + read),
the same for the read phase alone, RECORD messages emitted, HTTP requests the peer sent (counted
inside the launcher at the requests transport), and the child's peak RSS (GNU time, or
getrusage as a fallback).

Traps found while building this (see report in the commit message / README of the bench):
- the peer's spec requires `account_id` and always sends `Stripe-Account: <account_id>`;
- `read` does not call `check`; `check` sends GET /v1/accounts?limit=100 (not /v1/account) and
  passes even when that answers 404 (ignored, "0 records");
- 400/403/404 are IGNOREd: a stream "succeeds" with 0 records and exit 0 (use expected_records);
- full-refresh still walks `created[gte]`/`created[lte]` windows of `slice_range` days (default 365)
  from `start_date` to now, with 2 worker threads (its `num_workers` setting is never read);
- a 25 req/s budget applies unless the key contains `sk_test_` (then 100 req/s);
- with `DEPLOYMENT_MODE=cloud` the CDK refuses http and private hosts, so the launcher drops it.

Usage:
    python -m integration_tests.bench.peer_runner --base-url http://127.0.0.1:12111 --key sk_test_x --streams charges
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence

PEER_DISTRIBUTION = "airbyte-source-stripe"
PEER_VERSION = "5.14.1"
STRIPE_API_ORIGIN = "https://api.stripe.com"
DEFAULT_START_DATE = "2017-01-25T00:00:00Z"
DEFAULT_ACCOUNT_ID = "acct_1PeerBenchmark00"
_START_DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_GNU_TIME = "/usr/bin/time"


class PeerRunError(RuntimeError):
    """The peer's run failed, timed out, or produced no usable measurement."""


def redact(secret: str) -> str:
    """Show a key as its prefix plus last four characters, e.g. `sk_test_...abcd`."""
    if not secret:
        return ""
    match = re.match(r"^((?:sk|rk|pk)_(?:live|test)_)", secret)
    prefix = match.group(1) if match else ""
    return f"{prefix}...{secret[-4:]}" if len(secret) > 4 else "..."


def _redact_all(text: str, secret: str) -> str:
    return text.replace(secret, redact(secret)) if secret else text


def repo_root() -> Path:
    """The repository this module lives in (integration_tests/bench/peer_runner.py -> <repo>)."""
    return Path(__file__).resolve().parents[2]


def default_cache_dir() -> Path:
    return repo_root() / ".cache"


def default_venv_dir() -> Path:
    return default_cache_dir() / "peer-venv"


def _venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def _peer_installed(venv_dir: Path) -> bool:
    """Cheap check (no subprocess): the venv exists and holds the pinned peer's dist-info."""
    if not _venv_python(venv_dir).exists():
        return False
    dist_info = f"{PEER_DISTRIBUTION.replace('-', '_')}-{PEER_VERSION}.dist-info"
    return any((venv_dir / "lib").glob(f"python3*/site-packages/{dist_info}"))


def ensure_peer_venv(venv_dir: Optional[Path] = None, python: Optional[str] = None) -> Path:
    """Create the peer's virtualenv and pip install the pinned peer into it; idempotent.

    Returns the path to the venv's python. Quick (a glob) when the peer is already installed.
    The peer requires Python >=3.10,<3.12; `python` defaults to the running interpreter.
    """
    venv_dir = Path(venv_dir) if venv_dir else default_venv_dir()
    if _peer_installed(venv_dir):
        return _venv_python(venv_dir)
    base_python = python or sys.executable
    if not _venv_python(venv_dir).exists():
        venv_dir.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([base_python, "-m", "venv", str(venv_dir)], check=True)
    subprocess.run(
        [str(_venv_python(venv_dir)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"{PEER_DISTRIBUTION}=={PEER_VERSION}"],
        check=True,
    )
    if not _peer_installed(venv_dir):
        raise PeerRunError(f"{PEER_DISTRIBUTION}=={PEER_VERSION} is not installed in {venv_dir} after pip install")
    return _venv_python(venv_dir)


# The launcher runs inside the peer's venv, so it may only import the peer and its own dependencies.
_LAUNCHER_SOURCE = r'''
"""Generated by integration_tests/bench/peer_runner.py; runs the installed peer against a simulator."""
import json
import sys
import time

T0 = time.monotonic()
args = json.load(open(sys.argv[1]))

import importlib.resources
import yaml
import requests.adapters
from airbyte_cdk.entrypoint import AirbyteEntrypoint
from source_stripe import SourceStripe

T_IMPORTED = time.monotonic()
STRIPE_API_ORIGIN = args["stripe_api_origin"]
BASE_URL = args["base_url"]
requests_sent = 0
statuses = {}

_original_send = requests.adapters.HTTPAdapter.send


def _counting_send(self, request, *a, **kw):
    global requests_sent
    requests_sent += 1
    response = _original_send(self, request, *a, **kw)
    statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
    return response


requests.adapters.HTTPAdapter.send = _counting_send


def rewrite_urls(node):
    """Point every url_base/url at the simulator; return how many were rewritten."""
    count = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("url_base", "url") and isinstance(value, str) and value.startswith(STRIPE_API_ORIGIN):
                node[key] = BASE_URL + value[len(STRIPE_API_ORIGIN):]
                count += 1
            else:
                count += rewrite_urls(value)
    elif isinstance(node, list):
        for item in node:
            count += rewrite_urls(item)
    return count


def disable_normalization(node):
    if isinstance(node, dict):
        if "schema_normalization" in node:
            node["schema_normalization"] = "None"
        for value in node.values():
            disable_normalization(value)
    elif isinstance(node, list):
        for item in node:
            disable_normalization(item)


manifest_resource = importlib.resources.files("source_stripe") / "manifest.yaml"
manifest = yaml.safe_load(manifest_resource.read_text())
rewritten = rewrite_urls(manifest)
if rewritten == 0:
    sys.stderr.write(f"no url_base pointing at {STRIPE_API_ORIGIN} in {manifest_resource}\n")
    sys.exit(3)
if not args["schema_normalization"]:
    disable_normalization(manifest)


class SimulatorSourceStripe(SourceStripe):
    """The peer's own source class, fed the rewritten manifest instead of its packaged file."""

    def _read_and_parse_yaml_file(self, path_to_yaml_file):
        return manifest


cli = ["read", "--config", args["config_path"], "--catalog", args["catalog_path"]]
source = SimulatorSourceStripe(
    SourceStripe.read_catalog(args["catalog_path"]), SourceStripe.read_config(args["config_path"]), None
)
entrypoint = AirbyteEntrypoint(source)
parsed = entrypoint.parse_args(cli)
T_READY = time.monotonic()

records = 0
by_stream = {}
errors = []
with open(args["output_path"], "w") as out:
    for message in entrypoint.run(parsed):
        out.write(message)
        out.write("\n")
        head = message[:80]
        if '"type":"RECORD"' in head:
            records += 1
            stream = head.split('"stream":"', 1)[-1].split('"', 1)[0] if '"stream":"' in head else "?"
            by_stream[stream] = by_stream.get(stream, 0) + 1
        elif '"type":"TRACE"' in head and '"ERROR"' in message[:200] and len(errors) < 5:
            errors.append(json.loads(message)["trace"]["error"].get("message"))
        elif '"type":"LOG"' in head and '"level":"ERROR"' in message[:120] and len(errors) < 5:
            errors.append(json.loads(message)["log"]["message"][:500])
T_DONE = time.monotonic()

json.dump(
    {
        "records": records,
        "records_by_stream": by_stream,
        "requests": requests_sent,
        "http_statuses": statuses,
        "urls_rewritten": rewritten,
        "manifest": str(manifest_resource),
        "import_seconds": T_IMPORTED - T0,
        "startup_seconds": T_READY - T0,
        "read_seconds": T_DONE - T_READY,
        "errors": errors,
    },
    open(args["summary_path"], "w"),
)
'''


def write_launcher(cache_dir: Optional[Path] = None) -> Path:
    """Write the launcher script into the cache dir (overwriting, so it always matches this module)."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / "peer_launcher.py"
    path.write_text(_LAUNCHER_SOURCE)
    return path


def build_config(api_key: str, start_date: str, account_id: str = DEFAULT_ACCOUNT_ID,
                 extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The peer's config: its spec requires client_secret and account_id; start_date is YYYY-MM-DDTHH:MM:SSZ."""
    if not _START_DATE_PATTERN.match(start_date):
        raise ValueError(f"start_date must look like 2017-01-25T00:00:00Z, got {start_date!r}")
    config: Dict[str, Any] = {"client_secret": api_key, "account_id": account_id, "start_date": start_date}
    config.update(extra or {})
    return config


def build_catalog(streams: Iterable[str]) -> Dict[str, Any]:
    """A configured catalog reading each stream in full_refresh/overwrite (no state: the peer's list endpoints)."""
    return {
        "streams": [
            {
                "stream": {
                    "name": name,
                    "json_schema": {"type": "object"},
                    "supported_sync_modes": ["full_refresh", "incremental"],
                },
                "sync_mode": "full_refresh",
                "destination_sync_mode": "overwrite",
            }
            for name in streams
        ]
    }


def _child_env() -> Dict[str, str]:
    env = dict(os.environ)
    # In cloud mode the CDK refuses non-https and private hosts, i.e. the local simulator.
    env.pop("DEPLOYMENT_MODE", None)
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    return env


def _parse_gnu_time_max_rss_kb(report: str) -> Optional[int]:
    match = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", report)
    return int(match.group(1)) if match else None


def run_peer(
    base_url: str,
    api_key: str,
    streams: Sequence[str] = ("charges",),
    start_date: str = DEFAULT_START_DATE,
    timeout_s: float = 600.0,
    *,
    account_id: str = DEFAULT_ACCOUNT_ID,
    extra_config: Optional[Dict[str, Any]] = None,
    schema_normalization: bool = True,
    venv_dir: Optional[Path] = None,
    keep_output: Optional[Path] = None,
    expected_records: Optional[int] = None,
) -> Dict[str, Any]:
    """Run the peer's `read` against `base_url` (the simulator origin that replaces https://api.stripe.com).

    Returns records, seconds (wall time of the whole command), records_per_s (records / seconds),
    requests (HTTP requests the peer sent), peak_rss_mb (child's maximum RSS), plus the read-phase
    breakdown. `schema_normalization=False` is a diagnostic only (turns off the peer's per-record
    schema walk); benchmarks compare against the peer as shipped.
    The peer IGNOREs 400/403/404 (the stream "succeeds" with 0 records, exit 0), so pass
    `expected_records` to turn a silently empty or short run into a PeerRunError.
    Raises PeerRunError on timeout, non-zero exit, an error reported by the peer, or a record-count mismatch.
    """
    base_url = base_url.rstrip("/")
    if base_url.endswith("/v1"):
        base_url = base_url[: -len("/v1")]
    python = ensure_peer_venv(venv_dir)
    cache_dir = Path(venv_dir).parent if venv_dir else default_cache_dir()
    launcher = write_launcher(cache_dir)

    workdir = Path(tempfile.mkdtemp(prefix="peer-run-", dir=cache_dir))
    try:
        config_path = workdir / "config.json"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(build_config(api_key, start_date, account_id, extra_config), handle)
        catalog_path = workdir / "catalog.json"
        catalog_path.write_text(json.dumps(build_catalog(streams)))
        output_path = keep_output or (workdir / "messages.jsonl")
        summary_path = workdir / "summary.json"
        args_path = workdir / "args.json"
        args_path.write_text(json.dumps({
            "stripe_api_origin": STRIPE_API_ORIGIN,
            "base_url": base_url,
            "config_path": str(config_path),
            "catalog_path": str(catalog_path),
            "output_path": str(output_path),
            "summary_path": str(summary_path),
            "schema_normalization": schema_normalization,
        }))
        time_report = workdir / "time.txt"
        command = [str(python), str(launcher), str(args_path)]
        use_gnu_time = os.access(_GNU_TIME, os.X_OK)
        if use_gnu_time:
            command = [_GNU_TIME, "-v", "-o", str(time_report)] + command
        stderr_path = workdir / "stderr.txt"

        rusage_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.monotonic()
        with open(stderr_path, "wb") as stderr_file:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr_file,
                                       env=_child_env(), start_new_session=True)
            try:
                returncode = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise PeerRunError(f"peer did not finish within {timeout_s:.0f}s (streams={list(streams)})")
        seconds = time.monotonic() - started
        rusage_after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

        stderr_tail = _redact_all(stderr_path.read_text(errors="replace")[-2000:], api_key)
        if returncode != 0 or not summary_path.exists():
            summary_errors = []
            if summary_path.exists():
                summary_errors = json.loads(summary_path.read_text()).get("errors", [])
            raise PeerRunError(_redact_all(
                f"peer exited with {returncode}; errors: {summary_errors}; stderr tail: {stderr_tail}", api_key))
        summary = json.loads(summary_path.read_text())
        if summary["errors"]:
            raise PeerRunError(_redact_all(f"peer reported errors: {summary['errors']}", api_key))

        peak_rss_kb = _parse_gnu_time_max_rss_kb(time_report.read_text()) if use_gnu_time else None
        if peak_rss_kb is None and rusage_after > rusage_before:
            peak_rss_kb = rusage_after  # Linux: kilobytes; max over all children so far
        records = summary["records"]
        if expected_records is not None and records != expected_records:
            raise PeerRunError(
                f"peer emitted {records} records, expected {expected_records} "
                f"(HTTP statuses seen: {summary['http_statuses']}; the peer ignores 400/403/404)")
        return {
            "records": records,
            "seconds": round(seconds, 3),
            "records_per_s": round(records / seconds, 1) if seconds > 0 else None,
            "requests": summary["requests"],
            "peak_rss_mb": round(peak_rss_kb / 1024, 1) if peak_rss_kb else None,
            "startup_seconds": round(summary["startup_seconds"], 3),
            "read_seconds": round(summary["read_seconds"], 3),
            "read_records_per_s": round(records / summary["read_seconds"], 1) if summary["read_seconds"] > 0 else None,
            "records_by_stream": summary["records_by_stream"],
            "http_statuses": summary["http_statuses"],
            "peer": f"{PEER_DISTRIBUTION}=={PEER_VERSION}",
            "schema_normalization": schema_normalization,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="simulator origin replacing https://api.stripe.com")
    parser.add_argument("--key", required=True, help="API key the simulator accepts")
    parser.add_argument("--streams", default="charges", help="comma-separated peer stream names")
    parser.add_argument("--start-date", default=DEFAULT_START_DATE)
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID)
    parser.add_argument("--slice-range-days", type=int, default=None, help="peer's slice_range (default 365)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--no-schema-normalization", action="store_true", help="diagnostic only")
    parser.add_argument("--keep-output", type=Path, default=None, help="write the peer's messages here")
    parser.add_argument("--expect-records", type=int, default=None, help="fail unless exactly this many")
    parser.add_argument("--install-only", action="store_true", help="only create the peer venv")
    options = parser.parse_args(argv)
    if options.install_only:
        print(ensure_peer_venv())
        return 0
    extra = {"slice_range": options.slice_range_days} if options.slice_range_days else None
    try:
        result = run_peer(
            options.base_url, options.key, [s.strip() for s in options.streams.split(",") if s.strip()],
            options.start_date, options.timeout, account_id=options.account_id, extra_config=extra,
            schema_normalization=not options.no_schema_normalization, keep_output=options.keep_output,
            expected_records=options.expect_records,
        )
    except PeerRunError as error:
        print(f"peer run failed: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
