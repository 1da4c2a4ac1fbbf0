"""The connector: the declarative manifest plus what the command line hands it."""
from __future__ import annotations

import calendar
import logging
import time
from collections import Counter
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
from airbyte_cdk.sources.streams.concurrent.cursor import ConcurrentCursor
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie import cdk_seam
from source_stripe_ontologie.cdk_seam import FinishedWindowsStateConverter
from source_stripe_ontologie.account_pool import in_flight_for
from source_stripe_ontologie.check import ReadAccessProbe
from source_stripe_ontologie.children import ChildrenExpansion
from source_stripe_ontologie.components import SubListCompleter
from source_stripe_ontologie.config_validation import ConfigValidator
from source_stripe_ontologie.connected_accounts import (
    AccountDirectory,
    AccountSelection,
    ConnectSync,
    PerAccountState,
    accounts_listing_refused,
)
from source_stripe_ontologie.error_messages import invalid_config
from source_stripe_ontologie.change_capture import ChangeCapture, StaleEventsCursorFallback
from source_stripe_ontologie.fair_share import StreamFairShare
from source_stripe_ontologie.history_probe import (
    DAY,
    HISTORY_START_KEY,
    WINDOW_DAYS_KEY,
    HistoryStartProbe,
    ProbedList,
)
from source_stripe_ontologie.incremental import FullRefreshStateDropper, IncomingStateValidator
from source_stripe_ontologie.key_mode import KeyMode
from source_stripe_ontologie.rate_budget import RateLimits, StripeRateBudget
from source_stripe_ontologie.page_lane import PageAllowance
from source_stripe_ontologie.stream_facts import ManifestFacts, StreamFacts
from source_stripe_ontologie.streams import BuiltPartitions, StripeStream, UnobservedWindowsCursor
from source_stripe_ontologie.sync_report import RecordCountInLog, SyncReport
from source_stripe_ontologie.unsettled import UnsettledRefresh
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


