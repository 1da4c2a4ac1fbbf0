"""Which Stripe mode a key reads (test or live), and how a key is shown to people (redacted).

Why not the manifest: the mode decides what the user sees (test data or production data), the rate budget
(25 or 100 requests a second) and the wording of our warnings. A manifest can interpolate a key, but it can
neither classify one nor share the result with the check, the rate budget and the sync report.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# The prefixes Stripe gives its keys. Publishable keys (pk_) exist but cannot list anything.
_KEY_PREFIX = re.compile(r"^(sk|rk|pk)_(test|live)_")
_KIND = {"sk": "secret", "rk": "restricted", "pk": "publishable"}
_REQUESTS_PER_SECOND = {"test": 25, "live": 100}


def key_prefix(key: str) -> str:
    """`rk_live_` for `rk_live_...`; empty when the key does not start like a Stripe key."""
    match = _KEY_PREFIX.match(key or "")
    return match.group(0) if match else ""


def redact(key: str) -> str:
    """The only form in which a key may appear in a message, log line or exception: `rk_live_...abcd`.

    Shorter keys than a real Stripe key lose their tail too, so that a mistyped short key is never shown whole.
    """
    key = (key or "").strip()
    tail = key[-4:] if len(key) >= 16 else ""
    return f"{key_prefix(key)}...{tail}"


class UnknownKeyPrefix(ValueError):
    """The key does not start with sk_/rk_/pk_ followed by test_/live_."""


@dataclass(frozen=True)
class KeyMode:
    """The mode (test or live) and kind (restricted, secret or publishable) a key's prefix declares.

    Stripe keys are mode-bound: a test-mode key sees only test data, a live-mode key only live data. The
    prefix is the reliable signal (an empty list carries no `livemode`), so it is read once from the config.
    """

    mode: str  # "test" or "live"
    kind: str  # "restricted", "secret" or "publishable"

    @classmethod
    def from_key(cls, key: str) -> "KeyMode":
        match = _KEY_PREFIX.match(key or "")
        if not match:
            raise UnknownKeyPrefix(f"{redact(key)} does not start with sk_live_, sk_test_, rk_live_ or rk_test_")
        return cls(mode=match.group(2), kind=_KIND[match.group(1)])

    @property
    def is_test(self) -> bool:
        return self.mode == "test"

    @property
    def livemode(self) -> bool:
        """The `livemode` value every object this key can read carries."""
        return self.mode == "live"

    @property
    def requests_per_second(self) -> int:
        """Stripe's global rate limit for the key's mode: 25 requests/s in test mode, 100 in live mode."""
        return _REQUESTS_PER_SECOND[self.mode]

    @property
    def description(self) -> str:
        """`a test-mode restricted key`."""
        return f"a {self.mode}-mode {self.kind} key"

    @property
    def announcement(self) -> str:
        """The line logged once at the start of check and read."""
        visible = "only test data is visible" if self.is_test else "production (live) data is visible"
        return f"Using {self.description}: {visible}"
