"""Stripe's errors, worded for the person who has to fix them.

Why not the manifest: the manifest's `DefaultErrorHandler` declares the policy (which answers fail, which are
retried, how long to wait, when a list is re-read); this subclass only rewords its verdicts. A manifest
`error_message` cannot redact the key to `rk_live_...abcd`, map Stripe's `rak_*` permission to the Dashboard's
name, or share its words with `check`; and the CDK files a dropped connection as a `system_error` (its default
mapping looks exceptions up by exact class), where it is the transient failure it is.
"""
from __future__ import annotations

import logging
from dataclasses import InitVar, dataclass
from typing import Any, Mapping, Optional, Union

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.error_handlers.default_error_handler import DefaultErrorHandler
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction

from source_stripe_ontologie import error_messages as say
from source_stripe_ontologie.stream_facts import Permission

logger = logging.getLogger("airbyte")

_RETRIED = (ResponseAction.RETRY, ResponseAction.RATE_LIMITED)


def describe_transient(response_or_exception: Union[requests.Response, Exception, None]) -> str:
    """`Stripe answered HTTP 503 (GET /v1/charges)` or `the connection failed (ConnectionError)`."""
    if isinstance(response_or_exception, requests.Response):
        request = response_or_exception.request
        where = f" ({request.method} {request.path_url.split('?')[0]})" if request is not None else ""
        if response_or_exception.status_code == 429:
            return f"Stripe rate-limited the request (HTTP 429){where}"
        return f"Stripe answered HTTP {response_or_exception.status_code}{where}"
    name = type(response_or_exception).__name__
    return f"the connection to Stripe failed ({name})"


_SUCCESS = ErrorResolution(response_action=ResponseAction.SUCCESS)


@dataclass
class StripeErrorHandler(DefaultErrorHandler):
    """The manifest's error policy, with messages that name the stream, the key (redacted) and the fix."""

    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        # The stream's declaration in the manifest reaches every component of the stream as `$parameters`.
        self._stream = str(parameters.get("name") or "stream")
        self._resource = str(parameters.get("resource") or self._stream)
        self._permission = Permission(str(parameters.get("permission") or ""),
                                      str(parameters.get("permission_label") or ""))

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        if isinstance(response_or_exception, requests.Response) and 200 <= response_or_exception.status_code < 300:
            # No filter of ours concerns a success, and the predicate filters would parse every page's JSON again
            # with the standard json module (measured: 20% of a sync's CPU).
            return _SUCCESS
        resolution = super().interpret_response(response_or_exception)
        action = resolution.response_action
        if action == ResponseAction.FAIL:
            return ErrorResolution(ResponseAction.FAIL, resolution.failure_type,
                                   self._failure_message(response_or_exception, resolution))
        if action in _RETRIED:
            message = say.transient_failure(self._stream, describe_transient(response_or_exception))
            return ErrorResolution(action, FailureType.transient_error, message)
        if action == ResponseAction.RESET_PAGINATION:
            if self._resource == "events":  # EventLister lists the events again from the newest
                logger.warning(
                    f"{self._stream}: the event this page of /v1/events started after vanished while it was listed "
                    f"(Stripe: resource_missing on starting_after). Listing the events again from the newest; each "
                    f"changed object is still emitted once.")
            else:
                logger.warning(
                    f"{self._stream}: the object this page started after was deleted during the sync "
                    f"(Stripe: resource_missing on starting_after). Re-reading this window from its newest object; "
                    f"records already sent are skipped."
                )
        return resolution

    def _failure_message(self, response_or_exception: Any, resolution: ErrorResolution) -> str:
        key = str(self.config.get("client_secret") or "")
        if not isinstance(response_or_exception, requests.Response):
            return say.transient_failure(self._stream, describe_transient(response_or_exception))
        status = response_or_exception.status_code
        stripe_message = say.stripe_error_message(response_or_exception)
        if status == 401:
            return say.invalid_key(key)
        if status == 403 and say.stripe_error_code(response_or_exception) == "account_invalid":
            return say.account_access_revoked(self._stream, self.config.get("account_id"), stripe_message)
        if status == 403:
            permission = say.required_permission(stripe_message, self._permission)
            return say.permission_denied(self._stream, self._resource, permission, key)
        if response_or_exception.headers.get("Stripe-Should-Retry") == "false":
            return say.unexpected_answer(self._stream, status, stripe_message) + (
                " (Stripe asked not to retry this request)")
        return say.unexpected_answer(self._stream, status, stripe_message)
