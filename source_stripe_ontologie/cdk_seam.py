"""The one place where the connector touches airbyte-cdk internals (pinned: airbyte-cdk==7.39.1).

Everything else uses the CDK's public extension points: custom components declared in the manifest (extractor,
paginator, error handler, record filter, transformation), `YamlDeclarativeSource`'s public methods, a public
`AbstractStream` decorator around each built stream (source_stripe_ontologie/streams.py) instead of rewiring a
`DefaultStream`'s partition generator and cursor, and our own `launch()` serialising records
(source_stripe_ontologie/entrypoint.py) instead of replacing `AirbyteEntrypoint.airbyte_message_to_string`.
What is left has no public way in, and each use is listed here with why, and guarded by a canary test in
unit_tests/test_cdk_seam.py that fails loudly when the CDK changes it (a rename must not, for instance, leave
every request unpaced without a word):

1. `ConcurrentDeclarativeSource._config` (read, and replaced): the config the streams are built with. The source
   adds each stream's probed history start to it so that the manifest's `start_datetime` can read it; the CDK
   builds streams from this attribute whatever config `streams()` is given.
2. `ConcurrentDeclarativeSource._constructor` (read): the component factory that built the streams; its public
   `create_component` builds the extra requesters change capture needs, with the manifest's definitions.
3. `ModelToComponentFactory._api_budget` (written): the budget every requester the factory builds paces through.
   The manifest's `api_budget` only builds `HTTPAPIBudget` policies, which apply the first matching policy per
   request and know nothing of the key's mode; the factory takes a budget only in its constructor, which the
   source calls itself.
4. `ConcurrentCursor._connector_state_converter` (replaced) and `AbstractStreamStateConverter.
   _get_latest_complete_time` (overridden): what a datetime cursor writes as state. The manifest cannot choose
   a `DatetimeBasedCursor`'s state converter; ours writes the end of the finished windows, the events cursor, and
   (decorating it, `wrap_state_converter`) the oldest unsettled object's second.
5. `ConcurrentCursor._end_provider` (called): the end of this sync's windows, so change capture reads events up
   to exactly where the windows stop.
6. `ManifestComponentTransformer` (an internal step of the manifest parser): gives a requester definition copied
   from `definitions` the `$parameters` of the stream it serves (its name, resource and permission, so its errors
   name them), as the parser does for the manifest's own components.
7. `ConcurrentCursor._lock` (held), and `ConcurrentCursor.start` / `_concurrent_state` / `_get_concurrent_state`
   (reset): change capture emits the state from the partition-generator thread while the main thread closes
   windows, so it takes the cursor's own lock; and a stream whose events cursor is found past Stripe's retention
   when its events are listed restarts its windows from the start, as without a saved state.
8. `DefaultStream._stream_partition_generator._partition_factory._retriever.pagination_tracker_factory`
   (replaced): how many times a window may be re-read after its page cursor vanished. The manifest's
   `pagination_reset` has no setting for it, and the CDK's own tracker allows one re-read.
9. `concurrent_declarative_source.get_declarative_component_schema` (wrapped in a cache, Connect syncs only): a
   Connect sync builds one source per account, and each construction parses the CDK's component schema YAML again
   (about half of a construction's time: minutes for thousands of accounts). The schema is a constant of the
   installed CDK, only read by the validation.
10. `serpyco_rs._describe.get_attributes_doc` and `serpyco_rs._json_schema._convert.get_attributes_doc` (replaced,
    before airbyte-cdk is imported; a library under the CDK): building the serializers of the Airbyte protocol
   models, which `airbyte_cdk.models` does on import, reads every model's attribute docstrings from its source
   file (`inspect.getsource` + `ast.parse`) for the type description and for the JSON schema each serializer
   builds. The docs only become `description`s there, which validation ignores, yet they cost ~0.3-0.9 s of every
   command's start-up (`spec` included). For the protocol models' modules the docs are taken as empty; any other
   class keeps serpyco's own reader. `source_stripe_ontologie/__init__.py` imports this module first for that.
11. The concurrent read's record path (`PartitionReader` -> queue -> `ConcurrentReadProcessor.on_record` ->
   `stream_data_to_airbyte_message`) carries a page of serialised lines (page_lane.py) as one `Record` whose data
   is `{PAGE_KEY: PageLines}`: the CDK copies the data with `dict()` and applies no schema transformation, so the
   `PageLines` object reaches the entry point as it was. The CDK's own per-stream record counter (its
   "Read N records" log line) then counts pages; the state messages' `sourceStats` are counted by our entry point.
   No public way exists to hand the main thread something other than one record at a time.
12. `DefaultStream._stream_partition_generator._partition_factory` (its public `create` called): the partition of
   a window the CDK did not slice, so that the windows after a stream's newest object are read as one
   (streams.tail_window). The factory builds it exactly as it builds the CDK's own windows (same retriever, schema
   and message repository), so the cursor closes it like any other; the manifest's `step` is one size for every
   window, and there is no public way to hand a stream a slice.
13. `HttpRequester._http_client` and `HttpClient._session` (settled): the requests session a requester sends
   through. The CDK asks it for the environment's proxy and CA-bundle settings on every request
   (`merge_environment_settings`: two walks over `os.environ` and a no-proxy match, ~7% of the CPU of a CPU-bound
   sync); they cannot change during a sync and a requester only ever calls one host, so they are resolved once,
   for that host, into the session itself (`trust_env` off). HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE work
   as before. The CDK builds the requester's client and session itself and takes no session from the manifest.
14. `ConcurrentDeclarativeSource._pre_process_manifest` and `_validate_source` (overridden, `ManifestPreparedOnce`):
   every construction resolves the manifest's references, propagates its `$parameters` and validates the result
   against the component schema (~0.1 s CPU). A Connect sync builds one source per account from the same manifest:
   the prepared manifest is kept per manifest content, each source gets its own copy, and a content is validated
   once per process (an invalid manifest still fails every construction, as it never enters the cache).
"""
from __future__ import annotations

