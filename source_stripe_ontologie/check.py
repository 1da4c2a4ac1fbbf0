"""`check`: ask every list endpoint for one object, at once, and say exactly what the key can and cannot read.

Why not the manifest: the manifest's `CheckStream` reads the listed streams one after another through the
streams' own retry policy (minutes of backoff when the network is down), stops at the first failure, and turns
a 403 on one stream into a failed check. Users need the opposite: a verdict within seconds that names every
stream the key cannot read (and the permission to grant), passes when the other streams are readable, and fails
only when nothing can be synced. Every stream the manifest declares is probed, with the permission it declares.
"""
from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

import requests
from airbyte_cdk.models import AirbyteConnectionStatus, Status

from source_stripe_ontologie import error_messages as say
from source_stripe_ontologie.components import api_base, stripe_headers
from source_stripe_ontologie.errors import describe_transient
from source_stripe_ontologie.key_mode import KeyMode, redact
from source_stripe_ontologie.stream_facts import ManifestFacts, StreamFacts

_TRANSIENT_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class ProbeResult:
    """What one `GET /v1/<resource>?limit=1` came back with."""

    stream: str
    status: Optional[int] = None  # HTTP status, None when no answer arrived
    stripe_message: str = ""
    error: Optional[BaseException] = None  # the network error when no answer arrived
    transient: bool = False


@dataclass
class ReadAccessProbe:
    """Probes the streams' list endpoints concurrently with `limit=1` and turns the answers into a verdict."""

    config: Mapping[str, Any]
    facts: ManifestFacts  # the streams to probe, and the events list probed beside them
    deadline_seconds: float = 12.0  # the whole check answers within 15 s even when the network is down
    connect_timeout_seconds: float = 4.0
    read_timeout_seconds: float = 8.0
    max_attempts: int = 3
    logger: logging.Logger = logging.getLogger("airbyte")

    def run(self) -> AirbyteConnectionStatus:
        events = self.facts.events
        results = self._probe_all()
        probed_events = [r for r in results if r.stream == events.name]
        verdict = self._verdict([r for r in results if r.stream != events.name])
        if verdict.status == Status.SUCCEEDED and probed_events and probed_events[0].status == 403:
            # Not a stream, so no reason to fail: without it, incremental syncs cannot capture changes.
            advice = say.events_unreadable(str(self.config.get("client_secret") or ""), events.permission)
            self.logger.warning(advice)
            verdict = AirbyteConnectionStatus(status=Status.SUCCEEDED, message=f"{verdict.message} {advice}")
        return verdict

    # -- requests ---------------------------------------------------------------------------------------------
    def _probe_all(self) -> List[ProbeResult]:
        started = time.monotonic()
        probes: Dict[str, StreamFacts] = {**self.facts.streams, self.facts.events.name: self.facts.events}
        pool = ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="check")
        futures = {name: pool.submit(self._probe, name, facts, started) for name, facts in probes.items()}
        wait(futures.values(), timeout=self.deadline_seconds + 1)
        pool.shutdown(wait=False, cancel_futures=True)
        return [
            future.result() if future.done() else ProbeResult(
                stream, error=requests.exceptions.ConnectTimeout("timed out"), transient=True)
            for stream, future in futures.items()
        ]

    def _probe(self, stream: str, facts: StreamFacts, started: float) -> ProbeResult:
        url = f"{api_base(self.config)}/v1/{facts.probed_resource}"
        result = ProbeResult(stream)
        for attempt in range(1, self.max_attempts + 1):
            remaining = self.deadline_seconds - (time.monotonic() - started)
            if remaining < 1:
                break
            result = self._get_once(stream, url, facts.filters, remaining)
            if not result.transient:
                return result
            pause = min(remaining / 4, 0.5 * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
            if attempt < self.max_attempts:
                time.sleep(max(0.0, pause))
        return result

    def _get_once(self, stream: str, url: str, filters: Mapping[str, str], remaining: float) -> ProbeResult:
        timeout = (min(self.connect_timeout_seconds, remaining), min(self.read_timeout_seconds, remaining))
        try:
            response = requests.get(url, params={**filters, "limit": "1"}, headers=stripe_headers(self.config),
                                    timeout=timeout)
        except requests.exceptions.RequestException as error:
            return ProbeResult(stream, error=error, transient=True)
        retryable = (response.status_code in _TRANSIENT_STATUSES
                     and response.headers.get("Stripe-Should-Retry") != "false")
        message = "" if response.ok else say.stripe_error_message(response)
        result = ProbeResult(stream, status=response.status_code, stripe_message=message, transient=retryable)
        if retryable:
            self.logger.info(f"check: {describe_transient(response)} for {stream}; retrying")
        return result

    # -- verdict ----------------------------------------------------------------------------------------------
    def _verdict(self, results: List[ProbeResult]) -> AirbyteConnectionStatus:
        key = str(self.config.get("client_secret") or "")
        if any(r.status == 401 for r in results):
            return self._failed(say.invalid_key(key))
        unanswered = [r for r in results if r.status is None]
        if unanswered and len(unanswered) == len(results):
            return self._failed(say.unreachable(api_base(self.config), unanswered[0].error, self.deadline_seconds))
        denied = {r.stream: say.required_permission(r.stripe_message, self.facts.streams[r.stream].permission)
                  for r in results if r.status == 403}
        broken = [self._problem(r) for r in results if r.status != 403 and not (r.status and r.status < 300)]
        if broken:
            return self._failed(" ".join(broken))
        if denied:
            message = say.unreadable_streams(denied, len(results), key)
            if len(denied) == len(results):
                return self._failed(message)
            self.logger.warning(message)
            return AirbyteConnectionStatus(status=Status.SUCCEEDED, message=message)
        mode = KeyMode.from_key(key)
        return AirbyteConnectionStatus(
            status=Status.SUCCEEDED,
            message=f"{mode.announcement}. The key ({redact(key)}) can read all {len(results)} streams.")

    def _problem(self, result: ProbeResult) -> str:
        if result.status is None:
            return f"{result.stream}: {say.unreachable(api_base(self.config), result.error, self.deadline_seconds)}"
        text = say.unexpected_answer(result.stream, result.status, result.stripe_message)
        return text + (" (still failing after retries: try again later)." if result.transient else ".")

    def _failed(self, message: str) -> AirbyteConnectionStatus:
        self.logger.error(message)
        return AirbyteConnectionStatus(status=Status.FAILED, message=message)
