"""The connector: the declarative manifest plus what the command line hands it."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator, List, Mapping, Optional

from airbyte_cdk.models import AirbyteMessage, AirbyteStateMessage, ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource
from airbyte_cdk.sources.streams.concurrent.abstract_stream import AbstractStream

from source_stripe_ontologie.events import ChangeCapture, StaleEventsCursorFallback
from source_stripe_ontologie.incremental import (
    FinishedWindowsStateConverter,
    FullRefreshStateDropper,
    IncomingStateValidator,
)

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
    entry point builds this class with the command line's files.
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

    def read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Optional[List[AirbyteStateMessage]] = None,
    ) -> Iterator[AirbyteMessage]:
        stream_names = [stream["name"] for stream in self.resolved_manifest["streams"]]
        IncomingStateValidator(stream_names).validate(self._incoming_state)
        for warning in self._stale_events.warnings:
            logger.warning(warning)
        yield from super().read(logger, config, catalog, state)
