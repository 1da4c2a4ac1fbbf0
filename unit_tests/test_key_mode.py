"""The key's prefix decides the mode (test or live), the rate budget and how the key is shown."""
from __future__ import annotations

import pytest

from source_stripe_ontologie.key_mode import KeyMode, UnknownKeyPrefix, redact

TAIL = "51KeyModeTestAbCdEfGhIjKlMn0000"


@pytest.mark.parametrize("prefix, mode, kind, rps", [
    ("rk_test_", "test", "restricted", 25),
    ("sk_test_", "test", "secret", 25),
    ("rk_live_", "live", "restricted", 100),
    ("sk_live_", "live", "secret", 100),
])
def test_prefix_gives_mode_kind_and_requests_per_second(prefix, mode, kind, rps):
    key_mode = KeyMode.from_key(prefix + TAIL)

    assert (key_mode.mode, key_mode.kind, key_mode.requests_per_second) == (mode, kind, rps)
    assert key_mode.livemode is (mode == "live")


def test_publishable_key_is_recognised_as_publishable():
    assert KeyMode.from_key("pk_live_" + TAIL).kind == "publishable"


@pytest.mark.parametrize("key", ["", "abc", "rk_prod_" + TAIL, "RK_LIVE_" + TAIL, " rk_live_" + TAIL])
def test_unknown_prefix_is_refused_without_showing_the_key(key):
    with pytest.raises(UnknownKeyPrefix) as raised:
        KeyMode.from_key(key)
    if len(key) > 8:
        assert key.strip() not in str(raised.value)


def test_test_mode_announcement_says_only_test_data_is_visible():
    assert KeyMode.from_key("rk_test_" + TAIL).announcement == (
        "Using a test-mode restricted key: only test data is visible")


def test_live_mode_announcement_says_production_data_is_visible():
    assert "production" in KeyMode.from_key("sk_live_" + TAIL).announcement


def test_redact_keeps_prefix_and_last_four_characters_only():
    assert redact("rk_live_" + TAIL) == "rk_live_...0000"
    assert redact("whatever-it-is-abcd1234") == "...1234"


def test_redact_shows_no_tail_of_a_short_key():
    assert redact("rk_live_abc") == "rk_live_..."
