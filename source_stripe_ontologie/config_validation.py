"""Refuse a config that cannot work before a single request is sent, naming the field and the fix.

Why not the manifest: the spec's JSON schema (patterns, `required`) is checked by the CDK too, but its error is
jsonschema's text ("'pk_live_...' does not match '^...'"), which names neither the field nor the fix, and
cannot tell a publishable key from a typo or a pasted space. This runs first, in the entry point and in the
source, so `check`, `discover` and `read` all answer with the same words and Stripe never sees a bad key.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, List, Mapping

from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie.connected_accounts import AccountSelection
from source_stripe_ontologie.error_messages import invalid_config
from source_stripe_ontologie.key_mode import KeyMode, UnknownKeyPrefix, redact

_START_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
_ACCOUNT_ID = re.compile(r"^acct_[0-9A-Za-z]+$")
_CREATE_KEY = (
    "create a restricted key in the Stripe Dashboard (Developers > API keys > Create restricted key) with Read "
    "access to the resources you sync, and paste it (rk_live_... or rk_test_...)"
)


def _shown(value: Any) -> str:
    """A non-secret config value as quoted in a message, cut short."""
    text = repr(value)
    return text if len(text) <= 42 else text[:39] + "...'"


class ConfigValidator:
    """Lists every problem of a config (field name first), or raises them as one config error."""

    def problems(self, config: Mapping[str, Any]) -> List[str]:
        return [
            problem
            for problem in (
                self._client_secret(config.get("client_secret")),
                self._start_date(config.get("start_date")),
                self._account_id(config.get("account_id")),
                self._api_base_url(config.get("api_base_url")),
            )
            if problem
        ] + AccountSelection.problems(config)

    def validate(self, config: Mapping[str, Any]) -> None:
        problems = self.problems(config)
        if problems:
            message = invalid_config(problems)
            raise AirbyteTracedException(message=message, internal_message=message,
                                         failure_type=FailureType.config_error)

    @staticmethod
    def _client_secret(key: Any) -> str:
        if key is None or (isinstance(key, str) and not key.strip()):
            return f"client_secret is empty: {_CREATE_KEY}."
        if not isinstance(key, str):
            return "client_secret must be text (a Stripe key such as rk_live_...)."
        if key != key.strip():
            return (f"client_secret ({redact(key)}) has spaces or line breaks before or after the key: remove them "
                    f"(they come along when copying from the Dashboard).")
        try:
            mode = KeyMode.from_key(key)
        except UnknownKeyPrefix:
            return (f"client_secret ({redact(key)}) is not a Stripe secret or restricted key: it must start with "
                    f"rk_live_, rk_test_, sk_live_ or sk_test_; {_CREATE_KEY}.")
        if mode.kind == "publishable":
            return (f"client_secret ({redact(key)}) is a publishable key: publishable keys cannot read data: "
                    f"{_CREATE_KEY}.")
        return ""

    @staticmethod
    def _start_date(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, str) and _START_DATE.match(value):
            try:
                datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
                return ""
            except ValueError:
                pass
        return (f"start_date {_shown(value)} is not a UTC date and time like 2024-01-01T00:00:00Z: fix it, or "
                f"remove it to sync the whole history.")

    @staticmethod
    def _account_id(value: Any) -> str:
        if value is None or (isinstance(value, str) and _ACCOUNT_ID.match(value)):
            return ""
        return (f"account_id {_shown(value)} is not a Stripe account id (acct_ followed by letters and digits, "
                f"e.g. acct_1032D82eZvKYlo2C): fix it, or remove it to read your own account.")

    @staticmethod
    def _api_base_url(value: Any) -> str:
        if value is None or (isinstance(value, str) and re.match(r"^https?://[^/\s]+", value)):
            return ""
        return f"api_base_url {_shown(value)} is not an http(s) URL such as https://api.stripe.com."
