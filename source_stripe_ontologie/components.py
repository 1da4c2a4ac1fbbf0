"""Custom components the manifest refers to by `class_name`.

Each class does one job the declarative manifest cannot express (well) on its own; its docstring says why.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import InitVar, dataclass, field
from typing import Any, Iterable, List, Mapping, MutableMapping, Optional, Tuple

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import PaginationStrategy
from airbyte_cdk.sources.streams.call_rate import APIBudget
from airbyte_cdk.sources.streams.http.error_handlers import HttpStatusErrorHandler
from airbyte_cdk.sources.streams.http.error_handlers.default_error_mapping import DEFAULT_ERROR_MAPPING
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction
from airbyte_cdk.sources.streams.http.http_client import HttpClient
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

logger = logging.getLogger("airbyte")

STRIPE_VERSION = "2024-06-20"
DEFAULT_API_BASE = "https://api.stripe.com"


def stripe_headers(config: Mapping[str, Any]) -> dict[str, str]:
    """The headers every Stripe request of this connector carries."""
    headers = {"Authorization": f"Bearer {config['client_secret']}", "Stripe-Version": STRIPE_VERSION}
    if config.get("account_id"):
        headers["Stripe-Account"] = config["account_id"]
    return headers


def api_base(config: Mapping[str, Any]) -> str:
    return (config.get("api_base_url") or DEFAULT_API_BASE).rstrip("/")


@dataclass
class StripeKeyHeaders(DeclarativeAuthenticator):
    """The headers of every request a requester built from the manifest sends: `stripe_headers` (the key as a
    Bearer token, the pinned Stripe-Version, and Stripe-Account when the config names an account), built once.

    The manifest can say the same with a `BearerAuthenticator` and `request_headers`, but the CDK renders those
    Jinja templates on every request, the key's twice (once for the headers, once more when `requests` prepares
    the request): measured at ~10% of the CPU of a CPU-bound sync, for values that never change during one. Here
    they are built on first use (a config without a key is refused before any request) and are the same headers
    the probes and `check` send, from one definition.
    """

    config: Mapping[str, Any]
    parameters: InitVar[Mapping[str, Any]] = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._headers: Optional[Mapping[str, str]] = None

    def get_auth_header(self) -> Mapping[str, Any]:
        if self._headers is None:
            self._headers = stripe_headers(self.config)
        return self._headers

    @property
    def auth_header(self) -> str:
        return "Authorization"

    @property
    def token(self) -> str:
        return str(self.get_auth_header()["Authorization"])


@dataclass
class StripeListExtractor(RecordExtractor):
    """Reads `body["data"]` of a Stripe list page straight from the parsed JSON, and completes the records' sub-lists.

    The manifest's `DpathExtractor` walks the whole response on every page (measured at ~70% of worker CPU);
    Stripe's list envelope always holds its records at `data`, so this reads them directly. A stream that declares
    `sub_lists` (invoices: `lines`) gets them completed by `SubListCompleter`: a manifest can page a child stream,
    but not merge a child list back into its parent record.
    """

    parameters: InitVar[Mapping[str, Any]] = None
    config: Mapping[str, Any] = field(default_factory=dict)
    api_budget: Optional[APIBudget] = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        sub_lists = tuple((parameters or {}).get("sub_lists") or ())
        stream = str((parameters or {}).get("name") or "")
        self.completer = SubListCompleter(self.config, sub_lists, self.api_budget, stream) if sub_lists else None

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        records = list_page(response).get("data") or []
        return self.completer.complete_all(records) if self.completer is not None else records


def list_page(response: requests.Response) -> Mapping[str, Any]:
    """The parsed body of a Stripe list page, parsed once and kept on the response for the paginator."""
    body = getattr(response, "_stripe_list_page", None)
    if body is None:
        body = orjson.loads(response.content) if response.content else {}
        response._stripe_list_page = body  # type: ignore[attr-defined]
    return body


def forget_list_page(response: requests.Response) -> None:
    """Drop the parsed page kept on the response. The retriever holds a page's response until the next page's
    arrives, so every worker would hold its last page's parsed objects (~1 MB) through a whole request latency:
    memory that grew with the windows in flight, not with what is being read."""
    response.__dict__.pop("_stripe_list_page", None)


@dataclass
class StripeListPagination(PaginationStrategy):
    """Next page: `starting_after=<id of the last object of this page>` while Stripe says `has_more`.

    The manifest's `CursorPagination` says the same in Jinja, but parses the whole response a second time on
    every page to evaluate it (measured: 11% of the CPU of a sync, more than the extraction itself); this reads
    the page the extractor already parsed. The id comes from the page, not from the last record emitted: a
    re-read window may filter out a whole page.
    """

    parameters: InitVar[Mapping[str, Any]] = None
    page_size: int = 100

    @property
    def initial_token(self) -> Optional[Any]:
        return None

    def next_page_token(self, response: requests.Response, last_page_size: int, last_record: Optional[Any],
                        last_page_token_value: Optional[Any], page_size_override: Optional[int] = None) -> Optional[Any]:
        page = list_page(response)
        data = page.get("data") or []
        token = data[-1]["id"] if page.get("has_more") and data else None
        forget_list_page(response)  # the page's records are all read: its parsed objects need not wait for the next
        return token

    def get_page_size(self) -> Optional[int]:
        return self.page_size


class SubListCompleter:
    """Gives every record its complete embedded lists (`lines` of an invoice, `refunds` of an application fee...).

    Stripe embeds at most the first 10 items of such a list (`has_more` tells there are more); the rest come from
    the list's own `url` (`/v1/invoices/{id}/lines`). The missing pages are fetched through the CDK's HTTP client
    (same retries and rate budget as the streams) and merged: `data` holds every item, `has_more` is false. The
    records of a page are completed in parallel (`parallel_records`): one after another, each costing a round trip,
    they held the invoices stream to ~3 requests/s and made it the tail of every sync.

    A record can be deleted (a draft invoice) between its list page and its sub-list: Stripe answers 404, the
    record is gone, and it is left out of the page (its deletion event brings the tombstone) instead of failing the
    whole stream. An item the next page started after can vanish (400 `resource_missing` on `starting_after`): the
    sub-list is listed again from the first, at most MAX_RELISTS times.
    """

    def __init__(self, config: Mapping[str, Any], sub_lists: Tuple[str, ...], api_budget: Optional[APIBudget],
                 stream: str = "", page_size: int = 100, parallel_records: int = 8) -> None:
        self._config = config
        self._sub_lists = sub_lists
        self._stream = stream
        self._page_size = page_size
        # 400 and 404 come back as responses, so that a gone record or a vanished cursor can be told apart from a
        # real failure; everything else keeps the CDK's default handling.
        handler = HttpStatusErrorHandler(logger, error_mapping={
            **DEFAULT_ERROR_MAPPING, 400: ErrorResolution(ResponseAction.IGNORE),
            404: ErrorResolution(ResponseAction.IGNORE)})
        self._http = HttpClient(name="sub_lists", logger=logger, api_budget=api_budget, error_handler=handler)
        self._pool = ThreadPoolExecutor(max_workers=parallel_records, thread_name_prefix="sub-lists")

    def complete_all(self, records: List[MutableMapping[str, Any]]) -> List[MutableMapping[str, Any]]:
        """The page's records with complete sub-lists, without those deleted while their sub-lists were read."""
        incomplete = [r for r in records if any((r.get(name) or {}).get("has_more") for name in self._sub_lists)]
        completed = list(self._pool.map(self.complete, incomplete))  # re-raises the first failure
        gone = {record["id"] for record, done in zip(incomplete, completed) if done is None}
        return [record for record in records if record["id"] not in gone] if gone else records

    def complete(self, record: MutableMapping[str, Any]) -> Optional[MutableMapping[str, Any]]:
        """One record with all of its sub-lists (a listed one, or one re-fetched by id after an event); None when
        the record was deleted before its sub-lists could be read."""
        for name in self._sub_lists:
            embedded = record.get(name)
            if embedded and embedded.get("has_more"):
                remaining = self._remaining(embedded["url"], embedded["data"])
                if remaining is None:
                    logger.info(f"{self._stream}: {record.get('object')} {record['id']} was deleted while its {name} "
                                f"were read; it is left out, and its deletion event brings its tombstone to an "
                                f"incremental sync.")
                    return None
                first_ids = {item["id"] for item in embedded["data"]}
                embedded["data"] = embedded["data"] + [item for item in remaining if item["id"] not in first_ids]
                embedded["has_more"] = False
        return record

    def _remaining(self, path: str, first_items: List[Mapping[str, Any]]) -> Optional[List[Mapping[str, Any]]]:
        """The items after the embedded ones (all of them after a re-listing); None when the record is gone."""
        url = f"{api_base(self._config)}{path}"
        headers = stripe_headers(self._config)
        fetched: List[Mapping[str, Any]] = []
        cursor = first_items[-1]["id"] if first_items else None
        relists = 0
        while True:
            params = {"limit": str(self._page_size)}
            if cursor:
                params["starting_after"] = cursor
            _, page = self._http.send_request("GET", url, request_kwargs={}, headers=headers, params=params)
            if page.status_code == 404:
                return None
            if page.status_code == 400:
                if not _vanished_cursor(page) or relists >= MAX_RELISTS:
                    raise self._failure(path, page, relists)
                relists += 1
                fetched, cursor = [], None  # list every item again; the embedded ones are dropped by id
                continue
            body = orjson.loads(page.content)
            fetched.extend(body["data"])
            if not body.get("has_more") or not body["data"]:
                return fetched
            cursor = body["data"][-1]["id"]

    def _failure(self, path: str, response: requests.Response, relists: int) -> AirbyteTracedException:
        if relists:
            message = (f"{self._stream}: {path} was listed again {relists} times because the item a page started "
                       f"after kept vanishing (the object is being edited): run the sync again.")
        else:
            message = f"{self._stream}: Stripe answered HTTP 400 to GET {path}: {response.text[:300]}"
        return AirbyteTracedException(message=message, internal_message=message,
                                      failure_type=FailureType.system_error)