import threading
from typing import Any, Dict

# 10. (first: it must run before airbyte_cdk.models is imported) ---------------------------------------------------
PROTOCOL_MODEL_MODULES = ("airbyte_protocol_dataclasses.", "airbyte_protocol.", "airbyte_cdk.models.")


def skip_protocol_attribute_docs() -> None:
    """Serpyco builds the protocol models' serializers without reading their attribute docs (idempotent)."""
    import serpyco_rs._describe as describe
    import serpyco_rs._json_schema._convert as convert

    for module in (describe, convert):
        read_docs = module.get_attributes_doc
        if getattr(read_docs, "skips_protocol_docs", False):
            continue
        module.get_attributes_doc = _without_protocol_docs(read_docs)


def _without_protocol_docs(read_docs: Any) -> Any:
    def attributes_doc(cls: type) -> dict:
        if str(getattr(cls, "__module__", "")).startswith(PROTOCOL_MODEL_MODULES):
            return {}
        return read_docs(cls)

    attributes_doc.skips_protocol_docs = True  # type: ignore[attr-defined]
    return attributes_doc


skip_protocol_attribute_docs()  # before the imports below build the protocol serializers

import copy  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import orjson  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Callable, List, Mapping, MutableMapping, Optional  # noqa: E402

import requests  # noqa: E402
from airbyte_cdk.sources.declarative.models.declarative_component_schema import HttpRequester as HttpRequesterModel  # noqa: E402
from airbyte_cdk.sources.declarative.parsers.manifest_component_transformer import ManifestComponentTransformer  # noqa: E402
from airbyte_cdk.sources.streams.call_rate import APIBudget  # noqa: E402
from airbyte_cdk.sources.streams.concurrent.cursor import ConcurrentCursor  # noqa: E402
from airbyte_cdk.sources.streams.concurrent.state_converters.datetime_stream_state_converter import (  # noqa: E402
    CustomFormatConcurrentStreamStateConverter,
)
from airbyte_cdk.sources.types import Record  # noqa: E402


# 1. and 2. -------------------------------------------------------------------------------------------------------
def source_config(source: Any) -> Mapping[str, Any]:
    """The config the CDK builds the source's streams with."""
    return source._config


def replace_source_config(source: Any, config: Mapping[str, Any]) -> None:
    source._config = config


def component_factory(source: Any) -> Any:
    return source._constructor


