"""The words a user reads when something goes wrong: one builder shared by check, read and the sync report.

Why not the manifest: the same message (with the key redacted, the stream, the Dashboard permission and the
mode) is needed by the check probe, the read error handler and the end-of-sync report. A manifest
`error_message` is a per-filter Jinja string; it cannot map Stripe's `rak_*` names to Dashboard labels, cannot
be shared with Python code and cannot be unit tested on its own.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Sequence

import requests

from source_stripe_ontologie.key_mode import KeyMode, redact
from source_stripe_ontologie.stream_facts import Permission

_PERMISSION_IN_MESSAGE = re.compile(r"Having the '(rak_[a-z_]+)' permission")
_DASHBOARD_KEYS = "the Stripe Dashboard (Developers > API keys > edit the restricted key)"

SEED_401 = "401 Invalid API Key: verify the restricted key"
SEED_403 = "403 Permission denied: ensure the restricted key has read access to the requested resource type"
TEST_MODE_HINT = "test-mode keys only return test data: use a live-mode key to sync production data"


def stripe_error_message(response: requests.Response) -> str:
    """`error.message` of a Stripe error body, or '' when the body is not Stripe's error JSON."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("message") or "") if isinstance(error, dict) else ""


def stripe_error_code(response: requests.Response) -> str:
    """`error.code` of a Stripe error body (e.g. `account_invalid`), or ''."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def account_access_revoked(stream: str, account: Any, stripe_message: str) -> str:
    """A connected account answered 403 `account_invalid`: it disconnected the platform, or does not exist."""
    return (
        f"{stream}: account {account or '(the platform)'} cannot be read: Stripe answered 403 account_invalid "
        f"({stripe_message.rstrip('.')}). The account disconnected your platform or no longer exists: ask its owner to "
        f"reconnect it, or remove it from connected_accounts (with \"all\" it is no longer listed once Stripe drops "
        f"it). The other accounts are read as usual."
    )


def required_permission(stripe_message: str, declared: Permission) -> Permission:
    """The permission Stripe names in its 403 text (it knows best), else the one the manifest declares."""
    match = _PERMISSION_IN_MESSAGE.search(stripe_message or "")
    if match and match.group(1) != declared.name:
        return Permission(match.group(1))
    return declared


def grant_instruction(stream: str, permission: Permission) -> str:
    """`grant Payouts: Read (rak_payout_read), or do not select payouts`."""
    return f"grant {permission.shown()}, or do not select {stream}"


def events_unreadable(key: str, permission: Permission) -> str:
    """The check's advice when the key reads the streams but not Stripe's events."""
    return (f"Incremental syncs after the first also read Stripe's events to capture updates and deletions, and "
            f"the key ({redact(key)}) cannot: grant {permission.shown()}, or sync with full refresh only.")


def invalid_key(key: str) -> str:
    return (
        f"{SEED_401} ({redact(key)}) is correct and has not been revoked or rolled. "
        f"Keys are listed in the Stripe Dashboard (Developers > API keys)."
    )


def permission_denied(stream: str, resource: str, permission: Permission, key: str) -> str:
    """A 403 while reading one stream."""
    return (
        f"{stream}: 403 Permission denied: the restricted key ({redact(key)}) cannot read {resource} "
        f"(GET /v1/{resource}). In {_DASHBOARD_KEYS}: {grant_instruction(stream, permission)}."
    )


def unreadable_streams(denied: Mapping[str, Permission], total: int, key: str) -> str:
    """The check's verdict when some or all streams answered 403; `denied` maps stream -> permission."""
    grants = "; ".join(f"{stream}: {grant_instruction(stream, permission)}" for stream, permission in denied.items())
    if len(denied) == total:
        return (
            f"{SEED_403}: the key ({redact(key)}) cannot read any of the {total} streams. "
            f"In {_DASHBOARD_KEYS}: {grants}."
        )
    return (
        f"The key ({redact(key)}) works, but {len(denied)} of {total} streams cannot be read "
        f"(403 Permission denied): {grants}. In {_DASHBOARD_KEYS}, grant the permissions, or do not select "
        f"those streams: the other streams sync normally."
    )