MAX_RELISTS = 3


def _vanished_cursor(response: requests.Response) -> bool:
    try:
        error = (orjson.loads(response.content) or {}).get("error") or {}
    except orjson.JSONDecodeError:
        return False
    return error.get("code") == "resource_missing" and error.get("param") == "starting_after"

@dataclass
class CreatedFromField(RecordTransformation):
    """Gives records of a `created_from` stream a `created` copy of that field (invoice items: `date`).

    Stripe's invoice item has no `created`; its list's `created` filter reads `date`. With a `created` copy, the
    stream's windows, state, history probe and change capture work as for every other stream; `date` stays as
    Stripe sent it. The manifest's `AddFields` would do the copy but must be repeated in every stream that needs it
    (a stream's `transformations` replace the shared ones), and objects re-fetched after an event need it too
    (`copy_created`). A no-op for streams that declare no `created_from`.
    """

    parameters: InitVar[Mapping[str, Any]] = None
    config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self.source_field = (parameters or {}).get("created_from") or None

    def transform(self, record: MutableMapping[str, Any], config: Any = None, stream_state: Any = None,
                  stream_slice: Any = None) -> None:
        if self.source_field:
            copy_created(record, self.source_field)


def copy_created(record: MutableMapping[str, Any], source_field: str) -> MutableMapping[str, Any]:
    """`created` = `record[source_field]`, unless the record already has one (a tombstone)."""
    if record.get("created") is None and record.get(source_field) is not None:
        record["created"] = record[source_field]
    return record