# 3. --------------------------------------------------------------------------------------------------------------
def give_api_budget(factory: Any, budget: Optional[APIBudget]) -> None:
    """Every requester (and custom component with an `api_budget` field) built from now on paces through it."""
    if not hasattr(factory, "_api_budget"):
        raise AttributeError("airbyte-cdk's ModelToComponentFactory no longer has _api_budget: requests would go "
                             "unpaced; see source_stripe_ontologie/cdk_seam.py")
    factory._api_budget = budget


# 4. --------------------------------------------------------------------------------------------------------------
class FinishedWindowsStateConverter(CustomFormatConcurrentStreamStateConverter):
    """Writes as state the end of the finished windows, not the newest object found in them.

    The CDK's state is the newest `created` emitted (or the start when nothing was), so a stream without recent
    objects walks every window from its newest object (or from 2011) to now again on every sync: an empty stream
    would re-read its whole history every hour. The end of the unbroken run of finished windows is as safe (every
    object up to it was read) and leaves the next sync only the new seconds.
    """

    def _get_latest_complete_time(self, slices: List[MutableMapping[str, Any]]) -> Any:
        if not slices:
            raise RuntimeError("A date-range state always holds the slice of the previous sync or of start_date.")
        return self.merge_intervals(slices)[0][self.END_KEY]

    @classmethod
    def install(cls, cursor: Any) -> Optional["FinishedWindowsStateConverter"]:
        """Swap the converter of a datetime `ConcurrentCursor` for an instance of `cls`; returns it (None when the
        cursor is of another kind)."""
        converter = getattr(cursor, "_connector_state_converter", None)
        if not isinstance(cursor, ConcurrentCursor) or not isinstance(
                converter, CustomFormatConcurrentStreamStateConverter):
            return None
        ours = cls.__new__(cls)
        ours.__dict__.update(converter.__dict__)  # same format, granularity and parser
        cursor._connector_state_converter = ours
        return ours


def wrap_state_converter(cursor: ConcurrentCursor, wrap: Callable[[Any], Any]) -> Any:
    """Replace the cursor's state converter by `wrap(current converter)` (a decorator that adds state keys)."""
    if not hasattr(cursor, "_connector_state_converter"):
        raise AttributeError("airbyte-cdk's ConcurrentCursor no longer has _connector_state_converter; see "
                             "source_stripe_ontologie/cdk_seam.py")
    cursor._connector_state_converter = wrap(cursor._connector_state_converter)
    return cursor._connector_state_converter


# 5. --------------------------------------------------------------------------------------------------------------
def window_end(cursor: ConcurrentCursor) -> int:
    """Epoch seconds where this sync's `created` windows end (the manifest's `end_datetime`)."""
    end: Callable[[], datetime] = cursor._end_provider
    return int(end().timestamp())


# 6. --------------------------------------------------------------------------------------------------------------
def build_requester(factory: Any, definition: Mapping[str, Any], parameters: Mapping[str, Any],
                    config: Mapping[str, Any], name: str, extra_filters: Optional[List[Mapping[str, Any]]] = None) -> Any:
    """A requester from an unresolved-parameters copy of `definitions.requester`, serving `parameters`.

    `extra_filters` go first in its error handler's response filters (e.g. a 404 that means "gone", not failure).
    """
    definition = copy.deepcopy(dict(definition))
    if extra_filters:
        definition["error_handler"]["response_filters"][:0] = copy.deepcopy(extra_filters)
    definition["$parameters"] = dict(parameters)
    definition = ManifestComponentTransformer().propagate_types_and_parameters("", definition, {})
    requester = factory.create_component(HttpRequesterModel, definition, config, name=name)
    settle_environment(requester)
    return requester


# 7. --------------------------------------------------------------------------------------------------------------
def cursor_lock(cursor: ConcurrentCursor) -> Any:
    """The lock the cursor holds while it changes its state."""
    return cursor._lock


def restart_from_start(cursor: ConcurrentCursor) -> None:
    """Make the cursor's windows start where they start without a saved state (start_date, or history start)."""
    with cursor._lock:
        cursor.start, cursor._concurrent_state = cursor._get_concurrent_state({})


# 8. and 12. ------------------------------------------------------------------------------------------------------
def _partition_factory(stream: Any) -> Any:
    """What builds the windows of a stream the CDK built from the manifest (None for another kind of stream)."""
    return getattr(getattr(stream, "_stream_partition_generator", None), "_partition_factory", None)


