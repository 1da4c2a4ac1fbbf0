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
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import PaginationStrategy
from airbyte_cdk.sources.streams.call_rate import APIBudget
from airbyte_cdk.sources.streams.http.http_client import HttpClient

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
    """

    config: Mapping[str, Any] = field(default_factory=dict)
    api_budget: Optional[APIBudget] = None
    page_size: int = 100
    parallel_invoices: int = 8

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._http = HttpClient(name="invoice_lines", logger=logger, api_budget=self.api_budget)
        self._pool = ThreadPoolExecutor(max_workers=self.parallel_invoices, thread_name_prefix="invoice-lines")

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        invoices = super().extract_records(response)
        incomplete = [invoice for invoice in invoices if (invoice.get("lines") or {}).get("has_more")]
        list(self._pool.map(self.complete, incomplete))  # re-raises the first failure, like the serial loop
        return invoices

    def complete(self, invoice: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """One invoice with all of its lines (a listed one, or one re-fetched by id after an event)."""
        lines = invoice.get("lines")
        if lines and lines.get("has_more"):
            lines["data"] = lines["data"] + self._remaining_lines(invoice["id"], lines["data"])
            lines["has_more"] = False
        return invoice

    def _remaining_lines(self, invoice_id: str, first_lines: List[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
        url = f"{api_base(self.config)}/v1/invoices/{invoice_id}/lines"
        headers = stripe_headers(self.config)
        fetched: List[Mapping[str, Any]] = []
        cursor = first_lines[-1]["id"] if first_lines else None
        while True:
            params = {"limit": str(self.page_size)}
            if cursor:
                params["starting_after"] = cursor
            _, page = self._http.send_request("GET", url, request_kwargs={}, headers=headers, params=params)
            body = orjson.loads(page.content)
            fetched.extend(body["data"])
            if not body.get("has_more") or not body["data"]:
                return fetched
            cursor = body["data"][-1]["id"]
