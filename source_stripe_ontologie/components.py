"""Custom components the manifest refers to by `class_name`.

Each class does one job the declarative manifest cannot express (well) on its own; its docstring says why.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import InitVar, dataclass, field
from typing import Any, Iterable, List, Mapping, MutableMapping, Optional

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
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
class StripeListExtractor(RecordExtractor):
    """Reads `body["data"]` of a Stripe list page straight from the parsed JSON.

    The manifest's `DpathExtractor` walks the whole response on every page (measured at ~70% of worker CPU);
    Stripe's list envelope always holds its records at `data`, so this reads them directly.
    """

    parameters: InitVar[Mapping[str, Any]] = None

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        return list_page(response).get("data") or []


def list_page(response: requests.Response) -> Mapping[str, Any]:
    """The parsed body of a Stripe list page, parsed once and kept on the response for the paginator."""
    body = getattr(response, "_stripe_list_page", None)
    if body is None:
        body = orjson.loads(response.content) if response.content else {}
        response._stripe_list_page = body  # type: ignore[attr-defined]
    return body


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
        return data[-1]["id"] if page.get("has_more") and data else None

    def get_page_size(self) -> Optional[int]:
        return self.page_size


@dataclass
class InvoiceLinesCompleter(StripeListExtractor):
    """Gives every invoice its complete `lines`.

    Stripe embeds at most the first 10 lines of an invoice (`lines.has_more` tells there are more); the rest
    come from `GET /v1/invoices/{id}/lines`. A manifest can page a child stream, but not merge a child list back
    into its parent record, so this extractor fetches the missing pages through the CDK's HTTP client (same
    retries and rate budget as the streams) and merges them: `lines.data` holds every line, `has_more` is false.
    The invoices of a page are completed in parallel (`parallel_invoices`): one after another, each costing a
    round trip, they held the invoices stream to ~3 requests/s and made it the tail of every sync.

    An invoice can be deleted (a draft) between its list page and its lines: Stripe answers 404, the invoice is
    gone, and it is left out of the page (its `invoice.deleted` event brings the tombstone) instead of failing the
    whole stream. A line the next lines page started after can vanish (400 `resource_missing` on
    `starting_after`): the lines are listed again from the first, at most MAX_LINE_RELISTS times.
    """

    config: Mapping[str, Any] = field(default_factory=dict)
    api_budget: Optional[APIBudget] = None
    page_size: int = 100
    parallel_invoices: int = 8

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        # 400 and 404 come back as responses, so that a gone invoice or a vanished line cursor can be told apart
        # from a real failure; everything else keeps the CDK's default handling.
        handler = HttpStatusErrorHandler(logger, error_mapping={
            **DEFAULT_ERROR_MAPPING, 400: ErrorResolution(ResponseAction.IGNORE), 404: ErrorResolution(ResponseAction.IGNORE)})
        self._http = HttpClient(name="invoice_lines", logger=logger, api_budget=self.api_budget, error_handler=handler)
        self._pool = ThreadPoolExecutor(max_workers=self.parallel_invoices, thread_name_prefix="invoice-lines")

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        invoices = super().extract_records(response)
        incomplete = [invoice for invoice in invoices if (invoice.get("lines") or {}).get("has_more")]
        completed = list(self._pool.map(self.complete, incomplete))  # re-raises the first failure
        gone = {invoice["id"] for invoice, done in zip(incomplete, completed) if done is None}
        return [invoice for invoice in invoices if invoice["id"] not in gone] if gone else invoices

    def complete(self, invoice: MutableMapping[str, Any]) -> Optional[MutableMapping[str, Any]]:
        """One invoice with all of its lines (a listed one, or one re-fetched by id after an event); None when the
        invoice was deleted before its lines could be read."""
        lines = invoice.get("lines")
        if lines and lines.get("has_more"):
            remaining = self._remaining_lines(invoice["id"], lines["data"])
            if remaining is None:
                logger.info(f"invoices: invoice {invoice['id']} was deleted while its lines were read; it is left "
                            f"out, and its invoice.deleted event brings its tombstone to an incremental sync.")
                return None
            first_ids = {line["id"] for line in lines["data"]}
            lines["data"] = lines["data"] + [line for line in remaining if line["id"] not in first_ids]
            lines["has_more"] = False
        return invoice

    def _remaining_lines(self, invoice_id: str, first_lines: List[Mapping[str, Any]]) -> Optional[List[Mapping[str, Any]]]:
        """The lines after the embedded ones (all of them after a re-listing); None when the invoice is gone."""
        url = f"{api_base(self.config)}/v1/invoices/{invoice_id}/lines"
        headers = stripe_headers(self.config)
        fetched: List[Mapping[str, Any]] = []
        cursor = first_lines[-1]["id"] if first_lines else None
        relists = 0
        while True:
            params = {"limit": str(self.page_size)}
            if cursor:
                params["starting_after"] = cursor
            _, page = self._http.send_request("GET", url, request_kwargs={}, headers=headers, params=params)
            if page.status_code == 404:
                return None
            if page.status_code == 400:
                if not _vanished_cursor(page) or relists >= MAX_LINE_RELISTS:
                    raise _lines_failure(invoice_id, page, relists)
                relists += 1
                fetched, cursor = [], None  # list every line again; the embedded ones are dropped by id
                continue
            body = orjson.loads(page.content)
            fetched.extend(body["data"])
            if not body.get("has_more") or not body["data"]:
                return fetched
            cursor = body["data"][-1]["id"]


MAX_LINE_RELISTS = 3


def _vanished_cursor(response: requests.Response) -> bool:
    try:
        error = (orjson.loads(response.content) or {}).get("error") or {}
    except orjson.JSONDecodeError:
        return False
    return error.get("code") == "resource_missing" and error.get("param") == "starting_after"


def _lines_failure(invoice_id: str, response: requests.Response, relists: int) -> AirbyteTracedException:
    if relists:
        message = (f"invoices: the lines of invoice {invoice_id} were listed again {relists} times because the line "
                   f"a page started after kept vanishing (the invoice is being edited): run the sync again.")
    else:
        message = (f"invoices: Stripe answered HTTP 400 to GET /v1/invoices/{invoice_id}/lines: "
                   f"{response.text[:300]}")
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.system_error)