def retriever_of(stream: Any) -> Any:
    """The retriever of a stream the CDK built from the manifest (None for a stream of another kind)."""
    return getattr(_partition_factory(stream), "_retriever", None)


def set_pagination_tracker(stream: Any, tracker_factory: Callable[[], Any]) -> bool:
    """Give the retriever of a stream the CDK built from the manifest a new pagination tracker per window; False when
    the stream has no such retriever (nothing was changed)."""
    retriever = retriever_of(stream)
    if retriever is None or not hasattr(retriever, "pagination_tracker_factory"):
        return False
    retriever.pagination_tracker_factory = tracker_factory
    return True


def window_partition(stream: Any, stream_slice: Any) -> Any:
    """The partition reading `stream_slice` of a stream the CDK built from the manifest, built like its windows."""
    factory = _partition_factory(stream)
    if factory is None or not hasattr(factory, "create"):
        raise AttributeError("airbyte-cdk's DefaultStream no longer has _stream_partition_generator."
                             "_partition_factory: see source_stripe_ontologie/cdk_seam.py")
    return factory.create(stream_slice)


# 9. --------------------------------------------------------------------------------------------------------------
_SCHEMA_MODULE = "airbyte_cdk.sources.declarative.concurrent_declarative_source"


def cache_component_schema() -> None:
    """Parse the CDK's declarative component schema once per process instead of once per source built."""
    module = importlib.import_module(_SCHEMA_MODULE)
    current = getattr(module, "get_declarative_component_schema", None)
    if current is None:
        raise AttributeError(f"airbyte-cdk's {_SCHEMA_MODULE} no longer has get_declarative_component_schema: see "
                             f"source_stripe_ontologie/cdk_seam.py")
    if not hasattr(current, "cache_info"):
        module.get_declarative_component_schema = functools.lru_cache(maxsize=1)(current)


# 11. -------------------------------------------------------------------------------------------------------------
PAGE_KEY = "__stripe_ontologie_page__"  # no Stripe object has such a field


def page_record(page: Any, last: Record) -> Record:
    """One record of the CDK's record path carrying `page`, in the window (slice) of `last`."""
    return Record(data={PAGE_KEY: page}, stream_name=last.stream_name, associated_slice=last.associated_slice)


def page_of(data: Any) -> Any:
    """The page a record's data carries (None for an ordinary record)."""
    return data.get(PAGE_KEY) if len(data) == 1 else None


# 13. -------------------------------------------------------------------------------------------------------------
def settle_environment(requester: Any) -> bool:
    """Resolve the environment's proxy and CA settings for the requester's host once, into its session; False when
    the requester has no requests session, or it was settled already (nothing was changed)."""
    session = getattr(getattr(requester, "_http_client", None), "_session", None)
    if not isinstance(session, requests.Session) or not session.trust_env:
        return False
    settled = session.merge_environment_settings(requester.get_url(), {}, None, None, None)
    session.proxies.update(settled["proxies"])
    session.verify = settled["verify"]
    session.trust_env = False
    return True


def settle_stream_environment(stream: Any) -> bool:
    """`settle_environment` for the requester of a stream the CDK built from the manifest."""
    return settle_environment(getattr(retriever_of(stream), "requester", None))


# 14. -------------------------------------------------------------------------------------------------------------
class ManifestPreparedOnce:
    """Mixin for the source (before the CDK's class): the manifest is prepared and validated once per content."""

    _prepared: Dict[bytes, bytes] = {}  # manifest as loaded -> prepared and validated manifest (a few, per process)
    _prepared_lock = threading.Lock()

    def _pre_process_manifest(self, manifest: Dict[str, Any]) -> Dict[str, Any]:
        self._manifest_key = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)
        prepared = self._prepared.get(self._manifest_key)
        if prepared is not None:
            return orjson.loads(prepared)  # a copy of its own: no source sees another's changes
        return super()._pre_process_manifest(manifest)  # type: ignore[misc]

    def _validate_source(self) -> None:
        key = getattr(self, "_manifest_key", None)
        if key is not None and key in self._prepared:
            return
        super()._validate_source()  # type: ignore[misc]
        if key is not None:
            with self._prepared_lock:
                if len(self._prepared) >= 4:  # tests build a few variants; a sync, one
                    self._prepared.clear()
                self._prepared[key] = orjson.dumps(self._source_config)  # type: ignore[attr-defined]
