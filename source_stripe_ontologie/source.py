"""The connector: the declarative manifest plus what the command line hands it."""
from __future__ import annotations

import logging
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
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource
from airbyte_cdk.sources.streams.concurrent.abstract_stream import AbstractStream
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie.check import ReadAccessProbe, probed_resources
from source_stripe_ontologie.config_validation import ConfigValidator
from source_stripe_ontologie.error_messages import invalid_config
from source_stripe_ontologie.events import ChangeCapture, StaleEventsCursorFallback
from source_stripe_ontologie.incremental import (
    FinishedWindowsStateConverter,
    FullRefreshStateDropper,
    IncomingStateValidator,
)
from source_stripe_ontologie.key_mode import KeyMode
from source_stripe_ontologie.sync_report import SyncReport

PACKAGE_DIR = Path(__file__).resolve().parent


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

    def streams(self, config: Mapping[str, Any]) -> List[AbstractStream]:  # type: ignore[override]
        streams = super().streams(config)
        change_capture = ChangeCapture(self._constructor, self.resolved_manifest, self._config, self._usable_state)
        for stream in streams:
            FinishedWindowsStateConverter.install(stream.cursor)
            change_capture.install(stream)
        return streams

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
        report = SyncReport(mode, self._config["client_secret"], self._config.get("account_id"))
        try:
            for message in super().read(logger, config, catalog, state):
                yield from report.observe(message)
        except AirbyteTracedException as failure:
            raise report.failure(failure) from None

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