class SourceStripeOntologie(cdk_seam.ManifestPreparedOnce, YamlDeclarativeSource):
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
        # A Connect sync reads each account with a source of its own, handed the account's part of the state.
        self._accounts = AccountSelection.of(config or {})
        usable_state = self._stale_events.keep(state) if self._accounts is None else None
        super().__init__(path_to_yaml=str(manifest_path()), config=config, catalog=catalog, state=usable_state)
        self._catalog = catalog
        self._nested = False  # True for the source of one account of a Connect sync
        self.facts = ManifestFacts.from_manifest(self.resolved_manifest)
        self._incoming_state = state
        self._usable_state = usable_state
        self._rate_budget: Optional[StripeRateBudget] = None
        # Set by our entry point, which writes pages of records (page_lane.py); the CDK's entry point cannot.
        self.page_allowance: Optional[PageAllowance] = None
        self._newest: Mapping[str, int] = {}  # {stream: its newest object's time}, probed on a first sync

    @property
    def config(self) -> Mapping[str, Any]:
        """The config the streams are built with (the command line's, plus the probed history starts)."""
        return cdk_seam.source_config(self)

    def rate_budget(self) -> Optional[StripeRateBudget]:
        """One budget for every request of the sync (streams, windows, sub-lists, events, probes), paced for the key's
        mode; None while the config cannot work (it is refused before any request)."""
        if self._rate_budget is None and not ConfigValidator().problems(self.config):
            limits = RateLimits.for_mode(self._mode().livemode, self.config.get("max_requests_per_second"),
                                         self.config.get("max_requests_per_endpoint_per_second"))
            self._rate_budget = StripeRateBudget(limits)
        return self._rate_budget

    def streams(self, config: Mapping[str, Any]) -> List[AbstractStream]:  # type: ignore[override]
        factory = cdk_seam.component_factory(self)
        cdk_seam.give_api_budget(factory, self.rate_budget())
        built = super().streams(config)
        change_capture = ChangeCapture(factory, self.resolved_manifest, self.facts, self.config, self._usable_state,
                                       completer=self._sub_list_completer, stale=self._stale_events.stale,
                                       one_events_probe=self._nested)
        unsettled = UnsettledRefresh(factory, self.resolved_manifest, self.config, self._usable_state)
        children = ChildrenExpansion(factory, self.resolved_manifest, self.config)
        windows_per_stream = self.windows_per_stream()
        wrapped: List[AbstractStream] = []
        for stream in built:
            RereadsOfVanishedCursors.install(stream)
            cdk_seam.settle_stream_environment(stream)
            facts = self.facts.stream(stream.name)
            windows = cursor = stream.cursor
            ours = FinishedWindowsStateConverter.install(cursor) if isinstance(cursor, ConcurrentCursor) else None
            # The page lane carries pages, not records: streams whose wrappers look at each record (unsettled
            # objects, children of parents) keep the record-by-record path.
            pages = None if facts is not None and (facts.unsettled or facts.children_of) else self.page_allowance
            windows_read = BuiltPartitions(stream, pages, self._newest.get(stream.name))
            partitions, cursor = change_capture.wrap(stream.name, windows_read, cursor)
            partitions, cursor = unsettled.wrap(facts, partitions, cursor, windows)
            partitions, cursor = children.wrap(facts, partitions, cursor)
            if ours is not None and isinstance(cursor, ConcurrentCursor):
                cursor = UnobservedWindowsCursor(cursor)  # (change capture's cursor observes nothing either)
            wrapped.append(StripeStream(stream, StreamFairShare(partitions, windows_per_stream), cursor))
        return wrapped

    def _sub_list_completer(self, facts: StreamFacts) -> Optional[SubListCompleter]:
        """Completes the sub-lists of objects re-fetched by id, like the stream's list extractor does."""
        return SubListCompleter(self.config, facts.sub_lists, self.rate_budget(), facts.name) if facts.sub_lists else None

    def windows_per_stream(self) -> int:
        """A stream gets the windows its endpoint's rate limit can keep busy."""
        budget = self.rate_budget()
        limits = budget.limits if budget else RateLimits.for_mode(live=True)
        return StreamFairShare.limit_for(self.workers(), limits.per_endpoint)

    def workers(self) -> int:
        """The sync's worker threads (the manifest's `concurrency_level`, from `num_workers`)."""
        return cdk_seam.component_factory(self).create_component(
            ConcurrencyLevelModel, self.resolved_manifest["concurrency_level"], config=self.config
        ).get_concurrency_level()

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        self._register_key()
        problems = ConfigValidator().problems(self.config)
        if problems:
            return AirbyteConnectionStatus(status=Status.FAILED, message=invalid_config(problems))
        logger.info(self._mode().announcement)
        if self._accounts is not None and self._accounts.accounts == "all":
            refusal = accounts_listing_refused(self.config)
            if refusal:
                return AirbyteConnectionStatus(status=Status.FAILED, message=refusal)
        return ReadAccessProbe(self.config, self.facts, logger=logger).run()

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
        IncomingStateValidator(self.facts.names).validate(self._incoming_state)
        if self._accounts is not None:
            yield from self._read_connected_accounts(logger, catalog)
            return
        for warning in self._stale_events.warnings:
            logger.warning(warning)
        mode = self._mode()
        if not self._nested:
            logger.info(mode.announcement)
        self._start_streams_where_their_history_begins(catalog)
        resumed = {message.stream.stream_descriptor.name for message in self._usable_state or [] if message.stream}
        if self._nested:  # an empty account of a Connect sync is not worth a warning per stream
            resumed |= set(self.facts.names)
        report = SyncReport(mode, self.config["client_secret"], self.config.get("account_id"),
                            streams_with_state=resumed)
        # The page lane's counts (the top source's only): a Connect sync's accounts share this logger, at once
        count_in_log = RecordCountInLog(report) if not self._nested else None
        if count_in_log is not None:
            self.logger.addFilter(count_in_log)
        try:
            for message in super().read(logger, config, catalog, state):
                yield from report.observe(message)
        except AirbyteTracedException as failure:
            raise report.failure(failure) from None
        finally:
            if count_in_log is not None:
                self.logger.removeFilter(count_in_log)
            if self._rate_budget is not None and not self._nested:
                logger.info(self._rate_budget.summary())

    def _read_connected_accounts(self, logger: logging.Logger,
                                 catalog: ConfiguredAirbyteCatalog) -> Iterator[AirbyteMessage]:
        """A Connect sync: every selected account read by a single-account source (source_stripe_ontologie/
        connected_accounts.py), all through this sync's one rate budget."""
        logger.info(self._mode().announcement)
        budget = self.rate_budget()
        cdk_seam.cache_component_schema()  # one source is built per account
        limits = budget.limits if budget else RateLimits.for_mode(live=True)
        in_flight = in_flight_for(limits.per_account, self.config.get("accounts_in_flight"))
        # The accounts in flight share the sync's workers: each account's own threads (and their memory) are a
        # share, not the whole number again.
        workers_per_account = max(2, self.workers() // in_flight)

        def account_source(config: Mapping[str, Any],
                           state: List[AirbyteStateMessage]) -> "SourceStripeOntologie":
            config = {**config, "num_workers": workers_per_account}
            source = SourceStripeOntologie(config=config, catalog=self._catalog or catalog, state=state)
            source._rate_budget = budget
            source._nested = True
            return source

        logger.info(f"Reading up to {in_flight} accounts at once ({workers_per_account} workers each), all within "
                    f"one rate budget of {limits.per_account:g} requests/s.")
        sync = ConnectSync(self._accounts, self.config, PerAccountState(self._incoming_state),
                           [configured.stream.name for configured in catalog.streams], account_source,
                           AccountDirectory(self.config, budget, logger), logger, in_flight=in_flight)
        try:
            yield from sync.messages(catalog)
        finally:
            if budget is not None:
                accounts = sync.read + len(sync.failures)
                logger.info(f"{accounts} accounts read ({len(sync.failures)} failed), "
                            f"{sum(budget.requests.values())} requests, "
                            f"{sum(budget.requests.values()) / max(accounts, 1):.1f} per account. Stripe's read "
                            f"allowance for Connect platforms averages 500 reads per transaction of the connected "
                            f"accounts over 30 days: compare these requests, times the syncs a month, with that. "
                            f"{budget.summary()}")
        failure = sync.summary()
        if failure is not None:
            raise failure

    def _start_streams_where_their_history_begins(self, catalog: ConfiguredAirbyteCatalog) -> None:
        """Probe the streams this sync reads without a saved state; the manifest's windows start from the answer."""
        if self.config.get("probe_history_start") is False:
            return
        saved = {message.stream.stream_descriptor.name for message in self._usable_state or [] if message.stream}
        selected = {configured.stream.name for configured in catalog.streams} - saved
        to_probe = {name: ProbedList(facts.resource, facts.filters, facts.created_from or "created")
                    for name, facts in self.facts.streams.items() if name in selected}
        start_date = self.config.get("start_date")
        floor = calendar.timegm(time.strptime(start_date, "%Y-%m-%dT%H:%M:%SZ")) if start_date else HISTORY_FLOOR
        until = int(time.time()) - int(self.config.get("read_lag_seconds", 60))
        window = int(self.config.get("slice_range_days") or 30) * DAY
        found = HistoryStartProbe(self.config, self.rate_budget(), resolution=window).histories(to_probe, floor, until)
        # A stream within one page is one window; a bigger one is windowed up to its newest object, then one tail.
        self._newest = {name: history.newest for name, history in found.items() if history.one_window_days is None}
        budget = self.rate_budget()
        # The stream with the most pages for its endpoint's limit goes first (rate_budget.py); not between the
        # accounts of a Connect sync, which share one budget and read the same endpoints at once.
        if budget is not None and not self._nested:
            pages: Counter = Counter()  # streams listing the same resource share its endpoint
            for name, history in found.items():
                pages[f"/v1/{to_probe[name].resource}"] += history.pages
            budget.expect_pages(dict(pages))
        cdk_seam.replace_source_config(self, {
            **self.config, HISTORY_START_KEY: {name: history.start for name, history in found.items()},
            WINDOW_DAYS_KEY: {name: history.one_window_days for name, history in found.items()
                              if history.one_window_days is not None}})

    def _register_key(self) -> None:
        """The entry point registers the key as written (padding included), and only on the command line.

        An account's source of a Connect sync has the sync's key, registered by the sync's source: registering it
        again per account would lengthen the CDK's list of secrets, which every log line is scrubbed against, by one
        entry per account (10,000 accounts: 10,000 replacements per line)."""
        key = self.config.get("client_secret")
        if isinstance(key, str) and key.strip() and not self._nested:
            add_to_secrets(key.strip())

    def _refuse_unusable_config(self) -> None:
        self._register_key()
        ConfigValidator().validate(self.config)

    def _mode(self) -> KeyMode:
        return KeyMode.from_key(self.config["client_secret"])