def unreachable(url: str, error: BaseException, seconds: float) -> str:
    """The check could not reach the API at all (DNS, refused or dropped connection, timeout)."""
    return (
        f"Could not reach Stripe at {url} within {seconds:g} s: {_network_reason(error)}. "
        f"Check this machine's network connection, DNS, proxy and firewall (api.stripe.com on port 443)."
    )


def _network_reason(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, requests.exceptions.Timeout) or "timed out" in text:
        return "the connection timed out"
    if any(marker in text for marker in ("NameResolution", "Name or service not known", "getaddrinfo",
                                         "nodename nor servname", "Temporary failure in name resolution")):
        return "the host name could not be resolved (DNS failure)"
    if "refused" in text:
        return "the connection was refused"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "the network is unreachable or the connection was dropped"
    return f"{type(error).__name__}"


def unexpected_answer(stream: str, status: int, stripe_message: str) -> str:
    detail = f": {stripe_message}" if stripe_message else ""
    return f"{stream}: Stripe answered HTTP {status}{detail}"


def transient_failure(stream: str, what: str) -> str:
    """What a retried request failed with (`charges: Stripe answered HTTP 503 (GET /v1/charges)`)."""
    return f"{stream}: {what}"


# How the CDK words giving up after the retry budget (http_client.py); the cause follows the first one.
_CDK_GAVE_UP = "Exhausted available request attempts. Please see logs for more details. Exception: "
_CDK_RATE_LIMIT_GAVE_UP = "API rate limit exceeded."


def gave_up(stream: str, cdk_message: str) -> Optional[str]:
    """The CDK's give-up message for a stream, reworded with the cause; None if it is not one."""
    if cdk_message.startswith(_CDK_GAVE_UP):
        cause = cdk_message[len(_CDK_GAVE_UP):]
        cause = cause[len(stream) + 2:] if cause.startswith(f"{stream}: ") else cause
    elif cdk_message == _CDK_RATE_LIMIT_GAVE_UP:
        cause = "Stripe kept rate-limiting the requests (HTTP 429)"
    else:
        return None
    return (f"{stream}: gave up after the retries: {cause.rstrip('.')}. Stripe or the network is having trouble: "
            f"run the sync again later.")


def zero_records(stream: str, mode: KeyMode, key: str, account_id: Optional[str] = None) -> str:
    """The single warning for a stream that finished without records."""
    account = f"the connected account {account_id}" if account_id else "the Stripe account"
    if mode.is_test:
        return (
            f"{stream}: no records. The key ({redact(key)}) is {mode.description}: {TEST_MODE_HINT}. "
            f"Otherwise check that {account} has {stream} in test mode and that start_date is not after them."
        )
    return (
        f"{stream}: no records with {mode.description} ({redact(key)}). "
        f"Check that {account} has {stream} and that start_date is not after them."
    )


def livemode_mismatch(stream: str, record_id: str, record_livemode: object, mode: KeyMode, key: str) -> str:
    return (
        f"{stream}: Stripe returned {record_id} with livemode={str(record_livemode).lower()} to "
        f"{mode.description} ({redact(key)}). A key only ever sees objects of its own mode, so the key or the "
        f"API base URL is not what it seems: check client_secret and api_base_url."
    )


def sync_failed(failed: Mapping[str, str], finished: Mapping[str, int]) -> str:
    """The end-of-sync summary: what failed and why, and what did finish (so no one thinks data was lost)."""
    failures = "; ".join(f"{stream} ({reason.rstrip('.')})" for stream, reason in failed.items())
    done = ", ".join(f"{stream} ({count} records)" for stream, count in finished.items()) or "none"
    return (
        f"{len(failed)} of {len(failed) + len(finished)} streams did not sync: {failures}. "
        f"Streams that finished and saved their state: {done}."
    )


def invalid_config(problems: Sequence[str]) -> str:
    return "Invalid configuration: " + " ".join(problems)
