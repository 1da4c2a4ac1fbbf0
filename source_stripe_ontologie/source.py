"""The connector: the declarative manifest plus what the command line hands it."""
from __future__ import annotations

import calendar
import logging
import time
from pathlib import Path
from typing import Any, Iterator, List, Mapping, Optional

from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteStateMessage,
    ConfiguredAirbyteCatalog,
    Status,
)
from airbyte_cdk.sources.declarative.models.declarative_component_schema import (
    ConcurrencyLevel as ConcurrencyLevelModel,
)
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource
from airbyte_cdk.sources.streams.concurrent.abstract_stream import AbstractStream
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie.check import ReadAccessProbe, probed_resources
from source_stripe_ontologie.config_validation import ConfigValidator
from source_stripe_ontologie.error_messages import invalid_config
from source_stripe_ontologie.events import ChangeCapture, StaleEventsCursorFallback
from source_stripe_ontologie.fair_share import StreamFairShare
from source_stripe_ontologie.history_probe import HISTORY_START_KEY, HistoryStartProbe, probe_parameters
from source_stripe_ontologie.incremental import (
    FinishedWindowsStateConverter,
    FullRefreshStateDropper,
    IncomingStateValidator,
)
from source_stripe_ontologie.key_mode import KeyMode
from source_stripe_ontologie.rate_budget import RateLimits, StripeRateBudget
from source_stripe_ontologie.sync_report import SyncReport
from source_stripe_ontologie.vanished_cursor import RereadsOfVanishedCursors

PACKAGE_DIR = Path(__file__).resolve().parent
HISTORY_FLOOR = 1293840000  # 2011-01-01: older than any Stripe object (also the manifest's default start)


def manifest_path() -> Path:
    """The packaged manifest (inside the wheel), or the repository's root manifest in a source checkout.

    Always absolute: the CDK opens a relative path against the current directory first, so a stray
    `manifest.yaml` there would silently replace ours.
    """
    packaged = PACKAGE_DIR / "manifest.yaml"
    return packaged if packaged.exists() else PACKAGE_DIR.parent / "manifest.yaml"


class SourceStripeOntologie(YamlDeclarativeSource):
    """Stripe source built from `manifest.yaml`.

    CDK 7 reads with the config, catalog and state given at construction (not those passed to `read`), so the
    entry point builds this class with the command line's files. `check`, `discover` and `read` first refuse a
    config that cannot work (before any request), and register the key as a secret for the CDK's log filter.
    """

    def __init__(
        self,
        config: Optional[Mapping[str, Any]] = None,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
    ) -> None:
        state = FullRefreshStateDropper(catalog).keep(state)
        self._stale_events = StaleEventsCursorFallback()
        usable_state = self._stale_events.keep(state)
        super().__init__(path_to_yaml=str(manifest_path()), config=config, catalog=catalog, state=usable_state)
        self._incoming_state = state
        self._usable_state = usable_state
        self._rate_budget: Optional[StripeRateBudget] = None

    def _prepare_for_stream_build(self) -> None:
        """Give every request of the sync (streams, windows, invoice lines, events) one budget paced for the key's
        mode. The manifest's `api_budget` can hold one policy per request and knows nothing of the key's mode.
        """
        super()._prepare_for_stream_build()
        if self._rate_budget is None and not ConfigValidator().problems(self._config):
            limits = RateLimits.for_mode(self._mode().livemode, self._config.get("max_requests_per_second"),
                                         self._config.get("max_requests_per_endpoint_per_second"))
            self._rate_budget = StripeRateBudget(limits)
        self._constructor._api_budget = self._rate_budget

    def streams(self, config: Mapping[str, Any]) -> List[AbstractStream]:  # type: ignore[override]
        streams = super().streams(config)
        change_capture = ChangeCapture(self._constructor, self.resolved_manifest, self._config, self._usable_state,
                                       stale=self._stale_events.stale)
        windows_per_stream = self._windows_per_stream()
        for stream in streams:
            RereadsOfVanishedCursors.install(stream)  # on the CDK's generator, before it is wrapped
            FinishedWindowsStateConverter.install(stream.cursor)
            change_capture.install(stream)
            StreamFairShare.install(stream, windows_per_stream)
        return streams

    def _windows_per_stream(self) -> int:
        """A stream gets the share of the workers that its endpoint's share of the rate limit can keep busy."""
        limits = self._rate_budget.limits if self._rate_budget else RateLimits.for_mode(live=True)
        workers = self._constructor.create_component(
            ConcurrencyLevelModel, self.resolved_manifest["concurrency_level"], config=self._config
        ).get_concurrency_level()
        return StreamFairShare.limit_for(workers, limits.per_endpoint / limits.per_account)

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        self._register_key()
        problems = ConfigValidator().problems(self._config)
        if problems:
            return AirbyteConnectionStatus(status=Status.FAILED, message=invalid_config(problems))
        logger.info(self._mode().announcement)
        probe = ReadAccessProbe(self._config, probed_resources(self.resolved_manifest), logger=logger)
        return probe.run()

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        self._refuse_unusable_config()
        return super().discover(logger, config)

    def read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Optional[List[AirbyteStateMessage]] = None,
    ) -> Iterator[AirbyteMessage]:
        self._refuse_unusable_config()
        stream_names = [stream["name"] for stream in self.resolved_manifest["streams"]]
        IncomingStateValidator(stream_names).validate(self._incoming_state)
        for warning in self._stale_events.warnings:
            logger.warning(warning)
        mode = self._mode()
        logger.info(mode.announcement)
        self._start_streams_where_their_history_begins(catalog)
        resumed = {message.stream.stream_descriptor.name for message in self._usable_state or [] if message.stream}
        report = SyncReport(mode, self._config["client_secret"], self._config.get("account_id"),
                            streams_with_state=resumed)
        try:
            for message in super().read(logger, config, catalog, state):
                yield from report.observe(message)
        except AirbyteTracedException as failure:
            raise report.failure(failure) from None
        finally:
            if self._rate_budget is not None:
                logger.info(self._rate_budget.summary())

    def _start_streams_where_their_history_begins(self, catalog: ConfiguredAirbyteCatalog) -> None:
        """Probe the streams this sync reads without a saved state; the manifest's windows start from the answer."""
        if self._config.get("probe_history_start") is False:
            return
        saved = {message.stream.stream_descriptor.name for message in self._usable_state or [] if message.stream}
        selected = {configured.stream.name for configured in catalog.streams} - saved
        to_probe = {stream["name"]: probe_parameters(stream) for stream in self.resolved_manifest["streams"]
                    if stream["name"] in selected}
        start_date = self._config.get("start_date")
        floor = calendar.timegm(time.strptime(start_date, "%Y-%m-%dT%H:%M:%SZ")) if start_date else HISTORY_FLOOR
        until = int(time.time()) - int(self._config.get("read_lag_seconds", 60))
        self._prepare_for_stream_build()  # the probe's requests go through the sync's rate budget
        starts = HistoryStartProbe(self._config, self._rate_budget).starts(to_probe, floor, until)
        self._config = {**self._config, HISTORY_START_KEY: starts}

    def _register_key(self) -> None:
        """The entry point registers the key as written (padding included), and only on the command line."""
        key = self._config.get("client_secret")
        if isinstance(key, str) and key.strip():
            add_to_secrets(key.strip())

    def _refuse_unusable_config(self) -> None:
        self._register_key()
        ConfigValidator().validate(self._config)

    def _mode(self) -> KeyMode:
        return KeyMode.from_key(self._config["client_secret"])
