"""API keys the simulator knows, and how Stripe redacts them in error messages.

Every constant below is fake (random characters after a Stripe-like prefix); none was ever valid at Stripe.
The default simulator registers TEST_KEY, LIVE_KEY, SECRET_TEST_KEY and SECRET_LIVE_KEY with read access to
everything, REVOKED_KEY as revoked (401 like a rolled key) and both publishable keys (refused with 403, see
``PUBLISHABLE_MESSAGE``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Iterable, Optional

ACCOUNT_ID = "acct_1SimOntologie0001"

TEST_KEY = "rk_test_51Simhzi8IedxOvqtlp74JEVWlWD8oQSSnJP00ibue8My8JV3SRYe96X0HROLhErVWsdVYXmU0Uh05gxv6rnlXcNpsI1AqOiQrI"
LIVE_KEY = "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"
SECRET_TEST_KEY = "sk_test_51SimkpGDF9JQ9KBQM4KYt5y8TaWueSHn6CVXhK21VX1Hoo7f18qhSNDBH3VWk3ukwofbLyPryn1kCNJTvruKfeNh7tjWjRJ7Lw"
SECRET_LIVE_KEY = "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"
REVOKED_KEY = "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"
PUBLISHABLE_KEY = "pk_live_51SimUbVArFcHcAilBn7TIwlCuKwr7Jg8dG88IBo7L2GvyMCHsXCqVqqr03F7ngsYdV32KqqLdf3pcrdNmgkHC8yNqOM1DDODm0"
PUBLISHABLE_TEST_KEY = "pk_test_51SimInHmcAcX16UFiXu2nnekxdlLoy1Htjr2gzQhsnyVbRVEl4HILaLKn1eaezMwe0AMOjH6Ke11zkWCmeUCwTkDbn1tNJfUqq"

# Resource (URL segment) -> the restricted-key permission Stripe names in its 403 message.
PERMISSIONS = {
    "customers": "rak_customer_read",
    "charges": "rak_charge_read",
    "subscriptions": "rak_subscription_read",
    "invoices": "rak_invoice_read",
    "products": "rak_product_read",
    "payouts": "rak_payout_read",
    "events": "rak_event_read",
    # the money trail (what the connector's manifest declares; see its comments on what Stripe's docs leave open)
    "balance_transactions": "rak_balance_read",
    "refunds": "rak_refund_read",
    "disputes": "rak_dispute_read",
    "payment_intents": "rak_payment_intent_read",
    "credit_notes": "rak_credit_note_read",
    "invoiceitems": "rak_invoiceitem_read",
    "prices": "rak_plan_read",
    "coupons": "rak_coupon_read",
    "application_fees": "rak_application_fee_read",
    "transfers": "rak_transfer_read",
}

# Stripe answered publishable keys on secret-only endpoints with 401 (AuthenticationError) in 2016 and answers
# 403 (PermissionError) today; the simulator follows today's behaviour.
PUBLISHABLE_STATUS = 403
PUBLISHABLE_MESSAGE = (
    "This API call cannot be made with a publishable API key. Please use a secret API key. "
    "You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys."
)
MISSING_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, using "
    "Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication "
    "for details, or we can help at https://support.stripe.com/."
)

_PREFIX = re.compile(r"^((?:sk|rk|pk)_(?:test|live)_)")


def key_prefix(key: str) -> str:
    match = _PREFIX.match(key)
    return match.group(1) if match else ""


def redact_invalid(key: str) -> str:
    """Redaction used in Stripe's 401 text: ``rk_test_********1234``."""
    tail = key[-4:] if len(key) > 8 else ""
    return f"{key_prefix(key)}********{tail}"


def redact_forbidden(key: str) -> str:
    """Redaction used in Stripe's 403 text: ``rk_test_***abcd``."""
    tail = key[-4:] if len(key) > 8 else ""
    return f"{key_prefix(key)}***{tail}"


def redact_log(value: str) -> str:
    """Redaction used in the request log (team rule: prefix + last four): ``Bearer rk_live_...abcd``."""
    scheme, _, key = value.partition(" ")
    if not key:
        scheme, key = "", scheme
    tail = key[-4:] if len(key) > 8 else ""
    redacted = f"{key_prefix(key)}...{tail}"
    return f"{scheme} {redacted}" if scheme else redacted


@dataclass
class KeyInfo:
    key: str
    mode: str  # "test" or "live"
    resources: Optional[frozenset] = None  # None: every resource readable
    revoked: bool = False
    account: str = ACCOUNT_ID

    @property
    def publishable(self) -> bool:
        return self.key.startswith("pk_")

    def can_read(self, resource: str) -> bool:
        return self.resources is None or resource in self.resources


@dataclass
class KeyRegistry:
    """Which keys exist, in which mode, with which read permissions. Thread-safe."""

    _keys: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, mode: Optional[str] = None, resources: Optional[Iterable[str]] = None,
            revoked: bool = False, account: str = ACCOUNT_ID, known: Optional[Iterable[str]] = None) -> KeyInfo:
        """``resources``: the readable ones (None: all); each must be in ``known`` (default: the PERMISSIONS
        table; the simulator passes every resource it serves)."""
        if mode is None:
            mode = "live" if "_live_" in key[:8] else "test"
        if mode not in ("test", "live"):
            raise ValueError(f"mode must be 'test' or 'live', not {mode!r}")
        if resources is not None:
            resources = frozenset(resources)
            known = set(PERMISSIONS) if known is None else set(known)
            unknown = resources - known
            if unknown:
                raise ValueError(f"unknown resources {sorted(unknown)}; known: {sorted(known)}")
        info = KeyInfo(key=key, mode=mode, resources=resources, revoked=revoked, account=account)
        with self._lock:
            self._keys[key] = info
        return info

    def get(self, key: str) -> Optional[KeyInfo]:
        with self._lock:
            return self._keys.get(key)

    def revoke(self, key: str) -> None:
        with self._lock:
            self._keys[key].revoked = True

    @classmethod
    def default(cls) -> "KeyRegistry":
        registry = cls()
        registry.add(TEST_KEY, "test")
        registry.add(LIVE_KEY, "live")
        registry.add(SECRET_TEST_KEY, "test")
        registry.add(SECRET_LIVE_KEY, "live")
        registry.add(REVOKED_KEY, "live", revoked=True)
        registry.add(PUBLISHABLE_KEY, "live")
        registry.add(PUBLISHABLE_TEST_KEY, "test")
        return registry
